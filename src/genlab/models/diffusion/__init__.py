"""Diffusion models: forward noising process, denoising networks, reverse samplers, bound.

* :mod:`~genlab.models.diffusion.schedule` -- betas, alpha_bar, q(x_t | x_0), posteriors.
* :mod:`~genlab.models.diffusion.samplers` -- DDPM, DDIM, DPM-Solver++(2M), the reverse loop,
  the sampling options.
* :mod:`~genlab.models.diffusion.denoisers` -- MLP and UNet with time (and class) embeddings.
* :mod:`~genlab.models.diffusion.bound` -- the variational bound on log p(x).
* :mod:`~genlab.models.diffusion.model` -- :class:`DiffusionModel`, registered as ``"ddpm"``.
* :mod:`~genlab.models.diffusion.inpaint` -- RePaint-style inpainting.
"""

from genlab.models.diffusion.model import DiffusionModel
from genlab.models.diffusion.samplers import (
    DDIMSampler,
    DDPMSampler,
    DPMSolverSampler,
    SamplingOptions,
    Trajectory,
    make_sampler,
    reverse_process,
    reverse_trajectory,
    spaced_timesteps,
)
from genlab.models.diffusion.schedule import NoiseSchedule, cosine_betas, linear_betas

__all__ = [
    "DDIMSampler",
    "DDPMSampler",
    "DPMSolverSampler",
    "DiffusionModel",
    "NoiseSchedule",
    "SamplingOptions",
    "Trajectory",
    "cosine_betas",
    "linear_betas",
    "make_sampler",
    "reverse_process",
    "reverse_trajectory",
    "spaced_timesteps",
]
