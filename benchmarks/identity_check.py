"""Behaviour-unchanged check for refactors: every experiment's ``result.json`` and the report's tables at a
scale.

``record`` runs ``oraclerl report`` into a fresh run store (quick scale by default) and writes a manifest: for
each run, its experiment, seed, resolved config and the SHA-256 of its canonical result (the parsed
``result.json`` dumped with sorted keys), plus the report's claim tables. ``check`` does the same on today's
code and compares with a manifest: it prints each run whose result differs (with the first differing field and
both values), each run that is missing or new, each config that changed, and each table row that changed, and
exits 1 if anything differs. Runs are matched by (experiment, seed, config); the package version is left out
of the config, and wall-clock fields (``elapsed_s`` and the like, :data:`TIMING`) are left out of the results.

    python benchmarks/identity_check.py record before.json            # on the code before the refactor
    python benchmarks/identity_check.py check before.json             # after it: exit 0 = identical
    python benchmarks/identity_check.py record x.json --only bon-kl   # a subset (repeat --only)
    python benchmarks/identity_check.py check before.json --only bon-kl   # a full manifest, one experiment

Same seed, config and device give bit-identical results on the exact models (the suite tests it), so any
difference is a change of behaviour; results that depend on thread timing would show up as such, and none do.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


TIMING = re.compile(r"(^|_)(elapsed|wall|time|seconds|runtime|duration)(_s|_ms)?$")


def _untimed(obj):
    """``obj`` without wall-clock fields (``elapsed_s`` and the like): they are measurements, not
    behaviour."""
    if isinstance(obj, dict):
        return {k: _untimed(v) for k, v in obj.items() if not TIMING.search(str(k))}
    if isinstance(obj, list):
        return [_untimed(v) for v in obj]
    return obj


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)


def _first_difference(a, b, path: str = "") -> str | None:
    """The first path at which two JSON values differ, with both values (shortened), or None."""
    if type(a) is not type(b):
        return f"{path or '/'}: {str(a)[:80]} != {str(b)[:80]}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{path}/{k}: {'missing before' if k not in a else 'missing after'}"
            d = _first_difference(a[k], b[k], f"{path}/{k}")
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            d = _first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b or (a != a and b != b) else f"{path or '/'}: {str(a)[:80]} != {str(b)[:80]}"


def _tables(report_md: Path) -> list[str]:
    """The report's table rows (claims and verdicts), without the lines that carry timings."""
    rows = []
    for line in report_md.read_text("utf-8").splitlines():
        if line.startswith("|") and not set(line) <= set("|-: ") and "elapsed" not in line.lower():
            rows.append(line)
    return rows


def collect(only: list[str], scale: str, workers: int) -> dict:
    """Run the report into a fresh store and read every run back."""
    with tempfile.TemporaryDirectory(prefix="oraclerl-identity-") as tmp:
        runs, out = Path(tmp) / "runs", Path(tmp) / "report"
        cmd = [
            str(Path(sys.executable).with_name("oraclerl")),
            "report",
            "--scale",
            scale,
            "--runs",
            str(runs),
            "--out",
            str(out),
            "--workers",
            str(workers),
            "-q",
            *[a for n in only for a in ("--only", n)],
        ]
        env = dict(os.environ, PYTHONHASHSEED="0")
        res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        if res.returncode not in (0, 1):            # 1: some claim does not hold (still a report)
            sys.exit(f"error: oraclerl report failed ({res.returncode}):\n{res.stderr[-3000:]}")
        entries = {}
        for cfg_path in sorted(runs.glob("*/*/config.json")):
            run = cfg_path.parent
            if not (run / "result.json").is_file():
                continue
            cfg = json.loads(cfg_path.read_text("utf-8"))
            config = {
                k: v for k, v in cfg.items() if k not in ("version", "package_version", "oraclerl_version")
            }
            result = _untimed(json.loads((run / "result.json").read_text("utf-8")))
            ident = f"{cfg.get('experiment', run.parent.name)}|seed={cfg.get('seed')}|{_canonical(config)}"
            entries[ident] = {
                "sha256": hashlib.sha256(_canonical(result).encode()).hexdigest(),
                "result": result,
            }
        tables = _tables(out / "report.md") if (out / "report.md").is_file() else []
    return {"scale": scale, "only": only, "runs": entries, "tables": tables}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=("record", "check"))
    ap.add_argument("manifest", help="the manifest to write (record) or compare with (check)")
    ap.add_argument("--only", action="append", default=[], help="only these experiments (repeatable)")
    ap.add_argument("--scale", default="quick", help="report scale (default quick)")
    ap.add_argument("--workers", type=int, default=2, help="report worker processes (default 2)")
    a = ap.parse_args(argv)
    manifest = Path(a.manifest)
    if a.action == "check" and not manifest.is_file():
        print(f"error: manifest: no such file: {manifest}", file=sys.stderr)
        return 2
    if a.workers < 0:
        print(f"error: workers: must be >= 0, got {a.workers}", file=sys.stderr)
        return 2
    if a.action == "record":
        now = collect(a.only, a.scale, a.workers)
        manifest.write_text(json.dumps(now, indent=1, sort_keys=True), "utf-8")
        print(f"recorded {len(now['runs'])} runs and {len(now['tables'])} table rows in {manifest}")
        return 0
    before = json.loads(manifest.read_text("utf-8"))
    only = a.only or before.get("only") or []
    now = collect(only, before.get("scale", a.scale), a.workers)
    subset = bool(a.only) and not before.get("only")   # a full manifest, checked for some experiments only
    if subset:
        before["runs"] = {k: v for k, v in before["runs"].items() if k.split("|", 1)[0] in a.only}
    bad = 0
    for ident in sorted(set(before["runs"]) | set(now["runs"])):
        b, n = before["runs"].get(ident), now["runs"].get(ident)
        if b is None or n is None:
            print(f"{'new' if b is None else 'missing'} run: {ident[:160]}")
            bad += 1
        elif b["sha256"] != n["sha256"]:
            where = _first_difference(b["result"], n["result"]) or "checksum only"
            print(f"changed result: {ident[:160]}\n  {where}")
            bad += 1
    # a subset's table rows must each be in the full manifest's tables (rows do not name their experiment)
    changed = (
        set(now["tables"]) - set(before["tables"]) if subset else set(before["tables"]) ^ set(now["tables"])
    )
    for row in sorted(changed):
        print(f"{'table row before' if row in before['tables'] else 'table row after '}: {row[:200]}")
        bad += 1
    print(f"{len(now['runs'])} runs, {len(now['tables'])} table rows: "
          + ("identical" if not bad else f"{bad} differences"))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
