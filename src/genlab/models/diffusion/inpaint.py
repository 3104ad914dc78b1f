"""Inpainting with a trained diffusion model: fill the unknown pixels given the known ones.

At every reverse step t -> s (Lugmayr et al. 2022, "RePaint", alg. 1):

* the known part of x_s is a fresh draw of the forward process, x_s ~ q(x_s | x_0 = x_known);
* the unknown part is one DDPM step from x_t, so it follows the model;
* the two are glued with the mask: ``x_s = m * known + (1 - m) * unknown``.

Glued this way the two parts only meet through the network; ``resample = r > 1`` lets them
harmonise by jumping back, ``x_t ~ q(x_t | x_s) = N(sqrt(ab_t / ab_s) x_s, (1 - ab_t / ab_s) I)``,
and redoing the step r times. ``resample = 1`` is the plain replacement method (Song et al.
2021). Cost: about ``steps * resample`` network calls.

References:
    Lugmayr, Danelljan, Romero, Yu, Timofte, Van Gool. RePaint: Inpainting using Denoising
    Diffusion Probabilistic Models. CVPR 2022.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from genlab import rand
from genlab.errors import ConfigError, DataError, ShapeError
from genlab.models.diffusion.samplers import Denoise, Sampler
from genlab.models.diffusion.schedule import NoiseSchedule

if TYPE_CHECKING:
    from genlab.models.diffusion.model import DiffusionModel


def inpaint(
    model: DiffusionModel,
    x: Tensor,
    mask: Tensor,
    y: Tensor | None = None,
    *,
    generator: torch.Generator | None = None,
    resample: int = 1,
    **options: Any,
) -> Tensor:
    """Inpaint ``x`` where ``mask`` is 0, keeping ``x`` where ``mask`` is 1.

    Arguments:
        model: A trained diffusion model.
        x: Data, shape ``(n, *event_shape)``, in data space (unknown entries may hold
            anything valid; they are ignored).
        mask: 1 for known, 0 for unknown entries; shape ``event_shape`` or
            ``(n, *event_shape)``.
        y: Class labels (conditional models).
        generator: Source of randomness.
        resample: RePaint resampling rounds per step (1: plain replacement).
        **options: Sampling options of ``model.sample`` for the DDPM steps: ``steps``
            (default T, every step), ``variance``, ``guidance``, ``clip_denoised``. Here
            ``variance`` defaults to ``"large"`` (beta): it pairs with the jump back, whose
            variance is also beta; with the small one repeated resampling shrinks the spread
            of the filled-in part.

    Returns:
        Shape ``(n, *event_shape)``, in data space, equal to ``x`` where ``mask`` is 1.

    Raises:
        ShapeError: ``x`` or ``mask`` has the wrong shape.
        DataError: ``x`` is invalid for the model, or ``mask`` holds values other than 0, 1.
        ConfigError: invalid ``resample`` or sampling options, or a sampler other than DDPM.
    """
    x, batch_shape = model._check_x(x)
    if len(batch_shape) != 1:
        raise ShapeError(f"Expected x of shape (n, *event_shape), but found {batch_shape} first.")
    mask = torch.as_tensor(mask, device=model.device)
    k = len(model.event_shape)
    good_event = tuple(mask.shape[mask.dim() - k:]) == model.event_shape
    good_batch = mask.dim() == k or (mask.dim() == k + 1 and mask.shape[0] in (1, x.shape[0]))
    if not (good_event and good_batch):
        raise ShapeError(
            f"Expected mask of shape {model.event_shape} or ({x.shape[0]}, *{model.event_shape}), "
            f"but found {tuple(mask.shape)}."
        )
    if ((mask != 0) & (mask != 1)).any():
        raise DataError("Expected mask of 0 (unknown) and 1 (known) values.")
    mask = mask.to(model.dtype)
    y = model._check_y(y, x.shape[0])
    if isinstance(resample, bool) or not isinstance(resample, int) or resample < 1:
        raise ConfigError(f"Expected resample to be a positive int, but found {resample!r}.")
    checked = model.sampling_options(**{"variance": "large", **options})
    if checked.sampler != "ddpm":
        raise ConfigError(
            f"Expected sampler 'ddpm' for inpainting, but found {checked.sampler!r}."
        )
    with model.evaluating():
        # Ancestral DDPM steps over the same spaced steps as sampling.
        denoise, sampler, timesteps, x_T = model._plan(x.shape[0], y, checked, generator)
        known = model.to_working(x)  # (n, *event_shape)
        x_t = _repaint(model.schedule, known, mask, x_T, denoise, sampler, timesteps, resample,
                       generator)
    return torch.where(mask.bool(), x, model.from_working(x_t))


def _repaint(
    schedule: NoiseSchedule,
    known: Tensor,
    mask: Tensor,
    x_T: Tensor,
    denoise: Denoise,
    sampler: Sampler,
    timesteps: list[int],
    resample: int,
    generator: torch.Generator | None,
) -> Tensor:
    """The RePaint loop in the working space: from x_T to x_0 with ``known`` kept by ``mask``."""
    x_t = x_T
    for i, t in enumerate(timesteps):
        s = timesteps[i + 1] if i + 1 < len(timesteps) else -1
        rounds = resample if s >= 0 else 1
        for r in range(rounds):
            x0, eps = denoise(x_t, t)
            unknown = sampler.step(schedule, x_t, t, s, x0, eps, generator)
            known_s = known if s < 0 else schedule.q_sample(known, s, generator=generator)
            x_s = mask * known_s + (1.0 - mask) * unknown
            if r + 1 < rounds:
                # Jump back: x_t ~ q(x_t | x_s), then redo the step.
                a = schedule.alpha_bar_at(t) / schedule.alpha_bar_at(s)
                noise = rand.randn(x_s.shape, generator=generator, device=x_s.device,
                                    dtype=x_s.dtype)
                x_t = math.sqrt(a) * x_s + math.sqrt(1.0 - a) * noise
        x_t = x_s
    return x_t

