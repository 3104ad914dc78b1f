"""RBM pictures: the learned filters and Gibbs chains.

* :func:`plot_filters`: hidden unit j's weights ``W[:, :, j]`` as an image of the data's
  shape. Binary and binomial units have one weight per pixel; categorical units have one per
  level, shown as their pull towards higher levels, ``sum_l (l - mean level) W[d, l, j]``.
  Each filter is scaled on its own, grey = 0.
* :func:`plot_chains`: independent Gibbs chains from the base-rate model, one per row, at
  0, 1, 2, 5, 10, ... sweeps: how fast the sampler forgets where it started.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from genlab.viz.core import new_figure, save_figure

#: Sweeps at which :func:`plot_chains` shows each chain.
CHAIN_SWEEPS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


def _image_shape(model: Any) -> tuple[int, ...]:
    shape = model.event_shape
    return shape if len(shape) == 3 and shape[0] == 1 else (1, 1, model.event_dim)


def _tile(images: torch.Tensor) -> torch.Tensor:
    """Grey images ``(rows, cols, 1, h, w)`` in [0, 1] to one picture ``(rows (h+1) - 1,
    cols (w+1) - 1)`` with white one-pixel gaps (one ``imshow`` however many images)."""
    rows, cols, _, h, w = images.shape
    out = torch.ones(rows, h + 1, cols, w + 1)
    out[:, :h, :, :w] = images[:, :, 0].permute(0, 2, 1, 3)
    return out.reshape(rows * (h + 1), cols * (w + 1))[:-1, :-1]


def _draw(picture: torch.Tensor, out: Path, *, cell: int, columns: list[str] | None = None,
          cols: int = 1) -> Path:
    height, width = picture.shape
    scale = max(1, cell // 8)
    top = 20 if columns else 0
    fig = new_figure(width * scale + 10, height * scale + 10 + top)
    ax = fig.add_axes((5 / (width * scale + 10), 5 / (height * scale + 10 + top),
                       width * scale / (width * scale + 10),
                       height * scale / (height * scale + 10 + top)))
    ax.imshow(picture.numpy(), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_yticks([])
    if columns:
        step = (width + 1) / cols
        ax.set_xticks([step * (i + 0.5) - 1 for i in range(cols)], columns, fontsize=7)
        ax.xaxis.tick_top()
        ax.tick_params(length=0)
    else:
        ax.set_xticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    return save_figure(fig, out)


def filters(model: Any, count: int = 64) -> torch.Tensor:
    """The first ``count`` filters, shape ``(count, *image shape)``, each scaled to [0, 1]
    with 0.5 for a zero weight."""
    weight = model.weight.detach().cpu().float()  # (D, K, H)
    if weight.shape[1] > 1:  # categorical: the pull towards higher levels
        levels = torch.arange(weight.shape[1], dtype=weight.dtype)
        weight = torch.einsum("l,dlh->dh", levels - levels.mean(), weight)
    else:
        weight = weight[:, 0]
    w = weight.T[:count]  # (count, D)
    w = 0.5 + 0.5 * w / w.abs().amax(1, keepdim=True).clamp_min(1e-12)
    return w.reshape(len(w), *_image_shape(model))


def plot_filters(model: Any, out: Path, *, count: int = 64) -> Path:
    """Save the learned filters (:func:`filters`) as one image grid."""
    images = filters(model, count)  # (m, 1, h, w)
    cols = min(8, len(images))
    rows = -(-len(images) // cols)
    padded = torch.ones(rows * cols, *images.shape[1:])
    padded[: len(images)] = images
    return _draw(_tile(padded.reshape(rows, cols, *images.shape[1:])), out, cell=48)


def plot_chains(model: Any, out: Path, *, chains: int = 8, seed: int = 0,
                sweeps: tuple[int, ...] = CHAIN_SWEEPS) -> Path:
    """Save ``chains`` Gibbs chains (rows) at the given ``sweeps`` (columns)."""
    generator = torch.Generator(device=model.device).manual_seed(seed)
    y = torch.arange(chains, device=model.device) % model.num_classes if model.conditional \
        else None
    model.eval()
    frames, done = [], 0
    with torch.no_grad():
        v = model.base_sample(chains, generator)  # (chains, D)
        for sweep in sweeps:
            v = model.gibbs(v, y, sweep - done, generator)
            done = sweep
            frames.append(v.reshape(chains, *_image_shape(model)).cpu())
    images = torch.stack(frames, 1) / (model.num_levels - 1)  # (chains, columns, 1, h, w)
    return _draw(_tile(images), out, cell=48, columns=[str(s) for s in sweeps],
                 cols=len(sweeps))
