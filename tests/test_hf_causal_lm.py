"""CausalLM: sampling law, log-probabilities, features, oracles and errors (tiny in-process models)."""

import math

import pytest
import torch
from scipy import stats

pytest.importorskip("transformers")

from oraclerl.errors import ConfigError  # noqa: E402
from oraclerl.models.hf.causal_lm import CausalLM, inverse_cdf, process_logits  # noqa: E402
from oraclerl.models.hf.tiny import char_tokenizer, tiny_causal_lm, tiny_gpt2  # noqa: E402
from oraclerl.oracles import AutoregressiveSampler, Ledger, StrongSampler, WeakSampler  # noqa: E402

pytestmark = pytest.mark.hf

PROMPTS = ["a", "ba", "abab"]  # different lengths: exercises left padding


def _lm(**kw):
    kw.setdefault("max_new_tokens", 2)
    return tiny_causal_lm("ab", PROMPTS, seed=3, **kw)


def _chi2_pvalue(counts: torch.Tensor, probs: torch.Tensor) -> float:
    """Pearson χ² goodness of fit, pooling cells with expected count < 5."""
    exp = probs * counts.sum()
    big = exp >= 5
    obs_c = torch.cat([counts[big], counts[~big].sum().reshape(1)])
    exp_c = torch.cat([exp[big], exp[~big].sum().reshape(1)])
    keep = exp_c > 0
    return float(
        stats.chisquare(
            obs_c[keep].numpy(), exp_c[keep].numpy() * obs_c[keep].sum().item() / exp_c[keep].sum().item()
        ).pvalue
    )


def _counts(lm, ys, responses):
    """Counts of each enumerated response ys [M, L] among responses [B, n, L] (per prompt row) -> [B, M]."""
    match = (responses[:, :, None, :] == ys[None, None]).all(-1)  # [B, n, M]
    assert match.any(-1).all(), "a sample is not one of the enumerated responses"
    return match.sum(1).double()


def test_process_logits_matches_transformers_warpers():
    from transformers.generation.logits_process import (
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 50, generator=g) * 3
    ref = TopPLogitsWarper(0.8)(
        None, TopKLogitsWarper(12)(None, TemperatureLogitsWarper(0.7)(None, logits.clone()))
    )
    ours = process_logits(logits, 0.7, 12, 0.8)
    assert torch.equal(torch.isinf(ours), torch.isinf(ref))
    assert torch.allclose(ours, torch.log_softmax(ref, -1), atol=1e-6)


def test_inverse_cdf_never_picks_zero_mass_tokens():
    lp = torch.log(torch.tensor([[0.0, 0.5, 0.0, 0.5, 0.0]]).expand(4, 5))
    u = torch.tensor([0.0, 0.4999, 0.5, 0.999999])
    assert inverse_cdf(lp, u).tolist() == [1, 1, 3, 3]


@pytest.mark.parametrize("kw", [{}, {"temperature": 0.7, "top_k": 3, "top_p": 0.9}])
def test_sampled_log_probs_match_teacher_forced_pass(kw, gen):
    lm = _lm(max_new_tokens=5, **kw)
    prompts = torch.tensor([0, 2, 1])
    y, lp_proc, lp_raw = lm.generate(prompts, 6, gen)
    assert y.shape == (3, 6, 5)
    tf_proc = lm.token_log_probs(prompts, y, processed=True)
    tf_raw = lm.token_log_probs(prompts, y, processed=False)
    assert torch.allclose(lp_proc, tf_proc, atol=1e-5)
    assert torch.allclose(lp_raw, tf_raw, atol=1e-5)
    assert torch.allclose(lm.ref_log_prob(prompts, y), tf_proc.double().sum(-1), atol=1e-6)
    # padding convention: every position after the end is pad and carries no probability
    mask = lm.response_mask(y)
    assert (y[~mask] == lm.pad_token_id).all() and (tf_proc[~mask] == 0).all()
    if kw:
        assert (lp_raw <= 0).all() and not torch.allclose(lp_proc, lp_raw)


def test_batched_left_padding_matches_unbatched_scoring(gen):
    lm = _lm(max_new_tokens=4)
    prompts = torch.tensor([0, 1, 2])
    y = lm.sample(prompts, 3, gen)
    batched = lm.ref_log_prob(prompts, y)
    single = torch.cat([lm.ref_log_prob(prompts[i:i + 1], y[i:i + 1]) for i in range(3)])
    assert torch.allclose(batched, single, atol=1e-5)
    # independent computation with the raw network on the unpadded sequence
    seq = torch.cat([torch.tensor(lm.tokenizer("abab")["input_ids"]), y[2, 0]])
    with torch.no_grad():
        logits = lm.model(input_ids=seq[None]).logits[0]
    L = int(lm.response_lengths(y[2, 0])[0])
    lp = torch.log_softmax(logits[3:3 + L], -1).gather(-1, y[2, 0, :L, None]).sum()
    assert math.isclose(float(lp), float(batched[2, 0]), abs_tol=1e-5)


