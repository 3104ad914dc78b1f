"""The VAE's pictures of a trained run: its latent manifold and reconstructions
(``genlab plot RUN --kind manifold|reconstructions``; ``interpolation`` is drawn by
:mod:`genlab.viz.interpolation`, as for flows).

Images are drawn as image grids; 2-D points as scatter plots over the test data. Latent
codes of data are posterior means; decoded images are the decoder's most likely levels (the
mean for continuous data), which show the shape a code stands for without pixel noise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from genlab.viz.core import new_figure, save_figure
from genlab.viz.grid import _to_display

GRID = 12  # latent grid points per axis of the manifold
SHOWN = 16  # reconstructions


def _tiles(images: Tensor, out: Path, nrow: int, num_levels: int | None, title: str) -> Path:
    """``(n, c, h, w)`` images tiled row by row into one picture (one image call: grids of
    a hundred and more small images draw in a fraction of a second)."""
    x = _to_display(images, num_levels)  # (n, h, w[, 3]) in [0, 1]
    n, h, w = x.shape[:3]
    rows = -(-n // nrow)
    canvas = np.ones((rows * (h + 1) - 1, nrow * (w + 1) - 1, *x.shape[3:]))
    for i in range(n):
        r, c = divmod(i, nrow)
        canvas[r * (h + 1): r * (h + 1) + h, c * (w + 1): c * (w + 1) + w] = x[i]
    scale = max(1, 640 // canvas.shape[1])
    fig = new_figure(canvas.shape[1] * scale, canvas.shape[0] * scale + 24)
    ax = fig.add_axes((0, 0, 1, canvas.shape[0] * scale / (canvas.shape[0] * scale + 24)))
    ax.imshow(canvas, cmap="gray" if canvas.ndim == 2 else None, vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_axis_off()
    fig.suptitle(title, fontsize=9, y=0.995, va="top")
    return save_figure(fig, out)


def _test_data(model: Any, run_dir: Path, n: int) -> tuple[Tensor, Tensor | None]:
    from genlab.runs import run_data

    data = run_data(run_dir, split="test")
    y = None if data.y is None or not model.conditional else data.y[:n].to(model.device)
    return data.x[:n].to(device=model.device, dtype=model.dtype), y


def _labels(model: Any, y: Tensor | None, n: int) -> Tensor | None:
    if not model.conditional:
        return None
    if model.y_is_conditions:  # the first test digit's conditions, n times
        return y.index(torch.zeros(n, dtype=torch.long, device=y.device))
    first = 0 if y is None else int(y[0])
    return torch.full((n,), first, dtype=torch.long, device=model.device)


def _points(model: Any, run_dir: Path, out: Path, title: str, lines: list[np.ndarray],
            dots: np.ndarray | None) -> Path:
    """2-D points: the test data in grey, ``lines`` (each ``(k, 2)``) and ``dots`` on top."""
    data, _ = _test_data(model, run_dir, 2000)
    fig = new_figure(480, 480)
    ax = fig.add_subplot(1, 1, 1)
    x = data.cpu().numpy()
    ax.scatter(x[:, 0], x[:, 1], s=3, c="0.75", label="test data")
    for line in lines:
        ax.plot(line[:, 0], line[:, 1], "-", lw=1, marker=".", ms=4)
    if dots is not None:
        ax.scatter(dots[:, 0], dots[:, 1], s=6, c=np.arange(len(dots)), cmap="viridis")
    ax.set_title(title, fontsize=9)
    return save_figure(fig, out)


def latent_grid(latent_size: int, m: int = GRID) -> Tensor:
    """``(m * m, latent_size)`` latents on the first two axes at the standard normal's
    quantiles ``(i + 1/2) / m`` (equal prior mass per cell), the other axes at 0; with one
    latent dimension, ``(m, 1)``."""
    q = torch.special.ndtri((torch.arange(m, dtype=torch.float64) + 0.5) / m).float()
    if latent_size == 1:
        return q[:, None]
    z = torch.zeros(m * m, latent_size)
    z[:, 0] = q.repeat(m)  # columns: first latent dimension
    z[:, 1] = q.flip(0).repeat_interleave(m)  # rows: second, increasing upwards
    return z


def plot_manifold(model: Any, run_dir: Path, out: Path) -> Path:
    """Decode :func:`latent_grid`: an ``m x m`` image grid, or the decoded points in 2-D."""
    model.eval()
    z = latent_grid(model.latent_size).to(device=model.device, dtype=model.dtype)
    _, y = _test_data(model, run_dir, 1)
    with torch.no_grad():
        x = model.decode(z, _labels(model, y, len(z))).cpu()
    if len(model.event_shape) == 3:
        return _tiles(x, out, GRID, model.num_levels,
                      "decoded latent grid: z1 left to right, z2 bottom to top")
    rows = x.reshape(-1, GRID, x.shape[-1]).numpy() if model.latent_size > 1 else [x.numpy()]
    return _points(model, run_dir, out, "decoded latent grid (rows: second latent axis)",
                   list(rows), None)


def plot_reconstructions(model: Any, run_dir: Path, out: Path) -> Path:
    """Test inputs (odd rows) above their reconstructions from the posterior mean."""
    model.eval()
    x, y = _test_data(model, run_dir, SHOWN)
    with torch.no_grad():
        recon = model.decode(model.encode(x, y), y)
    if len(model.event_shape) == 3:
        half = SHOWN // 2
        rows = torch.cat([x[:half], recon[:half], x[half:], recon[half:]]).cpu()
        return _tiles(rows, out, half, model.num_levels,
                      "test inputs (rows 1, 3) and their reconstructions (rows 2, 4)")
    pairs = torch.stack([x, recon], dim=1).cpu().numpy()  # (n, 2, 2): input -> reconstruction
    return _points(model, run_dir, out, "test points -> reconstructions (dots)",
                   list(pairs), pairs[:, 1])
