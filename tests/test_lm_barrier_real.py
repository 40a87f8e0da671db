"""lm-barrier-real end to end: on the tiny in-process model (always), without a model (skipped, claims n/a
with the reason, a run key that changes once the model appears), and at toy scale on Gemma-3-270M
(``real_lm``)."""

import json

import pytest
import torch

pytest.importorskip("transformers")

from oraclerl.common.config import to_dict  # noqa: E402
from oraclerl.runtime.run.registry import get_experiment  # noqa: E402
from oraclerl.runtime.run.runner import RunContext  # noqa: E402
from oraclerl.runtime.run.store import run_key  # noqa: E402

pytestmark = pytest.mark.hf
EXP = get_experiment("lm-barrier-real")


def _check_result(r, cfg):
    n, ks = cfg.samples, r["base"]["ks"]
    assert ks[0] == 1 and ks[-1] == n
    for ev in [r["base"]] + [r["methods"][m]["eval"] for m in cfg.methods]:
        assert len(ev["correct"]) == cfg.num_test and all(0 <= c <= n for c in ev["correct"])
        pk = ev["pass_at_k"]
        assert all(a <= b + 1e-12 for a, b in zip(pk, pk[1:]))  # pass@k is non-decreasing in k
        assert pk[0] == pytest.approx(sum(ev["correct"]) / (n * cfg.num_test))  # pass@1 = mean c/n
        assert pk[-1] == pytest.approx(sum(c >= 1 for c in ev["correct"]) / cfg.num_test)  # pass@n = 1[c ≥ 1]
        assert all(v <= 0 for v in ev["log_q"]) and 0 <= ev["truncated"] <= 1
    steps, B, G = cfg.pg_steps, cfg.batch_prompts, cfg.group_size
    for m in cfg.methods:
        led = r["methods"][m]["ledger"]
        assert led["t_comp"] == steps * B * G and led["prompts"] == steps * B
        assert led["t_data"] == steps * B * G * (cfg.max_new_tokens if m == "process" else 1)
        assert len(r["methods"][m]["steps"]) == steps


def test_runs_end_to_end_on_the_tiny_model(tmp_path):
    cfg = EXP.make_config("toy", {"model": "tiny"})
    r = EXP.run(cfg, RunContext(seed=0))
    _check_result(r, cfg)
    json.dumps(r)  # plain JSON for the run store
    claims = EXP.claims([r], cfg)
    assert len(claims) == 4 and all(
        c.verdict in ("holds", "does not hold", "not informative at this scale", "n/a") for c in claims
    )
    figs = EXP.plot([r], cfg, tmp_path)
    assert len(figs) == 1 and figs[0].stat().st_size > 1000


def test_without_the_model_the_runs_are_skipped_with_the_reason(tmp_path):
    cfg = EXP.make_config("toy", {"model": str(tmp_path / "absent")})
    assert cfg.model_fingerprint == "absent"
    r = EXP.run(cfg, RunContext(seed=0))
    assert set(r) == {"skipped"} and "make real-model" in r["skipped"]
    assert all(c.verdict == "n/a" and "make real-model" in c.measured for c in EXP.claims([r], cfg))
    assert EXP.plot([r], cfg, tmp_path) == []


def test_run_key_changes_when_the_model_appears(tmp_path):
    """A skipped run must not be re-used once the model is prepared (nor a run made on another model)."""
    d = tmp_path / "m"
    key = lambda: run_key(EXP.name, to_dict(EXP.make_config("toy", {"model": str(d)})), 0)  # noqa: E731
    absent = key()
    d.mkdir()
    (d / "config.json").write_text('{"model_type": "gpt2"}')
    present = key()
    (d / "model.safetensors").write_bytes(b"x" * 10)
    weights = key()
    assert len({absent, present, weights}) == 3 and key() == weights  # stable for the same directory


@pytest.mark.real_lm
def test_toy_scale_on_gemma(real_lm_dir):
    cfg = EXP.make_config("toy", {"model": str(real_lm_dir)})
    r = EXP.run(cfg, RunContext(seed=0))
    _check_result(r, cfg)
    # The canonical answer tokens are what Gemma writes after the prompt: their likelihood is not tiny (a
    # wrong tokenisation, e.g. a missing lead space or stop string, gives < 1e-4; measured here: > 1e-2).
    assert min(r["base"]["log_q"]) > torch.log(torch.tensor(1e-3)).item(), r["base"]["log_q"]
    assert r["base"]["truncated"] < 0.5  # Gemma ends its answers with the newline of the few-shot format
