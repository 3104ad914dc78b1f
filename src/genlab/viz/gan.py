"""GAN plots: sample snapshots during training and the training report.

* :func:`plot_samples`: a scatter of samples over the data (2-D) or an image grid: the
  course's "output of a GAN after 5 epochs of training", one per diagnostics check.
* :func:`plot_training_report`: both players' losses, mean D(x) and D(G(z)), gradient norms
  and mode coverage against the step, from ``metrics.jsonl`` records.
* :func:`plot_snapshots`: a row of saved snapshots, first to last, to see training progress
  at a glance.

Figures come from :func:`genlab.viz.core.new_figure` and are written atomically with
:func:`genlab.viz.core.save_figure`. Image snapshots are tiled into one picture (one
``imshow``), which keeps a snapshot every few hundred steps cheap.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.image import imread
from torch import Tensor

from genlab.errors import DataError
from genlab.viz.core import new_figure, save_figure


def image_grid(images: Tensor | np.ndarray, num_levels: int | None = None) -> np.ndarray:
    """Tile images ``(n, c, h, w)`` into one array ``(rows * h, cols * w[, c])`` in [0, 1].

    Discrete images are divided by ``num_levels - 1``; continuous ones are scaled by their own
    minimum and maximum. Gaps between tiles are one pixel wide.
    """
    x = torch.as_tensor(images).detach().float().cpu()
    n, c, h, w = x.shape
    if num_levels is not None:
        x = x / (num_levels - 1)
    else:
        x = (x - x.min()) / (x.max() - x.min()).clamp_min(1e-12)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = torch.ones(c, rows * (h + 1) - 1, cols * (w + 1) - 1)
    for i in range(n):
        r, q = divmod(i, cols)
        grid[:, r * (h + 1) : r * (h + 1) + h, q * (w + 1) : q * (w + 1) + w] = x[i]
    grid = grid.clamp(0, 1).numpy()
    return grid[0] if c == 1 else np.moveaxis(grid[:3], 0, -1)  # (H, W) or (H, W, 3)


def plot_samples(
    samples: Tensor | np.ndarray,
    path: str | Path,
    *,
    data: Tensor | np.ndarray | None = None,
    num_levels: int | None = None,
    title: str = "",
) -> Path:
    """Save a scatter (vectors; first two coordinates) or a grid (images) of ``samples``.

    Arguments:
        samples: Shape ``(n, d)`` or ``(n, c, h, w)``.
        path: PNG file to write (folders are created).
        data: Real samples drawn underneath a scatter, same layout.
        num_levels: Pixel levels of discrete images (for the grey scale).
        title: Figure title, e.g. ``"step 500"``.

    Returns:
        The path written.
    """
    s = torch.as_tensor(samples).detach().float().cpu()
    fig = new_figure(400, 400)
    ax = fig.add_subplot()
    if s.dim() == 4:
        ax.imshow(image_grid(s, num_levels), cmap="gray", vmin=0, vmax=1)
        ax.axis("off")
    else:
        s = s.reshape(s.shape[0], -1)
        if data is not None:
            d = torch.as_tensor(data).detach().float().cpu().reshape(-1, s.shape[1])
            ax.scatter(d[:, 0], d[:, -1], s=2, c="0.7", alpha=0.5, label="data")
        ax.scatter(s[:, 0], s[:, -1], s=2, c="tab:red", alpha=0.5, label="samples")
        ax.set_aspect("equal", adjustable="datalim")
        ax.legend(loc="upper right", fontsize=7, markerscale=4)
    ax.set_title(title, fontsize=9)
    fig.subplots_adjust(left=0.08, right=0.97, bottom=0.06, top=0.92)
    return save_figure(fig, path)


def _series(records: Sequence[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    steps, values = [], []
    for r in records:
        v = r.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            steps.append(r.get("step", len(steps)))
            values.append(float(v))
    return steps, values


def _plot_keys(
    ax: Any, records: Sequence[dict[str, Any]], keys: Iterable[tuple[str, str]]
) -> bool:
    drawn = False
    for key, label in keys:
        steps, values = _series(records, key)
        if values:
            ax.plot(steps, values, label=label, lw=1)
            drawn = True
    if drawn:
        ax.legend(fontsize=7)
    return drawn


def plot_training_report(records: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Save the four diagnostics panels of a GAN run as one PNG.

    Panels: (1) discriminator and generator losses; (2) mean D(x) and D(G(z)) (probabilities)
    or mean critic scores; (3) gradient norm of each player; (4) modes hit and the fraction
    of high-quality samples (when the data have known modes), else the sample spread.

    Arguments:
        records: ``metrics.jsonl`` records (dicts with ``"step"`` and numbers).
        path: PNG file to write.

    Returns:
        The path written.
    """
    fig = new_figure(800, 560, dpi=80)
    axes = fig.subplots(2, 2)
    ax = axes[0, 0]
    _plot_keys(ax, records, [("loss_discriminator", "discriminator"),
                             ("loss_generator", "generator")])
    ax.set_title("losses")
    ax = axes[0, 1]
    if _plot_keys(ax, records, [("d_real", "D(x)"), ("d_fake", "D(G(z))"),
                                ("check_d_real", "D(x), check"),
                                ("check_d_fake", "D(G(z)), check")]):
        ax.set_ylim(-0.02, 1.02)
        ax.axhline(0.5, c="0.6", lw=0.8, ls="--")
        ax.set_title("mean D(x) = Pr(real | x)")
    else:
        _plot_keys(ax, records, [("critic_real", "critic on x"),
                                 ("critic_fake", "critic on G(z)")])
        ax.set_title("mean critic score")
    ax = axes[1, 0]
    _plot_keys(ax, records, [("grad_norm_discriminator", "discriminator"),
                             ("grad_norm_generator", "generator")])
    ax.set_yscale("log")
    ax.set_title("gradient norm")
    ax = axes[1, 1]
    if _series(records, "modes_hit")[1]:
        _plot_keys(ax, records, [("modes_hit", "modes hit")])
        num_modes = max(_series(records, "num_modes")[1], default=1)
        ax.set_ylim(-0.5, num_modes + 0.5)
        ax.set_ylabel("modes")
        twin = ax.twinx()
        steps, hq = _series(records, "high_quality_fraction")
        twin.plot(steps, hq, c="tab:green", lw=1, label="high quality")
        twin.set_ylim(0, 1.02)
        twin.set_ylabel("high-quality fraction")
        ax.set_title("mode coverage")
    else:
        _plot_keys(ax, records, [("sample_spread", "sample std / data std")])
        ax.set_title("sample spread")
    for ax in axes.flat:
        ax.set_xlabel("step")
    fig.subplots_adjust(left=0.07, right=0.93, bottom=0.08, top=0.95, wspace=0.3, hspace=0.35)
    return save_figure(fig, path)


def plot_snapshots(paths: Sequence[str | Path], path: str | Path, *, count: int = 6) -> Path:
    """Save a row of up to ``count`` snapshot PNGs, evenly spaced from the first to the last.

    Arguments:
        paths: Snapshots in step order, named ``step_XXXXXX.png`` (the step is the title).
        path: PNG file to write.
        count: Most snapshots shown.

    Returns:
        The path written.
    """
    if not paths:
        raise DataError("Expected at least one snapshot, but found none.")
    picks = sorted({round(i * (len(paths) - 1) / max(count - 1, 1))
                    for i in range(min(count, len(paths)))})
    fig = new_figure(240 * len(picks), 260)
    for i, k in enumerate(picks):
        ax = fig.add_subplot(1, len(picks), i + 1)
        ax.imshow(imread(str(paths[k])))
        ax.axis("off")
        step = Path(paths[k]).stem.removeprefix("step_").lstrip("0") or "0"
        ax.set_title(f"step {step}", fontsize=9)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.9, wspace=0.05)
    return save_figure(fig, path)
