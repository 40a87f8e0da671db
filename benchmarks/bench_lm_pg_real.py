"""One policy-gradient step on Gemma-3-270M (issue 11, "one PG step's time and memory").

    .venv/bin/python benchmarks/bench_lm_pg_real.py [--model DIR] [--threads 1] [--prompts 4] [--group 4]
                                                    [--trainable no_embeddings|all] [--reward outcome|process]

``LMPolicyGradient.step`` at the library defaults (Adam, lr 1e-5, clipping 1.0) on the few-shot task of
``lm-barrier-real`` (two-digit + one-digit addition, three solved examples, answers of ≤ 5 tokens), split into
its phases: sampling (KV cache), rewards (exact string verifier), the teacher-forced pass with gradients
(prompt + response, forward and backward), and the optimiser step. Memory: the process's peak resident set
during the step above the resident set before it (Linux ``/proc/self/clear_refs`` resets the peak), next to
the model's weights. The floor is the step's matmul flops (forward 2·P·T, backward 4·P_train·T + 2·P·T for the
activation gradients, with T tokens through the network and P the non-embedding parameters plus the LM head
on the response positions) at this core's measured float32 matmul rate (``benchmarks/_floor.py``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _floor import describe, rates  # noqa: E402


def _rss(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--model", default=None, help="transformers directory (default: the one make real-model made)"
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--group", type=int, default=4)
    ap.add_argument("--trainable", default="no_embeddings", choices=("no_embeddings", "all"))
    ap.add_argument("--reward", default="outcome", choices=("outcome", "process"))
    ap.add_argument("--steps", type=int, default=2, help="timed steps (after one warm-up step)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from oraclerl.models.hf.causal_lm import CausalLM
    from oraclerl.models.hf.real_model import find_real_model
    from oraclerl.models.hf.rewards import TRLProcessReward, TRLReward
    from oraclerl.oracles import Ledger, PromptSource, RewardOracle, WeakSampler
    from oraclerl.posttrain.lm_pg import LMPGConfig, LMPolicyGradient, freeze_embeddings
    from oraclerl.problems.lm_tasks import few_shot_task

    path = args.model or find_real_model()
    if path is None:
        print(
            "error: model: no Gemma-3-270M directory (run `make real-model`, or pass --model DIR)",
            file=sys.stderr,
        )
        return 2
    task = few_shot_task("add", num_train=32, num_test=8, shots=3, size=2, size_b=1, seed=0)
    base = CausalLM.from_pretrained(path, task.prompts, max_new_tokens=5, stop_strings=("\n",), device="cpu",
                                    dtype=torch.float32)
    weights = sum(p.numel() * p.element_size() for p in base.model.parameters())
    ledger = Ledger()
    fn = TRLReward(base, task.outcome_fn()) if args.reward == "outcome" else \
        TRLProcessReward(base, task.outcome_fn(), task.process_fn())
    reward, prompts = RewardOracle(fn, ledger), PromptSource(task.weights, ledger)
    pg = LMPolicyGradient(LMPGConfig(batch_size=args.prompts, group_size=args.group, reward=args.reward,
                                     advantage="leave_one_out", trainable=args.trainable))
    policy = base.trainable_copy()
    if args.trainable == "no_embeddings":
        freeze_embeddings(policy.model)
    params = [p for p in policy.model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=pg.config.lr)
    sampler = WeakSampler(policy, ledger=ledger, reveal=())
    gen = torch.Generator().manual_seed(0)

    # Phases timed by wrapping the callees of step() (the step itself is unchanged).
    phases: dict[str, float] = {}

    def timed(name, f):
        def g(*a, **k):
            t = time.perf_counter()
            out = f(*a, **k)
            phases[name] = phases.get(name, 0.0) + time.perf_counter() - t
            return out
        return g

    policy.generate = timed("sampling", policy.generate)
    reward.outcome = timed("rewards", reward.outcome)
    reward.process = timed("rewards", reward.process)
    policy.token_log_probs = timed("teacher-forced forward", policy.token_log_probs)
    opt.step = timed("optimiser (Adam)", opt.step)
    pg.step(policy, sampler, reward, prompts, opt, gen)  # warm-up (allocates Adam's state)
    rss_before = _rss("VmRSS")
    peak_ok = _reset_peak()
    phases.clear()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        pg.step(policy, sampler, reward, prompts, opt, gen)
    total = (time.perf_counter() - t0) / args.steps
    peak = _rss("VmHWM")
    r = rates()
    P_all = sum(p.numel() for p in policy.model.parameters())
    emb = policy.model.get_input_embeddings().weight.numel()
    P_body = P_all - emb
    P_train = sum(p.numel() for p in params)
    ids, _ = policy._prompt_batch(torch.arange(task.num_prompts))
    B, n, L = args.prompts, args.group, policy.max_new_tokens
    T = B * n * (ids.shape[1] + L)  # tokens through the network in the teacher-forced pass (upper bound on P)
    resp = B * n * L
    flops_tf = 2 * P_body * T + 2 * emb * resp  # forward: body on every token, LM head on response positions
    # no weight grad of head
    flops_bw = 2 * flops_tf if args.trainable == "all" else 2 * flops_tf - 2 * emb * resp
    floor_s = (flops_tf + flops_bw) / r["flops32"]
    print(f"model {path}: {P_all / 1e6:.0f}M parameters ({P_body / 1e6:.0f}M outside the embedding), "
          f"weights {weights / 2**20:.0f} MiB; trainable {P_train / 1e6:.0f}M ({args.trainable})")
    print(f"step: {B} prompts × {n} responses, prompt {ids.shape[1]} tokens, ≤ {L} response tokens, "
          f"reward={args.reward}, {torch.get_num_threads()} thread(s)")
    print(f"one PG step: {total:.2f} s")
    for k, v in phases.items():
        print(f"  {k:28s} {v / args.steps:7.2f} s")
    print(f"  {'rest (loss, backward, clip)':28s} {total - sum(phases.values()) / args.steps:7.2f} s")
    if peak_ok:
        print(
            f"memory: resident {rss_before / 2**20:.0f} MiB before the step (base + policy + Adam state), "
            f"peak {peak / 2**20:.0f} MiB during it (+{(peak - rss_before) / 2**20:.0f} MiB of activations)"
        )
    print(
        f"floor: {floor_s:.2f} s of float32 matmul for the teacher-forced forward+backward ({describe(r)}); "
        f"measured step / floor = {total / floor_s:.1f}×"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
