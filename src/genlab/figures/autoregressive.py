r"""Autoregressive models: :math:`p(x) = \prod_i p(x_i \mid x_{<i})`, drawn from a trained MADE.

* ``autoregressive-chain.png``: one digit generated pixel by pixel in raster order; for a few
  steps the digit so far and the conditional :math:`p(x_i \mid x_{<i})` over the 17 levels
  from which pixel i is drawn, and below the whole chain of 64 conditionals as a heat map.
* ``autoregressive-samples.png``: samples.
* ``autoregressive-completions.png``: test digits with their bottom half removed, completed
  by sampling :math:`p(x_{\text{bottom}} \mid x_{\text{top}})` (exact: the top half comes
  first in the model's order).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from genlab.data import load_data
from genlab.models.autoregressive.core import AutoregressiveModel
from genlab.registry import create
from genlab.train import fit
from genlab.viz.core import new_figure, save_figure
from genlab.viz.grid import image_grid_figure


def conditional_chain(model: AutoregressiveModel, *, generator: torch.Generator | None = None,
                      y: int | None = None) -> tuple[Tensor, Tensor]:
    """Generate one sample and keep every conditional it was drawn from.

    Returns:
        ``probs`` ``(D, L)``: row t is :math:`p(x_{o_t} \\mid x_{o_{<t}})` over the L levels,
        in the model's order; and the sample, flat ``(D,)`` in data order.
    """
    rows: list[Tensor] = []

    def draw(t: int, params: Tensor) -> Tensor:
        rows.append(model.conditional_probs(params)[0].detach().cpu())
        return model.head.sample(params, generator=generator, temperature=1.0)

    labels = None if y is None else torch.tensor([y])
    model.eval()
    with torch.no_grad():
        x = model.autoregress(1, labels, draw)[0]
    return torch.stack(rows), x.cpu()


def _chain_figure(model: AutoregressiveModel, probs: Tensor, x: Tensor, picks: list[int]):
    h, w = model.event_shape[1:]
    levels = probs.shape[1]
    order = model.order.cpu()
    fig = new_figure(110 * len(picks), 420, dpi=80)
    for c, t in enumerate(picks):
        partial = np.full(h * w, np.nan)
        drawn = order[: t + 1].numpy()
        partial[drawn] = x.numpy()[drawn]
        ax = fig.add_axes((c / len(picks) + 0.01, 0.66, 1 / len(picks) - 0.02, 0.28))
        ax.imshow(partial.reshape(h, w), cmap="gray", vmin=0, vmax=levels - 1)
        r, q = divmod(int(order[t]), w)
        ax.add_patch(_square(q, r))
        ax.set_axis_off()
        ax.set_title(f"pixel {t + 1} of {h * w}", fontsize=8)
        bx = fig.add_axes((c / len(picks) + 0.015, 0.42, 1 / len(picks) - 0.03, 0.18))
        bars = bx.bar(range(levels), probs[t].numpy(), color="tab:blue", width=0.9)
        bars[int(x[order[t]])].set_color("tab:red")
        bx.set_ylim(0, 1)
        bx.set_xticks([0, levels - 1])
        bx.tick_params(labelsize=6)
        if c == 0:
            bx.set_ylabel("p(x_i | x_<i)", fontsize=7)
    hx = fig.add_axes((0.06, 0.07, 0.92, 0.25))
    hx.imshow(probs.T.numpy(), origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=1)
    hx.scatter(range(len(order)), x[order].numpy(), s=4, c="tab:red")
    hx.set_xlabel("step i of the raster order (red: the level drawn)", fontsize=7)
    hx.set_ylabel("level", fontsize=7)
    hx.tick_params(labelsize=6)
    return fig


def _square(col: int, row: int):
    from matplotlib.patches import Rectangle

    return Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="red", lw=1.5)


def draw_autoregressive(out: Path, work: Path, *, steps: int = 1000, n_samples: int = 32,
                        n_completions: int = 6, progress: bool = False) -> list[Path]:
    """Train MADE on digits (its recipe, ``steps`` steps); write the three PNGs."""
    data, val = load_data("digits"), load_data("digits", split="val")
    model = create("made", data=data)
    fit(model, data, val_data=val, steps=steps, progress=progress)
    g = torch.Generator().manual_seed(0)
    probs, x = conditional_chain(model, generator=g)
    d = model.event_dim
    picks = sorted({round(i * (d - 1) / 7) for i in range(8)})
    paths = [save_figure(_chain_figure(model, probs, x, picks),
                         out / "autoregressive-chain.png")]

    samples = model.sample(n_samples, generator=g)
    paths.append(save_figure(_small(image_grid_figure(samples, nrow=8,
                                                      num_levels=model.num_levels)),
                             out / "autoregressive-samples.png"))

    test = load_data("digits", split="test").x[:n_completions]  # (k, 1, 8, 8)
    top = torch.zeros(model.event_shape, dtype=torch.bool)
    top[:, : model.event_shape[1] // 2] = True
    shown = [test, torch.where(top, test, 0.0)]
    shown += [model.complete(test, top, generator=g) for _ in range(3)]
    grid = torch.stack(shown, 1).flatten(0, 1)  # (k * 5, 1, 8, 8), one row per test digit
    titles = ["digit", "top half", "fill 1", "fill 2", "fill 3"]
    titles = titles + [""] * (grid.shape[0] - len(titles))
    paths.append(save_figure(_small(image_grid_figure(grid, nrow=5, num_levels=model.num_levels,
                                                      titles=titles)),
                             out / "autoregressive-completions.png"))
    return paths


def _small(fig):
    """Half the pixels of a grid figure: the course's pictures are thumbnails."""
    fig.set_size_inches(fig.get_size_inches() * 0.6)
    return fig
