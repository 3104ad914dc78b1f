"""Pictures of a trained run: the generic ones every model has, and its family's own.

``genlab plot RUN [--kind NAME]`` and the comparison report both go through
:func:`run_figures` (what can be drawn) and :func:`plot_run` (draw it). Generic kinds:

* ``samples``: a grid of samples (images), or data | model density | samples (2-D points);
* ``curves``: training curves from ``metrics.jsonl``.

A family adds its own through :meth:`GenerativeModel.figures` and
:meth:`GenerativeModel.plot` (the inverse flow's stages, the diffusion forward and reverse
processes, a GAN's training report, ...).
"""

from __future__ import annotations

from pathlib import Path

import torch

from genlab.base import GenerativeModel
from genlab.conditioning import Conditions
from genlab.errors import ConfigError
from genlab.train import checkpoint as ckpt

GENERIC = {
    "samples": "samples drawn from the model (2-D data: beside the data and the model density)",
    "curves": "training and validation curves from metrics.jsonl",
}

#: Test digits whose conditions a run trained with conditions is sampled under.
CONDITIONED = 16


def run_figures(model: GenerativeModel, run_dir: Path | None = None) -> dict[str, str]:
    """Every picture :func:`plot_run` can draw of ``model``: name -> description."""
    kinds = dict(GENERIC)
    if run_dir is not None and not (Path(run_dir) / ckpt.METRICS_FILE).is_file():
        kinds.pop("curves")
    kinds.update(type(model).figures())
    return kinds


def plot_run(model: GenerativeModel, run_dir: Path, out: Path, kind: str, *, seed: int = 0,
             data_name: str | None = None) -> list[Path]:
    """Draw picture ``kind`` of the run in ``run_dir`` into the PNG ``out``.

    Returns:
        The paths written (a family picture may write several beside ``out``).

    Raises:
        ConfigError: ``kind`` is not one of :func:`run_figures`.
    """
    from genlab import viz

    run_dir, out = Path(run_dir), Path(out)
    kinds = run_figures(model, run_dir)
    if kind not in kinds:
        raise ConfigError(
            f"Expected --kind to be one of {', '.join(map(repr, kinds))} for this "
            f"{model.name or type(model).__name__} run, but found {kind!r}."
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    if kind == "curves":
        return [viz.plot_training_curves(run_dir / ckpt.METRICS_FILE, out)]
    if kind == "samples":
        return [_plot_samples(model, run_dir, out, seed=seed, data_name=data_name)]
    return list(model.plot(kind, run_dir, out))


def _plot_samples(model: GenerativeModel, run_dir: Path, out: Path, *, seed: int,
                  data_name: str | None) -> Path:
    from genlab.data import load_data
    from genlab.runs import run_data
    from genlab.viz import plot_image_grid

    generator = torch.Generator(device=model.device).manual_seed(seed)
    points = model.event_shape == (2,)
    n = 1000 if points else 64
    if model.y_is_conditions:  # the conditions of the run's first test digits
        y = run_data(run_dir, "test").y[:CONDITIONED]
        samples = model.sample(y.n, y, generator=generator).cpu()
        return plot_image_grid(beside_conditions(samples, y, model.num_levels), out,
                               nrow=8, num_levels=model.num_levels)
    y = torch.arange(n) % model.num_classes if model.conditional else None
    samples = model.sample(n, y, generator=generator).cpu()
    data = None
    if points:
        data = load_data(data_name, split="test") if data_name else run_data(run_dir, "test")
    return plot_samples(model, samples, out, data=None if data is None else data.x,
                        generator=generator)


def beside_conditions(samples: torch.Tensor, y: Conditions, num_levels: int | None
                      ) -> torch.Tensor:
    """Each sample ``(n, C, H, W)`` after the image it was drawn under (the sketch, the
    low-resolution image or the known pixels, the first of those ``y`` holds), as
    ``(2n, C, H, W)`` in the samples' units; the samples alone when ``y`` holds no image."""
    kind = next((k for k in ("sketch", "lowres", "mask") if k in y.kinds), None)
    if kind is None:
        return samples
    shown = (y["masked"] if kind == "mask" else y[kind]).cpu().to(samples.dtype)
    if kind == "sketch" and num_levels is not None:
        shown = shown * (num_levels - 1)  # strokes in {0, 1} drawn at full intensity
    shown = shown.expand(-1, samples.shape[1], -1, -1)
    return torch.stack([shown, samples], dim=1).flatten(0, 1)


def plot_samples(model: GenerativeModel, samples: torch.Tensor, out: Path, *,
                 data: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> Path:
    """Draw ``samples`` of ``model``: an image grid, or for 2-D points data | model density |
    samples (``data``: the points to show beside them). Returns the PNG path.

    Raises:
        ConfigError: samples of a shape that has no picture.
    """
    from genlab import viz

    if model.event_shape == (2,):
        # a model without a density is drawn as a histogram of its samples: 5,000 keep the
        # picture clear at a quarter of the default's sampling cost
        return viz.plot_density_2d(model, samples if data is None else data, samples, out,
                                   num_hist_samples=5000, generator=generator)
    if len(model.event_shape) == 3:
        return viz.plot_image_grid(samples, out, num_levels=model.num_levels)
    raise ConfigError(
        f"Cannot draw samples of shape {model.event_shape} as a picture; use "
        "`genlab sample RUN --out samples.npy`."
    )
