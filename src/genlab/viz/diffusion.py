"""Pictures of the two diffusion processes.

* :func:`plot_forward_process` -- "what happens to a distribution in the forward diffusion":
  the diffused data distribution

      q(x_t) = integral q(x_0) q(x_t | x_0) dx_0,   q(x_t | x_0) = N(sqrt(ab_t) x_0, (1 - ab_t) I),

  at several t. For the empirical data distribution the integral is a sum, so for 2-D data
  each panel shows the exact density of q(x_t) (a Gaussian convolution of the data: one
  Gaussian per data point) with draws x_t ~ q(x_t) on top. For images it is a strip of the
  same images noisier and noisier.
* :func:`plot_reverse_trajectory` -- the reverse process of a trained model, from N(0, I) to
  data: scatter panels plus a few particle paths for 2-D data; a strip per sample for images.
* :func:`plot_run` -- either picture of a trained run (``genlab plot RUN --kind NAME``).

Both work in data units for continuous data (the model's working space times its
``data_scale``) and show images as the working space (-1, 1) mapped to grey levels.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from genlab.data.transforms import to_symmetric
from genlab.errors import ConfigError, ShapeError
from genlab.models.diffusion.schedule import NoiseSchedule
from genlab.viz.core import new_figure, save_figure
from genlab.viz.grid import image_grid_figure

PANEL_PX = 220


def default_timesteps(num_timesteps: int) -> list[int]:
    """Six indices from clean to pure noise: 0, T/20, T/10, T/4, T/2, T - 1."""
    fractions = (0.0, 0.05, 0.1, 0.25, 0.5, 1.0)
    return sorted({min(round(f * num_timesteps), num_timesteps - 1) for f in fractions})


def _data_tensor(data: Any) -> tuple[Tensor, int | None]:
    """(x, num_levels) from a Dataset or a tensor of shape (n, *event_shape)."""
    x = getattr(data, "x", data)
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, Tensor) or x.dim() < 2:
        raise ShapeError("Expected data of shape (n, *event_shape) or a Dataset.")
    levels = getattr(data, "num_levels", None) if getattr(data, "kind", "") == "discrete" else None
    return x.double(), levels


def _to_grey(v: Tensor) -> Tensor:
    """Working-space images in about (-1, 1) -> [0, 1] for display."""
    return ((v + 1.0) / 2.0).clamp(0.0, 1.0)


def _check_ts(ts: Sequence[int], num_timesteps: int) -> list[int]:
    ts = [int(t) for t in ts]
    if not ts or any(not 0 <= t < num_timesteps for t in ts):
        raise ConfigError(f"Expected timesteps in [0, {num_timesteps}), but found {ts}.")
    return ts


def forward_process_figure(
    data: Any,
    *,
    schedule: NoiseSchedule | None = None,
    ts: Sequence[int] | None = None,
    max_points: int = 1000,
    n_images: int = 6,
    scale: float | None = None,
    generator: torch.Generator | None = None,
) -> Figure:
    """The figure of :func:`plot_forward_process`."""
    schedule = schedule or NoiseSchedule.linear(1000)
    ts = _check_ts(ts if ts is not None else default_timesteps(schedule.num_timesteps),
                   schedule.num_timesteps)
    generator = generator or torch.Generator().manual_seed(0)
    x, levels = _data_tensor(data)
    if x.dim() == 4:  # images (n, c, h, w)
        x0 = to_symmetric(x[:n_images], levels) if levels else x[:n_images] / x.abs().max()
        strip = [schedule.q_sample(x0, t, generator=generator) for t in ts]  # each (k, c, h, w)
        grid = torch.stack(strip, dim=1).flatten(0, 1)  # (k * len(ts), c, h, w), row = image
        titles = [f"t={t + 1}" for t in ts] + [""] * (grid.shape[0] - len(ts))
        return image_grid_figure(_to_grey(grid), nrow=len(ts), titles=titles)
    if x.dim() != 2 or x.shape[1] != 2:
        raise ShapeError(f"Expected 2-D points (n, 2) or images (n, c, h, w), but found "
                         f"{tuple(x.shape)}.")
    # The model diffuses x / scale (the data's std); show it back in data units: x_t * scale.
    scale = float(x.std()) if scale is None else float(scale)
    x0 = x[torch.randperm(x.shape[0], generator=generator)[:max_points]] / scale  # (m, 2)
    lim, res = 3.2, 100
    grid_1d = torch.linspace(-lim, lim, res, dtype=torch.float64)
    gx, gy = torch.meshgrid(grid_1d, grid_1d, indexing="xy")
    points = torch.stack([gx.flatten(), gy.flatten()], 1)  # (res^2, 2)
    cell = (grid_1d[1] - grid_1d[0]).item()
    fig = new_figure(PANEL_PX * len(ts), PANEL_PX + 30)
    for i, t in enumerate(ts):
        ab = float(schedule.alpha_bar[t])
        # Exact q(x_t) of the data: mean over data points of N(sqrt(ab) x0_i, (1 - ab) I).
        # Displayed with at least a grid cell of spread, so t near 0 stays visible.
        var = max(1.0 - ab, cell**2)
        d2 = torch.cdist(points.float(), math.sqrt(ab) * x0.float()) ** 2  # (res^2, m)
        log_q = torch.logsumexp(-0.5 * d2 / var, dim=1) - math.log(2 * math.pi * var * len(x0))
        ax = fig.add_axes((i / len(ts) + 0.005, 0.02, 1 / len(ts) - 0.01, 0.86))
        ax.imshow(log_q.exp().reshape(res, res).numpy(), origin="lower", cmap="viridis",
                  extent=(-lim * scale, lim * scale, -lim * scale, lim * scale))
        xt = schedule.q_sample(x0[:300], t, generator=generator) * scale
        ax.scatter(xt[:, 0], xt[:, 1], s=1.5, c="white", alpha=0.6, linewidths=0)
        ax.set_xlim(-lim * scale, lim * scale)
        ax.set_ylim(-lim * scale, lim * scale)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"q(x_t), t={t + 1}, ab={ab:.3g}", fontsize=8)
    return fig


def plot_forward_process(
    data: Any,
    out: str | os.PathLike[str],
    *,
    schedule: NoiseSchedule | None = None,
    ts: Sequence[int] | None = None,
    max_points: int = 1000,
    n_images: int = 6,
    scale: float | None = None,
    generator: torch.Generator | None = None,
) -> Path:
    """Plot the diffused data distribution q(x_t) at several steps t; write a PNG.

    Arguments:
        data: A :class:`~genlab.data.Dataset` or tensor: 2-D points ``(n, 2)`` or images
            ``(n, c, h, w)`` (discrete data sets are mapped to (-1, 1) by ``to_symmetric``).
        out: Path of the PNG.
        schedule: The noise schedule (default: linear, T = 1000).
        ts: Step indices to show (0-based; titles show the paper's t = index + 1); default
            :func:`default_timesteps`.
        max_points: Data points in the Gaussian-convolution density (2-D).
        n_images: Images in the strip (images).
        scale: 2-D points are diffused as ``x / scale``, the working space of a model
            (its ``data_scale``); default: the data's standard deviation.
        generator: Source of the noise draws (default: seed 0).

    Returns:
        The path written.
    """
    fig = forward_process_figure(data, schedule=schedule, ts=ts, max_points=max_points,
                                 n_images=n_images, scale=scale, generator=generator)
    return save_figure(fig, out)


def reverse_trajectory_figure(
    model: Any,
    *,
    n: int | None = None,
    y: Tensor | int | None = None,
    panels: int = 6,
    paths: int = 12,
    generator: torch.Generator | None = None,
    **options: Any,
) -> Figure:
    """The figure of :func:`plot_reverse_trajectory`."""
    images = len(model.event_shape) == 3
    if n is None:
        n = 6 if images else 1000
    if y is None and model.conditional and not model.y_is_conditions:
        y = torch.arange(n) % model.num_classes  # conditions are the caller's (or absent)
    generator = generator or torch.Generator().manual_seed(0)
    traj = model.sample_trajectory(n, y, generator=generator, **options)
    # Snapshots evenly spaced in noise level sigma_t = sqrt(1 - alpha_bar_t), from 1 (x_T) to
    # 0 (x_0): the structure appears late, and few-step samplers take big steps there.
    sigma = torch.tensor([math.sqrt(1.0 - model.schedule.alpha_bar_at(t))
                          for t in traj.timesteps])
    targets = torch.linspace(float(sigma[0]), 0.0, panels)
    picks = sorted({int((sigma - s).abs().argmin()) for s in targets})
    if images:
        states = traj.states[picks].transpose(0, 1)  # (n, panels, c, h, w)
        grid = _to_grey(states.flatten(0, 1).double())
        titles = [("t=" + str(traj.timesteps[p] + 1)) if traj.timesteps[p] >= 0 else "x_0"
                  for p in picks] + [""] * (grid.shape[0] - len(picks))
        return image_grid_figure(grid, nrow=len(picks), titles=titles)
    if model.event_shape != (2,):
        raise ShapeError(f"Expected a model of 2-D points or images, but found event shape "
                         f"{model.event_shape}.")
    states = (traj.states * model.data_scale).detach().cpu()  # (k, n, 2) in data units
    lim = float(states[-1].abs().max()) * 1.15 + 1e-6
    lim = max(lim, 3.0 * float(model.data_scale))
    fig = new_figure(PANEL_PX * (len(picks) + 1), PANEL_PX + 30)
    width = 1 / (len(picks) + 1)
    for i, p in enumerate(picks):
        ax = fig.add_axes((i * width + 0.005, 0.02, width - 0.01, 0.86))
        ax.scatter(states[p, :, 0], states[p, :, 1], s=1.5, alpha=0.6, linewidths=0)
        t = traj.timesteps[p]
        ax.set_title("x_T ~ N(0, I)" if p == 0 else (f"t={t + 1}" if t >= 0 else "x_0"),
                     fontsize=8)
    ax = fig.add_axes((len(picks) * width + 0.005, 0.02, width - 0.01, 0.86))
    for j in range(min(paths, n)):
        ax.plot(states[:, j, 0], states[:, j, 1], lw=0.6, alpha=0.7)
    ax.scatter(states[-1, :paths, 0], states[-1, :paths, 1], s=6, c="black", zorder=3)
    ax.set_title(f"{min(paths, n)} paths", fontsize=8)
    for a in fig.axes:
        a.set_xlim(-lim, lim)
        a.set_ylim(-lim, lim)
        a.set_xticks([])
        a.set_yticks([])
    return fig


def plot_reverse_trajectory(
    model: Any,
    out: str | os.PathLike[str],
    *,
    n: int | None = None,
    y: Tensor | int | None = None,
    panels: int = 6,
    paths: int = 12,
    generator: torch.Generator | None = None,
    **options: Any,
) -> Path:
    """Plot the reverse process of a trained diffusion model from noise to data; write a PNG.

    Arguments:
        model: A trained :class:`~genlab.models.diffusion.DiffusionModel`.
        out: Path of the PNG.
        n: Samples (default 1000 points, or 6 images).
        y: Class labels for a conditional model (default: cycling through the classes), or
            the conditions of a model with conditions (default: none, where it may drop them).
        panels: Snapshots of the process, evenly spaced in noise level from x_T to x_0.
        paths: Particle paths drawn in the last panel (2-D).
        generator: Source of randomness (default: seed 0).
        **options: Sampling options of ``model.sample`` (``sampler``, ``steps``, ``eta``,
            ``guidance``, ...).

    Returns:
        The path written.
    """
    fig = reverse_trajectory_figure(model, n=n, y=y, panels=panels, paths=paths,
                                    generator=generator, **options)
    return save_figure(fig, out)


def plot_run(
    model: Any, kind: str, run_dir: str | os.PathLike[str], out: str | os.PathLike[str]
) -> list[Path]:
    """Draw a picture of the trained diffusion run in ``run_dir``; write a PNG.

    Arguments:
        model: The run's :class:`~genlab.models.diffusion.DiffusionModel`.
        kind: ``"forward"``: q(x_t) of the run's training data, diffused with the model's own
            schedule and ``data_scale``; ``"reverse"``: the model's reverse trajectory with
            the default sampling options.
        run_dir: The run folder (its ``config.json`` names the training data).
        out: Path of the PNG.

    Returns:
        The paths written.
    """
    if kind == "forward":
        scale = None if model.discrete else float(model.data_scale)
        from genlab.runs import run_data

        return [plot_forward_process(run_data(run_dir), out, schedule=model.schedule,
                                     scale=scale)]
    if kind == "reverse":
        y = None
        if model.y_is_conditions:  # the conditions of the run's first test digits
            from genlab.runs import run_data

            y = run_data(run_dir, "test").y[:6]
        return [plot_reverse_trajectory(model, out, y=y, n=None if y is None else y.n)]
    raise ConfigError(f"Expected kind to be one of 'forward', 'reverse', but found {kind!r}.")


def posterior_step_figure(panels: Sequence[dict[str, Any]], *, resolution: int = 120) -> Figure:
    """One reverse step's Gaussians against the true posterior, one panel per step.

    Arguments:
        panels: Each a dict with ``title``; ``log_density``, a function of points ``(m, 2)``
            giving the true :math:`\\log q(x_{t-1} \\mid x_t)`; ``centre`` ``(2,)`` and
            ``radius``, the square shown; and ``gaussians``, a list of ``(label, mean (2,),
            variance, style)`` drawn as their 1- and 2-sigma circles.
        resolution: Grid points per axis of the density image.
    """
    fig = new_figure(PANEL_PX * len(panels), PANEL_PX + 60)
    circle = torch.linspace(0, 2 * math.pi, 100, dtype=torch.float64)
    for i, panel in enumerate(panels):
        ax = fig.add_axes((i / len(panels) + 0.01, 0.17, 1 / len(panels) - 0.02, 0.7))
        c, r = panel["centre"].double(), float(panel["radius"])
        box = (float(c[0]) - r, float(c[0]) + r, float(c[1]) - r, float(c[1]) + r)
        gx = torch.linspace(box[0], box[1], resolution, dtype=torch.float64)
        gy = torch.linspace(box[2], box[3], resolution, dtype=torch.float64)
        grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), -1).reshape(-1, 2)
        density = panel["log_density"](grid).exp().reshape(resolution, resolution)
        ax.imshow(density.numpy(), origin="lower", extent=box, cmap="Greys", aspect="equal")
        for label, mean, variance, style in panel["gaussians"]:
            sd = math.sqrt(float(variance))
            for k in (1, 2):
                ax.plot(float(mean[0]) + k * sd * circle.cos(),
                        float(mean[1]) + k * sd * circle.sin(), style, lw=1,
                        label=label if k == 1 else None)
        ax.set_xlim(*box[:2])
        ax.set_ylim(*box[2:])
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(panel["title"], fontsize=8)
        if i == 0:
            fig.legend(loc="lower center", ncol=3, fontsize=7, frameon=False)
    return fig
