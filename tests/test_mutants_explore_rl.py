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

from oraclerl.errors import ConfigError
from oraclerl.explore.linear_regression import InverseGram, LeastSquaresState
from oraclerl.explore.mtss import MTSS, MTSSConfig
from oraclerl.explore.mtss_subroutines import (
    CoreSet,
    TruncatedSoftmaxPolicy,
    fit_value,
    uncertain_state_actions,
)
from oraclerl.explore.online_dpo import OnlineDPO, OnlineDPOConfig
from oraclerl.explore.xpo import XPO, XPOConfig, exact_partition
from oraclerl.oracles import PromptSource, RewardOracle, StrongSampler, WeakSampler
from oraclerl.oracles.ledger import Ledger
from oraclerl.problems import linear_softmax
from oraclerl.problems.token_mdp import random_token_mdp

torch.set_num_threads(1)


def _close(got: torch.Tensor, want: torch.Tensor, rtol: float, atol: float) -> None:
    """|got − want| ≤ atol + rtol·|want| elementwise, same shape and dtype (torch.testing.assert_close would
    import torch.distributed, seconds per test process)."""
    assert got.shape == want.shape and got.dtype == want.dtype
    assert bool(((got - want).abs() <= atol + rtol * want.abs()).all()), (got, want)


def _tiny(seed: int = 0, noise: float = 0.3):
    """d = 2, 3 prompts, 8 responses: every quantity can be enumerated or solved by hand."""
    return linear_softmax(
        d=2, num_prompts=3, num_responses=8, beta=0.5, target_coverage=3.0, noise=noise, seed=seed
    )


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


# ----------------------------------------------------------------------------------------------------
# OnlineDPO


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


# ----------------------------------------------------------------------------------------------------------
# XPO


def _plain_partition(inst, x: int, th: list[float]):
    """log Z_θ(x) = log Σ_y π_ref(y|x) e^{⟨θ, ϕ(x, y)⟩/β} and E_{π_θ(x)} ϕ by enumeration, in plain Python."""
    base = inst.base
    d = len(th)
    logits = [float(base.log_ref[x, y]) + sum(th[k] * float(base.phi[x, y, k]) for k in range(d)) / base.beta
              for y in range(base.log_ref.shape[1])]
    m = max(logits)
    w = [math.exp(v - m) for v in logits]
    z = sum(w)
    mean = [sum(w[y] * float(base.phi[x, y, k]) for y in range(len(w))) / z for k in range(d)]
    return m + math.log(z), mean


def _project(th, B, theta_set):
    if theta_set == "linf":
        return [min(max(v, -B), B) for v in th]
    norm = math.sqrt(sum(v * v for v in th))
    return [v * min(1.0, B / max(norm, 1e-300)) for v in th]