@pytest.mark.parametrize("kw", [{}, {"temperature": 1.5, "top_k": 4}, {"stop_strings": ("ba",)}])
def test_sampling_law_matches_enumerated_reference(kw, gen):
    lm = _lm(max_new_tokens=3 if "stop_strings" in kw else 2, **kw)
    ys = lm.enumerate_responses()
    prompts = torch.tensor([0, 2])
    logp = lm.ref_log_prob(prompts, ys.expand(2, -1, -1))  # [2, M]
    assert torch.allclose(torch.logsumexp(logp, -1), torch.zeros(2, dtype=logp.dtype), atol=1e-5)
    counts = _counts(lm, ys, lm.sample(prompts, 4000, gen))
    for b in range(2):
        assert _chi2_pvalue(counts[b], logp[b].exp()) > 1e-3


def test_stop_strings_end_responses(gen):
    lm = _lm(max_new_tokens=6, stop_strings=("b",))
    y = lm.sample(torch.tensor([0, 1]), 50, gen)
    lengths, ended = lm.response_lengths(y)
    texts = lm.decode(y)
    saw_stop = 0
    for b in range(2):
        for j, t in enumerate(texts[b]):
            assert "b" not in t or (t.endswith("b") and t.count("b") == 1)
            if "b" in t:
                saw_stop += 1
                assert ended[b, j]
    assert saw_stop > 10
    assert (y[~lm.response_mask(y)] == lm.pad_token_id).all()


def test_autoregressive_product_equals_sequence_law(gen):
    lm = _lm(max_new_tokens=3, temperature=0.8)
    ys = lm.enumerate_responses()
    prompts = torch.tensor([1]).expand(ys.shape[0])
    total = torch.zeros(ys.shape[0], dtype=torch.float64)
    for h in range(3):  # per-prefix forward passes: a different code path from the teacher-forced pass
        total += lm.next_log_prob(prompts, ys[:, :h], ys[:, h:h + 1])[:, 0]
    assert torch.allclose(total, lm.ref_log_prob(torch.tensor([1]), ys[None])[0], atol=1e-5)


def test_autoregressive_oracle_counts_and_strong_tilt(gen):
    lm = _lm(max_new_tokens=3, beta=0.5)
    ledger = Ledger()
    ar = AutoregressiveSampler(lm, ledger, reveal={"features", "log_probs"}, strong=True)
    theta = torch.randn(lm.feature_dim, generator=gen, dtype=torch.float64)
    s = ar.next_token(torch.tensor([0, 1]), torch.tensor([[3], [4]]), n=5, theta=theta, generator=gen)
    assert s.responses.shape == (2, 5) and s.features.shape == (2, 5, lm.feature_dim)
    assert ledger.t_comp_token == 10
    # π^auto_{h,θ}(a) ∝ π_h,ref(a)·exp(⟨θ, ϕ_h(a)⟩/β), recomputed from the weak law and the step features
    acts = torch.arange(lm.num_actions).expand(2, -1)
    ref = lm.next_log_prob(torch.tensor([0, 1]), torch.tensor([[3], [4]]), acts)
    phi = lm.step_features(torch.tensor([0, 1]), torch.tensor([[3], [4]]), acts)
    want = torch.log_softmax(ref + phi @ theta / 0.5, -1)
    got = lm.next_log_prob(torch.tensor([0, 1]), torch.tensor([[3], [4]]), acts, theta)
    assert torch.allclose(got, want, atol=1e-9)
    # after the end of a response the next token is pad with probability 1
    ended = lm.next_log_prob(
        torch.tensor([0]), torch.tensor([[lm.eos_token_id, 3]]), torch.tensor([[lm.pad_token_id]])
    )
    assert float(ended) == 0.0


