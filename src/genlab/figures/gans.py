r"""GAN figures: the generator losses' gradient shape, the networks, samples over epochs, losses.

A DCGAN (its recipe) is trained on digits for ``max(epochs)`` epochs into a run folder, with
samples of fixed noise z kept after each epoch in ``epochs``.

* ``gan-gradient.png``: :math:`\log(1 - D(G(z)))` and :math:`-\log D(G(z))` against
  :math:`D(G(z))` (:func:`genlab.viz.gan.gradient_shapes_figure`).
* ``gan-architecture.png``: the generator (z to an image, "a reversed CNN") and the
  discriminator (a CNN classifier), from the layer shapes of the trained networks
  (:func:`genlab.viz.gan.layer_shapes`).
* ``gan-epochs.png``: samples after 1, 5 and 20 epochs.
* ``gan-training.png``: both players' losses and mean D(x), D(G(z)) against the step
  (:func:`genlab.viz.gan.plot_training_report`, as ``genlab plot RUN --kind training``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from genlab.data import load_data
from genlab.registry import create
from genlab.train import fit
from genlab.train.callbacks import Callback
from genlab.viz.core import new_figure, save_figure
from genlab.viz.curves import read_metrics
from genlab.viz.gan import (
    architecture_figure,
    gradient_shapes_figure,
    image_grid,
    layer_shapes,
    plot_training_report,
)


class EpochSamples(Callback):
    """Keeps samples of the same noise at the end of the chosen epochs."""

    def __init__(self, steps_per_epoch: int, epochs: Sequence[int], n: int = 36) -> None:
        self.steps_per_epoch, self.epochs, self.n = steps_per_epoch, set(epochs), n
        self.samples: dict[int, torch.Tensor] = {}

    def on_step_end(self, trainer: Any, step: int, logs: dict[str, Any]) -> None:
        epoch, rest = divmod(step, self.steps_per_epoch)
        if rest == 0 and epoch in self.epochs:
            g = torch.Generator().manual_seed(0)
            self.samples[epoch] = trainer.model.sample(self.n, generator=g).cpu()


def draw_gan(out: Path, work: Path, *, epochs: Sequence[int] = (1, 5, 20),
             batch_size: int = 64, n_train: int | None = None, progress: bool = False
             ) -> list[Path]:
    """Train a DCGAN on digits (``n_train`` of them, default all); write the GAN pictures."""
    paths = [save_figure(gradient_shapes_figure(), out / "gan-gradient.png")]
    data = load_data("digits", n=n_train)
    model = create("dcgan", data=data)
    steps_per_epoch = len(data) // batch_size
    keep = EpochSamples(steps_per_epoch, epochs)
    run = work / "digits-dcgan"
    fit(model, data, out=run, steps=max(epochs) * steps_per_epoch, batch_size=batch_size,
        callbacks=[keep], progress=progress)

    model.eval()
    z = model.noise(2)
    x = model.sample(2, generator=torch.Generator().manual_seed(0))
    rows = [("generator G(z): z -> image", layer_shapes(model.generator, z)),
            ("discriminator D(x) = Pr(real | x)",
             layer_shapes(model.discriminator, model.to_model_space(x)))]
    paths.append(save_figure(architecture_figure(rows), out / "gan-architecture.png"))

    shown = sorted(keep.samples)
    fig = new_figure(200 * len(shown), 220, dpi=80)
    for i, epoch in enumerate(shown):
        ax = fig.add_subplot(1, len(shown), i + 1)
        ax.imshow(image_grid(keep.samples[epoch], model.num_levels), cmap="gray", vmin=0,
                  vmax=1)
        ax.set_axis_off()
        ax.set_title(f"after {epoch} epoch{'s' if epoch > 1 else ''}", fontsize=9)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.88, wspace=0.05)
    paths.append(save_figure(fig, out / "gan-epochs.png"))
    paths.append(plot_training_report(read_metrics(run / "metrics.jsonl"),
                                      out / "gan-training.png"))
    return paths
