"""OnlineDPO with reward feedback (Foster et al. 2025, App. B.1, Eq. 6/16), a proper, passively exploring
baseline.

    θ^t = argmin_{θ∈Θ} Σ_{i<t} (⟨θ, ϕ(x^i, y^i_1) − ϕ(x^i, y^i_2)⟩ − (r^i_1 − r^i_2))² (+ λ‖θ‖²)
    y^t_1, y^t_2 ~ π_{θ^t}(·|x^t) through the strong oracle;  query r^t_1, r^t_2.

The squared loss is the reward-based DPO loss, since β log π_θ(y₁)/π_ref(y₁) − β log π_θ(y₂)/π_ref(y₂) =
⟨θ, φ(x, y₁, y₂)⟩ (footnote 6). T_comp = T_data = 2T. OnlineDPO explores passively: its T_data is at
least min{C_cov(π⋆_β), e^{R_max/β}} on hard instances (Xie et al.). The fit is the exact constrained ridge
least squares of :func:`oraclerl.explore.linear_regression.constrained_least_squares`.

    out = OnlineDPO(OnlineDPOConfig(T=512, B=inst.B)).run(strong, reward, prompts, generator)
    regret(out.policy, inst); out.thetas; out.history; out.ledger
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..common.config import param, validate
from ..oracles.ledger import ledger_totals
from .linear_regression import LeastSquaresState, constrained_least_squares
from .proper import LinearSoftmaxPolicy, ProperResult, pairwise_rounds


@dataclass
class OnlineDPOConfig:
    """OnlineDPO (reward-based, Eq. 16)."""

    T: int = param(
        512, "rounds; each draws one prompt and two responses from π_{θ^t} and queries two rewards", low=1
    )
    B: float = param(1.0, "radius of Θ", low=0.0, low_open=True)
    theta_set: str = param("l2", "shape of Θ: l2 ball or linf box", choices=("l2", "linf"))
    lam: float = param(
        1e-6,
        "ridge λ added to the least squares (theory: 0, Eq. 16; a tiny λ makes the argmin unique)",
        low=0.0,
    )
    batch: int = param(1, "rounds sharing one θ (theory 1: refit every round)", low=1)

    def __post_init__(self):
        validate(self)


class OnlineDPO:
    """OnlineDPO through a strong sampling oracle and a reward oracle (see the module docstring)."""

    def __init__(self, config: OnlineDPOConfig | None = None):
        self.config = config or OnlineDPOConfig()

    def objective(self, ls: LeastSquaresState, theta: torch.Tensor) -> torch.Tensor:
        """Σ (⟨θ, φ_i⟩ − Δr_i)² + λ‖θ‖² for θ [..., d] (what :meth:`fit` minimises over Θ)."""
        return ls.loss(theta) + self.config.lam * (theta.to(ls.G.dtype) ** 2).sum(-1)

    def fit(self, ls: LeastSquaresState) -> torch.Tensor:
        c = self.config
        return constrained_least_squares(ls.G, ls.h, c.lam, c.B, c.theta_set)

    def run(self, strong, reward, prompts, generator: torch.Generator | None = None) -> ProperResult:
        c = self.config
        ls = LeastSquaresState(strong.feature_dim)

        def sample_pair(xs, theta, gen):
            s = strong.sample(xs, theta, 2, gen)
            return _split(s)

        def record(xs, s1, s2, r1, r2):
            ls.add(s1.features[:, 0] - s2.features[:, 0], r1 - r2)

        thetas, history = pairwise_rounds(lambda: self.fit(ls), sample_pair, record, reward, prompts, c.T,
                                          c.batch, generator, (strong, reward, prompts))
        final = self.fit(ls)
        return ProperResult(policy=LinearSoftmaxPolicy(final, strong), thetas=torch.stack(thetas + [final]),
                            ledger=ledger_totals(strong, reward, prompts), history=history,
                            stats={"objective": float(self.objective(ls, final))})


class _Half:
    """A view of one response column of a Samples object with n = 2 (features revealed)."""

    __slots__ = ("prompts", "responses", "features")

    def __init__(self, s, k: int):
        self.prompts = s.prompts
        self.responses = s.responses[:, k:k + 1]
        self.features = s.features[:, k:k + 1]


def _split(s):
    return _Half(s, 0), _Half(s, 1)
