"""Figure helpers shared by the experiments: a headless pyplot, and saving a figure as a PNG in one call."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend (safe in worker processes and CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, outdir: Path | str, name: str, dpi: int = 110) -> Path:
    """Lay out, save ``fig`` as ``outdir/name`` and close it; returns the path."""
    import os

    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(outdir) / name
    # Written to a temporary name and moved into place, so two reports sharing an output folder never
    # leave a half-written figure (see docs/architecture.md, "Run store: concurrency and integrity").
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{os.urandom(3).hex()}")
    try:
        fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if tmp.exists():
            tmp.unlink()
    return path