class _PlainXPO:
    """XPO's data and projected-gradient fit (Armijo backtracking, ×2 after each accepted step, warm start) in
    plain Python on 2-d θ, with the partition function by enumeration."""

    def __init__(self, inst, cfg):
        self.inst, self.c = inst, cfg
        self.G = [[0.0, 0.0], [0.0, 0.0]]
        self.h = [0.0, 0.0]
        self.s = 0.0
        self.sum_phi2 = [0.0, 0.0]
        self.counts: dict[int, int] = {}
        self.step = None
        self.calls = 0
        self.margin = math.inf          # smallest relative slack of any Armijo / stopping decision taken

    def add(self, x, phi1, phi2, dr, phi=None):
        """One round; ``phi`` overrides ϕ(y₁) − ϕ(y₂) (for float32 features, whose difference is float32)."""
        phi = [phi1[k] - phi2[k] for k in range(2)] if phi is None else phi
        for a in range(2):
            self.h[a] += phi[a] * dr
            self.sum_phi2[a] += phi2[a]
            for b in range(2):
                self.G[a][b] += phi[a] * phi[b]
        self.s += dr * dr
        self.counts[x] = self.counts.get(x, 0) + 1

    def _lin(self, th):
        """(⟨θ, Σϕ(y₂)⟩/β − Σ_x n_x log Z_θ(x), its gradient)."""
        self.calls += 1
        beta = self.inst.base.beta
        val = sum(th[k] * self.sum_phi2[k] for k in range(2)) / beta
        grad = [self.sum_phi2[k] / beta for k in range(2)]
        for x, n in self.counts.items():
            lz, mean = _plain_partition(self.inst, x, th)
            val -= n * lz
            for k in range(2):
                grad[k] -= n * mean[k] / beta
        return val, grad

    def value_grad(self, th):
        c = self.c
        A = [[self.G[a][b] + (c.lam if a == b else 0.0) for b in range(2)] for a in range(2)]
        Ath = [A[a][0] * th[0] + A[a][1] * th[1] for a in range(2)]
        lin, glin = self._lin(th)
        val = (
            sum(th[a] * Ath[a] for a in range(2))
            - 2.0 * sum(th[a] * self.h[a] for a in range(2))
            + c.alpha * lin
        )
        grad = [2.0 * (Ath[a] - self.h[a]) + c.alpha * glin[a] for a in range(2)]
        return val, grad

    def objective(self, th):
        """Σ (⟨θ, φ_i⟩ − Δr_i)² + λ‖θ‖² + α(⟨θ, Σϕ(y₂)⟩/β − Σ n_x log Z_θ(x)) (with the constant Σ Δr²)."""
        quad = sum(th[a] * self.G[a][b] * th[b] for a in range(2) for b in range(2))
        ls = quad - 2.0 * sum(th[a] * self.h[a] for a in range(2)) + self.s
        return ls + self.c.lam * sum(v * v for v in th) + self.c.alpha * self._lin(th)[0]

    def fit(self, th0):
        c = self.c
        if not self.counts:
            return list(th0)
        a, b, d = self.G[0][0] + c.lam, self.G[0][1], self.G[1][1] + c.lam
        lmax = 0.5 * (a + d) + math.sqrt(0.25 * (a - d) ** 2 + b * b)       # λ_max of the 2×2 G + λI
        L = max(2.0 * lmax, 1e-12)
        step = self.step if self.step is not None else 1.0 / L
        th = list(th0)
        val, grad = self.value_grad(th)
        for _ in range(c.opt_iters):
            while True:
                new = _project([th[k] - step * grad[k] for k in range(2)], c.B, c.theta_set)
                diff = [new[k] - th[k] for k in range(2)]
                new_val, new_grad = self.value_grad(new)
                armijo = (
                    val + sum(grad[k] * diff[k] for k in range(2)) + sum(v * v for v in diff) / (2.0 * step)
                )
                # diff = 0 (a corner of the box) is an exact tie in both codes
                if any(diff):
                    self.margin = min(self.margin, abs(new_val - armijo) / max(1.0, abs(val)))
                if new_val <= armijo or step < 1e-12 / L:
                    break
                step *= 0.5
            moved = max(abs(v) for v in diff)
            self.margin = min(self.margin, abs(moved - c.opt_tol) / c.opt_tol)
            th, val, grad = new, new_val, new_grad
            step *= 2.0
            if moved < c.opt_tol:
                break
        self.step = step
        return th


def _xpo_oracles(inst):
    """strong, weak, reward and prompts; strong and weak on distinct ledgers, rewards granted on a third."""
    return (
        StrongSampler(inst.base, Ledger()),
        WeakSampler(inst.base, Ledger()),
        RewardOracle(inst.reward, Ledger(), inst.noise, grant_all=True),
        PromptSource(inst.prompt_weights, Ledger()),
    )


def _xpo_replay(inst, cfg, seed):
    """The XPO rounds on fresh oracles (same calls, same generator) with :class:`_PlainXPO` as the learner."""
    strong, weak, reward, prompts = _xpo_oracles(inst)
    gen = torch.Generator().manual_seed(seed)
    ref = _PlainXPO(inst, cfg)
    theta, thetas = [0.0, 0.0], []
    for t0 in range(0, cfg.T, cfg.batch):
        nb = min(cfg.batch, cfg.T - t0)
        theta = ref.fit(theta)
        thetas.append(theta)
        xs = prompts.draw(nb, gen)
        s1 = strong.sample(xs, torch.tensor(theta, dtype=torch.float64), 1, gen)
        s2 = weak.sample(xs, 1, gen)
        r = reward.outcome(xs, torch.cat([s1.responses, s2.responses], dim=1), gen)
        for i in range(nb):
            ref.add(
                int(xs[i]), s1.features[i, 0].tolist(), s2.features[i, 0].tolist(), float(r[i, 0] - r[i, 1])
            )
    final = ref.fit(theta)
    thetas.append(final)
    return ref, thetas


