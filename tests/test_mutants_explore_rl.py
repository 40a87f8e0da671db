"""Tests written to kill mutmut survivors in ``oraclerl.explore.online_dpo``, ``oraclerl.explore.xpo`` and
``oraclerl.explore.mtss`` (docs/testing.md, "Triage").

Every value is checked against an independent computation on a tiny exact instance: a plain-Python
re-implementation of the algorithm's rounds fed the same oracle draws (same generator, same call order), the
ridge normal equations solved by hand, brute-force grids over Θ, and the closed forms of the objectives.
Mutant names are mutmut's (``cd /tmp/oraclerl-mutate/<module> && mutmut show NAME``).
"""

from __future__ import annotations

import math

import pytest
import torch

from oraclerl.explore.linear_regression import LeastSquaresState
from oraclerl.explore.online_dpo import OnlineDPO, OnlineDPOConfig
from oraclerl.oracles import PromptSource, RewardOracle, StrongSampler
from oraclerl.oracles.ledger import Ledger
from oraclerl.problems import linear_softmax

torch.set_num_threads(1)


def _tiny(seed: int = 0, noise: float = 0.3):
    """d = 2, 3 prompts, 8 responses: every quantity can be enumerated or solved by hand."""
    return linear_softmax(d=2, num_prompts=3, num_responses=8, beta=0.5, target_coverage=3.0, noise=noise, seed=seed)


def _solve2(G, h):
    """(G)⁻¹h for a 2×2 G by Cramer's rule, in plain Python floats."""
    a, b, c, d = float(G[0][0]), float(G[0][1]), float(G[1][0]), float(G[1][1])
    det = a * d - b * c
    return [(d * float(h[0]) - b * float(h[1])) / det, (a * float(h[1]) - c * float(h[0])) / det]


def _box_grid(B: float, n: int = 401) -> torch.Tensor:
    g = torch.linspace(-B, B, n, dtype=torch.float64)
    return torch.cartesian_prod(g, g)


def _separate_oracles(inst):
    """strong, reward and prompts on three distinct ledgers (the reward oracle grants what it scores)."""
    strong = StrongSampler(inst.base, Ledger())
    reward = RewardOracle(inst.reward, Ledger(), inst.noise, grant_all=True)
    prompts = PromptSource(inst.prompt_weights, Ledger())
    return strong, reward, prompts


# ---------------------------------------------------------------------------------------------------- OnlineDPO


def test_online_dpo_default_config_and_given_config():
    """Kills ``xǁOnlineDPOǁ__init____mutmut_2`` (``config and OnlineDPOConfig()``: a given config replaced by
    the default, and None kept as None)."""
    assert OnlineDPO().config == OnlineDPOConfig()
    cfg = OnlineDPOConfig(T=3, B=0.7, lam=0.25, batch=2)
    assert OnlineDPO(cfg).config is cfg


def test_online_dpo_rounds_equal_a_plain_python_replay_on_the_same_draws():
    """Each θ^t of OnlineDPO equals the ridge solution (G_t + λI)⁻¹h_t (Θ does not bind: B = 100) computed by
    hand from the draws of a replay that makes the same oracle calls with the same generator; the ledger of
    three *distinct* ledgers is their sum. Kills ``xǁOnlineDPOǁrun__mutmut_62`` to ``_67`` (an oracle dropped
    from, or replaced by None in, the final ``ledger_totals``)."""
    inst = _tiny(0)
    T, batch, lam = 7, 2, 0.05
    cfg = OnlineDPOConfig(T=T, B=100.0, lam=lam, batch=batch)
    strong, reward, prompts = _separate_oracles(inst)
    out = OnlineDPO(cfg).run(strong, reward, prompts, torch.Generator().manual_seed(3))

    # replay: the same calls on fresh oracles and a generator with the same seed
    strong2, reward2, prompts2 = _separate_oracles(inst)
    gen = torch.Generator().manual_seed(3)
    G = [[lam, 0.0], [0.0, lam]]
    h = [0.0, 0.0]
    expected, pairs = [], set()
    for t0 in range(0, T, batch):
        nb = min(batch, T - t0)
        theta = _solve2(G, h)
        expected.append(theta)
        xs = prompts2.draw(nb, gen)
        s = strong2.sample(xs, torch.tensor(theta, dtype=torch.float64), 2, gen)
        r = reward2.outcome(xs, s.responses, gen)
        pairs.update((int(xs[i]), int(s.responses[i, j])) for i in range(nb) for j in range(2))
        for i in range(nb):
            phi = [float(s.features[i, 0, k] - s.features[i, 1, k]) for k in range(2)]
            dr = float(r[i, 0] - r[i, 1])
            for a in range(2):
                h[a] += phi[a] * dr
                for b in range(2):
                    G[a][b] += phi[a] * phi[b]
    expected.append(_solve2(G, h))
    assert out.thetas.shape == (len(expected), 2)
    for got, want in zip(out.thetas.tolist(), expected):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert out.policy.theta.tolist() == pytest.approx(expected[-1], rel=1e-9, abs=1e-12)
    assert out.ledger == {"t_comp": 2 * T, "t_comp_token": 0, "t_data": 2 * T, "prompts": T, "t_feature": 0,
                          "t_reset": 0, "t_grant": len(pairs)}    # one grant per distinct pair
    assert len(pairs) < 2 * T
    assert [row["round"] for row in out.history] == [2, 4, 6, 7]
    assert [row["t_data"] for row in out.history] == [4, 8, 12, 14]


