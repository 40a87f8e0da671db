"""Run hand-planted mutants (docs/testing.md, "Hand-planted mutants") on a scratch copy of the tree.

    python scripts/hand_mutants.py scripts/hand_mutants_explore.json [SCRATCH_DIR]

Each entry of the JSON list is {"name", "file", "old", "new", "tests"}: ``old`` must occur exactly once in
``file``; the copy (``src/``, ``tests/``, ``pyproject.toml`` under SCRATCH_DIR, default
/tmp/oraclerl-hand-mutants) gets ``old`` replaced by ``new``, ``pytest -x`` runs ``tests`` there with that
copy first on PYTHONPATH, and the file is restored. The working tree is never modified. Prints one line per
mutant: KILLED (a test failed) or SURVIVED.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    if not argv or len(argv) > 2:
        print("usage: hand_mutants.py MUTANTS.json [SCRATCH_DIR]", file=sys.stderr)
        return 2
    mutants = json.loads(Path(argv[0]).read_text())
    dst = Path(argv[1] if len(argv) > 1 else "/tmp/oraclerl-hand-mutants")
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(ROOT / "src", dst / "src")
    shutil.copytree(ROOT / "tests", dst / "tests")
    shutil.copy(ROOT / "pyproject.toml", dst)
    env = dict(os.environ, PYTHONPATH=str(dst / "src"), OMP_NUM_THREADS="1")
    survived = 0
    for m in mutants:
        path = dst / m["file"]
        orig = path.read_text()
        if orig.count(m["old"]) != 1:
            print(
                f"{m['name']}: 'old' occurs {orig.count(m['old'])} times in {m['file']} (expected once)",
                file=sys.stderr,
            )
            return 2
        path.write_text(orig.replace(m["old"], m["new"]))
        try:
            cmd = [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-x",
                "-p",
                "no:randomly",
                "-p",
                "no:cacheprovider",
                *m["tests"],
            ]
            proc = subprocess.run(cmd, cwd=dst, env=env, capture_output=True, text=True, timeout=1800)
        finally:
            path.write_text(orig)
        failed = [ln for ln in proc.stdout.splitlines() if ln.startswith("FAILED")][:1]
        killed = proc.returncode != 0
        survived += not killed
        print(
            f"{'KILLED  ' if killed else 'SURVIVED'} {m['name']}"
            + (f"  ({failed[0][7:]})" if failed else ""),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