def _scaled(inst, c: float):
    """The same instance with features c·ϕ (a reparametrisation θ → θ/c; G and L grow by c²)."""
    from types import SimpleNamespace

    from oraclerl.models.linear_softmax import LinearSoftmaxModel

    base = LinearSoftmaxModel(inst.base.log_ref, inst.base.phi * c, inst.base.beta)
    return SimpleNamespace(
        base=base, reward=inst.reward, noise=inst.noise, prompt_weights=inst.prompt_weights
    )


@pytest.mark.parametrize("theta_set,B,scale,opt_iters,opt_tol,seed", [
    # Θ does not bind; 6 steps: every iterate depends on the step schedule
    ("l2", 2.0, 1.0, 6, 1e-7, 4),
    ("l2", 0.5, 1.0, 10, 1e-3, 4),       # Θ binds (projected steps); opt_tol stops each fit early
    ("linf", 0.5, 1.0, 10, 1e-5, 5),     # the box; both opt_tol and opt_iters stop some fits
    ("l2", 0.02, 1000.0, 6, 1e-9, 4),    # features ×1000: L = 2λ_max(G + λI) ≈ 1e7 > 1e6, so 1e-12·L > 1/L
])
def test_xpo_rounds_equal_a_plain_python_replay(theta_set, B, scale, opt_iters, opt_tol, seed):
    """Every θ^t of XPO (and its output, objective, partition-call count, ledger and history) equals the
    plain-Python projected-gradient method on the same draws (:class:`_PlainXPO`), to 1e-11 relative (the
    two agree to ~1e-16 here). Kills ``xǁXPOǁfit__mutmut_18``, ``_20`` (λI built in float32: λ = 0.02
    rounded), ``_26``, ``_28`` (call count), ``_45`` (gradient factor), ``_56``, ``_57`` (L), ``_62``,
    ``_65``, ``_66``, ``_109`` (initial step, warm start), ``_75``, ``_78`` (theta_set dropped from the
    projection), ``_93`` (Armijo constant), ``_95`` (step floor 1e-12·L: above 1/L when L > 1e6), ``_104``,
    ``_106`` (step growth); ``xǁXPOǁobjective__mutmut_3`` to ``_33`` (stats["objective"]; ``_23`` to
    ``_25`` through the count ``XPO.partition_calls`` after the run); ``xǁXPOǁ__init____mutmut_4``; and
    ``xǁXPOǁrun__mutmut_78``, ``_83`` (history), ``_86``, ``_88`` (the output samples through the strong
    oracle), ``_91`` to ``_98`` (every distinct ledger summed), ``_101``, ``_102`` (the "objective" key)."""
    inst = _tiny(2) if scale == 1.0 else _scaled(_tiny(2), scale)
    cfg = XPOConfig(T=7, alpha=0.3, B=B, theta_set=theta_set, lam=0.02, batch=2, opt_iters=opt_iters,
                    opt_tol=opt_tol)
    strong, weak, reward, prompts = _xpo_oracles(inst)
    algo = XPO(cfg)
    out = algo.run(
        strong, weak, reward, prompts, exact_partition(inst.base), torch.Generator().manual_seed(seed)
    )
    ref, thetas = _xpo_replay(inst, cfg, seed)
    assert ref.margin > 1e-12             # no decision of the replay is a near-tie that rounding could flip
    assert out.thetas.shape == (len(thetas), 2)
    for got, want in zip(out.thetas.tolist(), thetas):
        assert got == pytest.approx(want, rel=1e-11, abs=1e-14)
    assert out.policy.theta.tolist() == pytest.approx(thetas[-1], rel=1e-11, abs=1e-14)
    assert out.stats["objective"] == pytest.approx(ref.objective(thetas[-1]), rel=1e-12)
    # every evaluation counted, the final objective's included
    assert out.stats["partition_calls"] == algo.partition_calls == ref.calls
    T = cfg.T
    assert out.ledger == {"t_comp": 2 * T, "t_comp_token": 0, "t_data": 2 * T, "prompts": T, "t_feature": 0,
                          "t_reset": 0, "t_grant": reward.ledger.snapshot()["t_grant"]}
    assert out.ledger["t_grant"] > 0
    # history: per batch of 2 rounds, the cumulative counts of the four ledgers
    assert [(r["round"], r["t_data"], r["t_comp"], r["prompts"]) for r in out.history] == \
        [(2, 4, 4, 2), (4, 8, 8, 4), (6, 12, 12, 6), (7, 14, 14, 7)]
    # the output policy samples π_θ through the strong oracle (its ledger counts the draws)
    s = out.policy.sample(torch.tensor([0, 1]), 3, torch.Generator().manual_seed(0))
    assert s.responses.shape == (2, 3) and strong.ledger.snapshot()["t_comp"] == T + 6


