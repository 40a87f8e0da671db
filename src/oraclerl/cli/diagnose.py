"""``oraclerl diagnose``: pass@k, the empirical likelihood quantile and coverage of a real base model.

    oraclerl diagnose --model DIR|FILE.gguf --data FILE.jsonl [--preset paper] [--samples 64] [--out DIR]
                      [--temperature T --top-p P --top-k K --max-new-tokens N --stop '\\n' ...]
                      [--match exact|contains|first-line|last-number|regex:PATTERN|module:function]
                      [--chat-template] [--seed S] [--device cpu|cuda] [--restart]

For each problem (a JSONL line with a prompt and an answer) it draws k = ``--samples`` completions through a
``WeakSampler`` over :class:`~oraclerl.models.hf.causal_lm.CausalLM`, verifies them with the ``--match``
answer extraction of :mod:`oraclerl.models.hf.answers` through a ``RewardOracle`` (every call counted), and
writes into ``--out``

* ``completions.jsonl``: every completion (problem, sample, text, correct, truncated), appended per batch;
* ``progress.jsonl`` and ``settings.json``: what is done, under which settings. A rerun with the same
  settings resumes after the last finished batch (each batch has its own seed, so a resumed run gives the
  same completions as an uninterrupted one); different settings are an error unless ``--restart``;
* ``problems.csv``: per problem, the number of correct samples c and q̂ = c/k;
* ``summary.json`` and ``summary.md``: pass@k for k = 1, 2, 4, …, k (unbiased estimator, Chen et al. 2021),
  the empirical likelihood quantile Q̂(ε) (resolution 1/k; as Mousavi-Hosseini & Erdogdu 2026 do for Qwen3
  on MATH-500, §5.6 of the notes), the coverage P(c ≥ 1) = pass@k, the truncation rate and the oracle counts;
* ``diagnose.png``: the pass@k curve and the quantile function ε ↦ Q̂(ε).

Summary files are written atomically (temporary file + rename). A warning goes to stderr (and into
``summary.json``) when most completions were cut at ``--max-new-tokens`` or no completion matched.

Settings: ``--preset paper`` is the paper's sampling (temperature 0.7, top-p 0.95, top-k 50, 64 samples);
flags given explicitly override it. ``--stop`` takes escapes as typed in a shell (``--stop '\\n'`` is a
newline). A response ends at the tokenizer's EOS, at every id of ``generation_config.eos_token_id`` and at a
stop string. ``--chat-template`` wraps each prompt as a user turn with the tokenizer's chat template
(instruct models). All of this, the device and the output directory are checked before the model loads;
a bad model or data file is one line naming it (exit 2).

``transformers`` is imported only when the command runs, so the core CLI works without the ``[hf]`` extra.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from ..errors import ConfigError

#: Sampling presets; ``paper`` is the setting of Mousavi-Hosseini & Erdogdu (2026, §6) for Qwen3 on MATH-500.
PRESETS = {"paper": {"temperature": 0.7, "top_p": 0.95, "top_k": 50, "samples": 64}}
DEFAULTS = {"temperature": 1.0, "top_p": 1.0, "top_k": 0, "samples": 64}


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "diagnose", help="pass@k, likelihood quantile and coverage of a local causal LM"
    )
    p.add_argument("--model", required=True, help="local transformers directory, or a .gguf file")
    p.add_argument("--data", required=True, help="JSONL file (UTF-8), one problem per line")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None,
                   help="paper: temperature 0.7, top-p 0.95, top-k 50, 64 samples (explicit flags override)")
    p.add_argument("--samples", type=int, default=None, help="completions per problem k (default 64)")
    p.add_argument("--out", default="diagnose", help="output directory (default: diagnose/)")
    p.add_argument("--prompt-key", default="prompt", help="JSON key of the prompt (default: prompt)")
    p.add_argument("--answer-key", default="answer", help="JSON key of the answer (default: answer)")
    p.add_argument(
        "--match",
        default="exact",
        metavar="KIND",
        help="answer extraction: exact (default), contains, first-line, last-number, regex:PATTERN "
        "or module:function (imported by name, never from the working directory)",
    )
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=None, help="default 1.0")
    p.add_argument("--top-p", type=float, default=None, help="default 1.0 (off)")
    p.add_argument("--top-k", type=int, default=None, help="default 0 (off)")
    p.add_argument("--stop", action="append", default=None, metavar="STR",
                   help=r"stop string, escapes as typed: '\n' is a newline (repeatable)")
    p.add_argument(
        "--chat-template", action="store_true", help="wrap prompts with the tokenizer's chat template"
    )
    p.add_argument("--batch", type=int, default=8, help="problems per sampling call (memory knob)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--pad-eos", action="store_true", help="pad with EOS when the tokenizer has no pad token")
    p.add_argument(
        "--restart", action="store_true", help="discard a previous run in --out instead of resuming"
    )
    p.set_defaults(func=run_diagnose)


# -- input checks (all before the model loads) -----------------------------------------------------------
def parse_escapes(text: str) -> str:
    r"""A string as typed in a shell with backslash escapes (``\n``, ``\t``, ``\\``, ``\u00e9``) decoded."""
    if "\\" not in text:
        return text
    try:
        return text.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError as exc:
        raise ConfigError("--stop", f"{text!r} has an invalid escape ({exc.reason})") from None


def check_device(device: str | None):
    """A usable torch device for ``--device`` (None = auto, chosen when the model loads), or a ConfigError."""
    from ..common.device import resolve_device

    return None if device is None else resolve_device(device, field="--device")


def resolve_settings(args) -> dict:
    """Every sampling / output setting, validated, with the preset applied (explicit flags win)."""
    from ..common.validation import check_int, check_output_dir, check_positive, check_range
    from ..models.hf.answers import make_matcher

    preset = PRESETS.get(args.preset, {})
    pick = {
        k: (getattr(args, k) if getattr(args, k) is not None else preset.get(k, DEFAULTS[k]))
        for k in DEFAULTS
    }
    check_int("--samples", pick["samples"], low=1, high=1 << 20)
    check_positive("--temperature", pick["temperature"])
    check_range("--top-p", pick["top_p"], 0.0, 1.0, low_open=True)
    check_int("--top-k", pick["top_k"], low=0)
    check_int("--max-new-tokens", args.max_new_tokens, low=1, high=1 << 16)
    check_int("--batch", args.batch, low=1)
    check_int("--seed", args.seed, low=0, high=(1 << 63) - 1)
    stops = [parse_escapes(s) for s in (args.stop or ())]
    if any(not s for s in stops):
        raise ConfigError("--stop", "stop strings must be non-empty")
    make_matcher(args.match)  # validates (and imports a module:function) now
    check_output_dir("--out", args.out)
    check_device(args.device)
    return {**pick, "max_new_tokens": args.max_new_tokens, "stop": stops, "match": args.match,
            "batch": args.batch, "seed": args.seed, "chat_template": bool(args.chat_template),
            "prompt_key": args.prompt_key, "answer_key": args.answer_key, "pad_eos": bool(args.pad_eos)}


def read_problems(
    path, prompt_key: str = "prompt", answer_key: str = "answer"
) -> tuple[list[str], list[str]]:
    """Prompts and answers from a UTF-8 JSONL file; a malformed line is a ConfigError naming the line."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("--data", f"file {str(p)!r} does not exist")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        line = p.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigError("--data", f"{str(p)!r} is not UTF-8 text (byte {exc.start}, line {line})") from None
    except OSError as exc:
        raise ConfigError("--data", f"{str(p)!r} cannot be read ({exc.strerror})") from None
    prompts, answers = [], []
    for i, line in enumerate(text.splitlines(), start=1):
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


