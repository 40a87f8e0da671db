"""The claim API: two kinds, the "not informative" verdict, the midpoint verdict helper, the report's claim
tables, and that every experiment module states the kind of each claim it makes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from oraclerl.runtime.reporting.report import ExperimentOutcome, tally, verdict, write_report
from oraclerl.runtime.reporting.verdicts import separates, separation_claim
from oraclerl.runtime.run.registry import EMPIRICAL, IDENTITY, Claim, all_experiments, get_experiment

EXPERIMENTS = Path(__file__).resolve().parents[1] / "src" / "oraclerl" / "experiments"


def test_claim_kinds_and_verdicts():
    # the default is the kind that needs a control
    assert Claim("c", "s", "m", True).kind == EMPIRICAL
    assert Claim("c", "s", "m", True, kind=IDENTITY).verdict == "holds"
    assert Claim("c", "s", "m", False).verdict == "does not hold"
    assert Claim("c", "s", "m", None).verdict == "n/a"
    weak = Claim("c", "s", "m", True, informative=False)
    assert weak.verdict == "not informative at this scale" and verdict(weak) == weak.verdict
    assert verdict(True) == "holds" and verdict(None) == "n/a"    # old callers passing ``holds``
    assert Claim("c", "s", "m", weak.holds).as_dict()["kind"] == EMPIRICAL
    with pytest.raises(ValueError, match="kind"):
        Claim("c", "s", "m", True, kind="exact")
    with pytest.raises(ValueError, match="holds"):
        Claim("c", "s", "m", "yes")
    with pytest.raises(TypeError):
        Claim("c", "s", "m", True, "", IDENTITY)                   # kind is keyword-only
    text = tally([Claim("a", "s", "m", True, kind=IDENTITY), weak, Claim("b", "s", "m", False)])
    assert text == "1 claims hold, 1 do not, 1 not informative, 0 n/a (1 identity checks, 2 empirical)"


def test_separates_midpoint_and_straddle():
    assert separates([-1.0, -0.98, -1.03], -1.0, -0.5).holds is True
    slow = separates([-0.5, -0.52, -0.47], -1.0, -0.5)
    assert slow.holds is False and slow.informative and slow.boundary == -0.75
    straddle = separates([-1.2, -0.3, -0.8], -1.0, -0.5)
    assert not straddle.informative and "straddles" in straddle.text
    # one seed: no interval, decided on the value
    assert separates([0.9], 1.0, 0.0).holds is True
    assert separates([0.4], 1.0, 0.0).holds is False
    assert separates([float("nan")], 1.0, 0.0).holds is None
    with pytest.raises(ValueError):
        separates([1.0], 1.0, 1.0)


def test_separates_reports_its_boundary_and_text_exactly():
    from oraclerl.runtime.reporting.stats import mean_ci

    vals = [0.1, 0.2, 0.15]
    m, lo, hi = mean_ci(vals)
    v = separates(vals, 0.0, 1.0)
    assert (v.holds, v.informative, v.boundary) == (True, True, 0.5)
    assert v.text == (f"prediction 0 vs alternative 1: boundary 0.5; mean {m:.3g}, "
                      f"95% interval [{lo:.3g}, {hi:.3g}]")
    nan = separates([float("nan")], 0.0, 1.0)
    assert (nan.holds, nan.informative, nan.boundary) == (None, True, 0.5)
    assert nan.text == "prediction 0 vs alternative 1: boundary 0.5; no finite value"
    straddle = separates([0.1, 0.9, 0.3], 0.0, 1.0)
    assert (straddle.holds, straddle.informative, straddle.boundary) == (True, False, 0.5)
    assert straddle.text.endswith("] (straddles the boundary)") and straddle.text.count("boundary") == 2
    assert separates([0.4, 0.9, 0.95], 1.0, 0.0).holds is True  # mean 0.75 on the prediction's side
    # the boundary itself belongs to neither side, whichever way the prediction lies
    assert separates([0.5], 1.0, 0.0).holds is False and separates([0.5], 0.0, 1.0).holds is False
    assert separates([0.5 + 1e-12], 1.0, 0.0).holds is True and separates([0.5 - 1e-12], 0.0, 1.0).holds
    with pytest.raises(ValueError, match="^prediction and alternative must differ$"):
        separates([1.0], 0.5, 0.5)


def test_separation_claim_is_the_claim_built_by_hand():
    def claim(values, **kw):
        return separation_claim("c", "s", "m", values, -1.0, -0.5, note_before="before ", note_after=" after",
                                **kw)

    fast = claim([-1.0, -0.98, -1.03])
    v = separates([-1.0, -0.98, -1.03], -1.0, -0.5)
    assert fast == Claim("c", "s", "m", True, "before " + v.text + " after", kind=EMPIRICAL)
    # a failed requirement (e.g. censoring) turns a separation into "does not hold"
    assert claim([-1.0, -0.98, -1.03], require=False).verdict == "does not hold"
    # the alternative's values do not hold whatever the requirement says
    assert claim([-0.5, -0.52, -0.47], require=True).holds is False
    # no finite value: reported, not judged (None and … is None), even when the requirement fails
    assert claim([float("nan")], require=False).holds is None
    assert claim([], require=True).verdict == "n/a"
    # a straddling interval is not informative unless the caller says otherwise
    straddle = claim([-1.2, -0.3, -0.8])
    assert not straddle.informative and straddle.verdict == "not informative at this scale"
    assert claim([-1.2, -0.3, -0.8], informative=True).informative is True
    assert claim([-0.5, -0.52, -0.47], informative=False).verdict == "not informative at this scale"
    # without note_after the detail ends with the separation's text
    plain = separation_claim("c", "s", "m", [-1.0, -0.98, -1.03], -1.0, -0.5, note_before="b: ")
    assert plain.detail == "b: " + v.text and plain.kind == EMPIRICAL


def test_report_tables_show_kinds_apart_and_link_the_docs(tmp_path):
    exp = get_experiment("spanner-coverage")
    claims = [Claim("exact one", "s", "m", True, kind=IDENTITY), Claim("measured one", "s", "m", True),
              Claim("weak one", "s", "m", True, informative=False)]
    o = ExperimentOutcome(experiment=exp, config=None, seeds=[0], claims=claims)
    md, page = write_report([o], tmp_path, "quick", 1.0)
    text, html = md.read_text(), page.read_text()
    assert text.index("**Identity checks (exact)**") < text.index("| identity | exact one |")
    assert text.index("**Empirical claims (measured at this scale)**") < text.index(
        "| empirical | measured one |"
    )
    assert "| empirical | weak one | s | m | not informative at this scale |" in text
    assert "<tr class='weak'><td>empirical</td><td>weak one</td>" in html
    assert "1 not informative" in text and "(1 identity checks, 2 empirical)" in text
    doc = next(line for line in text.splitlines() if line.startswith("Verdict windows and why"))
    target = (tmp_path / doc[doc.index("(") + 1:-1]).resolve()
    assert target == (EXPERIMENTS.parents[2] / "docs" / "experiments" / "spanner-coverage.md").resolve()
    assert target.exists()


def _claim_calls(path: Path):
    tree = ast.parse(path.read_text())
    return [n for n in ast.walk(tree)
            if isinstance(n, ast.Call) and getattr(n.func, "id", None) in ("Claim", "separation_claim")]


PACKAGES = sorted(p.name for p in EXPERIMENTS.iterdir() if (p / "analysis.py").exists())


def test_every_experiment_package_is_checked():
    assert len(PACKAGES) == len(all_experiments()), PACKAGES


@pytest.mark.parametrize("module", PACKAGES)
def test_every_claim_states_its_kind_and_has_a_docs_page(module):
    # an experiment package: claims live in its analysis module
    calls = _claim_calls(EXPERIMENTS / module / "analysis.py")
    assert calls, module
    # separation_claim makes empirical claims by definition; a Claim(...) must say its kind
    missing = [n.lineno for n in calls if getattr(n.func, "id", None) == "Claim"
               and not any(k.arg == "kind" for k in n.keywords)]
    assert not missing, f"{module}: Claim(...) without kind= at lines {missing}"
    name = module.replace("_", "-")
    assert (EXPERIMENTS.parents[2] / "docs" / "experiments" / f"{name}.md").exists(), name
