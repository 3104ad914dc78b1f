"""Image sample grids: ``(n, c, h, w)`` images laid out row by row, one PNG."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from genlab.errors import ConfigError, DataError, ShapeError
from genlab.viz.core import new_figure, save_figure

#: Pixels per grid cell (the image and its margin), and per title strip.
CELL_PX = 80
TITLE_PX = 20


def _to_display(images: torch.Tensor | np.ndarray, num_levels: int | None) -> np.ndarray:
    """Images ``(n, c, h, w)`` or ``(n, h, w)`` -> float array ``(n, h, w[, 3])`` in [0, 1]."""
    x = images.detach().cpu().double().numpy() if isinstance(images, torch.Tensor) else (
        np.asarray(images, dtype=np.float64))
    if x.ndim == 3:
        x = x[:, None]  # (n, 1, h, w)
    if x.ndim != 4 or x.shape[1] not in (1, 3) or x.shape[0] < 1:
        raise ShapeError(f"Expected images of shape (n, c, h, w) with c = 1 or 3, but found "
                         f"{x.shape}.")
    if not np.isfinite(x).all():
        raise DataError("Expected finite image values, but found NaN or Inf.")
    if num_levels is not None:
        x = x / (num_levels - 1)  # integer levels 0..L-1 -> [0, 1]
    elif x.min() < 0 or x.max() > 1:
        x = (x - x.min()) / max(x.max() - x.min(), 1e-12)  # one scale for the whole grid
    x = np.clip(x, 0.0, 1.0)
    return x[:, 0] if x.shape[1] == 1 else x.transpose(0, 2, 3, 1)  # (n, h, w[, 3])


def image_grid_figure(
    images: torch.Tensor | np.ndarray,
    *,
    nrow: int | None = None,
    num_levels: int | None = None,
    titles: Sequence[str] | None = None,
) -> Figure:
    """A figure showing ``images`` in a grid, ``nrow`` images per row.

    Size: ``(ncols * 80) x (rows * 80)`` pixels, plus 20 pixels per row with titles.
    See :func:`plot_image_grid` for the arguments.
    """
    x = _to_display(images, num_levels)
    n = x.shape[0]
    if nrow is not None and (isinstance(nrow, bool) or not isinstance(nrow, int) or nrow < 1):
        raise ConfigError(f"Expected nrow to be a positive int, but found {nrow!r}.")
    if titles is not None and len(titles) != n:
        raise ShapeError(f"Expected {n} titles, one per image, but found {len(titles)}.")
    ncols = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / ncols)
    cell_h = CELL_PX + (TITLE_PX if titles is not None else 0)
    width, height = ncols * CELL_PX, rows * cell_h
    fig = new_figure(width, height)
    margin = 3  # pixels of white between neighbouring images
    for i in range(n):
        r, c = divmod(i, ncols)
        left = (c * CELL_PX + margin) / width
        bottom = 1.0 - ((r + 1) * cell_h - margin) / height
        ax = fig.add_axes((left, bottom, (CELL_PX - 2 * margin) / width,
                           (CELL_PX - 2 * margin) / height))
        ax.imshow(x[i], cmap="gray" if x.ndim == 3 else None, vmin=0.0, vmax=1.0,
                  interpolation="nearest")
        ax.set_axis_off()
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8, pad=2)
    return fig


def plot_image_grid(
    images: torch.Tensor | np.ndarray,
    out: str | os.PathLike[str],
    *,
    nrow: int | None = None,
    num_levels: int | None = None,
    titles: Sequence[str] | None = None,
) -> Path:
    """Save a grid of images as a PNG and return its path.

    Arguments:
        images: Shape ``(n, c, h, w)`` (c = 1 grey or 3 RGB) or ``(n, h, w)``.
        out: Output ``.png`` path (written atomically).
        nrow: Images per row (default ``ceil(sqrt(n))``).
        num_levels: For integer data in ``[0, L)`` (17 for digits): shown as ``x / (L - 1)``.
            Without it, values in [0, 1] are shown as they are and other ranges are scaled by
            the grid's min and max.
        titles: One caption per image (e.g. class labels).

    Returns:
        The path of the PNG: ``(ncols * 80) x (rows * 80)`` pixels (+20 per row with titles).
    """
    return save_figure(image_grid_figure(images, nrow=nrow, num_levels=num_levels,
                                         titles=titles), out)
