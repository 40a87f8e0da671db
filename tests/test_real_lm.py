"""The transformers backend on a real pretrained model (Gemma-3-270M, ``make real-model``): sampler,
log-probs, memory, terminal tokens, what an oracle computes, and ``oraclerl diagnose`` end to end with resume.

Short by design (a few prompts, a few samples, a few tokens). Skipped with the reason when the model is
absent; CI sets ``ORACLERL_REQUIRE_REAL_LM=1`` so that an absent model fails there instead.
"""

import json

import pytest
import torch

pytest.importorskip("transformers")

from oraclerl.cli import main  # noqa: E402
from oraclerl.models.hf.causal_lm import LOGITS_BUDGET, CausalLM  # noqa: E402
from oraclerl.oracles import Ledger, WeakSampler  # noqa: E402

pytestmark = [pytest.mark.hf, pytest.mark.real_lm]

# different lengths: left padding
PROMPTS = ["The capital of France is", "1, 2, 3, 4,", "Q: What is 2+3?\nA:"]


@pytest.fixture(scope="module")
def gemma(real_lm_dir):
    from oraclerl.models.hf.loading import load_pretrained

    model, tok = load_pretrained(real_lm_dir)
    return model, tok


def _lm(gemma, **kw):
    model, tok = gemma
    kw.setdefault("max_new_tokens", 8)
    return CausalLM(model, tok, PROMPTS, **kw)


def test_greedy_sampler_matches_transformers_generate(gemma):
    """top_k=1 makes our sampler greedy: it must reproduce model.generate(do_sample=False) token for token,
    through left padding, the KV cache, sliding-window layers and dropping finished rows."""
    lm = _lm(gemma, top_k=1, max_new_tokens=6)
    y = lm.sample(torch.tensor([0, 2]), 2, torch.Generator().manual_seed(0))
    model, tok = gemma
    for i, p in enumerate([PROMPTS[0], PROMPTS[2]]):
        ids = tok(p, return_tensors="pt")
        ref = model.generate(**ids, do_sample=False, max_new_tokens=6)[0, ids["input_ids"].shape[1]:]
        n = int(lm.response_lengths(y[i:i + 1, :1])[0][0, 0])
        assert y[i, 0, :n].tolist() == ref[:n].tolist() and torch.equal(y[i, 0], y[i, 1])


def test_log_probs_match_an_independent_forward_and_are_reused(gemma, monkeypatch):
    lm = _lm(gemma, temperature=0.7, top_k=50, top_p=0.95)
    model, tok = gemma
    prompts = torch.tensor([2, 0])
    ledger = Ledger()
    weak = WeakSampler(lm, ledger, reveal={"log_probs"})
    calls = []
    orig = lm.log_prob
    monkeypatch.setattr(lm, "log_prob", lambda *a, **k: calls.append(1) or orig(*a, **k))
    s = weak.sample(prompts, 3, torch.Generator().manual_seed(1))
    assert calls == []  # the revealed log-probs are those drawn while sampling: no teacher-forced pass
    tf = orig(prompts, s.responses)
    assert torch.allclose(s.log_probs, tf, atol=2e-3)
    # raw log-probs against a plain forward of prompt 2 (no padding) + response, log_softmax at each position
    raw = lm.token_log_probs(prompts, s.responses, processed=False)
    p_ids = tok(PROMPTS[2])["input_ids"]
    n = int(lm.response_lengths(s.responses[:1, :1])[0][0, 0])
    seq = torch.tensor([p_ids + s.responses[0, 0, :n].tolist()])
    with torch.no_grad():
        ref = torch.log_softmax(model(input_ids=seq).logits[0, len(p_ids) - 1:-1].float(), -1)
    ref = ref.gather(-1, seq[0, len(p_ids):, None])[:, 0]
    assert torch.allclose(raw[0, 0, :n], ref, atol=2e-3) and (raw[0, 0, n:] == 0).all()


def test_teacher_forced_logits_only_at_response_positions(gemma):
    """Memory: no full-vocabulary logits at prompt positions, at most forward_batch_size rows per pass."""
    lm = _lm(gemma, max_new_tokens=8)
    assert lm.forward_batch_size == LOGITS_BUDGET // (9 * 262144)  # the documented automatic choice
    shapes = []
    hook = lm.model.get_output_embeddings().register_forward_hook(
        lambda m, i, o: shapes.append(tuple(o.shape))
    )
    try:
        y = lm.sample(torch.arange(3), 2, torch.Generator().manual_seed(2))
        assert all(s[1] == 1 for s in shapes)  # sampling: the last position only, prompt pass included
        shapes.clear()
        small = CausalLM(lm.model, lm.tokenizer, PROMPTS, max_new_tokens=8, forward_batch_size=4)
        small.token_log_probs(torch.arange(3), y)
    finally:
        hook.remove()
    assert [s[:2] for s in shapes] == [(4, 9), (2, 9)] and shapes[0][2] == 262144
    # the scale documented in spanner_preset: pooled post-norm hidden states have norms of order 100, and
    # features are their projections onto the unit ball (so all on the unit sphere)
    norms = lm.hidden_states(torch.arange(3), y).mean(1).norm(dim=-1)
    assert ((norms > 30) & (norms < 500)).all(), norms
    f = lm.features(torch.arange(3), y)
    assert torch.allclose(f.norm(dim=-1), torch.ones(3, 2, dtype=f.dtype), atol=1e-9)


