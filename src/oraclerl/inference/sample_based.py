"""Sample-based inference-time alignment over any oracle pair (:class:`WeakSampler` + :class:`RewardOracle`).

The algorithms touch the base model only through ``weak.sample(prompts, n, generator)`` and the reward only
through ``reward.outcome(prompts, responses, generator)``; responses may have any trailing shape
``[B, n, ...]`` (token ids [B, n, L] for a causal LM) and are selected along dim 1 only, so the same code
runs on exact models and on real LMs. Every call is counted in the oracles' ledgers.

API (one shape: ``X(XConfig(...)).run(weak, reward, prompts, generator) -> XResult``; every result holds
``responses [B, m, ...]``, ``rewards [B, m]``, ``kl_estimate [B] | None`` and ``ledger`` (the summed counters
of both oracles, :func:`~oraclerl.oracles.ledger.ledger_totals`)):

* ``BestOfN(BestOfNConfig(n, num_samples=m)) -> BestOfNResult``.
  Draws m·n candidates per prompt (one oracle call each), returns the best of each group of n (uniform
  tie-breaking). ``kl_estimate`` = mean over the m winners of Beirami et al.'s D̂_n(π_ref(y|x)) when the
  sampler reveals log-probabilities (``"log_probs" in weak.reveal``), else ``None``; ``kl_formula`` =
  log n − (n−1)/n (an upper bound on the exact KL).
* ``SoftBestOfN(SoftBestOfNConfig(n, temperature, num_samples)) -> SoftBestOfNResult``
  (Verdun et al. 2025): picks candidate i with probability softmax(r/τ)_i. ``kl_estimate`` is the
  reference-free bound E[Σ_i s_i log(n s_i)] ≥ KL(SBoN ‖ π_ref) (data processing), estimated over draws.
* ``RejectionSampling(RejectionSamplingConfig(beta, num_samples, r_max)) -> RejectionSamplingResult``:
  exact draws from π_ref·exp(r/β)/Z: accept a proposal with probability e^{(r − r_max)/β}; needs a known
  bound r ≥ max r (from the config or ``reward.r_max``). ``exact [B, m]`` flags slots filled by an accepted
  proposal (others fall back to the best proposal seen once ``max_proposals`` is spent);
  ``kl_estimate`` = mean accepted r/β − log mean e^{r/β} over proposals (reference-free); a prompt with
  nothing accepted uses the self-normalised Σ softmax(r/β)·r/β instead (``kl_from_accepted`` says which).
* On a :class:`~oraclerl.models.hf.causal_lm.CausalLM`, ``log π_ref`` revealed by the weak sampler is the
  log-probability recorded while sampling (no second teacher-forced pass; see its module docstring).
* ``BestOfPoisson(BestOfPoissonConfig(mu, num_samples)) -> BestOfPoissonResult``
  (Khalaf et al. 2025): best-of-n' with n' = 1 + Poisson(μ) per draw; ``kl_estimate`` = mean D̂_{n'}(π_ref(y))
  (an upper estimate by convexity of KL) when log-probabilities are revealed.

Responses of different ``weak.sample`` calls must share their trailing shape (an LM wrapper should pad to
a fixed length) because rejection sampling stacks accepted responses across rounds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..common.config import param, validate
from ..errors import ConfigError, RevealError
from ..oracles.ledger import ledger_totals
from .best_of_n import best_of_n_kl_estimate, best_of_n_kl_formula


def revealed_log_probs(samples) -> torch.Tensor | None:
    """log π_ref(y|x) [B, n] when the oracle reveals it, else ``None``."""
    try:
        return samples.log_probs
    except RevealError:
        return None


def select(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x [B, n, ...] indexed along dim 1 by idx [B, m] -> [B, m, ...] (any trailing shape)."""
    rows = torch.arange(x.shape[0], device=x.device)[:, None]
    return x[rows, idx.to(x.device)]