# -- sampling and summary --------------------------------------------------------------------------------
def powers_of_two(k: int) -> list[int]:
    out, v = [], 1
    while v < k:
        out.append(v)
        v *= 2
    return out + [k]


def batch_seed(seed: int, start: int) -> int:
    """The seed of the batch that starts at problem ``start`` (independent of how many batches ran before)."""
    import numpy as np

    return int(np.random.SeedSequence([seed, start]).generate_state(2, np.uint64)[0] >> 1)


def sample_batches(lm, answers: list[str], samples: int, match: str = "exact", batch: int = 8, *,
                   generator=None, seed: int = 0, skip: int = 0, ledger=None):
    """Yield one record per batch of problems: ``(ids, correct [b, k] bool, texts [b][k], truncated [b, k])``.

    Sampling goes through a ``WeakSampler`` (T_comp) and checking through a ``RewardOracle`` (T_data) on
    ``ledger``. With ``generator`` the batches draw from it in turn; without, the batch starting at problem s
    uses :func:`batch_seed` ``(seed, s)`` (what makes a resumed run equal an uninterrupted one). Problems
    before ``skip`` (a multiple of ``batch``) are not sampled.
    """
    import torch

    from ..models.hf.rewards import TRLReward, answer_match
    from ..oracles import Ledger, RewardOracle, WeakSampler

    ledger = ledger if ledger is not None else Ledger()
    weak = WeakSampler(lm, ledger, reveal=())
    reward = RewardOracle(
        TRLReward(lm, answer_match(match), dataset_columns={"answer": answers}, r_max=1.0), ledger
    )
    for s in range(skip, lm.num_prompts, batch):
        x = torch.arange(s, min(s + batch, lm.num_prompts))
        gen = generator if generator is not None else torch.Generator().manual_seed(batch_seed(seed, s))
        y = weak.sample(x, samples, gen).responses
        correct = (reward.outcome(x, y, gen).cpu() >= 0.5)
        truncated = ~lm.response_lengths(y)[1].cpu()
        yield x.tolist(), correct, lm.decode(y), truncated


