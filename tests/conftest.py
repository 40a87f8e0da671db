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


DIAGNOSE_PROMPTS = ["1+1=", "2+2=", "3+1="]


def save_diagnose_fixture(tmp_path, vocab: str):
    """A tiny causal LM over ``vocab`` saved to ``tmp_path/model`` and ``tmp_path/data.jsonl`` with the
    :data:`DIAGNOSE_PROMPTS`; the answers ("2", "4", "" = a bare EOS) are hit by a random model now and
    then."""
    import json

    from oraclerl.models.hf.tiny import tiny_causal_lm

    lm = tiny_causal_lm(vocab, DIAGNOSE_PROMPTS, seed=2, max_new_tokens=2)
    lm.model.save_pretrained(tmp_path / "model")
    lm.tokenizer.save_pretrained(tmp_path / "model")
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(json.dumps({"prompt": p, "answer": a})
                              for p, a in zip(DIAGNOSE_PROMPTS, ["2", "4", ""])) + "\n")
    return tmp_path