def argmax_random_ties(values: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Index of the largest entry along the last dim, ties broken uniformly at random."""
    top = values == values.amax(-1, keepdim=True)
    keys = torch.rand(values.shape, generator=generator, dtype=torch.float64).to(values.device)
    return torch.where(top, keys, -1.0).argmax(-1)


def _prompts(prompts) -> torch.Tensor:
    p = torch.as_tensor(prompts, dtype=torch.long)
    return p.reshape(1) if p.dim() == 0 else p


@dataclass
class SelectionResult:
    """What every sample-based algorithm returns (each result class adds its own diagnostics)."""

    responses: torch.Tensor
    """Selected responses [B, m, ...]."""
    rewards: torch.Tensor
    """Their observed rewards [B, m]."""
    ledger: dict
    """Oracle-call counters of both oracles after the run."""


def candidate_groups(weak, reward, prompts, n: int, m: int, generator: torch.Generator | None):
    """m groups of n candidates per prompt from one weak call, scored by one reward call: (samples with
    responses [B, m·n, ...], rewards [B, m, n])."""
    prompts = _prompts(prompts)
    s = weak.sample(prompts, n * m, generator)
    rew = reward.outcome(prompts, s.responses, generator)  # [B, m·n]
    return s, rew.reshape(rew.shape[0], m, n)


def group_winners(win: torch.Tensor, n: int) -> torch.Tensor:
    """Flat candidate indices [B, m] (into the m·n of :func:`candidate_groups`) of the winners ``win`` [B,
    m]."""
    return torch.arange(win.shape[1], device=win.device)[None, :] * n + win


class _SampleBased:
    """``X(XConfig(...)).run(weak, reward, prompts, generator)``; the config is validated when constructed."""

    config_class: type

    def __init__(self, config=None):
        self.config = config if config is not None else self.config_class()


@dataclass
class BestOfNConfig:
    """Best-of-n (Beirami et al. 2025 §2): return the highest-reward of n reference samples."""

    n: int = param(16, "candidates per selection n (KL ≤ log n − (n−1)/n, Thm 3.1)", low=1)
    num_samples: int = param(1, "independent selections m per prompt", low=1)

    def __post_init__(self):
        validate(self)


@dataclass
class BestOfNResult(SelectionResult):
    kl_estimate: torch.Tensor | None
    """Mean D̂_n(π_ref(y|x)) over the m selections [B] (None when log π_ref is not revealed)."""
    kl_formula: float
    """log n − (n−1)/n."""


class BestOfN(_SampleBased):
    """Best-of-n through the oracles: m·n weak samples and m·n reward queries per prompt."""

    config_class = BestOfNConfig

    def run(self, weak, reward, prompts, generator: torch.Generator | None = None) -> BestOfNResult:
        n = self.config.n
        s, rew = candidate_groups(weak, reward, prompts, n, self.config.num_samples, generator)
        flat = group_winners(argmax_random_ties(rew, generator), n)  # [B, m]
        logp = revealed_log_probs(s)
        est = None
        if logp is not None:
            est = best_of_n_kl_estimate(log_eps=select(logp, flat).double().clamp(max=0.0), n=n).mean(-1)
        return BestOfNResult(
            select(s.responses, flat),
            select(rew.flatten(1), flat),
            ledger_totals(weak, reward),
            est,
            float(best_of_n_kl_formula(n)),
        )


@dataclass
class SoftBestOfNConfig:
    """Soft best-of-n (Verdun et al. 2025): pick y_i with probability ∝ e^{r(y_i)/τ} among n samples."""

    n: int = param(16, "candidates per selection n (n → ∞ gives the tilt π_ref·e^{r/τ})", low=1)
    temperature: float = param(
        1.0, "softmax temperature τ (Verdun et al.'s λ; τ → 0 is best-of-n)", low=0.0, low_open=True
    )
    num_samples: int = param(1, "independent selections m per prompt", low=1)

    def __post_init__(self):
        validate(self)


@dataclass
class SoftBestOfNResult(SelectionResult):
    kl_estimate: torch.Tensor
    """Mean over selections of Σ_i s_i log(n s_i) [B]: estimates an upper bound on KL(SBoN ‖ π_ref)."""


class SoftBestOfN(_SampleBased):
    """Soft best-of-n through the oracles (Gumbel-max selection, exact softmax law)."""

    config_class = SoftBestOfNConfig

    def run(self, weak, reward, prompts, generator: torch.Generator | None = None) -> SoftBestOfNResult:
        n = self.config.n
        s, rew = candidate_groups(weak, reward, prompts, n, self.config.num_samples, generator)
        logits = rew.double() / self.config.temperature
        u = torch.rand(logits.shape, generator=generator, dtype=torch.float64).clamp_min(1e-300)
        u = u.to(logits.device)
        flat = group_winners((logits - torch.log(-torch.log(u))).argmax(-1), n)
        log_s = torch.log_softmax(logits, -1)
        bound = (torch.exp(log_s) * (log_s + math.log(n))).sum(-1).mean(-1)
        return SoftBestOfNResult(select(s.responses, flat), select(rew.flatten(1), flat),
                                 ledger_totals(weak, reward), bound)


@dataclass
class RejectionSamplingConfig:
    """Exact rejection sampling of π_ref·exp(r/β) with a known reward bound (docs/papers/bon_vs_kl_rl.md
    §6)."""

    beta: float = param(
        1.0, "KL-regularisation β of the target π_ref·e^{r/β} (λ = 1/β)", low=0.0, low_open=True
    )
    num_samples: int = param(1, "accepted samples m per prompt", low=1)
    r_max: float | None = param(None, "upper bound on the reward; None: use reward.r_max (must be known)")
    proposals_per_round: int = param(16, "proposals drawn per prompt per oracle call", low=1)
    max_proposals: int = param(
        100_000, "proposal cap per prompt (expected need m·e^{r_max/β − Λ(1/β)})", low=1
    )

    def __post_init__(self):
        validate(self)


@dataclass
class RejectionSamplingResult(SelectionResult):
    exact: torch.Tensor
    """[B, m] True where the slot holds an accepted (exact) sample."""
    proposals: torch.Tensor
    """Proposals drawn per prompt [B]."""
    kl_estimate: torch.Tensor
    """KL(π‖π_ref) = E_π r/β − log E_ref e^{r/β} [B], with E_ref by the mean over all proposals and E_π by the
    mean accepted r/β; for a prompt with no accepted proposal (``kl_from_accepted`` False) E_π is the
    self-normalised estimate Σ_i softmax(r/β)_i r_i/β over its proposals. Always defined (never NaN), ≥ 0."""
    kl_from_accepted: torch.Tensor | None = None
    """[B] True where ``kl_estimate`` used accepted samples, False where it fell back to self-normalising."""


class RejectionSampling(_SampleBased):
    """Draw y ~ π_ref, accept with probability e^{(r(y) − r_max)/β}; repeat until m acceptances per prompt."""

    config_class = RejectionSamplingConfig

    def run(self, weak, reward, prompts, generator: torch.Generator | None = None) -> RejectionSamplingResult:
        config = self.config
        r_max = config.r_max if config.r_max is not None else reward.r_max
        if r_max is None or not math.isfinite(r_max):
            raise ConfigError("r_max", "needs a finite reward upper bound (config.r_max or reward.r_max)")
        prompts = _prompts(prompts)
        B, m, k, beta = prompts.numel(), config.num_samples, config.proposals_per_round, config.beta
        out_resp = None
        out_rew = torch.full((B, m), -math.inf, dtype=torch.float64)
        exact = torch.zeros(B, m, dtype=torch.bool)
        got = torch.zeros(B, dtype=torch.long)
        drawn = torch.zeros(B, dtype=torch.long)
        log_z = torch.full((B,), -math.inf, dtype=torch.float64)  # log Σ e^{r/β} over proposals
        sn_reward_sum = torch.zeros(B, dtype=torch.float64)  # Σ softmax(r/β)_i r_i over proposals
        best = torch.full((B,), -math.inf, dtype=torch.float64)
        best_resp = None
        active = torch.arange(B)
        while active.numel():
            s = weak.sample(prompts[active], k, generator)
            rew = reward.outcome(prompts[active], s.responses, generator).double().cpu()  # [A, k]
            if (rew > r_max + 1e-9 * max(1.0, abs(r_max))).any():
                raise ConfigError("r_max", f"observed reward {rew.max().item():.6g} above the bound {r_max}; "
                                           "rejection sampling is exact only with a true upper bound")
            if out_resp is None:
                out_resp = torch.zeros((B, m) + tuple(s.responses.shape[2:]), dtype=s.responses.dtype,
                                       device=s.responses.device)
                best_resp = torch.zeros((B,) + tuple(s.responses.shape[2:]), dtype=s.responses.dtype,
                                        device=s.responses.device)
            drawn[active] += k
            new_log_z = torch.logaddexp(log_z[active], torch.logsumexp(rew / beta, -1))
            # running Σ_i softmax(r/β)_i r_i over all proposals so far (re-weighted as log Z grows)
            sn_reward_sum[active] = (
                sn_reward_sum[active] * torch.exp(log_z[active] - new_log_z).nan_to_num(0.0)
                + (torch.exp(rew / beta - new_log_z[:, None]) * rew).sum(-1))
            log_z[active] = new_log_z
            u = torch.rand(rew.shape, generator=generator, dtype=torch.float64)
            acc = torch.log(u) < (rew - r_max) / beta
            slot = got[active][:, None] + torch.cumsum(acc.to(torch.long), -1) - 1
            keep = acc & (slot < m)
            rows, cols = keep.nonzero(as_tuple=True)
            dev = s.responses.device
            out_resp[active[rows].to(dev), slot[rows, cols].to(dev)] = s.responses[rows.to(dev), cols.to(dev)]
            out_rew[active[rows], slot[rows, cols]] = rew[rows, cols]
            exact[active[rows], slot[rows, cols]] = True
            got[active] += keep.sum(-1)
            rmax_round, j = rew.max(-1)
            better = rmax_round > best[active]
            idx = active[better]
            best[idx] = rmax_round[better]
            best_resp[idx.to(dev)] = s.responses[better.nonzero(as_tuple=True)[0].to(dev), j[better].to(dev)]
            active = active[(got[active] < m) & (drawn[active] + k <= config.max_proposals)]
        fill = ~exact
        if fill.any():  # proposal cap reached: fall back to the best proposal seen (flagged inexact)
            rows, cols = fill.nonzero(as_tuple=True)
            out_resp[rows.to(out_resp.device), cols.to(out_resp.device)] = best_resp[rows.to(out_resp.device)]
            out_rew[rows, cols] = best[rows]
        log_mean_z = log_z - torch.log(drawn.double())
        mean_acc = torch.where(exact, out_rew, 0.0).sum(-1) / exact.sum(-1).clamp_min(1)
        kl_acc = (mean_acc / beta - log_mean_z).clamp_min(0.0)
        # Nothing accepted for a prompt: E_π[r/β] by self-normalised importance weights softmax(r/β) over all
        # proposals, which makes the estimate KL(w ‖ uniform) ≥ 0 over the proposals (always defined).
        kl_snis = (sn_reward_sum / beta - log_mean_z).clamp_min(0.0)
        from_acc = exact.any(-1)
        kl = torch.where(from_acc, kl_acc, kl_snis)
        return RejectionSamplingResult(out_resp, out_rew, ledger_totals(weak, reward), exact, drawn, kl,
                                       from_acc)


@dataclass
class BestOfPoissonConfig:
    """Best-of-Poisson (Khalaf et al. 2025): best-of-n' with n' = 1 + Poisson(μ) drawn per selection."""

    mu: float = param(
        8.0, "Poisson mean μ (density (1+μu)e^{μ(u−1)} on calibrated reward u ≈ the tilt e^{μu})", low=0.0
    )
    num_samples: int = param(1, "independent selections m per prompt", low=1)

    def __post_init__(self):
        validate(self)


@dataclass
class BestOfPoissonResult(SelectionResult):
    n_drawn: torch.Tensor
    """n' per selection [B, m]."""
    kl_estimate: torch.Tensor | None
    """Mean D̂_{n'}(π_ref(y)) [B] (None when log π_ref is not revealed)."""


class BestOfPoisson(_SampleBased):
    """Best-of-Poisson through the oracles: one weak call for all Σ n' candidates (prompts repeated), one
    reward call, segment-wise selection."""

    config_class = BestOfPoissonConfig

    def run(self, weak, reward, prompts, generator: torch.Generator | None = None) -> BestOfPoissonResult:
        config = self.config
        prompts = _prompts(prompts)
        B, m = prompts.numel(), config.num_samples
        rates = torch.full((B * m,), float(config.mu), dtype=torch.float64)
        counts = 1 + torch.poisson(rates, generator=generator).long()
        group = torch.repeat_interleave(torch.arange(B * m), counts)
        rep = prompts.repeat_interleave(m)[group]
        s = weak.sample(rep, 1, generator)
        rew = reward.outcome(rep, s.responses, generator)[:, 0].double().cpu()
        top = torch.full((B * m,), -math.inf, dtype=torch.float64).scatter_reduce(0, group, rew, "amax")
        keys = torch.rand(rew.shape, generator=generator, dtype=torch.float64)
        keys = torch.where(rew == top[group], keys, -1.0)
        best_key = torch.full((B * m,), -2.0, dtype=torch.float64).scatter_reduce(0, group, keys, "amax")
        pos = torch.where(keys == best_key[group], torch.arange(rew.numel()), -1)
        chosen = torch.full((B * m,), -1, dtype=torch.long).scatter_reduce(0, group, pos, "amax")
        dev = s.responses.device
        responses = s.responses[chosen.to(dev), 0].reshape((B, m) + tuple(s.responses.shape[2:]))
        logp = revealed_log_probs(s)
        est = None
        if logp is not None:
            le = logp[chosen.to(logp.device), 0].double().cpu().clamp(max=0.0)
            est = best_of_n_kl_estimate(log_eps=le, n=counts.double()).reshape(B, m).mean(-1)
        return BestOfPoissonResult(responses, rew[chosen].reshape(B, m), ledger_totals(weak, reward),
                                   counts.reshape(B, m), est)
