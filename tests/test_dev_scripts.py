"""The source re-packer of scripts/pack_string_runs.py: values unchanged, ragged string runs packed."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "pack_string_runs.py"


def _module():
    spec = importlib.util.spec_from_file_location("pack_string_runs", SCRIPT)
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
