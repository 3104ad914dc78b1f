r"""Diffusion figures, from a DDPM trained on 8gaussians (its recipe) and the digits.

* ``diffusion-forward.png``: the forward process on one digit, x_0 to x_T, through
  :math:`q(x_t \mid x_0) = \mathcal N(\sqrt{\bar\alpha_t} x_0, (1 - \bar\alpha_t) I)`
  (:func:`genlab.viz.diffusion.forward_process_figure`).
* ``diffusion-marginals.png``: :math:`q(x_t) = \int q(x_0) q(x_t \mid x_0) dx_0` of 8gaussians
  at several t, with the model's schedule (the same function).
* ``diffusion-reverse.png``: the trained model's reverse denoising trajectory from N(0, I)
  (:func:`genlab.viz.diffusion.reverse_trajectory_figure`).
* ``diffusion-posterior.png``: at three noise levels, the true :math:`q(x_{t-1} \mid x_t)`
  of the mixture data (grey, :func:`genlab.figures.posterior.gmm_reverse_posterior`), the
  trained model's Gaussian step (red) and the Gaussian of the best denoiser (blue, dashed).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from matplotlib.figure import Figure

from genlab.data import load_data
from genlab.figures.posterior import (
    gaussian_step,
    gmm_denoised_mean,
    gmm_reverse_posterior,
    mixture_log_density,
)
from genlab.models.diffusion.model import DiffusionModel
from genlab.models.diffusion.schedule import NoiseSchedule
from genlab.registry import create
from genlab.train import fit
from genlab.viz.core import save_figure
from genlab.viz.diffusion import (
    forward_process_figure,
    posterior_step_figure,
    reverse_trajectory_figure,
)

#: Noise levels sqrt(1 - alpha_bar_t) of the posterior panels: three one-step panels, and one
#: jump from the second level straight to the last one.
POSTERIOR_SIGMAS = (0.1, 0.5, 0.9)
JUMP_TO_SIGMA = 0.1


def posterior_panels(model: DiffusionModel, centres: torch.Tensor, std: float,
                     sigmas: tuple[float, ...] = POSTERIOR_SIGMAS,
                     jump_to: float = JUMP_TO_SIGMA) -> list[dict]:
    """The panels of ``diffusion-posterior.png``, in the model's working space (data / scale).

    At each noise level x_t is the diffused midpoint of two neighbouring centres, where the
    posterior has to choose between two modes. One step (small beta_t) keeps the true
    posterior close to a Gaussian; the last panel jumps from ``sigmas[1]`` to ``jump_to`` in
    one go, where it is not.
    """
    schedule = model.schedule
    scale = float(model.data_scale)
    c, s = centres.double() / scale, std / scale  # the data in the working space
    w = torch.full((len(c),), 1.0 / len(c), dtype=torch.float64)
    noise_levels = (1.0 - schedule.alpha_bar).sqrt()
    def index(sigma: float) -> int:
        return int((noise_levels - sigma).abs().argmin())

    steps = [(index(sigma), None) for sigma in sigmas] + [(index(sigmas[1]), index(jump_to))]
    panels = []
    for t, to in steps:
        x_t = math.sqrt(schedule.alpha_bar_at(t)) * (c[0] + c[1]) / 2  # (2,)
        r, means, var = gmm_reverse_posterior(x_t, t, schedule, w, c, s, to)
        with model.evaluating():
            x0_hat, _ = model._guesses(x_t[None].to(model.dtype), t, None)
        model_mean, model_var = gaussian_step(x0_hat[0].double(), x_t, t, schedule, to)
        best = gmm_denoised_mean(x_t, t, schedule, w, c, s)
        best_mean, _ = gaussian_step(best, x_t, t, schedule, to)
        exact_mean = r @ means
        spread = math.sqrt(var + float((r[:, None] * (means - exact_mean) ** 2).sum(0).max()))
        target = f"x_{t}" if to is None else f"x_{to + 1}"
        panels.append({
            "title": f"q({target} | x_{t + 1}), T = {schedule.num_timesteps}",
            "log_density": lambda p, r=r, m=means, v=var: mixture_log_density(p, r, m, v),
            "centre": exact_mean, "radius": 4.0 * spread,
            "gaussians": [("model's Gaussian step", model_mean, model_var, "r-"),
                          ("with E[x_0 | x_t] exact", best_mean, model_var, "b--")],
        })
    return panels


def _small(fig: Figure) -> Figure:
    """Scatter pictures at 70 dots per inch instead of 100: a third of the PNG's bytes."""
    fig.set_dpi(70)
    return fig


def draw_diffusion(out: Path, work: Path, *, steps: int = 2500, n_reverse: int = 1000,
                   progress: bool = False) -> list[Path]:
    """Train a DDPM on 8gaussians for ``steps`` steps; write the four diffusion pictures
    (``n_reverse`` points in the reverse trajectory)."""
    data = load_data("8gaussians")
    model = create("ddpm", data=data)
    fit(model, data, steps=steps, progress=progress)
    digits = load_data("digits", split="test")
    schedule = NoiseSchedule.cosine(100)  # the digits recipe's schedule
    ts = [0, 5, 10, 20, 30, 45, 60, 80, 99]
    paths = [save_figure(forward_process_figure(digits, schedule=schedule, ts=ts, n_images=1),
                         out / "diffusion-forward.png")]
    marginals = forward_process_figure(data, schedule=model.schedule,
                                       scale=float(model.data_scale))
    paths.append(save_figure(_small(marginals), out / "diffusion-marginals.png"))
    reverse = reverse_trajectory_figure(model, n=n_reverse)
    paths.append(save_figure(_small(reverse), out / "diffusion-reverse.png"))
    centres = torch.tensor(data.info["centers"], dtype=torch.float64)
    panels = posterior_panels(model, centres, float(data.info["std"]))
    paths.append(save_figure(posterior_step_figure(panels), out / "diffusion-posterior.png"))
    return paths
