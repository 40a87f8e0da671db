"""``oraclerl diagnose``: pass@k, the empirical likelihood quantile and coverage of a real base model.

    oraclerl diagnose --model DIR --data FILE.jsonl --samples 64 [--out DIR] [--temperature 0.7 --top-p 0.95
                      --top-k 50 --max-new-tokens 64 --stop STR --match exact|contains|number]

For each problem (a JSONL line with a prompt and an answer) it draws k = ``--samples`` completions through a
``WeakSampler`` over :class:`~oraclerl.models.hf.causal_lm.CausalLM`, verifies them with a TRL-signature
answer checker through a ``RewardOracle`` (every call counted), and writes

* ``problems.csv``: per problem, the number of correct samples c and q̂ = c/k;
* ``summary.json`` and ``summary.md``: pass@k for k = 1, 2, 4, …, k (unbiased estimator, Chen et al. 2021),
  the empirical likelihood quantile Q̂(ε) from k samples per problem (resolution 1/k; as Mousavi-Hosseini &
  Erdogdu 2026 do for Qwen3 on MATH-500, §5.6 of the notes), the coverage estimate P(c ≥ 1) = pass@k and the
  oracle counts;
* ``diagnose.png``: the pass@k curve and the quantile function ε ↦ Q̂(ε).

``transformers`` is imported only when the command runs, so the core CLI works without the ``[hf]`` extra.
"""

from __future__ import annotations

import json
from pathlib import Path

from ...errors import ConfigError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("diagnose", help="pass@k, likelihood quantile and coverage of a local causal LM")
    p.add_argument("--model", required=True, help="local directory of a saved transformers model + tokenizer")
    p.add_argument("--data", required=True, help="JSONL file, one problem per line")
    p.add_argument("--samples", type=int, default=64, help="completions per problem k (default 64)")
    p.add_argument("--out", default="diagnose", help="output directory (default: diagnose/)")
    p.add_argument("--prompt-key", default="prompt", help="JSON key of the prompt (default: prompt)")
    p.add_argument("--answer-key", default="answer", help="JSON key of the answer (default: answer)")
    p.add_argument("--match", default="exact", choices=("exact", "contains", "number"),
                   help="how a completion is checked against the answer (default: exact, after strip)")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--stop", action="append", default=None, metavar="STR", help="stop string (repeatable)")
    p.add_argument("--batch", type=int, default=8, help="problems per sampling call (memory knob)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--pad-eos", action="store_true", help="pad with EOS when the tokenizer has no pad token")
    p.set_defaults(func=run_diagnose)


