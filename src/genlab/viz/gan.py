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


# ---------------------------------------------------------------------- the course's pictures
def generator_loss_curves(d: Tensor) -> dict[str, Tensor]:
    """The two generator losses as functions of ``D(G(z))``, per point, shape of ``d``.

    ``"minimax"``: :math:`\\log(1 - D(G(z)))` (minimised), ``"nonsaturating"``:
    :math:`-\\log D(G(z))`, each computed by :func:`genlab.models.gan.losses.generator_loss`
    on the logit :math:`l = \\log D - \\log(1 - D)` of one sample.
    """
    from genlab.models.gan.losses import generator_loss

    logits = torch.logit(d.double())
    return {loss: torch.stack([generator_loss(loss, logit[None]) for logit in logits])
            for loss in ("minimax", "nonsaturating")}


def gradient_shapes_figure(points: int = 400) -> Any:
    """The course's "better gradient shape": both generator losses against D(G(z)) in (0, 1).

    Early in training D(G(z)) is near 0, where ``log(1 - D)`` is flat (a small gradient for
    G) and ``-log D`` is steep.
    """
    d = torch.linspace(1e-3, 1 - 1e-3, points, dtype=torch.float64)
    curves = generator_loss_curves(d)
    fig = new_figure(420, 320, dpi=80)
    ax = fig.add_subplot()
    ax.plot(d, curves["minimax"], label="log(1 - D(G(z)))  (minimax, minimise)")
    ax.plot(d, curves["nonsaturating"], label="-log D(G(z))  (non-saturating, minimise)")
    ax.axvspan(0, 0.1, color="0.9", zorder=0)
    ax.text(0.02, -3.6, "G is bad:\nD(G(z)) ~ 0", fontsize=7)
    ax.set_xlabel("D(G(z))")
    ax.set_ylim(-4, 5)
    ax.axhline(0, color="0.6", lw=0.6)
    ax.set_title("generator losses: the non-saturating one is steep where G is bad",
                 fontsize=8)
    ax.legend(fontsize=7, loc="upper right")
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


#: Layers an architecture picture shows (activations and normalisations are left out).
_SHOWN = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Flatten)


def layer_shapes(network: torch.nn.Module, *inputs: Any) -> list[tuple[str, tuple[int, ...]]]:
    """Run ``network(*inputs)`` once and list ``(layer type, output shape without the batch)``
    of its linear, convolution and flatten layers in call order, after ``("input", shape)``
    and before ``("output", shape)``."""
    shapes: list[tuple[str, tuple[int, ...]]] = [("input", tuple(inputs[0].shape[1:]))]

    def record(module: torch.nn.Module, args: Any, output: Tensor) -> None:
        shapes.append((type(module).__name__, tuple(output.shape[1:])))

    hooks = [m.register_forward_hook(record) for m in network.modules() if isinstance(m, _SHOWN)]
    try:
        with torch.no_grad():
            out = network(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
    shapes.append(("output", tuple(out.shape[1:]) or (1,)))
    return shapes


def architecture_figure(rows: Sequence[tuple[str, list[tuple[str, tuple[int, ...]]]]]) -> Any:
    """One row of boxes per network: a feature map ``(c, h, w)`` is a box whose height grows
    with h and width with log2(c); a vector ``(f,)`` is a thin bar whose height grows with
    log2(f). Each box is labelled with its layer and shape."""
    from matplotlib.patches import Rectangle

    width = max(len(layers) for _, layers in rows)
    fig = new_figure(140 * width, 230 * len(rows), dpi=80)
    for r, (title, layers) in enumerate(rows):
        ax = fig.add_subplot(len(rows), 1, r + 1)
        for i, (name, shape) in enumerate(layers):
            if len(shape) == 3:
                c, h, _ = shape
                w_box, h_box = 0.15 + 0.08 * math.log2(max(c, 1)), min(1.6, 0.3 + 0.12 * h)
                colour = "tab:blue"
            else:
                w_box, h_box = 0.12, min(1.6, 0.2 + 0.1 * math.log2(max(shape[0], 1)))
                colour = "tab:orange"
            ax.add_patch(Rectangle((i - w_box / 2, -h_box / 2), w_box, h_box, color=colour,
                                   alpha=0.6))
            ax.text(i, -1.0, f"{name}\n{'x'.join(map(str, shape))}", ha="center", va="top",
                    fontsize=7)
            if i:
                ax.annotate("", xy=(i - 0.45, 0), xytext=(i - 0.55, 0),
                            arrowprops={"arrowstyle": "->", "lw": 0.8})
        ax.set_xlim(-0.6, width - 0.4)
        ax.set_ylim(-1.6, 1.0)
        ax.set_axis_off()
        ax.set_title(title, fontsize=9)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.9, hspace=0.3)
    return fig
