"""Teacher sequence tasks of Mousavi-Hosseini & Erdogdu (2026), §6 and the authors' code
(docs/papers/mousavi2026_pg_barrier.md §1.2, §2).

* Contexts x ∈ R^d: the norm-clipped Gaussian mixture (centre μ_j = e_{j mod d}, noise ξ ∼ N(0, σ²I) clipped
  to ‖ξ‖ ≤ σ, x = √d (μ_j + ξ)/‖μ_j + ξ‖; its centres are √d e_j), the Rademacher cube x ∈ {±1}^d, or a
  finite uniform law on given contexts (``"finite"``, used by the single-context theory experiments).
* The argmax teacher: W₁* ∈ R^{k×d}, W₂* ∈ R^{k×k} with i.i.d. N(0, 1) entries,
  y*₁ = argmax_j (W₁*x)_j and y*_i = argmax_j [(W₁*x)_j + W₂*[j, y*_{i−1}]] (a greedy walk of the model
  class).
* Rewards through :class:`~oraclerl.oracles.RewardOracle`: outcome r = 1[y = y*] and process
  r_i = 1[y_{1:i} = y*_{1:i}], in the {0,1} form of the theory (``form="binary"``) or the ±1 form of the
  experiments (``form="signed"``, 2·1[·] − 1).

The reward protocol takes prompt *ids* (long), so contexts are drawn through :class:`TeacherContexts`, the
prompt distribution ρ (a :class:`~oraclerl.oracles.protocols.PromptDistribution`, served and counted by a
:class:`~oraclerl.oracles.PromptSource` like any other prompt law): it keeps the last ``capacity`` (x, y*)
pairs in a ring buffer, from which the reward functions read y* and the samplers (and the learner, for its own
model) read x. Learners never see y* except through the reward oracle (or as supervised labels in
pre-training, :meth:`TeacherContexts.draw_labelled`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..common.validation import check_choice, check_int, check_nonneg
from ..errors import ConfigError
from ..models.kernels import greedy_walk
from ..oracles.ledger import Ledger


@dataclass
class TeacherTask:
    """Ground truth of a teacher task: context law and the argmax teacher y*(x)."""

    W1_star: torch.Tensor
    """[k, d] teacher context weights (i.i.d. N(0, 1))."""
    W2_star: torch.Tensor
    """[k, k] teacher bigram weights: W₂*[j, p] scores token j after token p."""
    horizon: int
    """Response length N."""
    contexts: str = "mixture"
    """"mixture" (norm-clipped Gaussian mixture) or "rademacher"."""
    num_mix: int = 32
    """Number of mixture components (centres √d e_{j mod d})."""
    sigma: float = 0.05
    """Noise scale σ of the mixture (ξ clipped to ‖ξ‖ ≤ σ)."""
    support: torch.Tensor | None = None
    """[M, d] contexts of a finite, uniform context law (``contexts="finite"``), e.g. a single context."""
    scale_last: bool = False
    """Mixture rounding order: False x = √d·z/‖z‖; True x = (z/‖z‖)·√d, the authors' code (bit-exact
    replay)."""

    @property
    def context_dim(self) -> int:
        return self.W1_star.shape[1]

    @property
    def num_actions(self) -> int:
        return self.W1_star.shape[0]

    @property
    def device(self) -> torch.device:
        return self.W1_star.device

    def sample_contexts(self, B: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw B i.i.d. contexts [B, d] from the task's context law.

        The draws happen where ``generator`` lives (a CPU stream can feed a CUDA task); the result is on the
        task's device. Mixture: ``randint`` for the component, then ``randn`` for the noise (the authors'
        order).
        """
        B = check_int("B", B, low=1)
        d, dt, dev = self.context_dim, self.W1_star.dtype, self.device
        gdev = generator.device if generator is not None else dev
        if self.contexts == "rademacher":
            return torch.randint(0, 2, (B, d), generator=generator, device=gdev).to(dt).to(dev) * 2 - 1
        if self.contexts == "finite":
            idx = torch.randint(0, self.support.shape[0], (B,), generator=generator, device=gdev)
            return self.support[idx.to(self.support.device)]
        j = torch.randint(0, self.num_mix, (B,), generator=generator, device=gdev).to(dev)
        xi = torch.randn(B, d, generator=generator, dtype=dt, device=gdev).to(dev) * self.sigma
        xi = xi * torch.clamp(self.sigma / xi.norm(dim=1, keepdim=True).clamp_min(1e-30), max=1.0)
        z = xi
        z[torch.arange(B, device=dev), j % d] += 1.0
        if self.scale_last:
            return z / z.norm(dim=1, keepdim=True) * math.sqrt(d)
        return math.sqrt(d) * z / z.norm(dim=1, keepdim=True)

    def centres(self) -> torch.Tensor:
        """The mixture centres √d e_{j mod d}, j < num_mix: [num_mix, d]."""
        d = self.context_dim
        c = torch.zeros(self.num_mix, d, dtype=self.W1_star.dtype, device=self.device)
        c[torch.arange(self.num_mix), torch.arange(self.num_mix) % d] = math.sqrt(d)
        return c

    def _score_parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(W₁*x [B, k], [W₂*ᵀ; 0] [k+1, k]): the teacher score of token j after row p is their sum."""
        k = self.num_actions
        s = x.to(self.W1_star.dtype) @ self.W1_star.T
        return s, torch.cat([self.W2_star.T, torch.zeros(1, k, dtype=s.dtype, device=s.device)], 0)

    def teacher_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Teacher score table [B, k+1, k]: row p < k after token p, row k at position 1."""
        s, w2t = self._score_parts(x)
        return s[:, None, :] + w2t[None]

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """y*(x): long [B, N], the greedy walk of the teacher.

        The walk is y*_i = nxt(y*_{i−1}) for the per-context map nxt = argmax of :meth:`teacher_logits`
        (:func:`~oraclerl.models.kernels.greedy_walk`: pointer doubling in ⌈log₂ N⌉ rounds, or one compiled
        pass without the [B, k+1, k] table).
        """
        return greedy_walk(*self._score_parts(x), self.horizon)

    def margin(self, x: torch.Tensor) -> torch.Tensor:
        """Per-context teacher margin min_i [s(y*_i) − max_{y≠y*_i} s(y)] along y* (unnormalised γ): [B]."""
        t = self.teacher_logits(x)
        top2 = t.topk(2, dim=-1).values
        gap = top2[..., 0] - top2[..., 1]                            # [B, k+1]
        y = self.target(x)
        prev = torch.cat([torch.full_like(y[:, :1], self.num_actions), y[:, :-1]], 1)
        return gap.gather(1, prev).min(1).values


