"""2-D density pictures: data | model density | samples, side by side.

For a model with a likelihood the middle panel is the density ``p(x) = exp(log p(x))`` on a
grid. GANs have no density, and diffusion models only a bound that costs many network calls,
so for them the middle panel is a 2-D histogram of many samples, titled so.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from genlab.errors import ConfigError, DataError, ShapeError
from genlab.viz.core import new_figure, save_figure

LogDensity = Callable[[Tensor], Tensor]
_MAX_SCATTER = 5000  # points drawn per scatter panel (evenly strided subset)


def _points(x: Any, name: str) -> Tensor:
    x = getattr(x, "x", x)  # a Dataset or a tensor
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ShapeError(f"Expected {name} of shape (n, 2), but found {shape}.")
    x = x.detach().cpu().double()
    if not torch.isfinite(x).all():
        raise DataError(f"Expected finite {name}, but found NaN or Inf.")
    return x


def _default_bounds(x: Tensor) -> tuple[float, float, float, float]:
    """A square box around the data with a 10% margin."""
    lo, hi = x.min(0).values, x.max(0).values
    centre, half = (lo + hi) / 2, 0.55 * (hi - lo).max().clamp_min(1e-6)
    return (centre[0] - half).item(), (centre[0] + half).item(), \
        (centre[1] - half).item(), (centre[1] + half).item()


def _is_model(obj: Any) -> bool:
    return hasattr(obj, "sample") and hasattr(obj, "has_exact_likelihood")


def _model_log_density(model: Any) -> LogDensity:
    """log p(x) of a model; for a conditional model the mixture over uniformly likely labels."""

    def log_density(points: Tensor) -> Tensor:
        points = points.to(device=model.device, dtype=model.dtype)
        if model.num_classes is None:
            return model.log_prob(points)
        per_class = torch.stack([model.log_prob(points, k) for k in range(model.num_classes)])
        return per_class.logsumexp(0) - math.log(model.num_classes)  # p(x) = mean_y p(x | y)

    return log_density


def _model_samples(model: Any, n: int, generator: torch.Generator | None) -> Tensor:
    y = None
    if model.num_classes is not None:
        y = torch.randint(model.num_classes, (n,), generator=generator)
    return model.sample(n, y, generator=generator).detach().cpu().double()


def density_2d_figure(
    model_or_logdensity: Any,
    data: Any,
    samples: Any = None,
    *,
    bounds: Sequence[float] | None = None,
    resolution: int = 200,
    num_hist_samples: int = 20000,
    generator: torch.Generator | None = None,
) -> Figure:
    """The three-panel figure of :func:`plot_density_2d` (1200 x 400 pixels)."""
    x = _points(data, "data")
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
        raise ConfigError(f"Expected resolution to be an int >= 2, but found {resolution!r}.")
    is_model = _is_model(model_or_logdensity)
    if not is_model and not callable(model_or_logdensity):
        raise ConfigError("Expected a genlab model or a function x -> log p(x), but found "
                          f"{type(model_or_logdensity).__name__}.")
    if samples is None and not is_model:
        raise ConfigError("Expected samples when no model is given to draw them from.")
    if samples is None:
        samples = _model_samples(model_or_logdensity, min(len(x), 2000), generator)
    s = _points(samples, "samples")
    box = tuple(float(b) for b in bounds) if bounds is not None else _default_bounds(x)
    if len(box) != 4 or not (box[0] < box[1] and box[2] < box[3]):
        raise ConfigError(f"Expected bounds (xmin, xmax, ymin, ymax), but found {bounds!r}.")

    fig = new_figure(1200, 400)
    axes = fig.subplots(1, 3)
    for ax, pts, title in ((axes[0], x, "data"), (axes[2], s, "samples")):
        step = max(1, math.ceil(len(pts) / _MAX_SCATTER))
        ax.scatter(pts[::step, 0], pts[::step, 1], s=2, alpha=0.4, linewidths=0)
        ax.set_title(f"{title} (n={len(pts)})")

    ax = axes[1]
    if is_model and not model_or_logdensity.has_exact_likelihood:
        # no density to evaluate: show where many samples land instead
        many = _points(_model_samples(model_or_logdensity, num_hist_samples, generator),
                       "model samples")
        ax.hist2d(many[:, 0].numpy(), many[:, 1].numpy(), bins=min(resolution, 200),
                  range=[box[:2], box[2:]], cmap="viridis")
        ax.set_title(f"model: histogram of {num_hist_samples} samples (no density)")
    else:
        log_density = (_model_log_density(model_or_logdensity) if is_model
                       else model_or_logdensity)
        gx = torch.linspace(box[0], box[1], resolution, dtype=torch.float64)
        gy = torch.linspace(box[2], box[3], resolution, dtype=torch.float64)
        grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), -1).reshape(-1, 2)  # (r*r, 2)
        with torch.no_grad():
            logp = torch.cat([log_density(grid[i:i + 65536]).detach().cpu().double()
                              for i in range(0, len(grid), 65536)])
        density = torch.nan_to_num(logp.exp(), nan=0.0, posinf=0.0).reshape(resolution,
                                                                           resolution)
        ax.imshow(density.numpy(), origin="lower", extent=box, aspect="auto", cmap="viridis",
                  interpolation="nearest")
        ax.set_title("model density p(x)")
    for ax in axes:
        ax.set_xlim(box[0], box[1])
        ax.set_ylim(box[2], box[3])
        ax.set_aspect("equal", adjustable="box")
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def plot_density_2d(
    model_or_logdensity: Any,
    data: Any,
    samples: Any,
    out: str | os.PathLike[str],
    *,
    bounds: Sequence[float] | None = None,
    resolution: int = 200,
    num_hist_samples: int = 20000,
    generator: torch.Generator | None = None,
) -> Path:
    """Save data | model density | samples as one 1200 x 400 PNG and return its path.

    Arguments:
        model_or_logdensity: A 2-D genlab model, or a function mapping points ``(m, 2)`` to
            log densities ``(m,)``. Models with an exact likelihood are drawn as the density
            ``p(x)`` on a grid (a conditional model as ``mean_y p(x | y)``); models without
            one (GAN, diffusion) as a 2-D histogram of ``num_hist_samples`` samples.
        data: Data points, a Dataset or a tensor ``(n, 2)``.
        samples: Samples ``(n, 2)`` for the third panel; None draws them from the model.
        out: Output ``.png`` path (written atomically).
        bounds: ``(xmin, xmax, ymin, ymax)``; default a square box around the data.
        resolution: Grid points per axis of the density panel.
        num_hist_samples: Samples in the histogram panel of models without a density.
        generator: Source of the samples drawn here.

    Returns:
        The path of the PNG.
    """
    fig = density_2d_figure(model_or_logdensity, data, samples, bounds=bounds,
                            resolution=resolution, num_hist_samples=num_hist_samples,
                            generator=generator)
    return save_figure(fig, out)