def test_strong_sampler_law_matches_tilted_reference(gen):
    lm = _lm(max_new_tokens=2, beta=0.5)
    ledger = Ledger()
    strong = StrongSampler(lm, ledger, reveal={"features", "log_probs"})
    prompts = torch.tensor([0, 2])
    ys = lm.enumerate_responses()
    phi0 = lm.features(prompts[:1], ys[None])[0]
    theta = phi0[3] - phi0.mean(0)  # a direction along which the responses' features differ
    theta = 0.8 * theta / theta.norm()
    s = strong.sample(prompts, theta, 3000, gen)
    assert ledger.t_comp == 6000  # one query per returned response, whatever the rejection cost
    # independent reference: π_ref from the teacher-forced pass, tilt and normalise by hand
    ref = lm.ref_log_prob(prompts, ys.expand(2, -1, -1))
    phi = lm.features(prompts, ys.expand(2, -1, -1))
    target = torch.log_softmax(ref + phi @ theta / 0.5, -1)
    counts = _counts(lm, ys, s.responses)
    tilted = 0
    for b in range(2):
        assert _chi2_pvalue(counts[b], target[b].exp()) > 1e-3
        tilted += _chi2_pvalue(counts[b], ref[b].exp()) < 1e-3
    assert tilted >= 1, "the tilt is strong enough to be detected against π_ref"
    assert torch.allclose(s.log_probs, lm.tilted_log_prob(prompts, s.responses, theta))
    assert torch.allclose(lm.tilted_log_prob(prompts, ys.expand(2, -1, -1), theta), target, atol=1e-9)


def test_weak_sampler_counts_reveals_and_features(gen):
    lm = _lm(max_new_tokens=3)
    ledger = Ledger()
    weak = WeakSampler(lm, ledger, reveal={"features", "log_probs"})
    s = weak.sample(torch.tensor([0, 1, 2]), 4, gen)
    assert ledger.t_comp == 12
    phi = s.features
    assert phi.shape == (3, 4, lm.feature_dim) and (phi.norm(dim=-1) <= 1 + 1e-12).all()
    assert torch.allclose(s.log_probs, lm.ref_log_prob(torch.tensor([0, 1, 2]), s.responses))
    # mean pooling recomputed from the raw network on one unpadded sequence
    y = s.responses[1, 0]
    L = int(lm.response_lengths(y)[0])
    seq = torch.cat([torch.tensor(lm.tokenizer("ba")["input_ids"]), y])
    with torch.no_grad():
        h = (
            lm.model(input_ids=seq[None], output_hidden_states=True)
            .hidden_states[-1][0, 2 : 2 + L]
            .double()
            .mean(0)
        )
    assert torch.allclose(phi[1, 0], h / max(1.0, float(h.norm())), atol=1e-5)


def test_same_seed_same_samples_different_seed_different():
    lm = _lm(max_new_tokens=5)
    a = lm.sample(torch.tensor([0, 1]), 8, torch.Generator().manual_seed(5))
    b = lm.sample(torch.tensor([0, 1]), 8, torch.Generator().manual_seed(5))
    c = lm.sample(torch.tensor([0, 1]), 8, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_from_pretrained_roundtrip_and_missing_directory(tmp_path, gen):
    lm = _lm(max_new_tokens=3)
    lm.model.save_pretrained(tmp_path / "m")
    lm.tokenizer.save_pretrained(tmp_path / "m")
    again = CausalLM.from_pretrained(tmp_path / "m", PROMPTS, max_new_tokens=3)
    y = lm.sample(torch.tensor([0, 2]), 3, gen)
    assert torch.allclose(
        again.ref_log_prob(torch.tensor([0, 2]), y), lm.ref_log_prob(torch.tensor([0, 2]), y), atol=1e-6
    )
    with pytest.raises(ConfigError, match="does-not-exist"):
        CausalLM.from_pretrained(tmp_path / "does-not-exist", PROMPTS)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="config.json"):
        CausalLM.from_pretrained(tmp_path / "empty", PROMPTS)


def test_bad_input_errors():
    tok = char_tokenizer("ab", pad=False)
    model = tiny_gpt2(len(tok))
    with pytest.raises(ConfigError, match="pad token"):
        CausalLM(model, tok, PROMPTS)
    lm = CausalLM(model, tok, PROMPTS, pad_token="eos", max_new_tokens=2)
    assert lm.pad_token_id == lm.eos_token_id
    tok = char_tokenizer("ab")
    for kw, field in [
        ({"temperature": 0.0}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_k": -1}, "top_k"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"max_new_tokens": 100}, "max_new_tokens"),
        ({"pool": "max"}, "pool"),
        ({"stop_strings": ("",)}, "stop_strings"),
    ]:
        with pytest.raises(ConfigError, match=field):
            CausalLM(model, tok, PROMPTS, **kw)
    with pytest.raises(ConfigError, match="prompts"):
        CausalLM(model, tok, [])
    lm = _lm(max_new_tokens=6)
    with pytest.raises(ConfigError, match="max_enumerate"):
        lm.enumerate_responses()
    lm = _lm(max_new_tokens=2, max_rejection_rounds=1, beta=1e-3)
    with pytest.raises(ConfigError, match="theta"):
        lm.sample_tilted(
            torch.tensor([0]), torch.ones(lm.feature_dim, dtype=torch.float64), 50, torch.Generator()
        )
