"""The report: every registered experiment at a scale, several seeds, claims table and figures,
written as ``report/report.md`` and ``report/index.html``.

Per paper: each experiment's description, its claims (the measured value as mean ± half-width of the 95%
interval over seeds, the verdict), identity checks and empirical claims in separate tables with a link to the
experiment's docs page (docs/experiments/NAME.md: why each verdict window is what it is), the top-level scalar
results over seeds, and its figures. An experiment that failed (config, run, claims or plot) is shown with its
error; the others are unaffected. The HTML page checks on load that every figure decoded and writes the count
into ``#figure-status`` (``data-loaded``/``data-total``/``data-errors``), which the headless-browser test
reads.
"""

from __future__ import annotations

import html
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..run.registry import EMPIRICAL, IDENTITY, PAPERS, Claim, Experiment
from ..run.store import atomic_write_text


@dataclass
class ExperimentOutcome:
    experiment: Experiment
    config: object
    seeds: list[int]
    claims: list[Claim] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    elapsed_s: float = 0.0
    """Seconds spent on claims and figures in this call."""
    reused: int = 0
    error: str | None = None
    ran: int = 0
    """Runs executed by this call (the others were re-used from the run store)."""
    metrics: list[tuple[str, str]] = field(default_factory=list)
    """(name, "mean ± half-width") of the top-level scalar results over seeds."""
    run_time_s: float = 0.0
    """Sum over seeds of the runs' own compute time (as recorded when they ran)."""


def verdict(claim: Claim | bool | None) -> str:
    """The verdict shown for a claim (``Claim.verdict``); a bare ``holds`` value is accepted for old
    callers."""
    if isinstance(claim, Claim):
        return claim.verdict
    return {True: "holds", False: "does not hold", None: "n/a"}[claim]


def tally(claims: list[Claim]) -> str:
    """"a claims hold, b do not, c not informative, d n/a (i identity checks, e empirical)"."""
    v = [c.verdict for c in claims]
    return (f"{v.count('holds')} claims hold, {v.count('does not hold')} do not, "
            f"{v.count('not informative at this scale')} not informative, {v.count('n/a')} n/a "
            f"({sum(c.kind == IDENTITY for c in claims)} identity checks, "
            f"{sum(c.kind == EMPIRICAL for c in claims)} empirical)")


_VERDICT_CLASS = {
    "holds": "holds",
    "does not hold": "fails",
    "not informative at this scale": "weak",
    "n/a": "na",
}


_CSS = ("body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em;color:#222}"
        "table{border-collapse:collapse;width:100%;margin:.5em 0}td,th{border:1px solid #ccc;padding:4px;"
        "vertical-align:top;text-align:left}.holds{background:#e6f6e6}.fails{background:#fbe3e3}"
        ".na{background:#f3f3f3}.weak{background:#fdf3d8}img{max-width:100%}.err{background:#fbe3e3;padding:.5em}"
        "code{background:#f4f4f4}.small{color:#666;font-size:90%}")

_JS = """<script>
window.addEventListener('error', function () {
  var s = document.getElementById('figure-status'); s.dataset.errors = String(+s.dataset.errors + 1);
});
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images), ok = 0;
  imgs.forEach(function (im) { if (im.complete && im.naturalWidth > 0) { ok++; } });
  var s = document.getElementById('figure-status');
  s.dataset.loaded = String(ok); s.dataset.total = String(imgs.length);
  s.textContent = 'figures loaded: ' + ok + '/' + imgs.length;
});
</script>"""