def read_problems(path, prompt_key: str = "prompt", answer_key: str = "answer") -> tuple[list[str], list[str]]:
    """Prompts and answers from a JSONL file; a malformed line is a ConfigError naming the line."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("--data", f"file {str(p)!r} does not exist")
    prompts, answers = [], []
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError("--data", f"line {i} of {p.name} is not JSON ({exc.msg})") from None
        if not isinstance(row, dict) or prompt_key not in row or answer_key not in row:
            raise ConfigError("--data", f"line {i} of {p.name} needs keys {prompt_key!r} and {answer_key!r}")
        prompts.append(str(row[prompt_key]))
        answers.append(str(row[answer_key]))
    if not prompts:
        raise ConfigError("--data", f"{p.name} has no problems")
    return prompts, answers


def powers_of_two(k: int) -> list[int]:
    out, v = [], 1
    while v < k:
        out.append(v)
        v *= 2
    return out + [k]


def diagnose(lm, answers: list[str], samples: int, match: str = "exact", batch: int = 8, generator=None) -> dict:
    """Sample ``samples`` completions per prompt of ``lm`` through the oracles and summarise (see module doc)."""
    import torch

    from ...diagnostics.likelihood_quantile import empirical_likelihood_quantile
    from ...diagnostics.pass_at_k import pass_at_k_from_samples
    from ...oracles import Ledger, RewardOracle, WeakSampler
    from .rewards import TRLReward, answer_match

    ledger = Ledger()
    weak = WeakSampler(lm, ledger, reveal=())
    reward = RewardOracle(TRLReward(lm, answer_match(match), dataset_columns={"answer": answers}, r_max=1.0), ledger)
    correct = []
    for s in range(0, lm.num_prompts, batch):
        x = torch.arange(s, min(s + batch, lm.num_prompts))
        y = weak.sample(x, samples, generator).responses
        correct.append(reward.outcome(x, y, generator).cpu() >= 0.5)
    correct = torch.cat(correct)  # [P, k]
    ks = powers_of_two(samples)
    eps = [i / 20 for i in range(20)]
    pak = pass_at_k_from_samples(correct, ks)
    lq = empirical_likelihood_quantile(correct, torch.tensor(eps, dtype=torch.float64))
    return {"problems": lm.num_prompts, "samples": samples, "match": match,
            "correct": correct.sum(1).tolist(), "accuracy": float(correct.double().mean()),
            "pass_at_k": {str(k): float(v) for k, v in zip(ks, pak)},
            "likelihood_quantile": {f"{e:g}": float(v) for e, v in zip(eps, lq)},
            "coverage": float(correct.any(1).double().mean()), "ledger": ledger.snapshot()}


def _plot(summary: dict, path: Path) -> None:
    from ...runtime.plotting import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    ks = [int(k) for k in summary["pass_at_k"]]
    axes[0].plot(ks, list(summary["pass_at_k"].values()), marker="o")
    axes[0].set_xscale("log", base=2)
    axes[0].set_xlabel("k")
    axes[0].set_ylabel("pass@k (unbiased)")
    eps = [float(e) for e in summary["likelihood_quantile"]]
    axes[1].step(eps, list(summary["likelihood_quantile"].values()), where="post")
    axes[1].set_xlabel("ε")
    axes[1].set_ylabel(f"empirical LQ Q̂(ε) (resolution 1/{summary['samples']})")
    fig.suptitle(f"{summary['problems']} problems, {summary['samples']} samples each")
    save_figure(fig, path.parent, path.name)


def run_diagnose(args) -> int:
    if args.samples < 1:
        raise ConfigError("--samples", f"must be >= 1, got {args.samples}")
    if args.batch < 1:
        raise ConfigError("--batch", f"must be >= 1, got {args.batch}")
    if not Path(args.model).is_dir():
        raise ConfigError("--model", f"directory {args.model!r} does not exist (nothing is downloaded)")
    prompts, answers = read_problems(args.data, args.prompt_key, args.answer_key)
    try:
        import torch

        from .causal_lm import CausalLM
    except ModuleNotFoundError as exc:  # pragma: no cover - only without the [hf] extra
        raise ConfigError("--model", f"oraclerl diagnose needs the [hf] extra ({exc.name} is missing)") from None
    lm = CausalLM.from_pretrained(args.model, prompts, max_new_tokens=args.max_new_tokens,
                                  temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
                                  stop_strings=tuple(args.stop or ()), device=args.device,
                                  pad_token="eos" if args.pad_eos else None)
    gen = torch.Generator().manual_seed(args.seed)
    summary = diagnose(lm, answers, args.samples, args.match, args.batch, gen)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = ["id,correct,accuracy"] + [f"{i},{c},{c / args.samples:.6g}" for i, c in enumerate(summary["correct"])]
    (out / "problems.csv").write_text("\n".join(lines) + "\n")
    (out / "summary.json").write_text(json.dumps({k: v for k, v in summary.items() if k != "correct"}, indent=2))
    md = [f"# diagnose: {args.model}", "", f"{summary['problems']} problems × {args.samples} samples, "
          f"match={args.match}; accuracy {summary['accuracy']:.4f}; coverage P(c ≥ 1) {summary['coverage']:.4f}", "",
          "| k | pass@k |", "|---|---|"] + [f"| {k} | {v:.4f} |" for k, v in summary["pass_at_k"].items()]
    md += ["", "| ε | Q̂(ε) |", "|---|---|"] + [f"| {e} | {v:.4f} |" for e, v in summary["likelihood_quantile"].items()]
    (out / "summary.md").write_text("\n".join(md) + "\n")
    _plot(summary, out / "diagnose.png")
    print("\n".join(md[2:7 + len(summary["pass_at_k"])]))
    print(f"written: {out / 'summary.md'}, {out / 'problems.csv'}, {out / 'diagnose.png'}")
    return 0
