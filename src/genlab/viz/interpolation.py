r"""Latent interpolation: walk between two latent codes and look at what the model makes of it.

A model with a latent space (a flow's :math:`z = f^{-1}(x)`, a GAN's noise z, a VAE's posterior
mean) maps every point of a path :math:`z(s)`, :math:`s \in [0, 1]`, to data. Smooth, plausible
images all along the path mean the latent space is organised; abrupt jumps or blurry
in-betweens mean it is not.

For Gaussian latents the path is spherical (:func:`slerp`; White, "Sampling Generative
Networks", 2016): in high dimension almost all of N(0, I)'s mass lies near the sphere of radius
:math:`\sqrt{d}`, and the straight line between two typical points passes well inside it, where
the model saw no training latents. :func:`lerp` is the straight line.

:func:`plot_interpolation` draws the paths: one strip of images per path (image data), or for
2-D points the decoded paths over the data.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from genlab.errors import ConfigError, ShapeError
from genlab.viz.core import new_figure, save_figure
from genlab.viz.grid import image_grid_figure


def _fractions(steps: int, like: Tensor) -> Tensor:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ConfigError(f"Expected steps to be an int >= 2, but found {steps!r}.")
    return torch.linspace(0.0, 1.0, steps, dtype=like.dtype, device=like.device)


def lerp(z0: Tensor, z1: Tensor, steps: int) -> Tensor:
    """Straight-line path ``(1 - s) z0 + s z1`` at ``steps`` evenly spaced s in [0, 1].

    Arguments:
        z0, z1: End points of shape ``(n, *shape)``.
        steps: Points per path, ends included (>= 2).

    Returns:
        Shape ``(n, steps, *shape)``.
    """
    if z0.shape != z1.shape:
        raise ShapeError(f"Expected end points of one shape, but found {tuple(z0.shape)} and "
                         f"{tuple(z1.shape)}.")
    s = _fractions(steps, z0).reshape(1, steps, *([1] * (z0.dim() - 1)))
    return (1 - s) * z0.unsqueeze(1) + s * z1.unsqueeze(1)


def slerp(z0: Tensor, z1: Tensor, steps: int) -> Tensor:
    r"""Spherical path between ``z0`` and ``z1``, each flattened per sample:

    .. math:: z(s) = \frac{\sin((1 - s)\Omega)}{\sin \Omega} z_0
                     + \frac{\sin(s \Omega)}{\sin \Omega} z_1,
       \quad \cos \Omega = \frac{z_0 \cdot z_1}{|z_0| |z_1|}.

    The ends are exact; between them the norm stays between the ends' (equal norms: constant).
    Nearly parallel ends fall back to :func:`lerp`, the limit as :math:`\Omega \to 0`.

    Returns:
        Shape ``(n, steps, *shape)``.
    """
    straight = lerp(z0, z1, steps)  # also checks the shapes and steps
    a, b = z0.reshape(z0.shape[0], -1), z1.reshape(z1.shape[0], -1)  # (n, d)
    cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))[:, None]  # (n, 1)
    s = _fractions(steps, z0)[None, :]  # (1, steps)
    sin = torch.sin(omega).clamp_min(1e-6)
    w0 = torch.sin((1 - s) * omega) / sin  # (n, steps)
    w1 = torch.sin(s * omega) / sin
    path = w0[..., None] * a[:, None] + w1[..., None] * b[:, None]  # (n, steps, d)
    path = path.reshape(straight.shape)
    parallel = (omega[:, 0] < 1e-4).reshape(-1, *([1] * (straight.dim() - 1)))
    return torch.where(parallel, straight, path)


def plot_interpolation(paths: Tensor, out: str | os.PathLike[str], *,
                       num_levels: int | None = None, data: Tensor | None = None,
                       title: str | None = None) -> Path:
    """Draw decoded interpolation paths into a PNG.

    Arguments:
        paths: Decoded paths ``(rows, steps, *event_shape)``: images ``(c, h, w)`` give one
            strip of ``steps`` panels per row; 2-D points ``(2,)`` give one line per row,
            drawn over ``data``.
        out: The ``.png`` path.
        num_levels: Pixel levels of integer images (shown as ``x / (L - 1)``).
        data: Points ``(n, 2)`` to draw in grey behind 2-D paths.
        title: Title of a 2-D plot.

    Returns:
        The path written: ``rows * steps`` image panels (80 px each), or one 2-D axes.

    Raises:
        ConfigError: data that are neither images nor 2-D points.
    """
    if paths.dim() < 3:
        raise ShapeError(f"Expected paths of shape (rows, steps, *event_shape), but found "
                         f"{tuple(paths.shape)}.")
    rows, steps = paths.shape[:2]
    event_shape = tuple(paths.shape[2:])
    if len(event_shape) == 3:
        images = paths.reshape(rows * steps, *event_shape)
        return save_figure(image_grid_figure(images, nrow=steps, num_levels=num_levels), out)
    if event_shape != (2,):
        raise ConfigError(f"Expected images (c, h, w) or 2-D points to draw an interpolation, "
                          f"but found event shape {event_shape}.")
    fig = new_figure(480, 480)
    ax = fig.add_subplot(1, 1, 1)
    if data is not None:
        d = np.asarray(data.detach().cpu(), dtype=np.float64).reshape(-1, 2)
        ax.scatter(d[:, 0], d[:, 1], s=2, c="0.75", label="data")
    p = paths.detach().cpu().double().numpy()
    for r in range(rows):
        line = ax.plot(p[r, :, 0], p[r, :, 1], marker="o", markersize=3, lw=1)[0]
        ax.plot(p[r, [0, -1], 0], p[r, [0, -1], 1], "s", color=line.get_color(), markersize=6)
    ax.set_title(title or f"{rows} latent interpolations, {steps} points each")
    ax.set_aspect("equal", adjustable="datalim")
    fig.tight_layout()
    return save_figure(fig, out)


#: Paths per picture and points per path of ``genlab plot RUN --kind interpolation``.
ROWS, STEPS = 6, 8


def plot_data_interpolation(model, run_dir: str | os.PathLike[str],
                            out: str | os.PathLike[str], *, seed: int = 0) -> Path:
    """The ``interpolation`` picture of a model with ``interpolate(x0, x1, steps, y)`` (flows,
    VAEs): ``ROWS`` pairs of test points of the run's data set, drawn with seed ``seed``,
    joined through the latent space. A conditional model keeps the first point's label along
    the path."""
    from genlab.runs import run_data

    test = run_data(run_dir, "test")
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(test), generator=g)[: 2 * ROWS]
    rows = len(pick) // 2
    x = test.x[pick].to(model.device)
    y = None if not model.conditional or test.y is None else test.y[pick[:rows]]
    paths = model.interpolate(x[:rows], x[rows : 2 * rows], STEPS, y)
    return plot_interpolation(paths.cpu(), out, num_levels=model.num_levels, data=test.x)
