"""The claim API: two kinds, the "not informative" verdict, the midpoint verdict helper, the report's claim
tables, and that every experiment module states the kind of each claim it makes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from oraclerl.runtime.reporting.report import ExperimentOutcome, tally, verdict, write_report
from oraclerl.runtime.reporting.verdicts import separates
from oraclerl.runtime.run.registry import EMPIRICAL, IDENTITY, Claim, get_experiment

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
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "Claim"]


OWNED = ["bon_asymptotics", "bon_kl", "bon_winrate", "coverage_lower_bound", "coverage_token_vs_sequence",
         "dnf_proper", "lq_pretraining", "mtss_vs_spanner", "pg_theory", "spanner_coverage", "spanner_rates",
         "transformer_barrier"]


@pytest.mark.parametrize("module", OWNED)
def test_every_claim_states_its_kind_and_has_a_docs_page(module):
    # an experiment package: claims live in its analysis module
    path = EXPERIMENTS / module / "analysis.py"
    calls = _claim_calls(path if path.exists() else EXPERIMENTS / f"{module}.py")
    assert calls, module
    missing = [n.lineno for n in calls if not any(k.arg == "kind" for k in n.keywords)]
    assert not missing, f"{module}: Claim(...) without kind= at lines {missing}"
    name = module.replace("_", "-")
    assert (EXPERIMENTS.parents[2] / "docs" / "experiments" / f"{name}.md").exists(), name