def summarize(correct, samples: int, match: str, truncated_fraction: float, ledger: dict) -> dict:
    """pass@k, Q̂(ε), coverage and warnings from per-problem correctness ``correct`` [P, k] (bool)."""
    import torch

    from ..diagnostics.likelihood_quantile import empirical_likelihood_quantile
    from ..diagnostics.pass_at_k import pass_at_k_from_samples

    correct = torch.as_tensor(correct, dtype=torch.bool)
    ks = powers_of_two(samples)
    eps = [i / 20 for i in range(20)]
    pak = pass_at_k_from_samples(correct, ks)
    lq = empirical_likelihood_quantile(correct, torch.tensor(eps, dtype=torch.float64))
    warnings = []
    if truncated_fraction > 0.5:
        warnings.append(f"{100 * truncated_fraction:.0f}% of completions were cut at --max-new-tokens before "
                        "ending: raise --max-new-tokens or add a --stop string (e.g. --stop '\\n')")
    if not bool(correct.any()):
        warnings.append(
            f"no completion matched any answer with --match {match}: look at completions.jsonl and "
            "choose the answer extraction (first-line, last-number, regex:...)"
        )
    return {
        "problems": int(correct.shape[0]),
        "samples": samples,
        "match": match,
        "correct": correct.sum(1).tolist(),
        "accuracy": float(correct.double().mean()),
        "pass_at_k": {str(k): float(v) for k, v in zip(ks, pak)},
        "likelihood_quantile": {f"{e:g}": float(v) for e, v in zip(eps, lq)},
        "coverage": float(correct.any(1).double().mean()),
        "truncated_fraction": float(truncated_fraction),
        "warnings": warnings,
        "ledger": ledger,
    }


def diagnose(lm, answers: list[str], samples: int, match: str = "exact", batch: int = 8, generator=None,
             seed: int = 0) -> dict:
    """Sample ``samples`` completions per prompt of ``lm`` through the oracles and summarise (in memory)."""
    import torch

    from ..oracles import Ledger

    ledger = Ledger()
    rows = list(
        sample_batches(lm, answers, samples, match, batch, generator=generator, seed=seed, ledger=ledger)
    )
    correct = torch.cat([r[1] for r in rows])
    truncated = torch.cat([r[3] for r in rows])
    return summarize(correct, samples, match, float(truncated.double().mean()), ledger.snapshot())


