"""``oraclerl diagnose``: answer extraction, escapes, presets, warnings, resume, and every bad input is one
line (exit 2, no traceback) before the model loads (tiny saved model)."""

import json
import os
import sys

import pytest
import torch

pytest.importorskip("transformers")

from conftest import save_diagnose_fixture  # noqa: E402
from oraclerl.cli import diagnose as diagnose_cli  # noqa: E402
from oraclerl.cli import main  # noqa: E402
from oraclerl.cli.diagnose import parse_escapes, summarize  # noqa: E402
from oraclerl.errors import ConfigError  # noqa: E402
from oraclerl.models.hf.answers import last_number, make_matcher  # noqa: E402

pytestmark = pytest.mark.hf


@pytest.fixture
def saved(tmp_path):
    return save_diagnose_fixture(tmp_path, "0123456789+=\n")


def _args(tmp, *extra):
    return ["diagnose", "--model", str(tmp / "model"), "--data", str(tmp / "data.jsonl"), "--samples", "4",
            "--max-new-tokens", "2", "--out", str(tmp / "out"), *extra]


def test_answer_extraction_kinds():
    cases = {
        "exact": [(" 5 ", "5", True), ("5\nQ", "5", False)],
        "first-line": [("5\nQ: 2+2=4", "5", True), (" 5 \n", "5", True), ("\n5", "5", False)],
        "last-number": [("so 1,000.0 it is", "1000", True), ("3 then -7", "-7", True), ("none", "1", False)],
        "contains": [("it is 42!", "42", True), ("4 2", "42", False)],
        r"regex:answer: (\d+)": [("the answer: 12 ok", "12", True), ("answer 12", "12", False)],
        r"regex:\d+": [("x 7 y 8", "7", True)],
    }
    for kind, rows in cases.items():
        m = make_matcher(kind)
        assert [m(c, a) for c, a, _ in rows] == [want for _, _, want in rows], kind
    assert last_number("a 2.5e3 b") == 2500.0 and last_number("no") is None
    for bad in ("nope", "regex:(", "os.path:nope", "no_such_module_xyz:f", "1bad:f"):
        with pytest.raises(ConfigError, match="--match"):
            make_matcher(bad)


def test_callable_matcher_is_imported_by_name_never_from_the_cwd(tmp_path, monkeypatch):
    (tmp_path / "cwd_checker.py").write_text("def check(c, a):\n    return True\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", ["", *[p for p in sys.path if p not in ("", str(tmp_path))]])
    with pytest.raises(ConfigError, match="never from the working directory"):
        make_matcher("cwd_checker:check")
    assert "cwd_checker" not in sys.modules
    monkeypatch.syspath_prepend(str(tmp_path))  # named explicitly (as PYTHONPATH would): allowed
    assert make_matcher("cwd_checker:check")("x", "y") is True
    assert make_matcher("math:isclose") is not None  # any importable module


def test_stop_escapes_as_typed():
    assert parse_escapes(r"\n") == "\n" and parse_escapes(r"\t|\\") == "\t|\\"
    assert parse_escapes("é\\n") == "é\n" and parse_escapes("plain") == "plain"
    with pytest.raises(ConfigError, match="--stop"):
        parse_escapes("\\x4")


def test_summary_warns_loudly_when_truncated_or_nothing_matched():
    none = summarize(torch.zeros(3, 4, dtype=torch.bool), 4, "exact", 0.9, {})
    assert len(none["warnings"]) == 2 and "no completion matched" in none["warnings"][1]
    assert "--max-new-tokens" in none["warnings"][0]
    fine = summarize(torch.eye(3, 4, dtype=torch.bool), 4, "exact", 0.5, {})
    assert fine["warnings"] == [] and fine["coverage"] == 1.0


def test_cli_writes_completions_applies_preset_and_resumes(saved, capsys):
    assert main(_args(saved, "--preset", "paper", "--samples", "3", "--stop", r"\n", "--batch", "2")) == 0
    out = saved / "out"
    settings = json.loads((out / "settings.json").read_text())
    assert (settings["temperature"], settings["top_p"], settings["top_k"], settings["samples"]) == (
        0.7,
        0.95,
        50,
        3,
    )
    assert settings["stop"] == ["\n"]
    comps = [json.loads(x) for x in (out / "completions.jsonl").read_text().splitlines()]
    assert len(comps) == 9 and {c["problem"] for c in comps} == {0, 1, 2}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["accuracy"] == sum(c["correct"] for c in comps) / 9
    assert not any(p.name.startswith(".") for p in out.iterdir())  # atomic writes leave no temporary files
    # a full rerun resumes everything (nothing sampled) and gives the same summary
    assert main(_args(saved, "--preset", "paper", "--samples", "3", "--stop", r"\n", "--batch", "2")) == 0
    assert "resuming: 3 of 3" in capsys.readouterr().err
    assert json.loads((out / "summary.json").read_text())["pass_at_k"] == summary["pass_at_k"]
    # other settings in the same --out: an error, unless --restart
    assert main(_args(saved, "--samples", "3")) == 2
    assert "other settings" in capsys.readouterr().err
    assert main(_args(saved, "--samples", "3", "--restart")) == 0


