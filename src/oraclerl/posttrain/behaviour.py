"""Exploration behaviours of the theoretical algorithms (Mousavi-Hosseini & Erdogdu 2026, Algorithms 1 and 2).

Both start from an on-policy response that the reward oracle judged wrong and search with the mixture
q = mix·q₀ + (1 − mix)·Unif (mix = ½ in the paper), where q₀ is reached only through a sampling oracle:

* :func:`explore_outcome` (Algorithm 1, best-of-m over whole sequences): draw up to m sequences from q,
  one ORM query each, stop at the first correct one.
* :func:`explore_process` (Algorithm 2, per token): from the verified-correct prefix, draw up to m candidate
  next tokens from q(·|x, prefix), one PRM query (on prefix + candidate) each, until a verified-correct
  token is found; continue to the next position; stop a row when m candidates all fail.

Queries are made one candidate per still-searching row per round (vectorised over rows), so the count is
exactly that of the sequential algorithm. The update itself is not importance-weighted (the paper's main
text). Responses are [B, n, N]; a response counts as correct when its reward equals ``r_max`` (= 1 in both
the {0,1} and the ±1 forms).
"""

from __future__ import annotations

import torch


def _mixture_tokens(
    rows: int, shape: tuple[int, ...], mix: float, k: int, draw_q0, generator
) -> torch.Tensor:
    """Tokens from mix·q₀ + (1−mix)·Unif: a coin per row; q₀ is queried only for the rows that need it."""
    dev = generator.device if generator is not None else "cpu"
    coin = torch.rand(rows, generator=generator, device=dev) < mix
    out = torch.randint(0, k, (rows, *shape), generator=generator, device=dev)
    if coin.any():
        idx = coin.nonzero()[:, 0]
        out[idx] = draw_q0(idx).reshape(idx.numel(), *shape).to(out.dtype)
    return out


def explore_outcome(
    ids: torch.Tensor,
    y: torch.Tensor,
    r: torch.Tensor,
    reward,
    base_sampler,
    num_actions: int,
    m: int,
    mix: float,
    generator: torch.Generator | None = None,
):
    """Algorithm 1's best-of-m search for every wrong response. Returns (y, r) with found ones replaced.

    Args:
        ids: prompt ids [B]; y: responses [B, n, N]; r: their outcome rewards [B, n].
        reward: a :class:`~oraclerl.oracles.RewardOracle` (outcome); base_sampler: a
            :class:`~oraclerl.oracles.WeakSampler` of q₀ (counts T_comp); num_actions: vocabulary size k.
    """
    y, r = y.clone(), r.clone()
    B, n, N = y.shape
    k = num_actions
    success = reward.r_max
    flat_ids = ids[:, None].expand(B, n).reshape(-1)
    yf, rf = y.view(B * n, N), r.view(B * n)
    active = (rf < success).nonzero()[:, 0]
    for _ in range(m):
        if active.numel() == 0:
            break
        pid = flat_ids[active]
        cand = _mixture_tokens(
            active.numel(),
            (N,),
            mix,
            k,
            lambda idx, pid=pid: base_sampler.sample(pid[idx], 1, generator).responses[:, 0],
            generator,
        )
        # the uniform part of the mixture is the learner's own draw
        reward.grant(pid, cand[:, None, :])
        rc = reward.outcome(pid, cand[:, None, :], generator)[:, 0]
        hit = rc >= success
        yf[active[hit]] = cand[hit].to(yf.dtype)
        rf[active[hit]] = rc[hit]
        active = active[~hit]
    return y, r


def explore_process(ids: torch.Tensor, y: torch.Tensor, R: torch.Tensor, reward, base_sampler, m: int,
                    mix: float, failure: float, generator: torch.Generator | None = None):
    """Algorithm 2's per-token search. Returns (y, R) with the constructed trajectories and their rewards.

    Args:
        ids: prompt ids [B]; y: on-policy responses [B, n, N]; R: their process rewards [B, n, N].
        reward: a :class:`~oraclerl.oracles.RewardOracle` over a process reward (its ``outcome`` on a prefix
            of length i is the verifier's answer for that prefix: one query); base_sampler: an
            :class:`~oraclerl.oracles.AutoregressiveSampler` of q₀ (counts T_comp_token).
        failure: the reward value of a wrong prefix (0 in the {0,1} form, −1 in the ±1 form).

    Rows where the search gives up at position i keep the failed candidate there and their on-policy tokens
    after it; their rewards are the verified ones (success up to i−1, failure from i on), so nothing is
    queried twice.
    """
    y, R = y.clone(), R.clone()
    B, n, N = y.shape
    k = base_sampler.num_actions
    success = reward.r_max
    fail = failure
    flat_ids = ids[:, None].expand(B, n).reshape(-1)
    yf, Rf = y.view(B * n, N), R.view(B * n, N)
    ok = Rf >= success
    # length of the verified-correct prefix of each response (process rewards are monotone)
    pos = ok.to(torch.long).cumprod(1).sum(1)
    alive = pos < N
    for i in range(N):
        rows = (alive & (pos == i)).nonzero()[:, 0]
        if rows.numel() == 0:
            continue
        found = torch.zeros(rows.numel(), dtype=torch.bool, device=rows.device)
        todo = torch.arange(rows.numel(), device=rows.device)
        for _ in range(m):
            if todo.numel() == 0:
                break
            r_rows = rows[todo]
            pid, prefix = flat_ids[r_rows], yf[r_rows, :i]
            cand = _mixture_tokens(r_rows.numel(), (), mix, k,
                                   lambda idx, pid=pid, prefix=prefix: base_sampler.next_token(
                                       pid[idx], prefix[idx], 1, generator=generator).responses[:, 0],
                                   generator)
            yf[r_rows, i] = cand.to(yf.dtype)
            reward.grant(pid, yf[r_rows, None, : i + 1])   # uniform candidates are the learner's own draws
            rc = reward.outcome(pid, yf[r_rows, None, : i + 1], generator)[:, 0]
            hit = rc >= success
            found[todo[hit]] = True
            todo = todo[~hit]
        good, bad = rows[found], rows[~found]
        Rf[good, i] = success
        pos[good] = i + 1
        Rf[bad, i:] = fail
        alive[bad] = False
    return y, R
