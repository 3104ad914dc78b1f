"""DDIM inversion: data x_0 to the latent x_T that deterministic DDIM sampling maps back to x_0.

With ``eta = 0`` a DDIM step from index t to the next index s < t (Song et al. 2021, eq. 12)
is, with alpha_t = sqrt(alpha_bar_t) and sigma_t = sqrt(1 - alpha_bar_t),

    x_s = (alpha_s / alpha_t) x_t + (sigma_s - alpha_s sigma_t / alpha_t) eps(x_t, t),

an Euler step of the probability-flow ODE. Solved for x_t it reads

    x_t = (alpha_t / alpha_s) x_s + (sigma_t - alpha_t sigma_s / alpha_s) eps(x_t, t),

implicit in x_t. Inversion runs the steps forward, from clean data (index -1, alpha_bar = 1)
up through the sampler's indices to T - 1. The explicit step evaluates eps at the state it
has, x_s, at the destination index t (as the inverse schedulers of public diffusion libraries
do): its error per step shrinks with the step size, so the round trip ``x_0 -> x_T -> x_0``
is exact in the limit of many steps. ``refine`` fixed-point iterations
``x_t <- (alpha_t / alpha_s) x_s + c eps(x_t, t)`` solve the implicit equation itself; where
they converge (the map is a contraction when ``c`` times the Lipschitz constant of eps is
below 1, as for the linear schedule) the inversion is the exact inverse of the sampler for
any number of steps. Under the cosine schedule alpha_bar at T - 1 is close to 0, the last step
is no contraction and ``refine`` stalls; the explicit steps still converge as steps grow.

x0 guesses are never clipped here: clipping makes the reverse map many-to-one.

Reference:
    Song, Meng, Ermon. Denoising Diffusion Implicit Models. ICLR 2021, sec. 4.3 and 5.4.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from genlab.errors import ConfigError
from genlab.models.diffusion.samplers import DDIMSampler, reverse_process, spaced_timesteps

if TYPE_CHECKING:
    from genlab.models.diffusion.model import DiffusionModel

#: Encoding methods of a diffusion model: denoiser features at one noise step, or x_T.
ENCODE_METHODS = ("features", "ddim_inversion")


def _eps(model: DiffusionModel, x_t: Tensor, t: int, y: Tensor | None) -> Tensor:
    return model._guesses(x_t, t, y, clip=False)[1]


def ddim_invert(model: DiffusionModel, x0: Tensor, y: Tensor | None = None, *,
                steps: int = 50, refine: int = 0) -> Tensor:
    """The latent x_T of ``x0`` under deterministic DDIM sampling with ``steps`` calls.

    Arguments:
        model: A trained diffusion model.
        x0: Clean data in the working space (:meth:`DiffusionModel.to_working`), shape
            ``(n, *event_shape)``.
        y: Class labels ``(n,)`` for a conditional model, else None.
        steps: Network calls of the sampler to invert (its indices, see
            :func:`~genlab.models.diffusion.samplers.spaced_timesteps`).
        refine: Fixed-point iterations per step on top of the explicit step (0: explicit).

    Returns:
        x_T, shape of ``x0``.

    Raises:
        ConfigError: ``steps`` outside [1, T] or a negative ``refine``.
    """
    schedule = model.schedule
    ascending = spaced_timesteps(schedule.num_timesteps, steps)[::-1]
    if isinstance(refine, bool) or not isinstance(refine, int) or refine < 0:
        raise ConfigError(f"Expected refine to be an int >= 0, but found {refine!r}.")
    x, s = x0, -1
    for t in ascending:
        ab_s, ab_t = schedule.alpha_bar_at(s), schedule.alpha_bar_at(t)
        scale = math.sqrt(ab_t / ab_s)
        c = math.sqrt(1.0 - ab_t) - scale * math.sqrt(1.0 - ab_s)
        x_t = x
        for _ in range(1 + refine):
            x_t = scale * x + c * _eps(model, x_t, t, y)
        x, s = x_t, t
    return x


def ddim_decode(model: DiffusionModel, x_T: Tensor, y: Tensor | int | None = None, *,
                steps: int = 50) -> Tensor:
    """Deterministic DDIM sampling (``eta = 0``, no clipping) from the given latents.

    The inverse of ``model.encode(x, method="ddim_inversion", steps=steps)``.

    Arguments:
        model: A trained diffusion model.
        x_T: Latents of shape ``(n, k)`` (as ``encode`` returns them) or
            ``(n, *event_shape)``.
        y: Class labels (conditional models only).
        steps: Network calls (the same as the inversion's).

    Returns:
        Data of shape ``(n, *event_shape)`` (:meth:`DiffusionModel.from_working`).
    """
    x_T = torch.as_tensor(x_T, dtype=model.dtype, device=model.device)
    n = x_T.shape[0] if x_T.dim() > 0 else 0
    if x_T.dim() < 2 or x_T[0].numel() != model.event_dim:
        raise ConfigError(f"Expected latents of shape (n, {model.event_dim}), but found "
                          f"{tuple(x_T.shape)}.")
    y = model._check_y(y, n)
    timesteps = spaced_timesteps(model.schedule.num_timesteps, steps)
    with model.evaluating():
        x0 = reverse_process(lambda x_t, t: model._guesses(x_t, t, y, clip=False),
                             model.schedule, x_T.reshape(n, *model.event_shape),
                             DDIMSampler(0.0), timesteps)
    return model.from_working(x0)


def encode_by_inversion(model: DiffusionModel, x: Tensor, y: Tensor | None, *,
                        t: int | None, steps: int | None, refine: int) -> Tensor:
    """``encode(x, method="ddim_inversion")``: x_T flattened to ``(n, event_dim)``.

    Raises:
        ConfigError: a noise step ``t`` (it belongs to the features method), or ``steps``
            outside [1, T].
    """
    if t is not None:
        raise ConfigError(f"Expected no t with method='ddim_inversion' (it runs to T - 1), "
                          f"but found t={t!r}.")
    steps = min(50, model.schedule.num_timesteps) if steps is None else steps
    x_T = ddim_invert(model, model.to_working(x), y, steps=steps, refine=refine)
    return x_T.reshape(x.shape[0], -1)
