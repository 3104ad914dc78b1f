r"""Conditional samples :math:`x \sim p(x \mid y)`, one row of classes per family.

Every family takes ``num_classes`` (``create(name, data=digits, conditional=True)``): the
histogram and the Gaussian mixture fit one model per class, MADE, RealNVP, DCGAN and DDPM
feed the label to their networks. Each is trained on digits with its recipe (the SGD
families for the steps of :data:`STEPS`) and ``conditional.png`` shows, per family, samples
of every class 0..9.
"""

from __future__ import annotations

from pathlib import Path

import torch

from genlab.data import load_data
from genlab.registry import create
from genlab.train import fit
from genlab.viz.core import new_figure, save_figure
from genlab.viz.gan import image_grid

#: One model per family, and its training steps here (counting and EM need none).
STEPS = {"histogram": None, "gmm": None, "made": 600, "realnvp": 600, "dcgan": 800,
         "ddpm": 800}


def class_samples(model, per_class: int, *, generator: torch.Generator) -> torch.Tensor:
    """``per_class`` samples of each class, row by row: ``(per_class * K, *event_shape)``
    with column k holding class k."""
    y = torch.arange(model.num_classes).repeat(per_class)  # (per_class * K,)
    return model.sample(len(y), y, generator=generator)


def draw_conditional(out: Path, work: Path, *, steps: int | None = None, per_class: int = 2,
                     progress: bool = False) -> list[Path]:
    """Train one conditional model per family on digits; write ``conditional.png``.

    Arguments:
        steps: Training steps of every SGD family (default: :data:`STEPS`).
        per_class: Samples shown per class and family.
    """
    data = load_data("digits")
    fig = new_figure(900, 85 * per_class * len(STEPS) + 40, dpi=80)
    for i, (name, budget) in enumerate(STEPS.items()):
        model = create(name, data=data, conditional=True)
        settings = {} if budget is None else {"steps": steps or budget}
        fit(model, data, progress=progress, **settings)  # all steps: no early stopping
        samples = class_samples(model, per_class, generator=torch.Generator().manual_seed(0))
        # image_grid tiles row-major in a near-square layout; make it per_class x K instead
        c, h, w = model.event_shape
        tiles = samples.reshape(per_class, model.num_classes, c, h, w)
        grid = torch.cat([torch.cat(list(row), dim=2) for row in tiles], dim=1)  # (c, H, W)
        ax = fig.add_subplot(len(STEPS), 1, i + 1)
        ax.imshow(image_grid(grid[None], model.num_levels), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([w * k + (w - 1) / 2 for k in range(model.num_classes)])
        ax.set_xticklabels([f"y={k}" for k in range(model.num_classes)], fontsize=7)
        ax.set_yticks([])
        ax.set_ylabel(name, fontsize=8, rotation=0, ha="right", va="center")
    fig.suptitle("x ~ p(x | y) for each class y, one family per row", fontsize=9)
    fig.subplots_adjust(left=0.12, right=0.98, bottom=0.03, top=0.94, hspace=0.35)
    return [save_figure(fig, out / "conditional.png")]