def test_generation_config_eos_list_ends_responses(gemma):
    model, tok = gemma
    nl = tok.convert_tokens_to_ids("\n")
    saved = model.generation_config.eos_token_id
    model.generation_config.eos_token_id = [saved, nl]  # as Gemma-it / Qwen / Llama-3 declare several
    try:
        lm = _lm(gemma, max_new_tokens=12, top_k=1)
        assert nl in lm.terminal_ids.tolist()
        y = lm.sample(torch.tensor([2]), 1, torch.Generator().manual_seed(0))
    finally:
        model.generation_config.eos_token_id = saved
    n, ended = lm.response_lengths(y)
    # greedy "Q: What is 2+3?\nA:" continues " 2+3=5\n…": it must end at that newline
    assert bool(ended[0, 0]) and int(y[0, 0, int(n[0, 0]) - 1]) == nl and "\n" not in lm.decode(y)[0][0][:-1]


def test_plain_weak_sampler_computes_nothing_extra(gemma, monkeypatch):
    lm = _lm(gemma, max_new_tokens=4)
    monkeypatch.setattr(lm, "features", lambda *a, **k: pytest.fail("features computed unasked"))
    monkeypatch.setattr(lm, "log_prob", lambda *a, **k: pytest.fail("teacher-forced pass unasked"))
    weak = WeakSampler(lm, Ledger())
    assert weak.reveal == frozenset()
    assert weak.sample(torch.tensor([0]), 2, torch.Generator().manual_seed(0)).responses.shape == (1, 2, 4)


def _problems(path):
    shots = "2+3=5\n4+1=5\n6+2=8\n"
    rows = [{"prompt": shots + q, "answer": a} for q, a in [("1+1=", "2"), ("3+4=", "7"), ("5+3=", "8")]]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_diagnose_on_gemma_end_to_end_and_resume(real_lm_dir, tmp_path, capsys):
    data = _problems(tmp_path / "data.jsonl")
    out = tmp_path / "out"
    args = ["diagnose", "--model", str(real_lm_dir), "--data", str(data), "--samples", "4", "--batch", "2",
            "--max-new-tokens", "6", "--stop", r"\n", "--match", "first-line", "--temperature", "0.7",
            "--out", str(out), "--seed", "5"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    comps = [json.loads(line) for line in (out / "completions.jsonl").read_text().splitlines()]
    assert len(comps) == 12 and summary["problems"] == 3
    # first-line extraction and '\n' as a stop string: few-shot single-digit sums are mostly right
    assert summary["accuracy"] >= 0.5 and summary["warnings"] == []
    assert all(not c["truncated"] and c["completion"].endswith("\n") for c in comps)
    # an interrupted run (only the first batch recorded) resumes to the same completions
    prog = (out / "progress.jsonl").read_text().splitlines()
    (out / "progress.jsonl").write_text(prog[0] + "\n" + prog[1] + "\n" + '{"problem": 2, "corr')
    capsys.readouterr()
    assert main(args) == 0
    assert "resuming: 2 of 3" in capsys.readouterr().err
    again = [json.loads(line) for line in (out / "completions.jsonl").read_text().splitlines()]
    assert (
        again == comps and json.loads((out / "summary.json").read_text())["pass_at_k"] == summary["pass_at_k"]
    )


def test_spanner_sampling_preset_and_best_of_n_on_gemma(gemma):
    """SpannerSampling sized from a sampling budget, and best-of-n with revealed log-probs, on Gemma
    features."""
    from oraclerl.explore.spanner_sampling import SpannerSampling
    from oraclerl.inference.sample_based import BestOfN, BestOfNConfig
    from oraclerl.models.hf.rewards import TRLReward, answer_match
    from oraclerl.models.hf.spanner_preset import lm_spanner_config
    from oraclerl.oracles import PromptSource, RewardOracle

    model, tok = gemma
    shots = "2+3=5\n4+1=5\n6+2=8\n"
    prompts, answers = [shots + "1+1=", shots + "3+4="], ["2", "7"]
    lm = CausalLM(model, tok, prompts, max_new_tokens=2, stop_strings=["\n"], temperature=0.7, top_k=50)
    ledger = Ledger()
    weak = WeakSampler(lm, ledger, reveal={"features", "log_probs"})
    reward = RewardOracle(TRLReward(lm, answer_match("first-line"), dataset_columns={"answer": answers},
                                    r_max=1.0), ledger)
    cfg = lm_spanner_config(200, t_span=2, T_prompt=4)  # the preset, with fewer spanner prompts (test time)
    out = SpannerSampling(cfg).run(weak, reward, PromptSource(2, ledger), torch.Generator().manual_seed(0))
    snap = ledger.snapshot()
    assert out.schedule.d == 640 and snap["t_comp"] <= out.schedule.t_comp_bound <= 200
    assert snap["t_data"] <= out.schedule.t_data_bound
    bon = BestOfN(BestOfNConfig(n=4)).run(weak, reward, torch.arange(2), torch.Generator().manual_seed(1))
    assert torch.isfinite(bon.kl_estimate).all() and (bon.kl_estimate >= 0).all()
    assert bon.kl_estimate.max() <= bon.kl_formula + 1e-9 and bon.rewards.shape == (2, 1)
