"""``oraclerl report``: claims with intervals and verdicts per paper, figures, errors kept per experiment,
re-use of finished runs, ``--only``/``--scale``, and the HTML page rendered by headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import test_runtime_fakes as fakes
from oraclerl.cli import main
from oraclerl.errors import ConfigError
from oraclerl.runtime.execution.executors import LocalExecutor
from oraclerl.runtime.reporting.report_runner import run_report

ONLY = ["fake-counter", "fake-fails", "fake-coverage-tiny"]
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


@pytest.fixture(scope="module", autouse=True)
def _fakes():
    fakes.install()
    yield
    fakes.uninstall()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    rep = run_report(
        only=ONLY, out=root / "report", runs=root / "runs", quiet=True, executor=LocalExecutor(0)
    )
    return root, rep


def test_report_content(report):
    root, rep = report
    md = rep.md.read_text()
    page = rep.html.read_text()
    by = {o.experiment.name: o for o in rep.outcomes}
    # The failing experiment is reported, the others are complete.
    assert not rep.ok and "boom on seed 1" in by["fake-fails"].error
    assert by["fake-counter"].error is None and by["fake-coverage-tiny"].error is None
    assert "boom on seed 1" in md and "boom on seed 1" in page
    # Per paper, in the registry's paper order, with claims, intervals over seeds and verdicts.
    heads = [line for line in md.splitlines() if line.startswith("## ")]
    assert [h.split(":")[0] for h in heads] == [
        "## Foster, Mhammedi & Rohatgi (COLT 2025)",
        "## Yang et al. (ISIT 2024)",
        "## Mousavi-Hosseini & Erdogdu (ICML 2026)",
    ]
    counter = by["fake-counter"]
    assert counter.seeds == [0, 1, 2] and counter.ran == 3 and len(counter.claims) == 1
    means = [r.result["mean"] for r in rep.summary.records if r.spec.experiment.name == "fake-counter"]
    from oraclerl.runtime.reporting.stats import fmt_ci

    assert f"| {fmt_ci(means)} (standard error" in md and "±" in fmt_ci(means)
    assert re.search(r"\| holds \|", md) and "class='holds'" in page
    assert dict(counter.metrics)["mean"] == fmt_ci(means, 4)
    # Figures exist and are referenced relative to the report folder.
    figs = [f for o in rep.outcomes for f in o.figures]
    assert len(figs) == 2 and all(f.exists() and f.stat().st_size > 1000 for f in figs)
    for f in figs:
        rel = f.resolve().relative_to(rep.html.parent.resolve()).as_posix()
        assert f"src='{rel}'" in page and f"]({rel})" in md


def test_second_call_reuses_every_finished_run(report):
    root, rep = report
    again = run_report(
        only=ONLY, out=root / "report", runs=root / "runs", quiet=True, executor=LocalExecutor(0)
    )
    s = again.summary
    assert not s.ran and len(s.reused) == 3 + 1 + 2
    assert [r.state for r in s.records if r.spec.experiment.name == "fake-fails"] == ["reused", "failed"]
    assert [c.measured for o in again.outcomes for c in o.claims] == [
        c.measured for o in rep.outcomes for c in o.claims
    ]


def test_only_scale_and_seeds_via_cli(tmp_path, capsys):
    argv = ["report", "--only", "fake-counter", "--scale", "paper", "--seeds", "0-1", "--workers", "0",
            "--out", str(tmp_path / "rep"), "--runs", str(tmp_path / "runs"), "-q"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "report written" in out and "1 claims hold" in out
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "(paper scale)" in md and "fake-coverage-tiny" not in md and "Seeds: [0, 1]" in md
    assert main(["report", "--only", "no-such", "--out", str(tmp_path / "x"), "-q"]) == 2
    assert "experiment: unknown experiment 'no-such'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    with pytest.raises(ConfigError, match="--scale"):
        run_report(
            scale="huge", only=["fake-counter"], out=tmp_path / "y", runs=tmp_path / "runs", quiet=True
        )


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium); "
                                              "the headless rendering test needs it")
def test_html_renders_in_headless_chromium(report, tmp_path):
    root, rep = report
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}"]
    url = rep.html.resolve().as_uri()
    dom = subprocess.run(
        [*flags, "--virtual-time-budget=5000", "--dump-dom", url], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    status = re.search(r"<p id=\"figure-status\"[^>]*>", dom.stdout)
    assert status, dom.stdout[:2000]
    attrs = dict(re.findall(r"data-(\w+)=\"(\d+)\"", status.group(0)))
    assert attrs["errors"] == "0" and int(attrs["total"]) == 2 and attrs["loaded"] == attrs["total"], attrs
    shot = tmp_path / "report.png"
    res = subprocess.run(
        [*flags, "--window-size=1200,3000", f"--screenshot={shot}", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)
    assert img.shape[0] == 3000 and img.shape[1] == 1200 and img.std() > 0.01  # not a blank page


def test_import_failures_are_shown_in_the_page(report, tmp_path):
    from oraclerl.runtime.reporting.report import write_report

    _, rep = report
    md, page = write_report(
        rep.outcomes, tmp_path, "quick", 1.0, load_errors={"broken_exp": "ImportError: nope"}
    )
    assert "`broken_exp`: `ImportError: nope`" in md.read_text()
    assert "<code>broken_exp</code>: ImportError: nope" in page.read_text()
