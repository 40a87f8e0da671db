"""``oraclerl diagnose`` on a tiny saved model, and the answer checkers it uses."""

import json

import pytest
import torch

pytest.importorskip("transformers")

from conftest import DIAGNOSE_PROMPTS, save_diagnose_fixture  # noqa: E402
from oraclerl.cli import main  # noqa: E402
from oraclerl.cli.diagnose import diagnose, powers_of_two  # noqa: E402
from oraclerl.diagnostics.pass_at_k import pass_at_k_unbiased  # noqa: E402
from oraclerl.models.hf.rewards import answer_match  # noqa: E402

pytestmark = pytest.mark.hf


@pytest.fixture
def saved(tmp_path):
    return save_diagnose_fixture(tmp_path, "0123456789+="), list(DIAGNOSE_PROMPTS)


def test_answer_match_kinds():
    assert answer_match("exact")(["p"] * 3, [" 4 ", "4x", "x4"], answer=["4"] * 3) == [1.0, 0.0, 0.0]
    assert answer_match("contains")(["p"] * 2, ["x4y", "5"], answer=["4", "4"]) == [1.0, 0.0]
    assert answer_match("number")(["p"] * 3, ["so 3.0", "-2 then 7", "none"], answer=["3", "7", "1"]) == [
        1.0,
        1.0,
        0.0,
    ]
    assert powers_of_two(6) == [1, 2, 4, 6] and powers_of_two(1) == [1]


def test_diagnose_summary_matches_independent_computation(saved):
    tmp, prompts = saved
    from oraclerl.models.hf.causal_lm import CausalLM

    lm = CausalLM.from_pretrained(tmp / "model", prompts, max_new_tokens=2)
    s = diagnose(lm, ["2", "4", ""], samples=16, batch=2, generator=torch.Generator().manual_seed(0))
    c = torch.tensor(s["correct"], dtype=torch.float64)
    assert s["ledger"]["t_comp"] == 48 and s["ledger"]["t_data"] == 48
    assert abs(s["pass_at_k"]["1"] - float(c.mean() / 16)) < 1e-12
    assert (
        abs(s["pass_at_k"]["16"] - float((c > 0).double().mean())) < 1e-12
        and s["coverage"] == s["pass_at_k"]["16"]
    )
    assert abs(s["pass_at_k"]["4"] - float(pass_at_k_unbiased(16, c, 4).mean())) < 1e-12
    vals = list(s["pass_at_k"].values())
    assert all(a <= b + 1e-12 for a, b in zip(vals, vals[1:]))
    # Q̂(0) is the smallest per-problem accuracy
    assert abs(s["likelihood_quantile"]["0"] - float(c.min() / 16)) < 1e-12
    # the "" answer is hit exactly when the first token is terminal (EOS or pad): c ~ Binomial(16, p)
    from scipy.stats import binomtest

    first = torch.tensor([[[lm.eos_token_id, lm.pad_token_id], [lm.pad_token_id, lm.pad_token_id]]])
    p_end = float(lm.ref_log_prob(torch.tensor([2]), first).exp().sum())
    assert binomtest(int(c[2]), 16, p_end).pvalue > 1e-3


def test_diagnose_cli_writes_table_and_plot(saved, capsys):
    tmp, _ = saved
    rc = main(["diagnose", "--model", str(tmp / "model"), "--data", str(tmp / "data.jsonl"), "--samples", "8",
               "--max-new-tokens", "2", "--out", str(tmp / "out"), "--temperature", "0.9", "--top-k", "10"])
    assert rc == 0
    for f in ("problems.csv", "summary.json", "summary.md", "diagnose.png"):
        assert (tmp / "out" / f).is_file()
    summary = json.loads((tmp / "out" / "summary.json").read_text())
    assert set(summary["pass_at_k"]) == {"1", "2", "4", "8"} and summary["problems"] == 3
    assert len((tmp / "out" / "problems.csv").read_text().splitlines()) == 4
    assert "pass@k" in capsys.readouterr().out


def test_diagnose_cli_errors(saved, capsys):
    tmp, _ = saved
    assert main(["diagnose", "--model", str(tmp / "nope"), "--data", str(tmp / "data.jsonl")]) == 2
    assert "nope" in capsys.readouterr().err
    bad = tmp / "bad.jsonl"
    bad.write_text('{"prompt": "1+1=", "answer": "2"}\n{"question": "x"}\n')
    assert main(["diagnose", "--model", str(tmp / "model"), "--data", str(bad)]) == 2
    assert "line 2" in capsys.readouterr().err
    assert (
        main(["diagnose", "--model", str(tmp / "model"), "--data", str(tmp / "data.jsonl"), "--samples", "0"])
        == 2
    )
    assert "--samples" in capsys.readouterr().err
