"""Mutation testing of one module with mutmut (``make mutate MODULE=src/oraclerl/diagnostics/regret.py``).

The run happens in a scratch copy of ``src/``, ``tests/``, ``docs/``, ``README.md`` and ``pyproject.toml``
(default ``/tmp/oraclerl-mutate/<module>``), so the working tree is never touched: mutmut writes its mutated
copy under ``mutants/`` there. The scratch ``pyproject.toml`` keeps the project's ``[tool.mutmut]`` settings
and sets ``only_mutate`` to MODULE and the test selection to the fast tests that cover it (the ``TESTS``
given, else :data:`FAST_TESTS` plus tests/test_mutants_*.py; slow tests are deselected). It prints the killed
/ survived / timeout / no-tests counts, writes them to ``summary.json`` and every survivor's diff to
``survivors.diff`` in the scratch copy. Figures and the triage of survivors are recorded in
``docs/testing.md``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATUSES = (
    "killed",
    "survived",
    "timeout",
    "no tests",
    "suspicious",
    "skipped",
    "not checked",
    "caught by type check",
    "segfault",
)


def _fail(field: str, msg: str) -> None:
    print(f"error: {field}: {msg}", file=sys.stderr)
    raise SystemExit(2)


# The fast test files that exercise each algorithm module directly (CPU is scarce: a module's own tests, not
# every test that happens to import it). tests/test_mutants_*.py, the tests written to kill survivors, are
# always added. Modules not listed fall back to :func:`importing_tests`.
FAST_TESTS = {
    "oracles/ledger.py": ["tests/test_oracles.py"],
    "oracles/rewards.py": ["tests/test_oracles.py", "tests/test_teacher.py"],
    "oracles/samplers.py": ["tests/test_oracles.py"],
    "diagnostics/regret.py": ["tests/test_linear_softmax.py"],
    "diagnostics/coverage.py": ["tests/test_linear_softmax.py"],
    "diagnostics/divergences.py": ["tests/test_linear_softmax.py", "tests/test_large_deviations.py"],
    "diagnostics/pass_at_k.py": ["tests/test_pass_at_k.py"],
    "diagnostics/likelihood_quantile.py": ["tests/test_likelihood_quantile.py"],
    "diagnostics/token_coverage.py": ["tests/test_token_coverage.py"],
    "diagnostics/large_deviations.py": ["tests/test_large_deviations.py"],
    "posttrain/advantages.py": ["tests/test_posttrain_advantages.py"],
    "inference/best_of_n.py": ["tests/test_inference_best_of_n.py"],
    "inference/tilt.py": ["tests/test_inference_tilt.py"],
    "inference/sample_based.py": ["tests/test_inference_sample_based.py"],
    "inference/softmax_sampler.py": ["tests/test_softmax_sampler.py"],
    "explore/mtss.py": ["tests/test_mtss.py"],
    "explore/mtss_subroutines.py": ["tests/test_mtss.py"],
    "explore/spanner_sampling.py": ["tests/test_spanner_sampling.py"],
    "explore/truncated_softmax.py": ["tests/test_spanner_policy.py"],
    "explore/evaluation.py": ["tests/test_spanner_evaluation.py"],
    "explore/online_dpo.py": ["tests/test_online_dpo.py"],
    "explore/xpo.py": ["tests/test_xpo.py"],
}


def covering_tests(module: Path, mutant_tests: bool = True) -> list[str]:
    """:data:`FAST_TESTS` of ``module`` (else :func:`importing_tests`) plus every tests/test_mutants_*.py
    (unless ``mutant_tests`` is False: the "before" figure of docs/testing.md)."""
    key = "/".join(module.parts[2:])
    base = FAST_TESTS.get(key) or importing_tests(module)
    extra = (
        sorted(str(f.relative_to(ROOT)) for f in (ROOT / "tests").glob("test_mutants_*.py"))
        if mutant_tests
        else []
    )
    return [t for t in base if (ROOT / t).is_file()] + [t for t in extra if t not in base]


def importing_tests(module: Path) -> list[str]:
    """Test files that import ``module`` or its package (``oraclerl.<pkg>`` or ``from oraclerl import
    <pkg>``).

    Over-inclusive on purpose: mutmut's stats run maps each mutated function to the tests that call it, so a
    test file that never reaches the module costs one collection, not one run per mutant. The [hf]/[ray] test
    files are left out (optional extras, slow imports).
    """
    dotted = ".".join(module.with_suffix("").parts[1:])            # oraclerl.diagnostics.regret
    package = dotted.rsplit(".", 1)[0]
    pats = [re.compile(rf"\b{re.escape(package)}\b")]
    if "." in package:
        parent, leaf = package.rsplit(".", 1)
        pats.append(re.compile(rf"from {re.escape(parent)} import [^\n]*\b{re.escape(leaf)}\b"))
    out = []
    for f in sorted((ROOT / "tests").glob("test_*.py")):
        if f.name.startswith(("test_hf_", "test_sweep_ray")):
            continue
        text = f.read_text("utf-8")
        if any(p.search(text) for p in pats):
            out.append(str(f.relative_to(ROOT)))
    return out


def _scratch_pyproject(src: Path, module: str, tests: list[str], deselect: list[str] | None = None) -> str:
    """The project's pyproject.toml with its [tool.mutmut] table scoped to ``module`` and ``tests``, and the
    test ids in ``deselect`` left out (``pytest --deselect``)."""
    text = src.read_text("utf-8")
    m = re.search(r"(?ms)^\[tool\.mutmut\]\n(.*?)(?=^\[|\Z)", text)
    own = {"source_paths": ["src/"], "only_mutate": [module], "pytest_add_cli_args_test_selection": tests,
           "also_copy": ["docs/", "README.md"]}   # into mutmut's copy: tests check the claims' docs links
    if deselect:
        cli = re.search(r"(?m)^pytest_add_cli_args\s*=\s*(\[.*\])\s*$", m.group(1) if m else "")
        args = json.loads(cli.group(1)) if cli else []
        own["pytest_add_cli_args"] = args + [a for d in deselect for a in ("--deselect", d)]
    kept = [ln for ln in (m.group(1).splitlines() if m else [])
            if ln.strip() and not ln.lstrip().startswith("#") and ln.split("=")[0].strip() not in own]
    body = "\n".join(["[tool.mutmut]", *kept, *(f"{k} = {json.dumps(v)}" for k, v in own.items())]) + "\n"
    if m:
        return text[: m.start()] + body + "\n" + text[m.end():]
    return text.rstrip() + "\n\n" + body


def _statuses(mutmut: list[str], work: Path, env: dict) -> dict[str, str]:
    """{mutant name: status} of every mutant mutmut has recorded in ``work``."""
    res = subprocess.run(
        mutmut + ["results", "--all", "true"], cwd=work, env=env, capture_output=True, text=True
    )
    status = {}
    for line in res.stdout.splitlines():
        name, _, st = line.strip().rpartition(": ")
        if name and st in STATUSES:
            status[name] = st
    return status


_DIFFS = """
import json, sys
from mutmut.mutation.diff_apply import find_mutant, get_diff_for_mutant
with open(sys.argv[2], "w", encoding="utf-8") as fh:
    for name, st in json.loads(sys.argv[1]).items():
        fh.write(f"### {name} ({st})\\n{get_diff_for_mutant(name, path=find_mutant(name).path)}\\n")
