"""One policy-gradient step of ours (``LMPolicyGradient.step``) vs one TRL ``GRPOTrainer`` step, on CPU.

    /tmp/trlvenv/bin/python benchmarks/bench_hf_trl.py [--prompts 8] [--group 8] [--max-new-tokens 32]
        [--n-layer 2] [--n-embd 64] [--warmup 2] [--repeats 7] [--rounds 3] [--threads 1]

TRL is not a dependency: in an environment without it (e.g. the project venv) the script prints
"TRL not installed: skipped" and exits 0. Install it in a separate venv (see docs/benchmarks/hf.md).

Both sides get the same randomly initialised tiny GPT-2 and character tokenizer (nothing is downloaded), the
prompts of the arithmetic task and the same TRL-signature outcome reward (exact match). One step = sample B
prompts × G completions (temperature 1, no top-k/top-p, EOS enabled, at most L new tokens), score them,
group-normalised advantages, token-level loss Σ A·log p / #tokens (TRL ``loss_type="dapo"``), backward,
gradient-norm clip at 1.0, one Adam(W) step. TRL: ``beta=0`` (no reference model), ``num_iterations=1``, no
vLLM, no gradient checkpointing, fp32, one generation per optimiser step. The reward function counts the
completions and tokens (through EOS) it is given, so both sides are checked to do the same amount of work.
Timings: median over ``rounds`` × ``repeats`` steps (each round a fresh policy/trainer and ``warmup`` steps;
ours and TRL alternate so a load spike does not hit one side only), 1 intra-op thread by default. A TRL step
is the time between consecutive optimiser steps (``on_step_end`` callbacks), so it includes the data loader.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
import warnings

import torch


class Counted:
    """A TRL-signature reward function that records how many completions and tokens each call scored."""

    def __init__(self, fn):
        self.fn, self.calls = fn, []
        self.__name__ = getattr(fn, "__name__", "reward")

    def __call__(self, prompts, completions, completion_ids=None, **kwargs):
        self.calls.append((len(completions), sum(len(c) for c in completion_ids)))
        return self.fn(prompts=prompts, completions=completions, **kwargs)


def build(args):
    from oraclerl.models.hf.tiny import tiny_causal_lm
    from oraclerl.problems.lm_tasks import arithmetic_task

    # enough distinct draws for TRL's epoch without reshuffling
    n = args.prompts * (args.warmup + args.repeats + 1)
    task = arithmetic_task(num_prompts=n, max_operand=99, ops="+-*", seed=0)
    lm = tiny_causal_lm(task.alphabet, task.prompts, n_layer=args.n_layer, n_embd=args.n_embd, n_head=4,
                        max_new_tokens=args.max_new_tokens, device="cpu", dtype=torch.float32,
                        # EOS is the only terminal token, as in TRL (an emitted <pad> is ordinary)
                        pad_token="eos")
    return task, lm


def bench_ours(args, task, lm, seed):
    from oraclerl.models.hf.rewards import trl_reward
    from oraclerl.oracles import Ledger, PromptSource, RewardOracle, WeakSampler
    from oraclerl.posttrain.lm_pg import LMPGConfig, LMPolicyGradient

    counted = Counted(task.outcome_fn())
    ledger = Ledger()
    reward = RewardOracle(trl_reward(lm, counted), ledger)
    prompts = PromptSource(task.weights, ledger)
    pg = LMPolicyGradient(
        LMPGConfig(
            batch_size=args.prompts,
            group_size=args.group,
            reward="outcome",
            advantage="group_normalised",
            optimizer="adam",
            lr=1e-3,
            max_grad_norm=1.0,
        )
    )
    policy = lm.trainable_copy()
    sampler = WeakSampler(policy, ledger, reveal=())
    opt = torch.optim.Adam(policy.model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    times = []
    for _ in range(args.warmup + args.repeats):
        t = time.perf_counter()
        pg.step(policy, sampler, reward, prompts, opt, gen)
        times.append(time.perf_counter() - t)
    return times[args.warmup:], counted.calls[args.warmup:]


def bench_trl(args, task, lm, seed):
    from datasets import Dataset
    from transformers import PrinterCallback, TrainerCallback
    from transformers.utils import logging as hf_logging
    from trl import GRPOConfig, GRPOTrainer

    class StepClock(TrainerCallback):
        def __init__(self):
            self.begin, self.ends, self.inner = None, [], []

        def on_step_begin(self, a, state, control, **kw):
            self.begin = time.perf_counter()

        def on_step_end(self, a, state, control, **kw):
            now = time.perf_counter()
            self.ends.append(now)
            self.inner.append(now - self.begin)

    # transformers 5 renames gradient -> activation ckpt
    warnings.filterwarnings("ignore", category=FutureWarning)
    hf_logging.set_verbosity_error()  # generate's decode steps warn about a missing attention mask
    counted = Counted(task.outcome_fn())
    steps = args.warmup + args.repeats
    with tempfile.TemporaryDirectory() as out:
        cfg = GRPOConfig(
            output_dir=out,
            use_cpu=True,
            report_to="none",
            logging_strategy="no",
            save_strategy="no",
            disable_tqdm=True,
            bf16=False,
            fp16=False,
            gradient_checkpointing=False,
            per_device_train_batch_size=args.prompts * args.group,
            gradient_accumulation_steps=1,
            num_generations=args.group,
            max_completion_length=args.max_new_tokens,
            temperature=1.0,
            top_p=1.0,
            top_k=0,
            beta=0.0,
            num_iterations=1,
            loss_type="dapo",
            scale_rewards="group",
            learning_rate=1e-3,
            lr_scheduler_type="constant",
            max_grad_norm=1.0,
            weight_decay=0.0,
            max_steps=steps,
            use_vllm=False,
            log_completions=False,
            seed=seed,
            dataloader_num_workers=0,
        )
        model = copy.deepcopy(lm.model)
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=counted,
            args=cfg,
            processing_class=lm.tokenizer,
            train_dataset=Dataset.from_dict({"prompt": task.prompts}),
            callbacks=[clock := StepClock()],
        )
        trainer.remove_callback(PrinterCallback)  # no log printing
        trainer.train()
        assert trainer.state.global_step == steps and not trainer.model.is_gradient_checkpointing
    # step time = time between consecutive optimiser steps (everything the trainer does per step)
    full = [b - a for a, b in zip(clock.ends[args.warmup - 1:], clock.ends[args.warmup:])]
    return full, clock.inner[args.warmup:], counted.calls[args.warmup:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=8, help="prompts per step B")
    ap.add_argument("--group", type=int, default=8, help="completions per prompt G")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--n-layer", type=int, default=2)
    ap.add_argument("--n-embd", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument(
        "--rounds", type=int, default=3, help="alternate ours/TRL this many times (load is noisy)"
    )
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    args.warmup = max(args.warmup, 1)
    try:
        import trl
    except ImportError:
        print("TRL not installed: skipped")
        return
    import transformers

    torch.set_num_threads(args.threads)
    task, lm = build(args)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}, "
          f"threads {args.threads}")
    print(
        f"GPT-2 {args.n_layer}L/{args.n_embd}d, |V|={len(lm.tokenizer)}, {args.prompts} prompts x "
        f"{args.group} completions, max_new_tokens {args.max_new_tokens}, median of {args.rounds} rounds x "
        f"{args.repeats} steps (each after {args.warmup} warm-up steps)"
    )
    t_ours, c_ours, t_trl, t_trl_inner, c_trl = [], [], [], [], []
    for seed in range(args.rounds):  # alternate, so that a load spike does not hit one side only
        t, c = bench_ours(args, task, lm, seed)
        t_ours += t
        c_ours += c
        t, ti, c = bench_trl(args, task, lm, seed)
        t_trl += t
        t_trl_inner += ti
        c_trl += c

    def row(name, times, calls):
        med = statistics.median(times)
        comp = statistics.mean(c for c, _ in calls)
        tok = statistics.mean(t for _, t in calls)
        print(f"{name:34s} {1000 * med:9.1f} {comp:12.0f} {tok:11.1f} {tok / med:9.0f}")
        return med, comp, tok

    print(f"{'step':34s} {'median ms':>9s} {'completions':>12s} {'tokens/step':>11s} {'tokens/s':>9s}")
    m_ours, comp_ours, tok_ours = row("ours: LMPolicyGradient.step", t_ours, c_ours)
    m_trl, comp_trl, tok_trl = row("TRL: GRPOTrainer step", t_trl, c_trl)
    row("TRL: on_step_begin -> on_step_end", t_trl_inner, c_trl)
    print(f"ratio TRL / ours (time per step): {m_trl / m_ours:.2f}; per generated token: "
          f"{(m_trl / tok_trl) / (m_ours / tok_ours):.2f}")
    if comp_ours != comp_trl:
        print(f"WARNING: different numbers of completions per step ({comp_ours} vs {comp_trl})")


if __name__ == "__main__":
    main()