def test_xpo_on_a_float32_instance():
    """On a ``linear_softmax(dtype=torch.float32)`` instance: ``exact_partition`` casts θ (float64) to the
    model's dtype and equals enumeration (kills ``x_exact_partition__mutmut_4``, ``theta.to(None)``: a
    float32 @ float64 matmul error); XPO runs (kills ``xǁXPOǁfit__mutmut_50``, ``mean_phi.to(None)``:
    float64 @ float32) and stats["objective"] is the float64 objective of the float32 statistics: Σ ϕ(y₂)
    summed in float64 and Σ n_x log Z_θ(x) with float64 counts (kills ``xǁ_XPODataǁadd__mutmut_9`` and
    ``xǁXPOǁobjective__mutmut_14``, ``_16``: float32 sums, off by ~1e-7 relative)."""
    inst = linear_softmax(
        d=2,
        num_prompts=3,
        num_responses=8,
        beta=0.5,
        target_coverage=3.0,
        noise=0.3,
        seed=2,
        dtype=torch.float32,
    )
    part = exact_partition(inst.base)
    theta = torch.tensor([0.3, -0.7], dtype=torch.float64)
    log_z, mean = part(torch.tensor([0, 2]), theta)
    th32 = [float(v) for v in theta.to(torch.float32)]
    for i, x in enumerate((0, 2)):
        lz, m = _plain_partition(inst, x, th32)
        assert float(log_z[i]) == pytest.approx(lz, rel=1e-6)
        assert mean[i].tolist() == pytest.approx(m, rel=1e-5, abs=1e-6)
    # T = 9: a float32 Σ n log Z rounds
    cfg = XPOConfig(T=9, alpha=0.3, B=2.0, lam=0.02, batch=3, opt_iters=5)
    strong, weak, reward, prompts = _xpo_oracles(inst)
    out = XPO(cfg).run(strong, weak, reward, prompts, part, torch.Generator().manual_seed(1))
    # the data: replay the draws with the θ^t XPO used
    strong2, weak2, reward2, prompts2 = _xpo_oracles(inst)
    gen = torch.Generator().manual_seed(1)
    ref = _PlainXPO(inst, cfg)
    for b in range(3):
        xs = prompts2.draw(3, gen)
        s1, s2 = strong2.sample(xs, out.thetas[b], 1, gen), weak2.sample(xs, 1, gen)
        r = reward2.outcome(xs, torch.cat([s1.responses, s2.responses], dim=1), gen)
        for i in range(3):
            # φ and Δr as the float32 oracles deliver them (differences taken in float32), then float64
            ref.add(int(xs[i]), [float(v) for v in s1.features[i, 0]], [float(v) for v in s2.features[i, 0]],
                    float(r[i, 0] - r[i, 1]), phi=[float(v) for v in s1.features[i, 0] - s2.features[i, 0]])
    final = out.policy.theta
    assert final.dtype == torch.float64 and float(final.norm()) > 0.1
    # the objective with log Z_θ(x) from the float32 partition oracle, everything else in float64
    xs = torch.tensor(list(ref.counts))
    lz32, _ = part(xs, final)
    th = final.tolist()
    quad = sum(th[a] * ref.G[a][b] * th[b] for a in range(2) for b in range(2))
    want = (quad - 2.0 * sum(th[a] * ref.h[a] for a in range(2)) + ref.s + cfg.lam * sum(v * v for v in th)
            + cfg.alpha * (sum(th[k] * ref.sum_phi2[k] for k in range(2)) / inst.base.beta
                           - sum(n * float(z) for n, z in zip(ref.counts.values(), lz32))))
    assert out.stats["objective"] == pytest.approx(want, rel=1e-11)


