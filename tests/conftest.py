import os

import pytest
import torch

# Keep each test process on one thread: CI runs two processes on a 2-core machine.
torch.set_num_threads(1)
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)
