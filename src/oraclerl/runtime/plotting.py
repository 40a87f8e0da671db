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
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(outdir) / name
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
