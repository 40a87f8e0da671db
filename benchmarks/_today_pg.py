"""The policy-gradient step as it was before issue 15 (commit 2fe3bc7), kept as the benchmark's reference.

Differences from today's code, nothing else: sampling builds the [B(k+1), k] CDF table as softmax @ triu
(float32) and walks it with one ``index_select`` + ``searchsorted`` per position; teacher labels are
``argmax`` of the [B, k+1, k] score table and pointer doubling; gradient counts are three ``scatter_add_``.
The last two are exactly the torch definitions of :mod:`oraclerl.models.kernels`, so this module runs them
with the numba accelerator off (:func:`torch_kernels`).
"""

from __future__ import annotations

import contextlib

import torch

from oraclerl.models import kernels
from oraclerl.models.linear_ar import LinearARModel
from oraclerl.validation import check_int


@contextlib.contextmanager
def torch_kernels():
    """Run :mod:`oraclerl.models.kernels` with their torch definitions (numba off) inside the block."""
    old = kernels._NUMBA
    kernels._NUMBA = False
    try:
        yield
    finally:
        kernels._NUMBA = old


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
