"""What the playground draws, computed from a 2-D model in the training process.

Every picture is plain JSON (no pickle crosses the process boundary): a heatmap over the
view as ``res x res`` bytes in base64 with the value range they cover, and point clouds as
lists of ``[x, y]`` rounded to 3 decimals. The heatmap is the model's density where it has
one, the discriminator's ``D(x)`` for GANs (as in GAN Lab; a packed discriminator sees a pack
of copies of x), and a histogram of samples for diffusion and critic-loss GANs. Flows add
their inverse stages ``x -> f_k^-1 -> ... -> z``; diffusion adds the forward process
``q(x_t | x_0)`` and the reverse trajectory at the same ``t``.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import torch
from torch import Tensor

from genlab.errors import ConfigError

#: Points of each cloud sent to the page (samples, stages, diffusion states).
CLOUD_POINTS = 400
#: Samples drawn per picture (the histogram of a model without a density counts them).
SAMPLES = 1000
#: Reverse steps of the diffusion trajectory shown under the t slider.
DIFFUSION_STEPS = 20


def grid_points(bounds: tuple[float, float, float, float], res: int) -> Tensor:
    """Cell centres of a ``res x res`` grid over ``(x0, x1, y0, y1)``, shape ``(res * res, 2)``,
    row-major from the top row (largest y) down, as an image is laid out."""
    x0, x1, y0, y1 = bounds
    xs = torch.linspace(x0, x1, res + 1)[:-1] + (x1 - x0) / (2 * res)
    ys = torch.linspace(y1, y0, res + 1)[:-1] - (y1 - y0) / (2 * res)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")  # (res, res) each
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


def encode_heatmap(values: np.ndarray, kind: str, res: int) -> dict[str, Any]:
    """``values`` ``(res * res,)`` scaled to bytes 0..255 over their finite range."""
    values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(values.min()), float(values.max())
    if kind == "density":  # the top 0.5% would wash the rest out
        hi = float(np.quantile(values, 0.995)) or hi
    span = hi - lo if hi > lo else 1.0
    scaled = np.clip((values - lo) / span, 0.0, 1.0)
    data = np.round(scaled * 255).astype(np.uint8).tobytes()
    return {"kind": kind, "res": res, "lo": lo, "hi": hi,
            "b64": base64.b64encode(data).decode("ascii")}


def cloud(x: Tensor) -> list[list[float]]:
    """Points ``(n, 2)`` as JSON lists, rounded to 3 decimals; rows with NaN or Inf are left
    out (JSON has no such numbers)."""
    a = x.detach().cpu().double().numpy()[:, :2]
    return np.round(a[np.isfinite(a).all(axis=1)], 3).tolist()


def heatmap(model: Any, bounds: tuple[float, float, float, float], res: int,
            samples: Tensor, y: Tensor | None) -> dict[str, Any]:
    """The model's density, the GAN's ``D(x)``, or a histogram of ``samples`` over the view."""
    points = grid_points(bounds, res).to(model.device, model.dtype)  # (res * res, 2)
    labels = None if y is None else y[:1].expand(len(points))
    with torch.no_grad():
        if model.has_exact_likelihood:
            values = model.log_prob(points, labels).exp()
            return encode_heatmap(values.cpu().numpy(), "density", res)
        if _has_d_of_x(model):
            # A packed discriminator (PacGAN) judges `pack` samples at once: it is shown
            # a pack of copies of each grid point.
            pack = getattr(model, "pack", 1)
            rows = points.repeat_interleave(pack, dim=0)  # (res * res * pack, 2)
            y_rows = None if labels is None else labels.repeat_interleave(pack)
            values = model.prob_real(rows, y_rows)  # (res * res,)
            return encode_heatmap(values.cpu().numpy(), "D(x)", res)
    x0, x1, y0, y1 = bounds
    s = samples.cpu().double().numpy()
    counts, _, _ = np.histogram2d(-s[:, 1], s[:, 0], bins=res,
                                  range=[[-y1, -y0], [x0, x1]])  # rows from the top
    return encode_heatmap(counts.reshape(-1), "sample histogram", res)


def _has_d_of_x(model: Any) -> bool:
    from genlab.models.gan.losses import PROBABILISTIC_LOSSES

    return hasattr(model, "prob_real") and getattr(model, "loss", None) in PROBABILISTIC_LOSSES


def flow_view(model: Any, x: Tensor, y: Tensor | None) -> list[list[list[float]]]:
    """The data after each inverse map of a flow: ``k + 1`` clouds, the last is ``z``."""
    from genlab.viz.flows import flow_stages

    return [cloud(s) for s in flow_stages(model, x, y)]


def diffusion_view(model: Any, x: Tensor, y: Tensor | None,
                   generator: torch.Generator) -> dict[str, Any]:
    """Forward ``q(x_t | x_0)`` from ``x`` and a reverse DDIM trajectory, at the same ``t``.

    Returns ``{"t": [...], "forward": [cloud per t], "reverse": [cloud per t]}`` with ``t``
    falling from ``T - 1`` (noise) to ``-1`` (data).
    """
    steps = min(DIFFUSION_STEPS, model.schedule.num_timesteps)
    n = len(x)
    y_rev = None if y is None else y[:1].expand(n)
    trajectory = model.sample_trajectory(n, y_rev, generator=generator, sampler="ddim",
                                         steps=steps)
    forward, reverse = [], []
    with model.evaluating():
        x0 = model.to_working(x)
        for i, t in enumerate(trajectory.timesteps):
            x_t = x0 if t < 0 else model.q_sample(x0, t, generator=generator)
            forward.append(cloud(model.from_working(x_t)))
            reverse.append(cloud(model.from_working(trajectory.states[i])))
    return {"t": list(trajectory.timesteps), "forward": forward, "reverse": reverse}


def picture(model: Any, data_x: Tensor, bounds: tuple[float, float, float, float], *,
            res: int = 64, label: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Everything the playground draws for ``model`` now: heatmap, samples, family view.

    Arguments:
        model: A 2-D genlab model.
        data_x: Training points ``(n, 2)`` (a few hundred are pushed through the flow or the
            forward process).
        bounds: The page's view ``(x0, x1, y0, y1)``.
        res: Heatmap cells per side.
        label: The class to sample for a conditional model (None: every class in turn).
        seed: Seed of the sampling noise; the same seed gives the same picture.
    """
    from genlab.models.diffusion.model import DiffusionModel
    from genlab.models.flows.flow import Flow

    if model.y_is_conditions:
        raise ConfigError(f"Expected a model without conditions besides a label for the "
                          f"playground, but found conditions {model.conditions}.")
    generator = torch.Generator(device=model.device).manual_seed(seed)
    n = SAMPLES
    y = None
    if model.conditional:
        k = model.num_classes
        y = torch.full((n,), label, dtype=torch.long) if label is not None \
            else torch.arange(n) % k
        y = y.to(model.device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            samples = model.sample(n, y, generator=generator)  # (n, 2)
        out: dict[str, Any] = {
            "heatmap": heatmap(model, bounds, res, samples, y),
            "samples": cloud(samples[:CLOUD_POINTS]),
        }
        few = data_x[:CLOUD_POINTS].to(model.device, model.dtype)
        y_few = None if y is None else y[:len(few)]
        if isinstance(model, Flow):
            out["stages"] = flow_view(model, few, y_few)
        elif isinstance(model, DiffusionModel):
            out["diffusion"] = diffusion_view(model, few, y_few, generator)
    finally:
        model.train(was_training)
    return out
