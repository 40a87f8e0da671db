"""XPO, exploratory preference optimisation with reward feedback (Xie et al. 2024; Foster et al. 2025, Eq.
17).

    θ^t = argmin_{θ∈Θ}  α Σ_{i<t} log π_θ(y^i_2|x^i) + Σ_{i<t} (⟨θ, φ(x^i, y^i_1, y^i_2)⟩ − (r^i_1 − r^i_2))²
    y^t_1 ~ π_{θ^t}(·|x^t) (strong oracle),  y^t_2 ~ π_ref(·|x^t) (weak oracle);  query r^t_1, r^t_2.

The optimism term lowers the likelihood of the reference samples, pushing π_θ away from what π_ref already
covers; XPO's T_data is poly(R_max)·d² log(1/δ)/ε², independent of C_cov (Eq. 4). For the linear class
log π_θ(y|x) = log π_ref(y|x) + ⟨θ, ϕ(x, y)⟩/β − log Z_θ(x), so the objective needs the **partition
function** Z_θ(x) = Σ_y π_ref(y|x) e^{⟨θ, ϕ(x, y)⟩/β}: the sampling oracles do not provide it, and Theorem 4.1
says no efficient algorithm can optimise this objective in general. On finite instances we grant XPO an
exact partition oracle (:func:`exact_partition`: log Z_θ(x) and E_{π_θ(x)} ϕ for the prompts it has seen;
each evaluation is counted in ``stats["partition_calls"]``, not in the sampling ledger).

Optimiser (documented first-order method): the objective is (α/β)⟨θ, Σ_i ϕ(x^i, y^i_2)⟩ − α Σ_x n_x log Z_θ(x)
+ θᵀ(G + λI)θ − 2hᵀθ + const, a convex quadratic plus a concave term (−log Z is concave), so it is
non-convex. We run projected gradient descent on Θ with Armijo backtracking (accept the projected step when
f(θ⁺) ≤ f(θ) + ⟨∇f, θ⁺ − θ⟩ + ‖θ⁺ − θ‖²/(2η), else halve η; double η after each accepted step, so flat regions
of the optimism term, where ∇ ∝ π_θ(rare response), are crossed quickly), warm-started at the previous θ
and step, for at most ``opt_iters`` steps or until a step moves θ by < ``opt_tol``. Every accepted step
decreases the objective (descent lemma), so it converges to a stationary point; the tests compare it with a
brute-force grid minimiser on tiny instances.

    out = XPO(XPOConfig(T=512, alpha=0.1, B=inst.B)).run(strong, weak, reward, prompts,
    exact_partition(inst.base), gen)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..common.config import param, validate
from ..oracles.ledger import ledger_totals
from .linear_regression import LeastSquaresState, project
from .proper import LinearSoftmaxPolicy, ProperResult, pairwise_rounds


def exact_partition(model) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Exact partition oracle of a finite linear-softmax model: (log Z_θ(x) [U], E_{π_θ(x)} ϕ [U, d])."""

    def partition(prompts: torch.Tensor, theta: torch.Tensor):
        logits = model.log_ref[prompts] + model.phi[prompts] @ theta.to(model.dtype) / model.beta
        log_z = torch.logsumexp(logits, dim=-1)
        p = torch.exp(logits - log_z[:, None])
        return log_z, torch.einsum("uy,uyd->ud", p, model.phi[prompts])

    return partition


@dataclass
class XPOConfig:
    """XPO (reward-based, Eq. 17) with an exact partition oracle and projected gradient descent."""

    T: int = param(
        512, "rounds; each draws a prompt, y₁ ~ π_{θ^t}, y₂ ~ π_ref and queries two rewards", low=1
    )
    alpha: float = param(
        0.1,
        "optimism weight α > 0 of Σ log π_θ(y₂) (a tuning knob; Foster et al. only require α > 0)",
        low=0.0,
        low_open=True,
    )
    B: float = param(1.0, "radius of Θ", low=0.0, low_open=True)
    theta_set: str = param("l2", "shape of Θ: l2 ball or linf box", choices=("l2", "linf"))
    lam: float = param(1e-6, "ridge λ added to the squared loss (theory 0)", low=0.0)
    batch: int = param(1, "rounds sharing one θ (theory 1)", low=1)
    opt_iters: int = param(200, "max projected-gradient steps per fit", low=1)
    opt_tol: float = param(1e-7, "stop when a step moves θ by less than this (ℓ∞)", low=0.0, low_open=True)

    def __post_init__(self):
        validate(self)