def teacher_task(context_dim: int = 32, num_actions: int = 32, horizon: int = 128, contexts: str = "mixture",
                 num_mix: int = 32, sigma: float = 0.05, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                 support: torch.Tensor | None = None) -> TeacherTask:
    """A random teacher task (W₁*, W₂* ∼ N(0, 1) entries drawn from ``generator``).

    ``contexts="finite"`` needs ``support`` [M, d] (the context law is uniform on its rows).
    """
    d = check_int("context_dim", context_dim, low=1)
    k = check_int("num_actions", num_actions, low=2)
    N = check_int("horizon", horizon, low=1)
    check_choice("contexts", contexts, ("mixture", "rademacher", "finite"))
    if contexts == "finite":
        if support is None or support.dim() != 2 or support.shape[1] != d or support.shape[0] < 1:
            raise ConfigError("support", f"contexts='finite' needs support of shape [M >= 1, {d}]")
        support = support.to(dtype=dtype, device=device)
    check_int("num_mix", num_mix, low=1)
    check_nonneg("sigma", sigma)
    gdev = generator.device if generator is not None else "cpu"  # draw where the generator lives
    W1 = torch.randn(k, d, generator=generator, dtype=torch.float64, device=gdev).to(
        dtype=dtype, device=device
    )
    W2 = torch.randn(k, k, generator=generator, dtype=torch.float64, device=gdev).to(
        dtype=dtype, device=device
    )
    return TeacherTask(W1, W2, N, contexts, num_mix, float(sigma), support)


