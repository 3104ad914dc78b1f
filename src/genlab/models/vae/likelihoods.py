r"""The decoder's distribution :math:`p(x \mid z)`, one factor per data dimension.

The decoder network outputs ``P`` numbers per dimension, laid out ``(n, P, *event_shape)``;
a likelihood turns them into log-probabilities of ``x`` and into draws:

=============  ===========================  ===  =========================================
name           data                         P    p(x_d | z)
=============  ===========================  ===  =========================================
gaussian       continuous (standardised)    1    N(mean_d, sigma_d^2), sigma_d a parameter
bernoulli      binary (num_levels = 2)      1    Bernoulli(sigmoid(logit_d))
categorical    levels 0 .. L-1              L    softmax over the L logits
logistic       levels 0 .. L-1              2    discretised logistic (PixelCNN++)
=============  ===========================  ===  =========================================

The discrete ones also give the whole table ``probs`` ``(n, D, L)`` that an entropy coder
needs (bits-back coding, :mod:`genlab.compress.bitsback`).

The discretised logistic (Salimans et al. 2017) puts on level k the logistic mass of
``[k - 1/2, k + 1/2]``, the two end levels taking the tails:
``P(k) = sigmoid((k + 1/2 - mu) / s) - sigmoid((k - 1/2 - mu) / s)``, computed in log space
as ``log sigmoid(a) + log(1 - exp(log sigmoid(b) - log sigmoid(a)))`` so that neither
the far tails nor a sharp ``s`` lose precision.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from genlab import rand

LIKELIHOODS = ("gaussian", "bernoulli", "categorical", "logistic")
#: Where the end levels' open intervals are cut: far enough to hold all the mass in float32.
_FAR = 1e6


def num_params(likelihood: str, num_levels: int | None) -> int:
    """Decoder outputs ``P`` per data dimension."""
    if likelihood == "categorical":
        return int(num_levels)
    return 2 if likelihood == "logistic" else 1


def _logistic_log_probs(params: Tensor, levels: int) -> Tensor:
    """Log-probabilities of every level: ``(n, 2, *shape)`` -> ``(n, L, *shape)``."""
    mean = (levels - 1) / 2 * (1 + params[:, 0])  # 0 -> the middle level
    log_scale = params[:, 1].clamp(-7.0, 7.0)
    k = torch.arange(levels, dtype=params.dtype, device=params.device)
    k = k.reshape(1, levels, *[1] * (params.dim() - 2))
    upper = torch.where(k == levels - 1, _FAR, k + 0.5)
    lower = torch.where(k == 0, -_FAR, k - 0.5)
    inv = torch.exp(-log_scale).unsqueeze(1)
    a = (upper - mean.unsqueeze(1)) * inv  # (n, L, *shape)
    b = (lower - mean.unsqueeze(1)) * inv
    log_a, log_b = F.logsigmoid(a), F.logsigmoid(b)
    # log(sigmoid(a) - sigmoid(b)); the upper tail is the same mass seen from the other side,
    # sigmoid(-b) - sigmoid(-a), which keeps precision where both sigmoids are near 1.
    low_side = log_a + torch.log(-torch.expm1((log_b - log_a).clamp(max=-1e-12)))
    log_na, log_nb = F.logsigmoid(-a), F.logsigmoid(-b)
    high_side = log_nb + torch.log(-torch.expm1((log_na - log_nb).clamp(max=-1e-12)))
    return torch.where(b > 0, high_side, low_side)


def log_prob(likelihood: str, params: Tensor, x: Tensor, num_levels: int | None,
             log_sigma: Tensor | None = None) -> Tensor:
    """``log p(x | z)`` summed over dimensions.

    Arguments:
        likelihood: One of :data:`LIKELIHOODS`.
        params: Decoder outputs ``(n, P, *event_shape)``.
        x: Data ``(n, *event_shape)`` (standardised for the Gaussian; levels otherwise).
        num_levels: L for discrete data.
        log_sigma: The Gaussian's log standard deviations, shape ``event_shape``.

    Returns:
        ``(n,)`` log-densities (Gaussian) or log-masses (discrete).
    """
    if likelihood == "gaussian":
        z = (x - params[:, 0]) * torch.exp(-log_sigma)
        out = -0.5 * z**2 - log_sigma - 0.5 * math.log(2 * math.pi)
    elif likelihood == "bernoulli":
        out = -F.binary_cross_entropy_with_logits(params[:, 0], x, reduction="none")
    else:
        table = log_probs(likelihood, params, num_levels)  # (n, L, *shape)
        out = table.gather(1, x.long().unsqueeze(1)).squeeze(1)
    return out.flatten(1).sum(1)


def log_probs(likelihood: str, params: Tensor, num_levels: int) -> Tensor:
    """Log-probabilities of every level of a discrete likelihood: ``(n, L, *event_shape)``."""
    if likelihood == "categorical":
        return F.log_softmax(params, dim=1)
    if likelihood == "logistic":
        return _logistic_log_probs(params, num_levels)
    if likelihood == "bernoulli":
        logit = params[:, 0]
        return torch.stack([F.logsigmoid(-logit), F.logsigmoid(logit)], dim=1)
    raise ValueError(f"Expected a discrete likelihood, but found {likelihood!r}.")


def probs(likelihood: str, params: Tensor, num_levels: int) -> Tensor:
    """Probability tables for an entropy coder: ``(n, D, L)``, rows sum to one."""
    table = log_probs(likelihood, params, num_levels).exp()  # (n, L, *shape)
    return table.flatten(2).transpose(1, 2).contiguous()


def sample(likelihood: str, params: Tensor, num_levels: int | None, log_sigma: Tensor | None,
           *, mode: bool, generator: torch.Generator | None) -> Tensor:
    """A draw of ``x`` from ``p(x | z)`` (or its most likely value / mean with ``mode``):
    ``(n, *event_shape)``; levels as floats for discrete data."""
    if likelihood == "gaussian":
        mean = params[:, 0]
        if mode:
            return mean
        eps = rand.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + torch.exp(log_sigma) * eps
    table = log_probs(likelihood, params, num_levels)  # (n, L, *shape)
    if mode:
        return table.argmax(1).to(params.dtype)
    flat = table.movedim(1, -1).reshape(-1, table.shape[1]).exp()  # (n * D, L)
    draws = rand.multinomial(flat, 1, generator=generator)
    return draws.reshape(table.shape[0], *table.shape[2:]).to(params.dtype)
