"""Multi-seed sweeps, the tables: running a :class:`~oraclerl.runtime.execution.sweep.SweepPlan` and
aggregating it.

A sweep is a grid of configs (the cartesian product of the ``--set`` values) times a list of seeds. It is
planned and validated completely before anything runs (unknown key, out-of-range value: one-line
:class:`~oraclerl.errors.ConfigError`), executed resumably by
:func:`~oraclerl.runtime.execution.engine.execute_runs` on any executor, and aggregated into one table:

* ``runs.csv`` (+ ``runs.parquet`` when pyarrow is installed): one row per (grid point, seed) with the
  swept parameters and the run's scalar metrics (``Experiment.summary`` or :func:`flatten_metrics`);
* ``summary.csv`` (+ parquet): one row per (grid point, metric) with the mean and the 95% Student-t
  interval over seeds;
* ``claims.csv``: the experiment's claims at each grid point; ``figures/``: metric-vs-parameter plots
  and the experiment's own figure per point; ``sweep.md``: all of it readable.

The tables hold no timings, so a sweep's tables are identical whatever the executor and however often
it was interrupted and resumed.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..execution.engine import ExecutionSummary, Listener, execute_runs
from ..execution.sweep import SweepPlan
from ..run.registry import Experiment
from ..run.store import RunStore, atomic_write_text
from .figures import pyplot, save_figure
from .report import verdict
from .stats import mean_ci


# ----------------------------------------------------------------------------------------- aggregation
def flatten_metrics(result: Any, prefix: str = "", max_list: int = 64) -> dict[str, float]:
    """Numeric leaves of a JSON result as {"a/b/0/c": value}; strings, long lists and timings are skipped."""
    out: dict[str, float] = {}
    if isinstance(result, dict):
        for k, v in result.items():
            if not prefix and k == "elapsed_s":
                continue
            out.update(flatten_metrics(v, f"{prefix}{k}/", max_list))
    elif isinstance(result, (list, tuple)):
        if len(result) <= max_list:
            for i, v in enumerate(result):
                out.update(flatten_metrics(v, f"{prefix}{i}/", max_list))
    elif isinstance(result, bool):
        out[prefix[:-1]] = float(result)
    elif isinstance(result, (int, float)):
        out[prefix[:-1]] = float(result)
    elif isinstance(result, str) and result in ("nan", "inf", "-inf") and prefix:
        out[prefix[:-1]] = float(result)
    return out


def _metrics(exp: Experiment, result: dict) -> dict[str, float]:
    if exp.summary is not None:
        return {k: float(v) for k, v in exp.summary(result).items()}
    return flatten_metrics(result)


def _cell(v: Any) -> Any:
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v)
    return v


def aggregate(plan: SweepPlan, summary: ExecutionSummary) -> tuple[list[dict], list[dict]]:
    """(runs rows, interval rows) from the finished runs, sorted by (point, seed) and (point, metric)."""
    runs: list[dict] = []
    per_point: dict[int, list[dict]] = {}
    for rec in sorted(summary.records, key=lambda r: (r.spec.point, r.spec.seed)):
        if rec.result is None:
            continue
        m = _metrics(plan.experiment, rec.result)
        per_point.setdefault(rec.spec.point, []).append(m)
        runs.append({"point": rec.spec.point, **{k: _cell(v) for k, v in plan.params(rec.spec.point).items()},
                     "seed": rec.spec.seed, **dict(sorted(m.items()))})
    intervals: list[dict] = []
    for point in sorted(per_point):
        rows = per_point[point]
        for metric in sorted({k for r in rows for k in r}):
            vals = [r[metric] for r in rows if metric in r]
            finite = [v for v in vals if math.isfinite(v)]
            mean, lo, hi = mean_ci(finite)
            intervals.append({"point": point, **{k: _cell(v) for k, v in plan.params(point).items()},
                              "metric": metric, "n": len(finite), "mean": mean, "ci_low": lo, "ci_high": hi})
    return runs, intervals


def _columns(rows: list[dict]) -> list[str]:
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    return cols


def write_table(rows: list[dict], path_stem: Path) -> list[Path]:
    """Write ``<stem>.csv`` (always) and ``<stem>.parquet`` (when pyarrow is installed), atomically."""
    cols = _columns(rows)
    rows = [{k: _cell(v) for k, v in r.items()} for r in rows]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow(
            ["" if r.get(c) is None else repr(r[c]) if isinstance(r.get(c), float) else r[c] for c in cols]
        )
    out = [path_stem.with_suffix(".csv")]
    atomic_write_text(out[0], buf.getvalue())
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return out
    table = pa.table({c: [r.get(c) for r in rows] for c in cols}) if rows else pa.table({})
    pq_path = path_stem.with_suffix(".parquet")
    tmp = pq_path.with_name(f".{pq_path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, pq_path)
    return out + [pq_path]


def plot_sweep(plan: SweepPlan, intervals: list[dict], outdir: Path, max_metrics: int = 6) -> list[Path]:
    """Mean ± 95% interval of the metrics that vary, against the first numeric swept parameter."""
    if not intervals:
        return []
    plt = pyplot()
    by_metric: dict[str, list[dict]] = {}
    for r in intervals:
        by_metric.setdefault(r["metric"], []).append(r)
    varying = [m for m, rows in by_metric.items() if len({round(r["mean"], 12) for r in rows}) > 1
               or len(plan.configs) == 1]
    metrics = sorted(varying, key=lambda m: ("/" not in m, m))[:max_metrics]
    if not metrics:
        return []
    numeric = [
        k
        for k in plan.keys
        if all(
            isinstance(plan.params(p)[k], (int, float)) and not isinstance(plan.params(p)[k], bool)
            for p in range(len(plan.configs))
        )
        and len({plan.params(p)[k] for p in range(len(plan.configs))}) > 1
    ]
    xkey = numeric[0] if numeric else None
    ncol = min(3, len(metrics))
    nrow = math.ceil(len(metrics) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.3 * nrow), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        rows = by_metric[metric]
        groups: dict[str, list[dict]] = {}
        for r in rows:
            label = ", ".join(f"{k}={r[k]}" for k in plan.keys if k != xkey)
            groups.setdefault(label, []).append(r)
        for label, g in groups.items():
            g = sorted(g, key=lambda r: r[xkey] if xkey else r["point"])
            x = [r[xkey] if xkey else r["point"] for r in g]
            y = [r["mean"] for r in g]
            err = [[r["mean"] - r["ci_low"] for r in g], [r["ci_high"] - r["mean"] for r in g]]
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=label or None)
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel(xkey or "grid point")
        if any(lbl for lbl in groups) and len(groups) <= 8:
            ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    fig.suptitle(f"{plan.experiment.name}: mean ± 95% interval over {len(plan.seeds)} seeds", fontsize=10)
    outdir.mkdir(parents=True, exist_ok=True)
    return [save_figure(fig, outdir, f"sweep_{xkey or 'points'}.png", dpi=100)]


@dataclass
class SweepOutcome:
    """What :func:`run_sweep` produced."""

    plan: SweepPlan
    summary: ExecutionSummary
    out: Path
    runs: list[dict]
    intervals: list[dict]
    claims: list[dict]
    tables: list[Path]
    figures: list[Path]
    errors: list[str]

    @property
    def ok(self) -> bool:
        return not self.summary.failed and not self.errors


def _point_claims(
    plan: SweepPlan, summary: ExecutionSummary, figdir: Path
) -> tuple[list[dict], list[Path], list[str]]:
    exp = plan.experiment
    rows, figures, errors = [], [], []
    for p, cfg in enumerate(plan.configs):
        recs = [r for r in summary.records if r.spec.point == p]
        if any(r.result is None for r in recs):
            continue  # failed seeds are listed in sweep.md; claims need every seed
        results = [r.result for r in sorted(recs, key=lambda r: r.spec.seed)]
        params = {k: _cell(v) for k, v in plan.params(p).items()}
        try:
            for c in exp.claims(results, cfg):
                rows.append({"point": p, **params, "claim": c.claim, "measured": c.measured,
                             "verdict": verdict(c), "kind": c.kind, "source": c.source, "detail": c.detail})
            d = figdir / f"point{p}"
            d.mkdir(parents=True, exist_ok=True)
            figures += [Path(f) for f in exp.plot(results, cfg, d)]
        except Exception as exc:  # noqa: BLE001 - a broken claim/plot must not lose the tables
            errors.append(f"point {p}: {''.join(traceback.format_exception_only(type(exc), exc)).strip()}")
    return rows, figures, errors


def _md_table(rows: list[dict], cols: list[str]) -> list[str]:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v).replace("|", "\\|")

    return ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)] + \
        ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]


def _varying_metrics(intervals: list[dict]) -> set[str]:
    means: dict[str, set] = {}
    out = set()
    for r in intervals:
        means.setdefault(r["metric"], set()).add(r["mean"])
        if r["ci_high"] != r["ci_low"] and not (math.isnan(r["ci_high"]) and math.isnan(r["ci_low"])):
            out.add(r["metric"])
    return out | {m for m, v in means.items() if len(v) > 1}


def run_sweep(plan: SweepPlan, store: RunStore, executor, out: Path | None = None, *, force: bool = False,
              log=(), listener: Listener | None = None, on_event=None) -> SweepOutcome:
    """Execute (resuming) and aggregate a sweep; writes tables, figures and ``sweep.md`` into ``out``."""
    exp = plan.experiment
    out = Path(out) if out is not None else store.root / "sweeps" / f"{exp.name}-{plan.key()}"
    summary = execute_runs(plan.specs(), store, executor, force=force, log=log, listener=listener,
                           on_event=on_event)
    runs, intervals = aggregate(plan, summary)
    out.mkdir(parents=True, exist_ok=True)
    tables = write_table(runs, out / "runs") + write_table(intervals, out / "summary")
    figures: list[Path] = []
    errors: list[str] = []
    try:
        figures += plot_sweep(plan, intervals, out / "figures")
    except Exception as exc:  # noqa: BLE001
        errors.append(f"sweep plot: {type(exc).__name__}: {exc}")
    claims, figs, errs = _point_claims(plan, summary, out / "figures")
    figures += figs
    errors += errs
    tables += write_table(claims, out / "claims")
    md = [f"# Sweep of `{exp.name}` ({plan.scale} scale)", "",
          f"{len(plan.configs)} grid point(s) × seeds {plan.seeds} on {executor.describe()}: "
          f"{len(summary.ran)} ran, {len(summary.reused)} re-used, {len(summary.failed)} failed.", ""]
    for r in summary.untrusted:
        md.append(
            f"- re-ran seed {r.spec.seed} of point {r.spec.point} ({r.run_dir.path.name}): {r.previous}"
        )
    for r in summary.failed:
        md.append(f"- **failed** seed {r.spec.seed} of point {r.spec.point}: `{r.error}`")
    for e in errors:
        md.append(f"- **error** {e}")
    md += ["", "## Mean ± 95% interval over seeds", "",
           "Metrics that vary across grid points or seeds (all metrics are in summary.csv).", ""]
    varying = _varying_metrics(intervals)
    md += _md_table([r for r in intervals if r["metric"] in varying][:300],
                    ["point", *plan.keys, "metric", "n", "mean", "ci_low", "ci_high"])
    if claims:
        md += ["", "## Claims per grid point", ""]
        md += _md_table(claims, ["point", *plan.keys, "claim", "measured", "verdict"])
    md += [""] + [f"![{f.name}]({f.resolve().relative_to(out.resolve()).as_posix()})" for f in figures] + [""]
    atomic_write_text(out / "sweep.md", "\n".join(md))
    return SweepOutcome(plan, summary, out, runs, intervals, claims, tables, figures, errors)
