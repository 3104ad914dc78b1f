r"""The course's flow pictures: data pushed through :math:`f^{-1}` to the Gaussian, and back.

``plot_flow_stages`` (the ``stages`` figure) draws the inverse flow. Top row: the flow at
step 0 (``init.safetensors``, written by ``genlab.fit``); bottom row: the trained flow
(``model.safetensors``). Each row starts with the data and shows the points after each
inverse map :math:`f_k^{-1}, \dots, f_1^{-1}`; the last panel is the latent
:math:`z = f^{-1}(x)`, with the 1- and 2-sigma circles of the standard Gaussian it should
match after training. Points keep the colour of their data position, so one can follow them.

For data with more than two dimensions (digits) every stage is shown through the same fixed
random orthonormal projection to 2-D; a standard Gaussian in D dimensions projects to a
standard Gaussian in 2-D, so the last panel is comparable too.

``plot_flow_sampling`` (the ``sampling`` figure) draws the other direction, the way samples
are made: base draws :math:`z` pushed through :math:`f_1, \dots, f_k` one map at a time,
coloured by their latent position, before and after training. For discrete data the last
panel is the flow's point of the unit cube, before quantization.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from genlab.errors import ConfigError
from genlab.viz.core import new_figure, save_figure

MAX_PANELS = 9
MAX_POINTS = 2000


def flow_stages(model: Any, x: Tensor, y: Tensor | None = None) -> list[Tensor]:
    """Data ``(n, *event_shape)`` after each inverse map of the flow: ``k + 1`` tensors.

    Discrete data are dequantized with the model's fixed evaluation noise first.
    """
    x, _ = model._check_x(x)
    y = model._check_y(y, x.shape[0])
    model.eval()
    with torch.no_grad():
        u, _ = model._dequantize(x)
        stages = model.transform.inverse_stages(u, model.context(y))
    return [s.reshape(s.shape[0], -1) for s in stages]  # each (n, D)


def sampling_stages(
    model: Any, n: int, y: Tensor | None = None, *, generator: torch.Generator | None = None
) -> list[Tensor]:
    """Base samples ``z`` pushed through each map of the flow: ``k + 1`` tensors ``(n, D)``."""
    model.eval()
    with torch.no_grad():
        z = model.base_sample(n, y, generator)
        stages = model.transform.forward_stages(z, model.context(y))
    return [s.reshape(s.shape[0], -1) for s in stages]  # each (n, D)


def _projection(d: int) -> np.ndarray:
    if d == 2:
        return np.eye(2)
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((d, 2)))
    return q  # (D, 2), orthonormal columns


def _pick(k: int) -> list[int]:
    if k <= MAX_PANELS:
        return list(range(k))
    return sorted({round(i * (k - 1) / (MAX_PANELS - 1)) for i in range(MAX_PANELS)})


def _limits(p: np.ndarray) -> tuple[float, float, float, float]:
    lo = np.percentile(p, 0.5, axis=0)
    hi = np.percentile(p, 99.5, axis=0)
    pad = 0.1 * (hi - lo) + 1e-6
    return lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1]


def _run_data(run_dir: Path, model: Any) -> tuple[Tensor, Tensor | None]:
    """The test split of the data the run was trained on (from ``config.json``)."""
    from genlab.runs import run_data

    data = run_data(run_dir, split="test")
    return data.x[:MAX_POINTS], data.y[:MAX_POINTS] if data.y is not None else None


def _load_rows(run_dir: Path) -> tuple[Any, list[tuple[str, Any]]]:
    """The trained flow of a run and the rows to draw: before (if saved) and after training."""
    from genlab.models.flows.flow import Flow
    from genlab.train.checkpoint import load

    after = load(run_dir)
    if not isinstance(after, Flow):
        raise ConfigError(
            f"Expected a flow run (realnvp, maf, nsf, glow), but {run_dir} holds "
            f"{type(after).__name__}."
        )
    rows = []
    if (run_dir / "init.safetensors").is_file():
        rows.append(("before training", load(run_dir, weights="init.safetensors")))
    rows.append(("after training", after))
    return after, rows


def plot_flow_stages(
    run_dir: str | os.PathLike[str],
    out_png: str | os.PathLike[str],
    *,
    data: Any = None,
    dpi: int = 100,
) -> Path:
    """Draw the inverse-flow picture of a trained flow run, before and after training.

    Arguments:
        run_dir: A run folder written by ``genlab.fit(..., out=...)`` or ``genlab train``
            (``config.json``, ``model.safetensors`` and ``init.safetensors``).
        out_png: Path of the PNG to write.
        data: Points to push through the flow: a tensor ``(n, *event_shape)``, a
            :class:`~genlab.data.dataset.Dataset` (labels used for conditional flows), or
            None for the test split of the run's data set. At most 2000 points are drawn.
        dpi: Pixels per inch of the PNG (each panel is 2.2 inches square).

    Returns:
        The path written.

    Raises:
        ConfigError: the run is not a flow, or its data cannot be found.
        CheckpointError: the run folder is incomplete.
    """
    run_dir = Path(run_dir)
    after, rows = _load_rows(run_dir)
    if data is None:
        x, y = _run_data(run_dir, after)
    elif hasattr(data, "x"):
        x, y = data.x[:MAX_POINTS], getattr(data, "y", None)
        y = None if y is None else y[:MAX_POINTS]
    else:
        x, y = torch.as_tensor(data)[:MAX_POINTS], None
    if not after.conditional:
        y = None
    elif y is None:
        raise ConfigError("Expected labels for a conditional flow: pass a Dataset with y.")
    all_stages = [flow_stages(model, x, y) for _, model in rows]
    return _draw(after, rows, all_stages, _stage_names(after, inverse=True),
                 ("data x", "latent z"), latent_last=True,
                 title="data pushed through f^-1 layer by layer", out_png=out_png, dpi=dpi)


def plot_flow_sampling(
    run_dir: str | os.PathLike[str],
    out_png: str | os.PathLike[str],
    *,
    n: int = MAX_POINTS,
    seed: int = 0,
    dpi: int = 100,
) -> Path:
    """Draw base samples pushed through a trained flow run, before and after training.

    Arguments:
        run_dir: A run folder written by ``genlab.fit(..., out=...)`` or ``genlab train``.
        out_png: Path of the PNG to write.
        n: Number of base samples (the same draws in both rows).
        seed: Seed of the base samples.
        dpi: Pixels per inch of the PNG (each panel is 2.2 inches square).

    Returns:
        The path written.

    Raises:
        ConfigError: the run is not a flow.
        CheckpointError: the run folder is incomplete.
    """
    after, rows = _load_rows(Path(run_dir))
    y = None
    if after.y_is_conditions:  # sketches, prompts, ...: the first test images' conditions
        _, y = _run_data(Path(run_dir), after)
        n = min(n, y.n)
        y = y[:n].to(after.device)
    elif after.conditional:
        y = torch.arange(n, device=after.device) % after.num_classes  # every class in turn
    all_stages = [
        sampling_stages(model, n, y, generator=torch.Generator().manual_seed(seed))
        for _, model in rows
    ]
    return _draw(after, rows, all_stages, _stage_names(after), ("latent z", "sample x"),
                 latent_last=False, title="base samples pushed through f layer by layer",
                 out_png=out_png, dpi=dpi)


def _draw(
    after: Any,
    rows: list[tuple[str, Any]],
    all_stages: list[list[Tensor]],
    names: list[str],
    ends: tuple[str, str],
    *,
    latent_last: bool,
    title: str,
    out_png: str | os.PathLike[str],
    dpi: int = 100,
) -> Path:
    """One row of panels per training state; the latent panel gets the Gaussian's circles."""
    projection = _projection(after.event_dim)
    panels = _pick(len(all_stages[0]))
    first_2d = all_stages[0][0].numpy() @ projection  # (n, 2)
    colour = first_2d[:, 0] + 0.5 * first_2d[:, 1]  # a colour per point, from where it starts
    latent = len(all_stages[0]) - 1 if latent_last else 0

    size = round(2.2 * dpi)
    fig = new_figure(size * len(panels), size * len(rows) + round(0.4 * dpi), dpi=dpi)
    for r, ((label, _), stages) in enumerate(zip(rows, all_stages, strict=True)):
        for c, k in enumerate(panels):
            ax = fig.add_subplot(len(rows), len(panels), r * len(panels) + c + 1)
            p = stages[k].numpy() @ projection
            if not np.isfinite(p).all():
                p = np.where(np.isfinite(p), p, np.nan)
            ax.scatter(p[:, 0], p[:, 1], c=colour, s=2, cmap="viridis", linewidths=0)
            if k == latent:
                t = np.linspace(0, 2 * math.pi, 200)
                for radius in (1.0, 2.0):
                    ax.plot(radius * np.cos(t), radius * np.sin(t), "r-", lw=0.8)
                limits = (-3.5, 3.5, -3.5, 3.5)
            else:
                limits = _limits(p[np.isfinite(p).all(axis=1)])
            ax.set_xlim(*limits[:2])
            ax.set_ylim(*limits[2:])
            ax.set_xticks([])
            ax.set_yticks([])
            name = ends[0] if k == 0 else (ends[1] if k == len(stages) - 1 else "")
            ax.set_title(name or f"after {names[k - 1]}", fontsize=7)
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
    projected = "" if after.event_dim == 2 else " (fixed random 2-D projection)"
    fig.suptitle(f"{after.name}: {title}{projected}", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out_png)


def _stage_names(model: Any, *, inverse: bool = False) -> list[str]:
    """Names of the maps in the order the latent meets them, or of their inverses in the
    order the data meets them."""
    bijections = list(model.transform.bijections)
    names = [type(b).__name__ for b in (bijections[::-1] if inverse else bijections)]
    suffix = "^-1" if inverse else ""
    counts: dict[str, int] = {}
    out = []
    for n in names:
        counts[n] = counts.get(n, 0) + 1
        out.append(f"{n}{suffix} #{counts[n]}")
    return out


__all__ = ["flow_stages", "plot_flow_sampling", "plot_flow_stages", "sampling_stages"]
