"""Benchmark of the transformers backend: our batched KV-cache sampler vs ``model.generate``, and one PG step.

    .venv/bin/python benchmarks/bench_hf.py [--threads 1] [--repeats 3] [--device cpu|cuda] [--gemma-only]

The Gemma-3-270M section (``make real-model`` first; skipped when absent) compares the samplers on the real
model (temperature 0.7, top-k 50, top-p 0.95, with and without the stop string '\\n'), times teacher-forced
log-probs of 64 responses and reports that pass's peak memory beyond the resident set (VmHWM after a reset).

Same model, same prompts, same batch (B prompts × n samples), same sampling law (temperature 1, no
top-k/top-p, EOS enabled): tokens/s counts generated response tokens (up to and including EOS). Our sampler
drops finished rows from the batch and the KV cache; ``generate`` keeps them until every row has ended. The PG
step is one ``LMPolicyGradient.step`` (sample, process rewards, teacher-forced log-probs, backward, Adam).
TRL's ``GRPOTrainer`` is timed only when ``trl`` is importable (it is not a dependency).
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from oraclerl.models.hf.tiny import char_tokenizer, tiny_gpt2


def _time(fn, repeats):
    fn()  # warm-up
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def bench_sampling(args, n_layer, n_embd, B, n, L):
    from oraclerl.models.hf.causal_lm import CausalLM

    tok = char_tokenizer("abcdefghijklmnopqrstuvwxyz0123456789 .,:;+-=")
    prompts = [f"prompt {i}: " + "ab" * (i % 5) for i in range(B)]
    model = tiny_gpt2(len(tok), n_layer=n_layer, n_embd=n_embd, n_head=4, n_positions=L + 32, seed=0)
    lm = CausalLM(model, tok, prompts, max_new_tokens=L, device=args.device, dtype=torch.float32)
    x = torch.arange(B)

    def ours():
        y = lm.generate(x, n, torch.Generator().manual_seed(0))[0]
        return int(lm.response_mask(y).sum())

    ids, mask = lm._prompt_batch(x)
    ids, mask = ids.repeat_interleave(n, 0), mask.repeat_interleave(n, 0)

    def hf():
        torch.manual_seed(0)
        with torch.no_grad():
            out = lm.model.generate(
                input_ids=ids,
                attention_mask=mask,
                do_sample=True,
                max_new_tokens=L,
                top_k=0,
                top_p=1.0,
                temperature=1.0,
                pad_token_id=lm.pad_token_id,
                eos_token_id=lm.eos_token_id,
            )
        y = out[:, ids.shape[1]:]
        y = torch.nn.functional.pad(y, (0, L - y.shape[1]), value=lm.pad_token_id)
        return int(lm.response_mask(y.reshape(B, n, L)).sum())

    t_ours, tok_ours = _time(ours, args.repeats)
    t_hf, tok_hf = _time(hf, args.repeats)
    return {"model": f"GPT-2 {n_layer}L/{n_embd}d, |V|={len(tok)}", "batch": f"{B}x{n}", "L": L,
            "ours_tok_s": tok_ours / t_ours, "hf_tok_s": tok_hf / t_hf, "ours_s": t_ours, "hf_s": t_hf,
            "ratio": (tok_ours / t_ours) / (tok_hf / t_hf)}


def bench_pg(args):
    from oraclerl.models.hf.tiny import tiny_causal_lm
    from oraclerl.oracles import Ledger, PromptSource, RewardOracle, WeakSampler
    from oraclerl.posttrain.lm_pg import LMPGConfig, LMPolicyGradient
    from oraclerl.problems.lm_tasks import teacher_sequence_task

    task = teacher_sequence_task(num_contexts=32, length=16, vocab=8, seed=0)
    lm = tiny_causal_lm(
        task.alphabet, task.prompts, n_layer=2, n_embd=64, max_new_tokens=16, device=args.device
    )
    ledger = Ledger()
    reward = RewardOracle(task.token_reward(lm, values=(-1.0, 1.0)), ledger)
    prompts = PromptSource(task.weights, ledger)
    pg = LMPolicyGradient(LMPGConfig(batch_size=16, group_size=4, reward="process", advantage="none"))
    policy = lm.trainable_copy()
    sampler = WeakSampler(policy, ledger, reveal=())
    opt = torch.optim.Adam(policy.model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    t, _ = _time(lambda: pg.step(policy, sampler, reward, prompts, opt, gen), args.repeats)
    return {"setting": "process PG, 16 prompts x 4 samples, N=16, GPT-2 2L/64d", "step_s": t}


def _rss_mib(field: str) -> float:
    """VmRSS / VmHWM of this process in MiB (Linux)."""
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as fh:  # "5" resets VmHWM to the current RSS (Linux ≥ 4.0)
        fh.write("5")


def bench_gemma(args):
    """Gemma-3-270M (``make real-model``): sampler vs ``generate`` with and without a stop string,
    teacher-forced log-prob throughput and the peak memory of scoring 64 responses."""
    from oraclerl.models.hf.causal_lm import CausalLM
    from oraclerl.models.hf.loading import load_pretrained
    from oraclerl.models.hf.real_model import find_real_model

    path = find_real_model()
    if path is None:
        print("Gemma-3-270M: models/gemma-3-270m is absent (make real-model): skipped")
        return
    model, tok = load_pretrained(path)
    weights = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    prompts = ["The capital of France is", "Q: What is 12+7?\nA:", "def fibonacci(n):", "Once upon a time,"]
    B, n, L = len(prompts), args.gemma_n, args.gemma_L
    law = dict(temperature=0.7, top_k=50, top_p=0.95)
    x = torch.arange(B)
    print(f"Gemma-3-270M ({path}), {model.dtype}, weights {weights:.0f} MiB; batch {B}x{n}, L={L}, "
          f"temperature 0.7, top-k 50, top-p 0.95")
    print(f"{'stop':8s} {'ours tok/s':>11s} {'generate tok/s':>15s} {'ratio':>6s}")
    for stop in () if args.gemma_scoring_only else ((), ("\n",)):
        lm = CausalLM(model, tok, prompts, max_new_tokens=L, stop_strings=stop, **law)
        ids, mask = lm._prompt_batch(x)
        ids, mask = ids.repeat_interleave(n, 0), mask.repeat_interleave(n, 0)

        def ours(lm=lm):
            return int(lm.response_mask(lm.generate(x, n, torch.Generator().manual_seed(0))[0]).sum())

        def hf(lm=lm, stop=stop, ids=ids, mask=mask):
            torch.manual_seed(0)
            extra = {"stop_strings": list(stop), "tokenizer": tok} if stop else {}
            with torch.no_grad():
                out = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, max_new_tokens=L,
                                     pad_token_id=lm.pad_token_id, eos_token_id=lm.terminal_ids.tolist(),
                                     **law, **extra)
            y = torch.nn.functional.pad(out[:, ids.shape[1]:], (0, L - (out.shape[1] - ids.shape[1])),
                                        value=lm.pad_token_id)
            return int(lm.response_mask(y.reshape(B, n, L)).sum())

        t_o, k_o = _time(ours, args.repeats)
        t_h, k_h = _time(hf, args.repeats)
        print(
            f"{repr(stop[0]) if stop else 'none':8s} {k_o / t_o:11.1f} {k_h / t_h:15.1f} "
            f"{(k_o / t_o) / (k_h / t_h):6.2f}"
        )
    # teacher-forced log-probs of 64 responses, and the memory it takes beyond the weights
    lm = CausalLM(model, tok, prompts, max_new_tokens=L, **law)
    y = lm.generate(torch.arange(B), 64 // B, torch.Generator().manual_seed(1))[0]
    P = lm._prompt_batch(x)[0].shape[1]
    t_tf, _ = _time(lambda: lm.token_log_probs(x, y), args.repeats)
    base = _rss_mib("VmRSS")
    _reset_peak()
    lm.token_log_probs(x, y)
    extra = _rss_mib("VmHWM") - base
    full = 64 * (P + L) * lm.num_actions * 4 / 2**20
    print(f"teacher-forced log-probs, 64 responses x {L} tokens: {64 * L / t_tf:.0f} tok/s ({t_tf:.2f} s), "
          f"forward_batch_size {lm.forward_batch_size}")
    print(f"peak memory of that pass beyond the resident set: {extra:.0f} MiB (weights {weights:.0f} MiB; "
          f"full-vocabulary logits at every position would be {full:.0f} MiB)")
    h = lm.hidden_states(x, y).mean(1).norm(dim=-1)
    print(f"pooled last-layer hidden-state norms: median {h.median():.1f}, range {h.min():.1f}-{h.max():.1f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--gemma-only", action="store_true", help="only the Gemma-3-270M section")
    ap.add_argument(
        "--gemma-n", type=int, default=4, help="samples per prompt in the Gemma sampler benchmark"
    )
    ap.add_argument("--gemma-L", type=int, default=32, help="max new tokens in the Gemma benchmarks")
    ap.add_argument("--gemma-scoring-only", action="store_true", help="Gemma: skip the sampler comparison")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, device {args.device}, threads {args.threads}")
    if args.gemma_only:
        bench_gemma(args)
        print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
        return
    print(f"{'model':28s} {'batch':>7s} {'L':>4s} {'ours tok/s':>11s} {'generate tok/s':>15s} {'ratio':>6s}")
    for n_layer, n_embd, B, n, L in [(2, 32, 8, 8, 32), (4, 128, 16, 8, 64), (4, 128, 4, 2, 64)]:
        r = bench_sampling(args, n_layer, n_embd, B, n, L)
        print(
            f"{r['model']:28s} {r['batch']:>7s} {r['L']:>4d} {r['ours_tok_s']:11.0f} {r['hf_tok_s']:15.0f} "
            f"{r['ratio']:6.2f}"
        )
    bench_gemma(args)
    r = bench_pg(args)
    print(f"one PG step ({r['setting']}): {1000 * r['step_s']:.1f} ms")
    try:
        import trl  # noqa: F401
        print("trl is importable, but an equivalent GRPOTrainer step is not wired in this script")
    except ImportError:
        print("TRL not installed: the GRPOTrainer comparison was skipped (TRL is not a dependency)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