class _XPOData:
    """Sufficient statistics of the XPO objective: the least squares, Σ ϕ(y₂) and prompt counts n_x."""

    def __init__(self, d: int, beta: float):
        self.ls = LeastSquaresState(d)
        self.sum_phi2 = torch.zeros(d, dtype=torch.float64)
        self.counts: dict[int, int] = {}
        self.beta = beta

    def add(self, xs, phi1, phi2, dr):
        self.ls.add(phi1 - phi2, dr)
        self.sum_phi2 += phi2.to(torch.float64).sum(0)
        for x in xs.tolist():
            self.counts[x] = self.counts.get(x, 0) + 1


class XPO:
    """XPO through a strong oracle (y₁), a weak oracle (y₂), rewards and an exact partition oracle."""

    def __init__(self, config: XPOConfig | None = None):
        self.config = config or XPOConfig()
        self.partition_calls = 0
        self._step: float | None = None

    def objective(self, data: _XPOData, theta: torch.Tensor, partition) -> float:
        """α Σ_i (⟨θ, ϕ(y₂ⁱ)⟩/β − log Z_θ(xⁱ)) + Σ (⟨θ, φ_i⟩ − Δr_i)² + λ‖θ‖² (Eq. 17 up to Σ log
        π_ref(y₂))."""
        c = self.config
        val = data.ls.loss(theta) + c.lam * float((theta ** 2).sum())
        if data.counts:
            xs = torch.tensor(list(data.counts))
            n = torch.tensor(list(data.counts.values()), dtype=torch.float64)
            log_z, _ = partition(xs, theta)
            self.partition_calls += 1
            val = val + c.alpha * (float(theta @ data.sum_phi2) / data.beta - float((n * log_z).sum()))
        return float(val)

    def fit(self, data: _XPOData, theta0: torch.Tensor, partition) -> torch.Tensor:
        """Projected gradient descent with Armijo backtracking (step grown ×2 after each accepted step)."""
        c = self.config
        if not data.counts:
            return theta0
        xs = torch.tensor(list(data.counts))
        n = torch.tensor(list(data.counts.values()), dtype=torch.float64)
        d = theta0.shape[0]
        A = data.ls.G + c.lam * torch.eye(d, dtype=torch.float64)

        def value_grad(theta):
            log_z, mean_phi = partition(xs, theta)
            self.partition_calls += 1
            lin = float(theta @ data.sum_phi2) / data.beta - float((n * log_z).sum())
            val = float(theta @ (A @ theta) - 2.0 * theta @ data.ls.h) + c.alpha * lin
            grad = (
                2.0 * (A @ theta - data.ls.h)
                + c.alpha * (data.sum_phi2 - n @ mean_phi.to(torch.float64)) / data.beta
            )
            return val, grad

        L = max(2.0 * float(torch.linalg.eigvalsh(A).max()), 1e-12)
        step = self._step if self._step is not None else 1.0 / L
        theta = theta0.clone()
        val, grad = value_grad(theta)
        for _ in range(c.opt_iters):
            while True:
                new = project(theta - step * grad, c.B, c.theta_set)
                diff = new - theta
                new_val, new_grad = value_grad(new)
                if (
                    new_val <= val + float(grad @ diff) + float(diff @ diff) / (2.0 * step)
                    or step < 1e-12 / L
                ):
                    break
                step *= 0.5
            moved = float(diff.abs().max())
            theta, val, grad = new, new_val, new_grad
            step *= 2.0
            if moved < c.opt_tol:
                break
        self._step = step
        return theta

    def run(
        self, strong, weak, reward, prompts, partition, generator: torch.Generator | None = None
    ) -> ProperResult:
        c = self.config
        self.partition_calls, self._step = 0, None      # per run: a second run of this object is the same run
        data = _XPOData(strong.feature_dim, float(strong.beta))
        state = {"theta": torch.zeros(strong.feature_dim, dtype=torch.float64)}

        def fit():
            state["theta"] = self.fit(data, state["theta"], partition)
            return state["theta"]

        def sample_pair(xs, theta, gen):
            return strong.sample(xs, theta, 1, gen), weak.sample(xs, 1, gen)

        def record(xs, s1, s2, r1, r2):
            data.add(xs, s1.features[:, 0], s2.features[:, 0], r1 - r2)

        thetas, history = pairwise_rounds(fit, sample_pair, record, reward, prompts, c.T, c.batch, generator,
                                          (strong, weak, reward, prompts))
        final = fit()
        objective = self.objective(data, final, partition)          # counted too: read the count after it
        return ProperResult(policy=LinearSoftmaxPolicy(final, strong), thetas=torch.stack(thetas + [final]),
                            ledger=ledger_totals(strong, weak, reward, prompts), history=history,
                            stats={"partition_calls": self.partition_calls, "objective": objective})