# ---------------------------------------------------------------------------------------------------------
# MTSS


def test_mtss_theory_schedule_every_field_against_app_j14():
    """``MTSSConfig.theory`` = the table of App. J.1.4 for every field, at 𝔠 = 2.5 (not 1) and on both
    sides of δ_rej's cap at ½. Kills the ``theory`` mutants (an operand or a power changed in delta_rej,
    N_bar_span, B, or anywhere 𝔠 enters)."""
    d, H, B, eps, cc, fc = 3, 3, 1.5, 0.05, 3.0, 2.5            # H = 3: H² ≠ 2H (and B⁴ ≠ 4B, ...)
    th = MTSSConfig.theory(d=d, H=H, B=B, epsilon=eps, c_cond=cc, frak_c=fc)
    T = math.ceil(d * H * H * fc)
    assert th.T == T == 68
    assert th.nu == 0.5 and th.B == B
    assert th.lam == pytest.approx(eps / (fc * B * B), rel=1e-15)
    assert th.M_rej == pytest.approx(cc * cc * T * T * H * H * B ** 4 * fc / eps, rel=1e-15)
    assert th.delta_rej == pytest.approx(eps / (H * H * B ** 3 * T * fc), rel=1e-15)
    assert th.delta_rej < 0.5
    assert th.N_reg == math.ceil(H * H * B ** 4 * d * T * fc / eps)
    assert th.N_span == math.ceil(T * H * H * B ** 4 * fc / eps)
    assert th.N_bar_span == math.ceil(T * H ** 4 * B ** 4 * cc * fc / eps)
    assert th.anchor == 0 and th.sampler_chunk is None
    # a large ε: ε/(H²B³T𝔠) > ½ is capped at ½ (delta_rej must be < 1)
    big = MTSSConfig.theory(d=1, H=1, B=0.5, epsilon=0.9, c_cond=1.0, frak_c=1.0)
    assert 0.9 / (1 * 0.125 * 1 * 1.0) > 0.5 and big.delta_rej == 0.5
    assert big.T == 1 and big.N_bar_span == math.ceil(1 * 0.0625 * 1.0 / 0.9)


def _mtss_replay(inst, cfg, seed):
    """MTSS's outer loop (Alg. 4) written out on fresh oracles with the same generator: FitValue from the last
    layer down, UncertainStateAction, C_h and Σ_h updated, then j by the rule of Lemma M.1. Returns the
    per-iteration (θ, Σ⁻¹) and κ², the picks, the ledger and the transition count."""
    o = inst.oracles()
    gen = torch.Generator().manual_seed(seed)
    H, d = inst.model.horizon, inst.model.feature_dim
    grams = [InverseGram(d, cfg.lam) for _ in range(H)]
    cores = [CoreSet.empty(h, d, torch.float64) for h in range(H)]
    counts = {"transitions": 0}
    iters, kappas, rels = [], [], [[] for _ in range(H)]
    for _ in range(cfg.T):
        sigma_inv = torch.stack([g.inv for g in grams])
        pol = TruncatedSoftmaxPolicy(torch.zeros(H, d, dtype=torch.float64), sigma_inv, cfg.nu, inst.beta,
                                     cfg.anchor, cfg.M_rej, cfg.delta_rej, cfg.sampler_chunk)
        for h in range(H - 1, -1, -1):
            pol.theta[h] = fit_value(h, cores[h], pol, o.auto, o.step_reward, cfg.N_reg, cfg.B, gen, counts)
        picks = uncertain_state_actions(
            cores, pol, o.auto, o.prompts, cfg.N_span, cfg.N_bar_span, gen, counts
        )
        for h, p in enumerate(picks):
            cores[h].add(p.prompt, p.prefix, p.action, p.rel, cfg.anchor)
            grams[h].add(p.rel)
            rels[h].append(p.rel)
        iters.append((pol.theta.clone(), sigma_inv))
        kappas.append(max(p.kappa2 for p in picks))
    in_span = [t for t, k in enumerate(kappas, 1) if k <= cfg.nu ** 2 / 4]
    if in_span:
        j = in_span[-1]
    else:
        low = min(kappas)
        j = max(t for t, k in enumerate(kappas, 1) if k == low)          # ties: the last minimiser
    return iters, kappas, j, bool(in_span), rels, o.ledger.snapshot(), counts["transitions"]


