"""The policy-gradient step as it was before issue 15 (commit 2fe3bc7), kept as the benchmark's reference.

Differences from today's code, nothing else: sampling builds the [B(k+1), k] CDF table as softmax @ triu
(float32) and walks it with one ``index_select`` + ``searchsorted`` per position; teacher labels are
``argmax`` of the [B, k+1, k] score table and pointer doubling; gradient counts are three ``scatter_add_``.
The last two are exactly the torch definitions of :mod:`oraclerl.models.kernels`, so this module runs them
with the numba accelerator off (:func:`torch_kernels`).

Shared code that was made cheaper later (issue 15 item 2, same results) is put back as it was before issue 15
by :func:`torch_kernels` too, so that "today" keeps meaning the step before issue 15: the process reward's
cumulative product in int64 and its ±1 map in two passes, the context ring buffer written by index, and the
NaN checks of the reward oracle and of ``advantages`` as full ``isnan(r).any()`` passes (the latter added in
front of the new check, whose one ``sum`` it keeps: ≈ 20 µs of a ≈ 30 ms step).
"""

from __future__ import annotations

import contextlib
import importlib

import torch

from oraclerl.common.validation import check_int
from oraclerl.errors import ConfigError
from oraclerl.models import kernels
from oraclerl.models.linear_ar import LinearARModel
from oraclerl.oracles import rewards as rewards_mod
from oraclerl.problems.teacher import TeacherContexts, TeacherReward

# the module whose advantages are patched
pg_mod = importlib.import_module("oraclerl.posttrain.policy_gradient")


def _old_map(self, ok):
    r = ok.to(self.contexts._x.dtype)
    return r * 2 - 1 if self.form == "signed" else r


def _old_process_mean(self, prompts, responses):
    return self._map(torch.cumprod(self._matches(prompts, responses).to(torch.uint8), -1).bool())


def _old_register(self, x):
    B = x.shape[0]
    if B > self.capacity:
        raise ConfigError("B", f"at most capacity={self.capacity} contexts at once, got {B}")
    ids = torch.arange(self._next, self._next + B, device=self.task.device)
    slot = ids % self.capacity
    self._x[slot] = x.to(self._x.dtype)
    self._y[slot] = self.task.target(x).to(self._y.dtype)
    self._next += B
    return ids


def _old_check_finite_rewards(r, what):
    if torch.isnan(r).any():
        raise ConfigError("reward", f"{what} returned NaN")
    return r


def _old_advantages(rewards, estimator="none", **kw):
    r = torch.as_tensor(rewards)
    if torch.is_floating_point(r) and torch.isnan(r).any():
        raise ConfigError("rewards", "contains NaN")
    return _new_advantages(rewards, estimator, **kw)


_new_advantages = pg_mod.advantages


@contextlib.contextmanager
def torch_kernels():
    """Run :mod:`oraclerl.models.kernels` with their torch definitions (numba off), and the shared code
    listed in the module docstring as it was before issue 15, inside the block (build the reward oracle
    inside it)."""
    old = kernels._NUMBA
    saved = [
        (TeacherReward, "_map", TeacherReward._map),
        (TeacherReward, "_process_mean", TeacherReward._process_mean),
        (TeacherContexts, "register", TeacherContexts.register),
        (rewards_mod, "_check_finite_rewards", rewards_mod._check_finite_rewards),
        (pg_mod, "advantages", pg_mod.advantages),
    ]
    kernels._NUMBA = False
    TeacherReward._map, TeacherReward._process_mean = _old_map, _old_process_mean
    TeacherContexts.register = _old_register
    rewards_mod._check_finite_rewards = _old_check_finite_rewards
    pg_mod.advantages = _old_advantages
    try:
        yield
    finally:
        kernels._NUMBA = old
        for obj, name, value in saved:
            setattr(obj, name, value)


class TodayModel(LinearARModel):
    """LinearARModel whose bigram sampler is the pre-issue-15 one (same law, the old stream)."""

    def sample(self, x, n=1, generator=None, length=None):
        x = self._check_x(x)
        n = check_int("n", n, low=1)
        L = self.horizon if length is None else check_int("length", length, low=1, high=self.horizon)
        B, k = x.shape[0], self.num_actions
        u = torch.rand((B, n, L), generator=generator, dtype=self.dtype, device=self.device)
        logits = self.transition_logits(x)
        tri = torch.triu(torch.ones(k, k, dtype=logits.dtype, device=self.device))
        cdf = torch.softmax(logits, -1).reshape(B * (k + 1), k) @ tri                    # row CDFs
        cdf[:, -1] = 2.0
        base = (torch.arange(B, device=self.device) * (k + 1)).repeat_interleave(n)
        with torch_kernels():
            return kernels.cdf_walk(cdf, base, u.view(B * n, L), k).view(B, n, L)
