r"""The true reverse step of the forward diffusion when the data are a Gaussian mixture.

In general :math:`q(x_{t-1} \mid x_t) \propto q(x_{t-1})\, q(x_t \mid x_{t-1})` is intractable;
for data :math:`q(x_0) = \sum_k w_k \mathcal N(m_k, s^2 I)` it is exact. The diffused
marginal is the mixture :math:`q(x_{t-1}) = \sum_k w_k \mathcal N(\sqrt{\bar\alpha_{t-1}} m_k,
v I)` with :math:`v = \bar\alpha_{t-1} s^2 + 1 - \bar\alpha_{t-1}`, and each component times
the Gaussian step :math:`\mathcal N(x_t; \sqrt{\alpha_t} x_{t-1}, \beta_t I)` is Gaussian in
:math:`x_{t-1}`, so the posterior is again a mixture:

.. math::
    q(x_{t-1} \mid x_t) = \sum_k r_k(x_t)\, \mathcal N(\mu_k, \sigma^2 I), \quad
    \sigma^{-2} = v^{-1} + \alpha_t / \beta_t, \quad
    \mu_k = \sigma^2 (\sqrt{\bar\alpha_{t-1}} m_k / v + \sqrt{\alpha_t} x_t / \beta_t),

with :math:`r_k \propto w_k \mathcal N(x_t; \sqrt{\bar\alpha_t} m_k, (\bar\alpha_t s^2 + 1 -
\bar\alpha_t) I)`. A DDPM replaces it by one Gaussian
:math:`\mathcal N(c_0 \hat x_0 + c_t x_t, \tilde\beta_t I)`; with the best denoiser,
:math:`\hat x_0 = E[x_0 \mid x_t]` (:func:`gmm_denoised_mean`), its mean is exactly the
posterior's mean.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from genlab.errors import ConfigError
from genlab.models.diffusion.schedule import NoiseSchedule


def _responsibilities(x_t: Tensor, weights: Tensor, centres: Tensor, std: float,
                      ab: float) -> Tensor:
    """r_k(x_t) ``(K,)``: the posterior probability that x_t came from component k."""
    var = ab * std**2 + 1.0 - ab  # of q(x_t | k)
    d2 = ((x_t - math.sqrt(ab) * centres) ** 2).sum(-1)  # (K,)
    return torch.softmax(weights.log() - 0.5 * d2 / var, dim=0)


def _step(schedule: NoiseSchedule, t: int, s: int | None) -> tuple[int, float, float]:
    """(s, alpha, beta) of the jump q(x_t | x_s) = N(sqrt(alpha) x_s, beta I); s: t - 1 default."""
    s = t - 1 if s is None else s
    if not -1 <= s < t:
        raise ConfigError(f"Expected an earlier step s in [-1, {t}), but found {s}.")
    alpha = schedule.alpha_bar_at(t) / schedule.alpha_bar_at(s)
    return s, alpha, 1.0 - alpha


def gmm_reverse_posterior(
    x_t: Tensor, t: int, schedule: NoiseSchedule, weights: Tensor, centres: Tensor, std: float,
    s: int | None = None,
) -> tuple[Tensor, Tensor, float]:
    """The exact :math:`q(x_{t-1} \\mid x_t)` of Gaussian-mixture data, a mixture itself.

    With ``s`` the same for a jump back to an earlier step: :math:`q(x_s \\mid x_t)`, where
    :math:`q(x_t \\mid x_s) = \\mathcal N(\\sqrt{\\alpha} x_s, (1 - \\alpha) I)`,
    :math:`\\alpha = \\bar\\alpha_t / \\bar\\alpha_s`.

    Arguments:
        x_t: One point ``(D,)``.
        t: Step index in ``[0, T)`` (x_{t-1} is x_0 at t = 0).
        s: The earlier step index in ``[-1, t)`` (-1: x_0); default ``t - 1``.
        schedule: The forward process.
        weights: Mixture weights ``(K,)`` of the data.
        centres: Component means ``(K, D)`` of the data.
        std: The components' common standard deviation s.

    Returns:
        The posterior's weights ``(K,)``, component means ``(K, D)`` and common variance.
    """
    s, alpha, beta = _step(schedule, t, s)
    ab_prev = schedule.alpha_bar_at(s)
    v = ab_prev * std**2 + 1.0 - ab_prev  # variance of each component of q(x_{t-1})
    var = 1.0 / (1.0 / v + alpha / beta)
    means = var * (math.sqrt(ab_prev) * centres / v + math.sqrt(alpha) * x_t / beta)  # (K, D)
    r = _responsibilities(x_t, weights, centres, std, schedule.alpha_bar_at(t))
    return r, means, var


def gaussian_step(x0: Tensor, x_t: Tensor, t: int, schedule: NoiseSchedule,
                  s: int | None = None) -> tuple[Tensor, float]:
    """Mean ``(..., D)`` and variance of :math:`q(x_s \\mid x_t, x_0)`, the Gaussian a DDPM
    step puts in place of :math:`q(x_s \\mid x_t)` with its guess of x_0 (s = t - 1:
    ``schedule.q_posterior``; an earlier s: the same formula for a jump)."""
    s, alpha, beta = _step(schedule, t, s)
    ab_s, ab_t = schedule.alpha_bar_at(s), schedule.alpha_bar_at(t)
    mean = (math.sqrt(ab_s) * beta * x0 + math.sqrt(alpha) * (1.0 - ab_s) * x_t) / (1.0 - ab_t)
    return mean, (1.0 - ab_s) / (1.0 - ab_t) * beta


def gmm_denoised_mean(
    x_t: Tensor, t: int, schedule: NoiseSchedule, weights: Tensor, centres: Tensor, std: float
) -> Tensor:
    """:math:`E[x_0 \\mid x_t]` ``(D,)`` for Gaussian-mixture data: the best denoiser's guess."""
    ab = schedule.alpha_bar_at(t)
    gain = math.sqrt(ab) * std**2 / (ab * std**2 + 1.0 - ab)
    per_component = centres + gain * (x_t - math.sqrt(ab) * centres)  # (K, D)
    r = _responsibilities(x_t, weights, centres, std, ab)
    return r @ per_component


def mixture_log_density(points: Tensor, weights: Tensor, means: Tensor, var: float) -> Tensor:
    """log of :math:`\\sum_k w_k \\mathcal N(x; \\mu_k, \\sigma^2 I)` at ``points`` ``(m, D)``."""
    d = points.shape[-1]
    d2 = torch.cdist(points, means) ** 2  # (m, K)
    log_n = -0.5 * d2 / var - 0.5 * d * math.log(2 * math.pi * var)
    return torch.logsumexp(weights.log() + log_n, dim=1)
