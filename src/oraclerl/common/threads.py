"""CPU threads, in one place: a block run with a given number of torch intra-op threads."""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def torch_threads(n: int):
    """Run a block with ``n`` torch intra-op CPU threads (``n <= 0``: leave the count unchanged); the previous
    count is restored on exit. Small tensors ([B, k] rows) run faster on one thread on a shared machine, and
    workers use one so that a run's result does not depend on where it ran."""
    import torch  # here, so that importing the executors does not import torch

    old = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