@pytest.mark.parametrize("nu,in_span", [(1.0, False), (1.5, True)])
def test_mtss_run_equals_the_outer_loop_written_out(nu, in_span):
    """MTSS.run against :func:`_mtss_replay` on the same draws: every iterate's θ_h and Σ_h⁻¹ (Σ_h = λI + Σ
    φφᵀ of the earlier picks, checked against a direct inverse), its ν, β, 𝔞 = |A| − 1 (the largest allowed
    anchor), M, δ and chunk; κ² per iteration; j and j_in_span (J_span non-empty at ν = 1.5, empty at ν = 1
    where j minimises κ² at t = 2 < T); the ledger and the transitions. Kills the ``run`` mutants listed in
    docs/testing.md (arguments of the policy, FitValue and UncertainStateAction swapped or dropped, the
    layer order, the j rules, the result fields)."""
    inst = random_token_mdp(num_actions=3, horizon=2, d=2, num_prompts=2, seed=1)
    cfg = MTSSConfig(T=5, B=inst.B, N_reg=2, N_span=2, N_bar_span=1, M_rej=2.0, delta_rej=0.5, nu=nu, lam=0.5,
                     anchor=2, sampler_chunk=3)
    o = inst.oracles()
    res = MTSS(cfg).run(
        o.auto, o.step_reward, o.prompts, torch.Generator().manual_seed(0), keep_iterates=True
    )
    iters, kappas, j, span, rels, ledger, transitions = _mtss_replay(inst, cfg, 0)
    assert res.uncertainty == pytest.approx(kappas, rel=1e-12, abs=0.0)
    assert (res.j, res.j_in_span) == (j, span) and span is in_span
    assert 1 <= j < cfg.T                                      # j is not simply the last iteration
    assert len(res.iterates) == cfg.T and res.policy is res.iterates[j - 1]
    for t, (pol, (theta, sigma_inv)) in enumerate(zip(res.iterates, iters)):
        _close(pol.theta, theta, rtol=1e-12, atol=1e-14)
        _close(pol.sigma_inv, sigma_inv, rtol=1e-12, atol=1e-14)
        for h in range(2):
            direct = 0.5 * torch.eye(2, dtype=torch.float64) + sum((torch.outer(r, r) for r in rels[h][:t]),
                                                                    torch.zeros(2, 2, dtype=torch.float64))
            _close(pol.sigma_inv[h], torch.linalg.inv(direct), rtol=1e-9, atol=1e-12)
        assert (pol.nu, pol.beta, pol.anchor, pol.M, pol.delta, pol.chunk) == (nu, inst.beta, 2, 2.0, 0.5, 3)
        assert pol.theta.dtype == torch.float64
    assert res.ledger == ledger and res.transitions == transitions
    assert res.t_data_paper == ledger["t_data"] + ledger["t_reset"] + transitions


def test_mtss_without_iterates_and_its_errors():
    """keep_iterates=False keeps none; an oracle that reveals no features and an anchor ≥ |A| are rejected
    with their field and exact message. Kills the ``run`` mutants of both checks (condition, field,
    message)."""
    inst = random_token_mdp(num_actions=3, horizon=2, d=2, num_prompts=2, seed=1)
    cfg = MTSSConfig(T=1, B=inst.B, N_reg=1, N_span=1, N_bar_span=0, M_rej=1.0, delta_rej=0.5)
    o = inst.oracles()
    res = MTSS(cfg).run(o.auto, o.step_reward, o.prompts, torch.Generator().manual_seed(0))
    assert res.iterates == [] and len(res.uncertainty) == 1 and res.j == 1
    o = inst.oracles(reveal=())
    with pytest.raises(ConfigError) as e:
        MTSS(cfg).run(o.auto, o.step_reward, o.prompts, torch.Generator().manual_seed(0))
    assert e.value.field == "auto"
    assert str(e.value) == "auto: MTSS needs an autoregressive oracle that reveals features"
    assert o.ledger.snapshot() == Ledger().snapshot()                # rejected before any query
    o = inst.oracles()
    with pytest.raises(ConfigError) as e:
        MTSS(MTSSConfig(T=1, anchor=3)).run(
            o.auto, o.step_reward, o.prompts, torch.Generator().manual_seed(0)
        )
    assert e.value.field == "anchor"
    assert str(e.value) == "anchor: must be in [0, 2] (|A| = 3), got 3"
    assert o.ledger.snapshot() == Ledger().snapshot()


