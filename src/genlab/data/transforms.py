"""Transforms between discrete pixel levels and the continuous space where continuous
families (Gaussian mixture, flow, diffusion, GAN) work.

Uniform dequantization (Theis et al. 2016): for integer x in [0, L)^D and u ~ U[0, 1)^D,

    log P(x) >= E_u[ log p_c((x + u) / L) ] - D log L,

so a continuous density p_c on the unit cube gives an honest lower bound on the discrete
log-likelihood, on the same bits-per-dimension scale as discrete models.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from genlab import rand


def uniform_dequantize(
    x: Tensor, num_levels: int, generator: torch.Generator | None = None
) -> Tensor:
    """Map integers ``x`` in ``[0, num_levels)`` to ``(x + u) / num_levels`` in ``[0, 1)``.

    Arguments:
        x: Integer-valued float tensor, any shape.
        num_levels: L, the number of levels.
        generator: Source of the uniform noise u.

    Returns:
        Tensor of the same shape, values in ``[0, 1)``.
    """
    u = rand.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (x + u) / num_levels


def dequantization_log_det(event_dim: int, num_levels: int) -> float:
    """The ``-D log L`` term that turns a density on ``[0,1)^D`` into a bound on log P(x)."""
    return -event_dim * math.log(num_levels)


def quantize(u: Tensor, num_levels: int) -> Tensor:
    """Inverse of dequantization: ``floor(u * L)`` clamped to ``[0, L - 1]``, as floats."""
    return torch.clamp(torch.floor(u * num_levels), 0, num_levels - 1)


def to_symmetric(x: Tensor, num_levels: int) -> Tensor:
    """Map integers in ``[0, L)`` to level centres in ``(-1, 1)``: ``(2x + 1) / L - 1``.

    Used by families that model data in [-1, 1] (GAN with tanh output, diffusion).
    """
    return (2.0 * x + 1.0) / num_levels - 1.0


def from_symmetric(v: Tensor, num_levels: int) -> Tensor:
    """Inverse of :func:`to_symmetric`, rounding to the nearest level and clamping."""
    return quantize((v + 1.0) / 2.0, num_levels)
