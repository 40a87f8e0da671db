import os

import pytest
import torch

# Keep each test process on one thread: CI runs two processes on a 2-core machine.
torch.set_num_threads(1)
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


@pytest.fixture(scope="session")
def real_lm_dir():
    """The converted Gemma-3-270M directory for tests marked ``real_lm``: skipped with the reason when it is
    absent, a failure instead under ``ORACLERL_REQUIRE_REAL_LM=1`` (CI, so a failed preparation is seen)."""
    pytest.importorskip("transformers")
    from oraclerl.models.hf.real_model import find_real_model

    path = find_real_model()
    if path is None:
        msg = "the real model models/gemma-3-270m is absent (prepare it with `make real-model`)"
        if os.environ.get("ORACLERL_REQUIRE_REAL_LM"):
            pytest.fail(msg + "; ORACLERL_REQUIRE_REAL_LM is set")
        pytest.skip(msg)
    return path