def test_mtss_span_rule_at_its_boundary():
    """j ∈ J_span iff max_h κ²_h ≤ ν²/4, *including equality*: at t = 1 every θ_h is 0 (no core pairs yet),
    so κ²₁ does not depend on ν, and ν = 2√κ²₁ (to the ulp) puts κ²₁ exactly on the boundary; one ulp less
    puts it outside. Kills ``xǁMTSSǁrun__mutmut_136`` (``<``) and ``_140`` (ν²/5)."""
    inst = random_token_mdp(num_actions=3, horizon=2, d=2, num_prompts=2, seed=1)

    def run(nu):
        cfg = MTSSConfig(T=1, B=inst.B, N_reg=1, N_span=2, N_bar_span=1, M_rej=1.0, delta_rej=0.5, nu=nu)
        o = inst.oracles()
        return MTSS(cfg).run(o.auto, o.step_reward, o.prompts, torch.Generator().manual_seed(0))

    k = run(0.5).uncertainty[0]
    nu = 2.0 * math.sqrt(k)
    # the float ν with ν²/4 == κ² exactly (found at ± 1 ulp)
    for _ in range(4):
        if nu ** 2 / 4 == k:
            break
        nu = math.nextafter(nu, math.inf if nu ** 2 / 4 < k else -math.inf)
    assert nu ** 2 / 4 == k
    on = run(nu)
    assert on.uncertainty == [k] and on.j_in_span is True and on.j == 1
    below = math.nextafter(nu, 0.0)
    assert below ** 2 / 4 < k
    off = run(below)
    assert off.uncertainty == [k] and off.j_in_span is False and off.j == 1


def test_mtss_default_config():
    """``MTSS()`` uses ``MTSSConfig()``; a given config is kept (and validated)."""
    assert MTSS().config == MTSSConfig()
    cfg = MTSSConfig(T=2, nu=0.3)
    assert MTSS(cfg).config is cfg


def test_xpo_default_config_and_data_sums_float32_features_in_float64():
    """``XPO()`` uses ``XPOConfig()`` and starts with 0 partition calls and no step (kills
    ``xǁXPOǁ__init____*``); ``_XPOData.add`` (the private statistics of the objective) accumulates Σ ϕ(y₂)
    in float64 when the features are float32, as a ``linear_softmax(dtype=torch.float32)`` instance gives
    them (kills ``xǁ_XPODataǁadd__mutmut_9``, ``phi2.to(None)``: a float32 sum), and counts prompts n_x."""
    algo = XPO()
    assert algo.config == XPOConfig() and algo.partition_calls == 0 and algo._step is None
    cfg = XPOConfig(T=3, alpha=0.5)
    assert XPO(cfg).config is cfg
    from oraclerl.explore.xpo import _XPOData

    data = _XPOData(2, 0.5)
    rows = [[0.1, 0.7], [0.2, -0.3], [1.0 / 3.0, 0.9]]
    phi2 = torch.tensor(rows, dtype=torch.float32)
    phi1 = torch.zeros(3, 2, dtype=torch.float32)
    data.add(torch.tensor([2, 0, 2]), phi1, phi2, torch.tensor([0.5, -1.0, 0.25], dtype=torch.float32))
    vals = [[float(v) for v in row] for row in phi2]                     # the float32 values, exactly
    want = [vals[0][k] + vals[1][k] + vals[2][k] for k in range(2)]      # their sum in float64
    assert data.sum_phi2.dtype == torch.float64
    assert data.sum_phi2.tolist() == want
    assert data.counts == {2: 2, 0: 1} and data.beta == 0.5
    assert data.ls.n == 3 and float(data.ls.s) == pytest.approx(0.25 + 1.0 + 0.0625, rel=1e-15)
