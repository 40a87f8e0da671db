"""The bottom layer's one device helper, one thread limiter and one attribute forwarder (oraclerl.common)."""

from __future__ import annotations

import pytest
import torch

from oraclerl.common.device import resolve_device
from oraclerl.common.threads import torch_threads
from oraclerl.errors import ConfigError


def test_resolve_device_auto_names_and_one_line_errors():
    auto = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device() == resolve_device(None) == resolve_device("auto") == auto
    assert resolve_device("cpu") == torch.device("cpu") == resolve_device(torch.device("cpu"))
    with pytest.raises(ConfigError) as e:
        resolve_device("tpu-ish", field="--device")
    assert e.value.field == "--device" and "unknown device 'tpu-ish'" in str(e.value)
    with pytest.raises(ConfigError, match=r"^device: unsupported device 'meta'"):
        resolve_device("meta")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"^device: 'cuda' requested but no CUDA device is available"):
            resolve_device("cuda")
    else:
        with pytest.raises(ConfigError, match=r"CUDA device\(s\)$"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_torch_threads_sets_and_restores_and_zero_leaves_the_count():
    old = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == old
    with torch_threads(0):
        assert torch.get_num_threads() == old
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("restored on error too")
    assert torch.get_num_threads() == old


def test_forwarded_reads_the_held_object_on_every_access_and_is_read_only():
    from types import SimpleNamespace

    from oraclerl.common.forwarding import forwarded

    class View:
        horizon = forwarded("model")
        dim = forwarded("model", "feature_dim")

        def __init__(self, model):
            self.model = model

    m = SimpleNamespace(horizon=3, feature_dim=7)
    v = View(m)
    assert (v.horizon, v.dim) == (3, 7)
    m.horizon = 5  # follows the model (a copy taken at construction would still say 3)
    assert v.horizon == 5
    with pytest.raises(AttributeError, match=r"^View\.horizon is read from \.model; set it there$"):
        v.horizon = 1
    assert isinstance(View.horizon, forwarded)
