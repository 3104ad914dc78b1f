"""The variational bound on log p(x_0) of a diffusion model (Ho et al. 2020, eq. 5).

    -log p(x_0) <= L_T + sum_{t=2}^{T} L_{t-1} + L_0, with

    L_T     = KL(q(x_T | x_0) || N(0, I))                              (prior term, no network)
    L_{t-1} = E_q KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))           (one per step)
    L_0     = E_q [-log p(x_0 | x_1)]                                      (decoder term)

The reverse model is p(x_{t-1} | x_t) = N(mu_theta(x_t, t), sigma_t^2 I) with mu_theta the
posterior mean at the network's guess x0_hat, and sigma_t^2 fixed: beta_t ("large") or
beta_tilde_t ("small"). Both means weigh x_t the same, so they differ by c0_t (x_0 - x0_hat)
and each KL of two isotropic Gaussians is, summed over the D dimensions,

    0.5 D (log(sigma_t^2 / beta_tilde_t) + beta_tilde_t / sigma_t^2 - 1)
        + c0_t^2 ||x_0 - x0_hat||^2 / (2 sigma_t^2).

Any fixed sigma_t gives a valid bound. "large" is close to the true reverse variance for data
that are smooth at the noise scale (the bound of a Gaussian with its exact predictor is then
within 0.01 nats of the true log-likelihood, against about 0.9 nats with "small"); "small" is
exact when x_0 is determined by x_t. The decoder p(x_0 | x_1) has mean x0_hat(x_1) and
variance beta_1 (Ho et al. sec. 3.3):

* continuous data: a Gaussian density;
* discrete data on level centres in (-1, 1): the *discretized* Gaussian, the probability of
  the bin ``[x - 1/L, x + 1/L]`` (edge bins reaching to -inf, +inf), an honest probability
  *mass*, so the bound is a bound on log P(x) for integer pixels.

Every expectation is estimated with one draw of x_t per step; the sum runs over every step
(not a random subset), which keeps the estimate's variance small.

Indices in code are 0-based (see :mod:`~genlab.models.diffusion.schedule`): the paper's L_{t-1}
for t = 2..T is the code's step index 1..T-1, and the decoder uses index 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from genlab import rand
from genlab.errors import ConfigError
from genlab.models.diffusion.schedule import NoiseSchedule

#: ``denoise(x_t, t) -> x0_hat`` for a batch at one step index t.
DenoiseX0 = Callable[[Tensor, int], Tensor]


def _sum_event(v: Tensor) -> Tensor:
    return v.reshape(v.shape[0], -1).sum(dim=1)  # (n,)


def prior_kl(schedule: NoiseSchedule, x0: Tensor) -> Tensor:
    """L_T = KL(N(sqrt(ab_T) x0, (1 - ab_T) I) || N(0, I)) per sample, in nats, shape ``(n,)``.

    For one dimension KL(N(m, v) || N(0, 1)) = 0.5 (v + m^2 - 1 - log v).
    """
    ab = schedule.alpha_bar_at(schedule.num_timesteps - 1)
    v = 1.0 - ab
    per_dim = 0.5 * (v + ab * x0.double() ** 2 - 1.0 - math.log(v))
    return _sum_event(per_dim).to(x0.dtype)


def gaussian_log_density(x: Tensor, mean: Tensor, var: float) -> Tensor:
    """log N(x; mean, var I) per sample, shape ``(n,)``."""
    per_dim = -0.5 * (math.log(2 * math.pi * var) + (x - mean) ** 2 / var)
    return _sum_event(per_dim)


def _log_normal_cdf_diff(a: Tensor, b: Tensor) -> Tensor:
    """log(Phi(b) - Phi(a)) for a < b, accurate in both tails.

    Reflect bins whose midpoint is positive (Phi(b) - Phi(a) = Phi(-a) - Phi(-b)) so that
    Phi(b) is never close to 1, then use log Phi(b) + log1p(-Phi(a) / Phi(b)).
    """
    flip = (a + b) > 0
    a, b = torch.where(flip, -b, a), torch.where(flip, -a, b)
    log_b, log_a = torch.special.log_ndtr(b), torch.special.log_ndtr(a)
    return log_b + torch.log1p(-torch.exp(log_a - log_b).clamp(max=1.0 - 1e-12))


def discretized_gaussian_log_mass(
    x: Tensor, mean: Tensor, std: float, num_levels: int
) -> Tensor:
    """log P(x) of a Gaussian N(mean, std^2) binned onto ``num_levels`` level centres.

    ``x`` holds the centres ``(2k + 1) / L - 1`` in (-1, 1) (see ``to_symmetric``); bin k is
    ``[x - 1/L, x + 1/L]``, the first bin extends to -inf and the last to +inf, so the masses
    of the L bins sum to 1 exactly.

    Returns:
        Shape ``(n,)``: the log-mass summed over dimensions.
    """
    half = 1.0 / num_levels
    lower = torch.where(x < -1.0 + 2 * half, -math.inf, (x - half - mean) / std)
    upper = torch.where(x > 1.0 - 2 * half, math.inf, (x + half - mean) / std)
    return _sum_event(_log_normal_cdf_diff(lower, upper))


def _steps(
    num_timesteps: int, strata: int | None, generator: torch.Generator | None
) -> list[tuple[int, float]]:
    """Steps 1..T-1 of the diffusion sum with their weights (all, or one per stratum)."""
    if strata is None or strata >= num_timesteps - 1:
        return [(t, 1.0) for t in range(1, num_timesteps)]
    edges = torch.linspace(1, num_timesteps, strata + 1).round().long().tolist()
    steps = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):  # stratum [lo, hi)
        t = lo + int(rand.randint(hi - lo, (1,), generator=generator))
        steps.append((t, float(hi - lo)))
    return steps


def bound_terms(
    denoise: DenoiseX0,
    schedule: NoiseSchedule,
    x0: Tensor,
    *,
    num_levels: int | None = None,
    variance: str = "large",
    strata: int | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """The terms of the variational bound for a batch, in nats, per sample.

    Arguments:
        denoise: ``(x_t, t) -> x0_hat``; the network's guess of x_0 at step index t.
        schedule: The noise schedule.
        x0: Data in the working space, shape ``(n, *event_shape)`` (level centres in (-1, 1)
            when ``num_levels`` is given).
        num_levels: L for discrete data (discretized decoder), None for continuous data.
        variance: The reverse variance sigma_t^2, ``"large"`` (beta_t) or ``"small"``
            (beta_tilde_t).
        strata: None sums every step. Otherwise the steps 1..T-1 are cut into this many
            equal strata, one step is drawn from each and its term weighted by the stratum's
            size: an unbiased estimate of the same sum for ``strata`` network calls instead
            of T - 1 (for cheap validation).
        generator: Source of the noise of the x_t draws (and of the strata's steps).

    Returns:
        ``{"prior": L_T, "diffusion": sum of L_{t-1}, "decoder": L_0}``, each shape ``(n,)``;
        ``-(prior + diffusion + decoder)`` is the lower bound on log p(x_0).
    """
    if variance not in ("small", "large"):
        raise ConfigError(
            f"Expected variance to be one of 'small', 'large', but found {variance!r}."
        )
    n = x0.shape[0]
    dims = x0[0].numel()
    diffusion = torch.zeros(n, dtype=x0.dtype, device=x0.device)
    for t, weight in _steps(schedule.num_timesteps, strata, generator):
        x_t = schedule.q_sample(x0, t, generator=generator)
        x0_hat = denoise(x_t, t)
        # KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)): a variance part and a mean part.
        c0 = float(schedule.posterior_mean_coef_x0[t])
        var_q = float(schedule.posterior_variance[t])
        var_p = float(schedule.betas[t]) if variance == "large" else var_q
        var_part = 0.5 * dims * (math.log(var_p / var_q) + var_q / var_p - 1.0)
        mean_part = _sum_event((x0 - x0_hat) ** 2) * (c0**2 / (2.0 * var_p))
        diffusion = diffusion + weight * (mean_part + var_part)

    x_1 = schedule.q_sample(x0, 0, generator=generator)
    mean = denoise(x_1, 0)
    var = float(schedule.betas[0])
    if num_levels is None:
        decoder = -gaussian_log_density(x0, mean, var)
    else:
        decoder = -discretized_gaussian_log_mass(x0, mean, math.sqrt(var), num_levels)
    return {"prior": prior_kl(schedule, x0), "diffusion": diffusion, "decoder": decoder}