def test_online_dpo_linf_box_fit_is_the_box_minimiser():
    """theta_set="linf": the output is the minimiser of Σ(⟨θ, φ⟩ − Δr)² + λ‖θ‖² over the box ‖θ‖_∞ ≤ B (grid
    search), a corner outside the ℓ2 ball of radius B here. Kills ``xǁOnlineDPOǁfit__mutmut_11`` (theta_set
    dropped: the ℓ2 ball is used)."""
    inst = _tiny(1, noise=0.0)
    B, lam = 0.15, 1e-3
    strong, reward, prompts = _separate_oracles(inst)
    cfg = OnlineDPOConfig(T=10, B=B, lam=lam, theta_set="linf")
    out = OnlineDPO(cfg).run(strong, reward, prompts, torch.Generator().manual_seed(0))
    # the data: replay the draws (same calls, same seed)
    strong2, reward2, prompts2 = _separate_oracles(inst)
    gen = torch.Generator().manual_seed(0)
    phis, drs = [], []
    for t in range(10):
        xs = prompts2.draw(1, gen)
        s = strong2.sample(xs, out.thetas[t], 2, gen)
        r = reward2.outcome(xs, s.responses, gen)
        phis.append(s.features[0, 0] - s.features[0, 1])
        drs.append(float(r[0, 0] - r[0, 1]))
    phi, dr = torch.stack(phis), torch.tensor(drs, dtype=torch.float64)
    pts = _box_grid(B)
    obj = ((pts @ phi.T - dr) ** 2).sum(1) + lam * (pts ** 2).sum(1)
    th = out.policy.theta
    val = float(((phi @ th - dr) ** 2).sum() + lam * (th ** 2).sum())
    assert float(th.abs().max()) <= B + 1e-12
    assert val <= float(obj.min()) + 1e-9
    assert float((th - pts[obj.argmin()]).abs().max()) <= 2 * B / 400 + 1e-9
    assert float(th.norm()) > B * 1.2                       # a box corner: the ℓ2 ball would not allow it


def test_online_dpo_objective_batched_and_float32():
    """``objective(ls, θ)`` = Σ_i (⟨θ, φ_i⟩ − Δr_i)² + λ‖θ‖² row by row for θ [K, d], in float64 for a float32
    θ. Kills ``xǁOnlineDPOǁobjective__mutmut_4`` (``sum(None)``: the ridge of all rows summed) and ``_6``
    (``theta.to(None)``: the ridge computed in float32)."""
    rows = [([0.3, -1.1], 0.7), ([1.25, 0.5], -0.2), ([-0.4, 0.9], 1.3)]
    ls = LeastSquaresState(2)
    ls.add(torch.tensor([r[0] for r in rows], dtype=torch.float64), torch.tensor([r[1] for r in rows],
                                                                                  dtype=torch.float64))
    lam = 0.75
    algo = OnlineDPO(OnlineDPOConfig(lam=lam))

    def plain(th):
        return sum((th[0] * p[0] + th[1] * p[1] - y) ** 2 for p, y in rows) + lam * (th[0] ** 2 + th[1] ** 2)

    thetas = [[0.1, 0.2], [-0.3, 0.05], [0.7, -0.6]]
    got = algo.objective(ls, torch.tensor(thetas, dtype=torch.float64))
    assert got.shape == (3,)
    assert got.tolist() == pytest.approx([plain(t) for t in thetas], rel=1e-13)
    # float32 θ: the ridge in float64 of the float32 values (a float32 square is off by ~1e-8 relative)
    t32 = torch.tensor([0.1, 0.3], dtype=torch.float32)
    vals = [float(v) for v in t32]                                   # the float32 values, exactly, as floats
    got32 = algo.objective(ls, t32)
    assert got32.dtype == torch.float64
    assert float(got32) == pytest.approx(plain(vals), rel=1e-14, abs=0.0)
    assert math.isfinite(float(got32))
