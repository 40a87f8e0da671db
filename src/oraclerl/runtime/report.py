"""The report: every registered experiment at a scale, several seeds, claims table and figures,
written as ``report/report.md`` and ``report/index.html``."""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from pathlib import Path

from .registry import PAPERS, Claim, Experiment
from .store import atomic_write_text


@dataclass
class ExperimentOutcome:
    experiment: Experiment
    config: object
    seeds: list[int]
    claims: list[Claim] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    elapsed_s: float = 0.0
    reused: int = 0
    error: str | None = None


def verdict(holds: bool | None) -> str:
    return {True: "holds", False: "does not hold", None: "n/a"}[holds]


def write_report(outcomes: list[ExperimentOutcome], out: Path, scale: str, wall_s: float) -> tuple[Path, Path]:
    """Write report.md and index.html into ``out``; figures are referenced relative to ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    md = [f"# oraclerl report ({scale} scale)", "",
          f"Generated {stamp}; wall time {wall_s:.1f} s. Each claim is checked on the measured values; "
          "values are mean ± half-width of the 95% interval over seeds where several seeds ran.", ""]
    h = ["<!doctype html><html><head><meta charset='utf-8'><title>oraclerl report</title>",
         "<style>body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
         "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:4px;vertical-align:top}"
         ".holds{background:#e6f6e6}.fails{background:#fbe3e3}.na{background:#f3f3f3}img{max-width:100%}</style>",
         "</head><body>", f"<h1>oraclerl report ({html.escape(scale)} scale)</h1>",
         f"<p>Generated {stamp}; wall time {wall_s:.1f} s.</p>"]
    for paper_key, paper in PAPERS.items():
        group = [o for o in outcomes if o.experiment.paper == paper_key]
        if not group:
            continue
        md += [f"## {paper}", ""]
        h += [f"<h2>{html.escape(paper)}</h2>"]
        for o in group:
            e = o.experiment
            md += [f"### `{e.name}`: {e.title}", "", e.description, "",
                   f"Seeds: {o.seeds}; time {o.elapsed_s:.1f} s ({o.reused} runs re-used).", ""]
            h += [f"<h3 id='{html.escape(e.name)}'><code>{html.escape(e.name)}</code>: {html.escape(e.title)}</h3>",
                  f"<p>{html.escape(e.description)}</p>",
                  f"<p>Seeds: {o.seeds}; time {o.elapsed_s:.1f} s ({o.reused} runs re-used).</p>"]
            if o.error:
                md += [f"**Error:** `{o.error}`", ""]
                h += [f"<p class='fails'><b>Error:</b> {html.escape(o.error)}</p>"]
            if o.claims:
                md += ["| claim | source | measured | verdict |", "|---|---|---|---|"]
                h += ["<table><tr><th>claim</th><th>source</th><th>measured</th><th>verdict</th></tr>"]
                for c in o.claims:
                    detail = f" ({c.detail})" if c.detail else ""
                    md.append(f"| {c.claim} | {c.source} | {c.measured}{detail} | {verdict(c.holds)} |")
                    cls = {True: "holds", False: "fails", None: "na"}[c.holds]
                    h.append(f"<tr class='{cls}'><td>{html.escape(c.claim)}</td><td>{html.escape(c.source)}</td>"
                             f"<td>{html.escape(c.measured)}{html.escape(detail)}</td><td>{verdict(c.holds)}</td></tr>")
                md.append("")
                h.append("</table>")
            for fig in o.figures:
                rel = Path(fig).resolve().relative_to(out.resolve()).as_posix()
                md += [f"![{e.name}]({rel})", ""]
                h.append(f"<p><img src='{html.escape(rel)}' alt='{html.escape(e.name)}'></p>")
    h.append("</body></html>")
    md_path, html_path = out / "report.md", out / "index.html"
    atomic_write_text(md_path, "\n".join(md) + "\n")
    atomic_write_text(html_path, "\n".join(h) + "\n")
    return md_path, html_path