"""


def _write_diffs(work: Path, env: dict, survivors: dict[str, str], out: Path) -> None:
    """The diff of every survivor into ``out``, in one process (``mutmut show`` per mutant is slow)."""
    subprocess.run(
        [sys.executable, "-c", _DIFFS, json.dumps(survivors), str(out)], cwd=work, env=env, check=True
    )


def unchecked(status: dict[str, str], names: list[str]) -> list[str]:
    """The mutants mutmut left unchecked: of ``names`` (a re-run), else of every mutant it generated.

    mutmut marks every mutant "not checked" when the tests fail on the unmutated scratch copy (its baseline),
    so a run where any is left unchecked measured nothing about them and must not pass for a result.
    """
    return sorted(n for n in (names or status) if status.get(n) in (None, "not checked"))


def last_message(log: str) -> str:
    """mutmut's last line in its log, where it says why it stopped ("failed to collect stats. runner returned
    1": the tests fail on the unmutated copy; "Unable to force test failures": they never call the module).
    Its progress spinner redraws with carriage returns, which ``splitlines`` also splits at."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("module", help="a .py file under src/oraclerl/")
    ap.add_argument(
        "--tests", nargs="*", default=None, help="test files to run (default: those importing MODULE)"
    )
    ap.add_argument(
        "--before", action="store_true", help="leave out tests/test_mutants_*.py (the 'before' figure)"
    )
    ap.add_argument(
        "--rerun",
        action="store_true",
        help="re-test only the survivors of the last run in --workdir with today's tests ('after' figure)",
    )
    ap.add_argument("--jobs", type=int, default=1, help="mutmut --max-children (default 1)")
    ap.add_argument(
        "--workdir", default=None, help="scratch directory (default /tmp/oraclerl-mutate/<module>)"
    )
    ap.add_argument(
        "--deselect",
        nargs="*",
        default=[],
        metavar="NODE",
        help="pytest node ids to leave out (slow tests; kept for --rerun and recorded in summary.json)",
    )
    ap.add_argument(
        "--mutant-tests",
        nargs="*",
        default=None,
        metavar="FILE",
        help="which tests/test_mutants_*.py to add (default: all; with --rerun, those that collect on "
        "the scratch copy's source)",
    )
    a = ap.parse_args(argv)
    module = Path(a.module)
    if module.suffix != ".py" or module.parts[:2] != ("src", "oraclerl") or not (ROOT / module).is_file():
        _fail("MODULE", f"must be an existing .py file under src/oraclerl/, got {a.module!r}")
    if a.jobs < 1:
        _fail("jobs", f"must be >= 1, got {a.jobs}")
    for t in a.mutant_tests or []:
        if not (t.startswith("tests/test_mutants_") and (ROOT / t).is_file()):
            _fail("mutant-tests", f"must be existing tests/test_mutants_*.py files, got {t!r}")
    tests = a.tests if a.tests else covering_tests(module, mutant_tests=not a.before)
    if a.mutant_tests is not None and not a.before and not a.tests:
        tests = [t for t in tests if not t.startswith("tests/test_mutants_")] + list(a.mutant_tests)
    deselect = list(a.deselect)
    if not tests:
        _fail("TESTS", f"no test file imports {module}; pass TESTS='tests/test_x.py ...'")
    for t in tests:
        if not (ROOT / t).is_file():
            _fail("TESTS", f"no such test file: {t}")
    slug = "_".join(module.with_suffix("").parts[2:])
    work = Path(a.workdir) if a.workdir else Path("/tmp/oraclerl-mutate") / slug
    before = None
    if a.rerun:
        if not (work / "summary.json").is_file():
            _fail("rerun", f"no earlier run in {work} (summary.json missing)")
        before = json.loads((work / "summary.json").read_text("utf-8"))
        if before["module"] != str(module):
            _fail("rerun", f"{work} holds a run of {before['module']}, not {module}")
        # same source and same tests as the first run, plus today's tests/test_mutants_*.py (the other test
        # files may have moved on with the source since, and would not pass on the old copy)
        added = (list(a.mutant_tests) if a.mutant_tests is not None else
                 [t for t in covering_tests(module) if t.startswith("tests/test_mutants_")])
        for t in added:
            shutil.copy2(ROOT / t, work / t)
        tests = before["tests"] + [t for t in added if t not in before["tests"]]
        deselect = before.get("deselect", []) + [d for d in deselect if d not in before.get("deselect", [])]
    else:
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        shutil.copytree(
            ROOT / "src", work / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
        shutil.copytree(ROOT / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(ROOT / "docs", work / "docs")
        shutil.copy2(ROOT / "README.md", work / "README.md")
    (work / "pyproject.toml").write_text(
        _scratch_pyproject(ROOT / "pyproject.toml", str(module), tests, deselect), "utf-8"
    )
    mutmut = [str(Path(sys.executable).with_name("mutmut"))]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    names = before["survivors"] if before else []
    before_status = (before.get("status") or _statuses(mutmut, work, env)) if before else {}
    print(f"mutating {module} in {work} with tests: {' '.join(tests)}"
          + (f" (re-testing {len(names)} survivors)" if before else ""), flush=True)
    if before and not names:
        return 0
    with open(work / ("mutmut-rerun.log" if before else "mutmut-run.log"), "w", encoding="utf-8") as log:
        subprocess.run(
            mutmut + ["run", "--max-children", str(a.jobs), *names],
            cwd=work,
            env=env,
            check=False,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # progress spinner: not for stdout
    status = _statuses(mutmut, work, env)
    unrun = unchecked(status, names)
    if unrun:
        log = work / ("mutmut-rerun.log" if before else "mutmut-run.log")
        print(
            f"error: mutmut left {len(unrun)} of {len(names or status)} mutants unchecked "
            f"(mutmut: {last_message(log.read_text('utf-8', errors='replace'))!r}); see {log}",
            file=sys.stderr,
        )
        return 1
    if before:                       # killed mutants stay killed when tests are added: re-test the rest only
        status = {**before_status, **{n: status.get(n, before_status[n]) for n in names}}
    counts = collections.Counter(status.values())
    survivors = sorted(n for n, s in status.items() if s in ("survived", "no tests", "timeout", "suspicious"))
    diff = work / ("survivors-after.diff" if before else "survivors.diff")
    _write_diffs(work, env, {n: status[n] for n in survivors}, diff)
    summary = {
        "module": str(module),
        "tests": tests,
        "deselect": deselect,
        "total": len(status),
        **dict(counts),
        "survivors": survivors,
        "status": status,
    }
    out = work / ("summary-after.json" if before else "summary.json")
    out.write_text(json.dumps(summary, indent=1), "utf-8")
    print(json.dumps({k: v for k, v in summary.items() if k not in ("survivors", "status")}))
    print(f"survivors ({len(survivors)}): diffs in {diff}")
    return 0 if status else 1


if __name__ == "__main__":
    raise SystemExit(main())
