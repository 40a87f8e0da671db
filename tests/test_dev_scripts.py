"""Developer scripts: the source re-packer of scripts/pack_string_runs.py (values unchanged, ragged string
runs packed) and the run check of scripts/mutate.py (a run that checked nothing never passes for a result)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _module(name: str = "pack_string_runs"):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


RAGGED = '''def f(x, d):
    return g(
        "the first line of a long sentence that the wrap pass split where it crossed the line limit, "
        "the "
        f"value {x + 1:.3g} and {', '.join(str(v) for v in d)} inside braces with spaces; "
        "and {a literal brace} in a plain string "
        "that "
        "ends here",
        1,
    )
'''


def test_pack_keeps_every_value_and_packs_one_word_lines(tmp_path):
    mod = _module()
    path = tmp_path / "m.py"
    path.write_text(RAGGED)
    assert mod.pack_file(path, write=True) >= 1
    out = path.read_text()
    assert ast.dump(ast.parse(out)) == ast.dump(ast.parse(RAGGED))
    lines = out.splitlines()
    assert len(lines) < len(RAGGED.splitlines()) and max(map(len, lines)) <= mod.LIMIT
    assert not any(line.strip() in ('"the "', '"that "') for line in lines)
    # a piece is an f-string only where it holds a placeholder (ruff F541), and the plain literal with braces
    # was not turned into one
    for line in lines:
        s = line.strip().rstrip(",")
        if s.startswith('f"'):
            assert "{" in s, line
    assert '"and {a literal brace} in a plain string that ends here",' in out
    # a second pass has nothing left to do
    assert mod.pack_file(path, write=True) == 0


def test_mutate_run_with_unchecked_mutants_is_an_error():
    """mutmut marks every mutant "not checked" when the tests fail on the unmutated copy: such a run (or a
    re-run that left survivors unchecked) must be reported, not summarised as a result with exit 0."""
    unchecked = _module("mutate").unchecked
    baseline_failed = {"m.x_1": "not checked", "m.x_2": "not checked"}
    assert unchecked(baseline_failed, []) == ["m.x_1", "m.x_2"]
    assert unchecked({"m.x_1": "killed", "m.x_2": "not checked"}, []) == ["m.x_2"]
    assert unchecked({"m.x_1": "killed", "m.x_2": "survived", "m.x_3": "no tests"}, []) == []
    # a re-run looks only at the survivors it re-tested; one missing from mutmut's listing was not run
    rerun = {"m.x_1": "not checked", "m.x_2": "killed"}
    assert unchecked(rerun, ["m.x_2"]) == []
    assert unchecked(rerun, ["m.x_2", "m.x_9"]) == ["m.x_9"]


def test_mutate_names_why_mutmut_stopped():
    """The error line quotes mutmut's own reason: its last line, after the spinner's carriage returns."""
    last_message = _module("mutate").last_message
    log = ("\u280b Generating mutants\u2819 Generating mutants\r\u2839 Generating mutants\n"
           "    done in 326ms\n"
           "\u2834 Running forced fail test\r\u2826 Running forced fail test\r"
           "FAILED: Unable to force test failures\n")
    assert last_message(log) == "FAILED: Unable to force test failures"
    assert last_message("....  [ 40%]\nfailed to collect stats. runner returned 1\n\r\n") == (
        "failed to collect stats. runner returned 1")
    assert last_message("") == "no output"
