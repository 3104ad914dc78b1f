"""Shared plumbing of genlab's plots: headless figures of an exact pixel size, saved atomically.

Plots build a :class:`matplotlib.figure.Figure` with the Agg canvas directly (no pyplot, no
global backend switch, no display needed), so they work on servers and in tests, and a
figure's pixel size is known in advance: ``width_px x height_px`` at ``dpi``.
"""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from genlab.errors import ConfigError


def new_figure(width_px: int, height_px: int, *, dpi: int = 100) -> Figure:
    """An Agg-backed figure of exactly ``width_px x height_px`` pixels when saved."""
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, out: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as a PNG to ``out`` atomically and return the path.

    The image goes to a temporary file in the same folder first and is then renamed over
    ``out``, so a reader never sees a half-written PNG. Parent folders are created.

    Raises:
        ConfigError: ``out`` does not end in ``.png``.
    """
    path = Path(out)
    if path.suffix.lower() != ".png":
        raise ConfigError(f"Expected an output path ending in .png, but found {str(path)!r}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, format="png", dpi=fig.dpi)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
