"""The tree passes ``ruff check`` (``make lint``) with the settings in pyproject.toml, the declared line
length (E501, 110) among them, so CI enforces them, not only the developer who runs the linter."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("ruff") is None,
                       reason="ruff is a dev extra (pip install -e '.[dev]')"),
    # under mutmut the tree is its rewritten copy: lint says nothing about a mutant's behaviour
    pytest.mark.skipif("MUTANT_UNDER_TEST" in os.environ, reason="linting mutmut's rewritten copy"),
]


def _ruff(*paths: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """``ruff check`` of this interpreter's ruff (the version the dev extra pins), as ``make lint`` runs it:
    without paths, every Python file of the repository that git does not ignore."""
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise",
                           *paths], cwd=cwd, capture_output=True, text=True)


def test_tree_passes_ruff():
    res = _ruff()
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]


def test_ruff_uses_the_project_line_length(tmp_path):
    """The check above can fail: with this project's settings a 111-character line is refused, 110 is not."""
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "src").mkdir()
    ok, long = tmp_path / "src" / "ok.py", tmp_path / "src" / "long.py"
    ok.write_text("x = " + repr("a" * 104) + "\n", "utf-8")       # 110 characters
    long.write_text("x = " + repr("a" * 105) + "\n", "utf-8")     # 111 characters
    assert _ruff("src/ok.py", cwd=tmp_path).returncode == 0
    res = _ruff("src/long.py", cwd=tmp_path)
    assert res.returncode == 1 and "E501" in res.stdout, res.stdout