def authors_teacher_task(context_dim: int = 32, num_actions: int = 32, horizon: int = 128, num_mix: int = 32,
                         sigma: float = 0.05, generator: torch.Generator | None = None,
                         device: str | torch.device = "cpu") -> TeacherTask:
    """The mixture teacher task exactly as the authors' code draws it (GitHub
    mousavih/rlvr-base-model-barrier, ``utils/data_generator.py``; the call order is described in
    docs/experiments/pg-figure1.md).

    Their code draws everything from one stream: W₁* = ``randn(k, d)`` then W₂* = ``randn(k, k)`` in float32,
    lazily inside the first ``sample_batch`` (the test-set call), then that batch's contexts, then every
    pre-training batch. Pass the same CPU ``generator`` on to :meth:`TeacherTask.sample_contexts` in that
    order (``torch.Generator().manual_seed(s)`` replays ``torch.manual_seed(s)`` on CPU). The contexts use
    their rounding order (``scale_last``); the weights are moved to ``device`` after the draw.
    """
    d = check_int("context_dim", context_dim, low=1)
    k = check_int("num_actions", num_actions, low=2)
    N = check_int("horizon", horizon, low=1)
    check_int("num_mix", num_mix, low=1)
    check_nonneg("sigma", sigma)
    gdev = generator.device if generator is not None else "cpu"
    W1 = torch.randn(k, d, generator=generator, dtype=torch.float32, device=gdev).to(device)
    W2 = torch.randn(k, k, generator=generator, dtype=torch.float32, device=gdev).to(device)
    return TeacherTask(W1, W2, N, "mixture", num_mix, float(sigma), scale_last=True)


class TeacherContexts:
    """The prompt distribution ρ of a teacher task, with prompt ids for the oracle protocol.

    :meth:`sample` draws fresh contexts and returns their ids (uncounted: serve it through
    ``PromptSource(contexts, ledger)``, which counts them); :meth:`lookup` gives the contexts x of ids and
    :meth:`register` gives ids to fixed contexts (e.g. the mixture centres). The last ``capacity`` contexts
    stay addressable (ids are a running counter, so ``num_prompts`` is None); reading an id that has been
    overwritten raises a ConfigError. ``ledger`` counts the prompts of :meth:`draw_labelled` (pre-training's
    labelled data).
    """

    num_prompts = None

    def __init__(self, task: TeacherTask, ledger: Ledger | None = None, capacity: int = 1 << 15):
        self.task = task
        self.ledger = ledger if ledger is not None else Ledger()
        self.capacity = check_int("capacity", capacity, low=1)
        d, N = task.context_dim, task.horizon
        ydt = torch.int16 if task.num_actions <= 32767 else torch.long
        self._x = torch.zeros(self.capacity, d, dtype=task.W1_star.dtype, device=task.device)
        self._y = torch.zeros(self.capacity, N, dtype=ydt, device=task.device)
        self._next = 0

    def register(self, x: torch.Tensor) -> torch.Tensor:
        """Store contexts [B, d] (and their y*) and return their ids [B] (no prompt is counted)."""
        B = x.shape[0]
        if B > self.capacity:
            raise ConfigError("B", f"at most capacity={self.capacity} contexts at once, got {B}")
        ids = torch.arange(self._next, self._next + B, device=self.task.device)
        s0 = self._next % self.capacity
        slot = slice(s0, s0 + B) if s0 + B <= self.capacity else ids % self.capacity   # the same rows
        self._x[slot] = x.to(self._x.dtype)
        self._y[slot] = self.task.target(x).to(self._y.dtype)
        self._next += B
        return ids

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw n contexts x ∼ ρ and return their ids [n] (x: :meth:`lookup`); counts nothing."""
        return self.register(self.task.sample_contexts(n, generator))

    def draw_labelled(
        self, B: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Supervised data for pre-training: (x [B, d], y*(x) [B, N]); counts B prompts."""
        self.ledger.charge("prompts", check_int("B", B, low=1))
        x = self.task.sample_contexts(B, generator)
        return x, self.task.target(x)

    def _slots(self, ids) -> torch.Tensor:
        ids = torch.as_tensor(ids, dtype=torch.long, device=self.task.device)
        if ids.numel() and (ids.min() < max(0, self._next - self.capacity) or ids.max() >= self._next):
            raise ConfigError("prompts", f"ids must be among the last {self.capacity} drawn "
                                         f"([{max(0, self._next - self.capacity)}, {self._next - 1}])")
        return ids % self.capacity

    def lookup(self, ids) -> torch.Tensor:
        """Contexts x [B, d] of prompt ids [B]."""
        return self._x[self._slots(ids)]

    def targets(self, ids) -> torch.Tensor:
        """y* [B, N] (long) of prompt ids; for reward functions and evaluation only."""
        return self._y[self._slots(ids)].long()