def test_cli_warns_when_nothing_matched(saved, capsys):
    assert main(_args(saved, "--match", "regex:NEVER(\\d)")) == 0
    err = capsys.readouterr().err
    assert "WARNING" in err and "no completion matched" in err


def _one_line_error(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err, err


def test_bad_inputs_fail_before_the_model_loads(saved, capsys, monkeypatch):
    def no_load(*a, **k):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr("oraclerl.models.hf.loading.load_pretrained", no_load)
    (saved / "afile").write_text("x")
    ro = saved / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    cases = [
        (["--seed", "-1"], "--seed"),
        (["--samples", "0"], "--samples"),
        (["--temperature", "0"], "--temperature"),
        (["--top-p", "1.5"], "--top-p"),
        (["--top-k", "-1"], "--top-k"),
        (["--stop", ""], "--stop"),
        (["--match", "bogus"], "--match"),
        (["--device", "tpu9"], "--device"),
        (["--out", str(saved / "afile")], "not a directory"),
        (["--out", str(saved / "afile" / "x")], "--out"),
        (["--batch", "0"], "--batch"),
    ]
    if os.geteuid() != 0:  # root writes anywhere
        cases.append((["--out", str(ro / "sub")], "not writable"))
    if not torch.cuda.is_available():
        cases.append((["--device", "cuda"], "no CUDA device is available"))
    for extra, needle in cases:
        _one_line_error(capsys, _args(saved, *extra), needle)
    assert not (saved / "out").exists()


def test_bad_model_and_data_files_are_one_line(saved, capsys):
    import shutil

    _one_line_error(capsys, _args(saved, "--model", str(saved / "missing")), "does not exist")
    bad = saved / "bad"
    shutil.copytree(saved / "model", bad)
    (bad / "config.json").write_bytes(b"{\xff\xfe")
    _one_line_error(capsys, _args(saved, "--model", str(bad)), "config.json is not UTF-8")
    (bad / "config.json").write_text('{"model_type": "gpt2",')
    _one_line_error(capsys, _args(saved, "--model", str(bad)), "not valid JSON")
    shutil.copy(saved / "model" / "config.json", bad / "config.json")
    weights = bad / "model.safetensors"
    weights.write_bytes((saved / "model" / "model.safetensors").read_bytes()[:1000])  # truncated
    _one_line_error(capsys, _args(saved, "--model", str(bad)), "cannot load the weights")
    weights.unlink()
    _one_line_error(capsys, _args(saved, "--model", str(bad)), "has no weights")
    shutil.copy(saved / "model" / "model.safetensors", weights)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["n_embd"] = 64  # wrong shape for the saved weights
    (bad / "config.json").write_text(json.dumps(cfg))
    _one_line_error(capsys, _args(saved, "--model", str(bad)), "wrong shape")
    gg = saved / "fake.gguf"
    gg.write_bytes(b"NOTGGUF")
    _one_line_error(capsys, _args(saved, "--model", str(gg)), "not a GGUF file")
    (saved / "data.jsonl").write_bytes(b'{"prompt": "1+1=", "answer": "2"}\n{"prompt": "\xff"}\n')
    _one_line_error(capsys, _args(saved), "not UTF-8 text (byte 46, line 2)")
    assert not (saved / "out").exists()


def test_chat_template_needs_one(saved, capsys):
    _one_line_error(capsys, _args(saved, "--chat-template"), "no chat template")
    assert diagnose_cli._chat_prompts is not None


def test_chat_template_wraps_prompts_and_from_pretrained_passes_loading_options(saved):
    from transformers import AutoTokenizer

    from oraclerl.models.hf.causal_lm import CausalLM

    tok = AutoTokenizer.from_pretrained(saved / "model")
    tok.chat_template = (
        "{% for m in messages %}[{{ m['content'] }}]{% endfor %}{% if add_generation_prompt %}={% endif %}"
    )
    assert diagnose_cli._chat_prompts(tok, ["1+1", "2"], "m") == ["[1+1]=", "[2]="]
    lm = CausalLM.from_pretrained(saved / "model", ["1+1="], max_new_tokens=2, attn_implementation="eager",
                                  dtype=torch.float64, add_special_tokens=False)
    assert lm.model.config._attn_implementation == "eager" and lm.dtype == torch.float64
    assert next(lm.model.parameters()).dtype == torch.float64
