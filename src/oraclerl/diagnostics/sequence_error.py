"""The test error of the Mousavi-Hosseini & Erdogdu (2026) experiments: the expected sequence error
1 − E_x q(y⋆|x) over test contexts (§6, Fig. 1 centre; docs/papers/mousavi2026_pg_barrier.md §5.7 item 5: the
expected error of the whole sequence, not greedy accuracy). It is 1 − the mean exact pass@1."""

from __future__ import annotations

import torch


def expected_sequence_error(log_q: torch.Tensor) -> float:
    """1 − mean_x q(y⋆|x) from the exact log-likelihoods ``log_q`` of the test contexts, computed in the dtype
    of ``log_q`` (float64 on the exact models)."""
    return float(1.0 - torch.as_tensor(log_q).exp().mean())