class TeacherReward:
    """Outcome or process reward of a teacher task (reward-function protocol of RewardOracle).

    ``kind="outcome"``: ``mean`` = 1[y = y*] for full responses only; no process rewards.
    ``kind="process"``: ``process_mean`` = 1[y_{1:i} = y*_{1:i}] for every prefix i (cumulative product of
    token matches), and ``mean`` on a response of length L ≤ N is the process reward of its last prefix (one
    verifier call, as in the per-token exploration of Algorithm 2).
    ``form="binary"`` gives {0, 1}; ``form="signed"`` gives ±1 (the authors' experiments).
    """

    def __init__(self, contexts: TeacherContexts, kind: str = "outcome", form: str = "binary"):
        self.contexts = contexts
        self.kind = check_choice("kind", kind, ("outcome", "process"))
        self.form = check_choice("form", form, ("binary", "signed"))
        self.r_max = 1.0
        if kind == "process":
            self.process_mean = self._process_mean

    def _map(self, ok: torch.Tensor) -> torch.Tensor:
        dt = self.contexts._x.dtype
        if self.form == "signed":  # 2·1[ok] − 1 in one pass
            return torch.where(
                ok, torch.ones((), dtype=dt, device=ok.device), -torch.ones((), dtype=dt, device=ok.device)
            )
        return ok.to(dt)

    def _matches(self, prompts, responses: torch.Tensor) -> torch.Tensor:
        responses = torch.as_tensor(responses)
        if responses.dim() != 3 or responses.shape[0] != torch.as_tensor(prompts).numel():
            raise ConfigError("responses", f"must be [B, n, L] token ids, got {tuple(responses.shape)}")
        L, N = responses.shape[2], self.contexts.task.horizon
        if L > N or (self.kind == "outcome" and L != N):
            need = f"exactly {N}" if self.kind == "outcome" else f"at most {N}"
            raise ConfigError("responses", f"length must be {need} for a {self.kind} reward, got {L}")
        ystar = self.contexts.targets(prompts)[:, None, :L]
        return responses.to(ystar.device).long() == ystar

    def mean(self, prompts, responses: torch.Tensor) -> torch.Tensor:
        """r(x, y) = 1[y = y*] (for ``process``: of the last prefix of y): [B, n]."""
        return self._map(self._matches(prompts, responses).all(-1))

    def _process_mean(self, prompts, responses: torch.Tensor) -> torch.Tensor:
        """r(x, y_{1:i}) = 1[y_{1:i} = y*_{1:i}] for i = 1..L: [B, n, L]."""
        # cumulative product of the 0/1 matches in uint8 (exact; the default would accumulate in int64)
        return self._map(
            torch.cumprod(self._matches(prompts, responses).to(torch.uint8), -1, dtype=torch.uint8).bool()
        )
