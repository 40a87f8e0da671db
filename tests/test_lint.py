"""The tree passes ``ruff check`` (``make lint``) with the settings in pyproject.toml, the declared line
length (E501, 110) among them, so CI enforces them, not only the developer who runs the linter."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
PATHS = ("src", "tests", "benchmarks", "scripts")


def _ruff(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([RUFF, "check", "--no-cache", "--output-format", "concise", *args],
                          cwd=cwd, capture_output=True, text=True)


@pytest.mark.skipif(RUFF is None, reason="ruff is a dev extra (pip install -e '.[dev]')")
def test_tree_passes_ruff():
    res = _ruff(*PATHS)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]


@pytest.mark.skipif(RUFF is None, reason="ruff is a dev extra (pip install -e '.[dev]')")
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
