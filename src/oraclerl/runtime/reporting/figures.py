"""Figure helpers shared by the experiments: a headless pyplot, and one helper that finishes a figure (labels,
scales, legend, layout, an atomic save)."""

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


def finish(
    fig,
    outdir: Path | str,
    name: str,
    ax=None,
    *,
    xlabel: str | None = None,
    ylabel: str | None = None,
    title: str | None = None,
    xscale: str | None = None,
    yscale: str | None = None,
    legend: float | None = None,
    dpi: int = 110,
) -> list[Path]:
    """Finish ``fig`` and save it as ``outdir/name``: on ``ax`` (when given) set the labels, title and axis
    scales given, and a legend at font size ``legend`` (None: no legend); then lay out, save and close.
    Returns ``[path]``, what an experiment's ``plot`` returns. Several axes: call :func:`style` on each,
    then this."""
    if ax is not None:
        style(ax, xlabel=xlabel, ylabel=ylabel, title=title, xscale=xscale, yscale=yscale, legend=legend)
    return [save_figure(fig, outdir, name, dpi=dpi)]


def style(ax, *, xlabel: str | None = None, ylabel: str | None = None, title: str | None = None,
          xscale: str | None = None, yscale: str | None = None, legend: float | None = None) -> None:
    """Set what is given on one axes: labels, title, axis scales, and a legend at font size ``legend``."""
    if xscale:
        ax.set_xscale(xscale)
    if yscale:
        ax.set_yscale(yscale)
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    if legend is not None:
        ax.legend(fontsize=legend)
