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

from genlab.viz.core import save_figure
from genlab.viz.grid import image_grid_figure

#: Sweeps at which :func:`plot_chains` shows each chain.
CHAIN_SWEEPS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


def _image_shape(model: Any) -> tuple[int, ...]:
    shape = model.event_shape
    return shape if len(shape) == 3 and shape[0] in (1, 3) else (1, 1, model.event_dim)


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
    images = filters(model, count)
    return save_figure(image_grid_figure(images, nrow=min(8, len(images))), out)


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
    images = torch.stack(frames, 1).flatten(0, 1)  # (chains * columns, c, h, w), row-major
    titles = [str(s) for s in sweeps] + [""] * (len(images) - len(sweeps))
    figure = image_grid_figure(images, nrow=len(sweeps), num_levels=model.num_levels,
                               titles=titles)
    return save_figure(figure, out)