# -- the command -----------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _resume(out: Path, settings: dict, restart: bool) -> list[dict]:
    """Finished-problem records of a previous run in ``out`` with the same settings ([] when none)."""
    from ..runtime.run.store import atomic_write_text

    prev_file, prog = out / "settings.json", out / "progress.jsonl"
    done = []
    if prev_file.is_file() and not restart:
        try:
            prev = json.loads(prev_file.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError, OSError):
            prev = None
        if prev != settings:
            diff = sorted(
                k for k in set(settings) | set(prev or {}) if (prev or {}).get(k) != settings.get(k)
            )
            raise ConfigError(
                "--out",
                f"{str(out)!r} holds a diagnose run with other settings ({', '.join(diff)} "
                "differ): use another --out, or --restart to discard it",
            )
        if prog.is_file():
            for line in prog.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    break  # a line cut by an interruption: everything after it is redone
                if not isinstance(rec, dict) or rec.get("problem") != len(done):
                    break
                done.append(rec)
    done = done[: len(done) - len(done) % settings["batch"]] if len(done) < settings["problems"] else done
    keep = {r["problem"] for r in done}
    comp = out / "completions.jsonl"
    kept = []
    if comp.is_file() and done:
        for line in comp.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                if json.loads(line).get("problem") in keep:
                    kept.append(line)
            except (ValueError, AttributeError):
                continue
    atomic_write_text(comp, "".join(ln + "\n" for ln in kept))
    atomic_write_text(prog, "".join(json.dumps(r) + "\n" for r in done))
    atomic_write_text(prev_file, json.dumps(settings, indent=2) + "\n")
    return done


def _progress(total: int, done: int):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    bar = Progress(TextColumn("diagnose"), BarColumn(), MofNCompleteColumn(), TextColumn("problems"),
                   TimeRemainingColumn(), console=console, transient=True, disable=not console.is_terminal)
    task = bar.add_task("problems", total=total, completed=done)
    return bar, task


def _write_outputs(out: Path, summary: dict, model: str) -> list[Path]:
    import os
    import tempfile

    from ..runtime.run.store import atomic_write_text

    k = summary["samples"]
    atomic_write_text(out / "problems.csv", "\n".join(
        ["id,correct,accuracy"] + [f"{i},{c},{c / k:.6g}" for i, c in enumerate(summary["correct"])]) + "\n")
    atomic_write_text(
        out / "summary.json",
        json.dumps({kk: v for kk, v in summary.items() if kk != "correct"}, indent=2) + "\n",
    )
    atomic_write_text(out / "summary.md", "\n".join(summary_markdown(summary, model)) + "\n")
    fd, tmp = tempfile.mkstemp(prefix=".diagnose-", suffix=".png", dir=out)
    os.close(fd)
    try:
        _plot(summary, Path(tmp))
        os.replace(tmp, out / "diagnose.png")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return [
        out / n for n in ("summary.md", "summary.json", "problems.csv", "completions.jsonl", "diagnose.png")
    ]


def summary_markdown(summary: dict, model: str) -> list[str]:
    md = [f"# diagnose: {model}", "", f"{summary['problems']} problems × {summary['samples']} samples, "
          f"match={summary['match']}; accuracy {summary['accuracy']:.4f}; coverage P(c ≥ 1) "
          f"{summary['coverage']:.4f}; truncated {100 * summary['truncated_fraction']:.1f}%", ""]
    md += [f"**WARNING**: {w}" for w in summary["warnings"]] + ([""] if summary["warnings"] else [])
    md += ["| k | pass@k |", "|---|---|"] + [f"| {k} | {v:.4f} |" for k, v in summary["pass_at_k"].items()]
    md += ["", "| ε | Q̂(ε) |", "|---|---|"] + [
        f"| {e} | {v:.4f} |" for e, v in summary["likelihood_quantile"].items()
    ]
    return md