def md_text(s: object) -> str:
    """``s`` as one line of literal Markdown text: every character Markdown or HTML would interpret is
    escaped (the Markdown counterpart of ``html.escape``, for user-controlled strings in report.md)."""
    out = []
    for ch in str(s).replace("\r", " ").replace("\n", " "):
        if ch == "&":
            out.append("&amp;")
        elif ch in "\\`*_[]<>|#!~":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def md_code(s: object, in_table: bool = False) -> str:
    """``s`` verbatim as one Markdown code span (fenced by more backticks than it contains)."""
    s = str(s).replace("\r", " ").replace("\n", " ")
    if in_table:
        s = s.replace("|", "\\|")  # GFM tables split on | even inside code spans
    longest = max((len(run) for run in re.findall("`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or not s.strip() else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def _md_url(url: str) -> str:
    from urllib.parse import quote

    return quote(url, safe="/:#%")


def _rel(fig: Path, out: Path) -> str:
    try:
        return Path(fig).resolve().relative_to(out.resolve()).as_posix()
    except ValueError:
        return Path(fig).resolve().as_uri()


def _docs_link(name: str, out: Path) -> str | None:
    """Relative link from ``out`` to the experiment's docs page docs/experiments/NAME.md (None if it is
    missing)."""
    page = Path(__file__).resolve().parents[4] / "docs" / "experiments" / f"{name}.md"
    if not page.exists():
        return None
    return Path(os.path.relpath(page, Path(out).resolve())).as_posix()


def _counts(outcomes: list[ExperimentOutcome]) -> str:
    claims = [c for o in outcomes for c in o.claims]
    n_err = sum(o.error is not None for o in outcomes)
    return f"{tally(claims)}; {len(outcomes) - n_err}/{len(outcomes)} experiments completed"


def write_report(outcomes: list[ExperimentOutcome], out: Path, scale: str, wall_s: float, *,
                 load_errors: dict[str, str] | None = None, executor: str = "") -> tuple[Path, Path]:
    """Write report.md and index.html into ``out``; figures are referenced relative to ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    ran = sum(o.ran for o in outcomes)
    reused = sum(o.reused for o in outcomes)
    head = (f"Generated {stamp}; wall time {wall_s:.1f} s{f' on {executor}' if executor else ''}; "
            f"{ran} runs executed, {reused} re-used from the run store. {_counts(outcomes)}.")
    legend = ("Each claim is checked on the measured values; values are mean ± half-width of the 95% "
              "Student-t interval over seeds where several seeds ran.")
    md = [f"# oraclerl report ({md_text(scale)} scale)", "", md_text(head), "", legend, ""]
    h = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>oraclerl report</title>",
        f"<style>{_CSS}</style>",
        "</head><body>",
        f"<h1>oraclerl report ({html.escape(scale)} scale)</h1>",
        f"<p>{html.escape(head)}</p><p class='small'>{html.escape(legend)}</p>",
        "<p id='figure-status' class='small' data-loaded='0' data-total='0' data-errors='0'>figures: "
        "loading</p>",
    ]
    if load_errors:
        md += ["## Experiment modules that failed to import", ""]
        h.append("<h2>Experiment modules that failed to import</h2><ul>")
        for mod, err in sorted(load_errors.items()):
            md.append(f"- {md_code(mod)}: {md_code(err)}")
            h.append(f"<li class='err'><code>{html.escape(mod)}</code>: {html.escape(err)}</li>")
        md.append("")
        h.append("</ul>")
    toc = [o for key in PAPERS for o in outcomes if o.experiment.paper == key]
    h.append(
        "<ul>"
        + "".join(
            f"<li><a href='#{html.escape(o.experiment.name)}'>{html.escape(o.experiment.name)}"
            f"</a>{' (error)' if o.error else ''}</li>"
            for o in toc
        )
        + "</ul>"
    )
    for paper_key, paper in PAPERS.items():
        group = [o for o in outcomes if o.experiment.paper == paper_key]
        if not group:
            continue
        md += [f"## {paper}", "", f"_{_counts(group)}._", ""]
        h += [f"<h2>{html.escape(paper)}</h2>", f"<p class='small'>{html.escape(_counts(group))}.</p>"]
        for o in group:
            _experiment_section(o, out, md, h)
    h.append(_JS)
    h.append("</body></html>")
    md_path, html_path = out / "report.md", out / "index.html"
    atomic_write_text(md_path, "\n".join(md) + "\n")
    atomic_write_text(html_path, "\n".join(h) + "\n")
    return md_path, html_path


def _experiment_section(o: ExperimentOutcome, out: Path, md: list[str], h: list[str]) -> None:
    e = o.experiment
    timing = (f"Seeds: {o.seeds}; {o.ran} ran now, {o.reused} re-used; runs took {o.run_time_s:.1f} s of "
              f"compute (summed over seeds), claims and figures {o.elapsed_s:.1f} s.")
    md += [f"### {md_code(e.name)}: {md_text(e.title)}", "", e.description, "", timing, ""]
    h += [f"<h3 id='{html.escape(e.name)}'><code>{html.escape(e.name)}</code>: {html.escape(e.title)}</h3>",
          f"<p>{html.escape(e.description)}</p>", f"<p class='small'>{html.escape(timing)}</p>"]
    if o.error:
        md += [f"**Error:** {md_code(o.error)}", ""]
        h.append(f"<p class='err'><b>Error:</b> <code>{html.escape(o.error)}</code></p>")
    doc = _docs_link(e.name, out)
    if doc:
        md += [f"Verdict windows and why: [docs/experiments/{e.name}.md]({doc})", ""]
        h.append(f"<p class='small'>Verdict windows and why: <a href='{html.escape(doc)}'>docs/experiments/"
                 f"{html.escape(e.name)}.md</a></p>")
    # Identity checks first, then empirical claims, each table headed by its kind.
    for kind, title in (
        (IDENTITY, "identity checks (exact)"),
        (EMPIRICAL, "empirical claims (measured at this scale)"),
    ):
        rows = [c for c in o.claims if c.kind == kind]
        if not rows:
            continue
        md += [
            f"**{title.capitalize()}**",
            "",
            "| kind | claim | source | measured | verdict |",
            "|---|---|---|---|---|",
        ]
        h.append(f"<p><b>{html.escape(title.capitalize())}</b></p><table><tr><th>kind</th><th>claim</th>"
                 "<th>source</th><th>measured</th><th>verdict</th></tr>")
        for c in rows:
            detail = f" ({c.detail})" if c.detail else ""
            cell = md_text
            md.append(f"| {c.kind} | {cell(c.claim)} | {cell(c.source)} | {cell(c.measured)}{cell(detail)} | "
                      f"{c.verdict} |")
            h.append(
                f"<tr class='{_VERDICT_CLASS[c.verdict]}'><td>{c.kind}</td><td>{html.escape(c.claim)}</td>"
                f"<td>{html.escape(c.source)}</td>"
                f"<td>{html.escape(c.measured)}<span class='small'>{html.escape(detail)}</span></td>"
                f"<td>{html.escape(c.verdict)}</td></tr>"
            )
        md.append("")
        h.append("</table>")
    if o.metrics:
        md += ["| result (over seeds) | mean ± 95% half-width |", "|---|---|"]
        md += [f"| {md_code(k, in_table=True)} | {md_text(v)} |" for k, v in o.metrics] + [""]
        h.append("<table><tr><th>result (over seeds)</th><th>mean ± 95% half-width</th></tr>" +
                 "".join(f"<tr><td><code>{html.escape(k)}</code></td><td>{html.escape(v)}</td></tr>"
                         for k, v in o.metrics) + "</table>")
    for fig in o.figures:
        rel = _rel(fig, out)
        md += [f"![{md_text(e.name)}]({_md_url(rel)})", ""]
        h.append(f"<p><img src='{html.escape(rel)}' alt='{html.escape(e.name)} figure'></p>")