def _plot(summary: dict, path: Path) -> None:
    from ..runtime.reporting.figures import pyplot, save_figure

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


def _chat_prompts(tok, prompts: list[str], model: str) -> list[str]:
    if not getattr(tok, "chat_template", None):
        raise ConfigError(
            "--chat-template", f"the tokenizer of {model!r} has no chat template (a base model?)"
        )
    return [
        tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
        for p in prompts
    ]


def run_diagnose(args) -> int:
    try:
        import torch  # noqa: F401

        from ..models.hf.causal_lm import CausalLM
        from ..models.hf.loading import check_model_dir, load_pretrained
    except ModuleNotFoundError as exc:  # pragma: no cover - only without the [hf] extra
        raise ConfigError(
            "--model", f"oraclerl diagnose needs the [hf] extra ({exc.name} is missing)"
        ) from None
    settings = resolve_settings(args)
    model_path = check_model_dir(args.model)
    data = Path(args.data)
    prompts, answers = read_problems(data, args.prompt_key, args.answer_key)
    settings.update(model=str(model_path.resolve()), data=str(data.resolve()), data_sha256=_sha256(data),
                    problems=len(prompts))
    model, tok = load_pretrained(model_path)
    if settings["chat_template"]:
        prompts = _chat_prompts(tok, prompts, args.model)
    lm = CausalLM(model, tok, prompts, max_new_tokens=settings["max_new_tokens"],
                  temperature=settings["temperature"], top_p=settings["top_p"], top_k=settings["top_k"],
                  stop_strings=tuple(settings["stop"]), device=check_device(args.device),
                  pad_token="eos" if settings["pad_eos"] else None,
                  add_special_tokens=not settings["chat_template"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    done = _resume(out, settings, args.restart)
    if done:
        print(f"resuming: {len(done)} of {len(prompts)} problems already done in {out}", file=sys.stderr)
    from ..oracles import Ledger

    ledger, k = Ledger(), settings["samples"]
    bar, task = _progress(len(prompts), len(done))
    with bar, open(out / "completions.jsonl", "a", encoding="utf-8") as comp, \
            open(out / "progress.jsonl", "a", encoding="utf-8") as prog:
        for ids, correct, texts, trunc in sample_batches(
            lm,
            answers,
            k,
            settings["match"],
            settings["batch"],
            seed=settings["seed"],
            skip=len(done),
            ledger=ledger,
        ):
            recs = []
            for b, i in enumerate(ids):
                for j in range(k):
                    comp.write(
                        json.dumps(
                            {
                                "problem": i,
                                "sample": j,
                                "completion": texts[b][j],
                                "correct": bool(correct[b, j]),
                                "truncated": bool(trunc[b, j]),
                            }
                        )
                        + "\n"
                    )
                recs.append(
                    {"problem": i, "correct": correct[b].int().tolist(), "truncated": int(trunc[b].sum())}
                )
            comp.flush()
            prog.write("".join(json.dumps(r) + "\n" for r in recs))
            prog.flush()
            done += recs
            bar.advance(task, len(ids))
    correct = [r["correct"] for r in done]
    trunc_frac = sum(r["truncated"] for r in done) / (len(done) * k)
    summary = summarize(
        correct,
        k,
        settings["match"],
        trunc_frac,
        {**ledger.snapshot(), "resumed_problems": len(done) - ledger.snapshot().get("t_comp", 0) // k},
    )
    written = _write_outputs(out, summary, args.model)
    md = summary_markdown(summary, args.model)
    print("\n".join(md[2:md.index("| ε | Q̂(ε) |") - 1]))
    for w in summary["warnings"]:
        print(f"oraclerl: WARNING: {w}", file=sys.stderr)
    print("written: " + ", ".join(str(p) for p in written))
    return 0
