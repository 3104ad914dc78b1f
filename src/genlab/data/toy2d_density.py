"""Closed-form definitions of the 2-D toy densities: parameters, exact log densities, entropies.

Equal-weight isotropic Gaussian mixtures (``8gaussians``, ``25gaussians``, ``ring8``), with K
centres c_k and standard deviation sigma:

    p(x) = (1/K) sum_k N(x; c_k, sigma^2 I),
    log p(x) = logsumexp_k( -|x - c_k|^2 / (2 sigma^2) ) - log K - log(2 pi sigma^2).

Noisy rings (``circles``, ``rings``): a radius r_k chosen with probability 1/K, an angle theta
uniform on [0, 2 pi), and isotropic Gaussian noise of std sigma. Averaging the Gaussian over
the angle gives a modified Bessel function (the Rice distribution in the radius), with
rho = |x|:

    p(x) = (1/K) sum_k 1/(2 pi sigma^2) exp(-(rho - r_k)^2 / (2 sigma^2)) I0e(rho r_k / sigma^2),

where I0e(z) = exp(-z) I0(z) is the exponentially scaled Bessel function (stable for large z).

Checkerboard: uniform on 8 of the 16 2x2 squares tiling [-4, 4)^2 (those whose integer cell
indices i = floor(x1 / 2), j = floor(x2 / 2) have i + j even); total area 32, so
log p(x) = log(1/32) inside and -inf outside.

``moons``, ``spirals`` and ``pinwheel`` have no closed-form density; asking for one raises
:class:`~genlab.errors.IntractableLikelihood`.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import Tensor

from genlab.errors import IntractableLikelihood, ShapeError

# FFJORD's 8gaussians: centres 4 * (cos, sin)(k * 45 deg), std 0.5, everything divided by 1.414
# (the literal constant, not sqrt(2), so numbers match published ones).
FFJORD_DIVISOR = 1.414

GAUSSIAN_MIXTURES = ("8gaussians", "25gaussians", "ring8")
NOISY_RINGS = ("circles", "rings")
UNIFORM_SETS = ("checkerboard",)
NO_CLOSED_FORM = ("moons", "spirals", "pinwheel")
WITH_DENSITY = GAUSSIAN_MIXTURES + NOISY_RINGS + UNIFORM_SETS


def _unit_circle(k: int) -> np.ndarray:
    """``k`` points on the unit circle at angles ``2 pi i / k``, i = 0..k-1; shape (k, 2)."""
    angles = 2.0 * math.pi * np.arange(k) / k
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def mixture_spec(name: str) -> tuple[np.ndarray, float]:
    """Centres (K, 2) and component std of an equal-weight Gaussian mixture data set.

    * ``8gaussians`` (FFJORD): c_k = 4 (cos, sin)(k pi/4) / 1.414, sigma = 0.5 / 1.414.
    * ``25gaussians`` (VEEGAN / PacGAN grid): c_ij = (-4 + 2i, -4 + 2j), i, j in 0..4,
      sigma = 0.05.
    * ``ring8`` (VEEGAN / unrolled GAN ring): c_k = 2 (cos, sin)(k pi/4), sigma = 0.02.
    """
    if name == "8gaussians":
        return 4.0 * _unit_circle(8) / FFJORD_DIVISOR, 0.5 / FFJORD_DIVISOR
    if name == "25gaussians":
        grid = -4.0 + 2.0 * np.arange(5, dtype=np.float64)
        gx, gy = np.meshgrid(grid, grid, indexing="ij")
        return np.stack([gx.ravel(), gy.ravel()], axis=1), 0.05
    if name == "ring8":
        return 2.0 * _unit_circle(8), 0.02
    raise KeyError(name)


def ring_spec(name: str) -> tuple[np.ndarray, float]:
    """Radii (K,) and noise std of a noisy-ring data set.

    * ``circles`` (FFJORD: scikit-learn make_circles(factor=0.5, noise=0.08), times 3):
      radii 3 and 1.5, sigma = 0.08 * 3 = 0.24.
    * ``rings`` (FFJORD): radii 3 * (1, 0.75, 0.5, 0.25), sigma = 0.08 (added after scaling).
    """
    if name == "circles":
        return np.array([3.0, 1.5]), 0.24
    if name == "rings":
        return 3.0 * np.array([1.0, 0.75, 0.5, 0.25]), 0.08
    raise KeyError(name)


def checkerboard_cell(x: Tensor) -> tuple[Tensor, Tensor]:
    """Integer cell indices ``floor(x / 2)`` of points ``x`` (n, 2), each of shape (n,)."""
    cells = torch.floor(x / 2.0)
    return cells[:, 0], cells[:, 1]


def checkerboard_inside(x: Tensor) -> Tensor:
    """Boolean (n,): whether each point lies in one of the 8 filled squares (half-open)."""
    i, j = checkerboard_cell(x)
    in_box = (x >= -4.0).all(dim=1) & (x < 4.0).all(dim=1)
    return in_box & (torch.remainder(i + j, 2) == 0)


def _check_density_name(name: str) -> None:
    if name in NO_CLOSED_FORM:
        raise IntractableLikelihood(
            f"Data set {name!r} has no closed-form density; exact log densities exist for "
            f"{', '.join(WITH_DENSITY)}. Estimate it instead (e.g. a kernel density or a "
            f"fitted model on a large sample)."
        )
    if name not in WITH_DENSITY:
        # Imported here: the name list and its close-match hint live with the generators.
        from genlab.data.toy2d import check_toy_name

        check_toy_name(name)


def _mixture_log_density(x: Tensor, centers: np.ndarray, std: float) -> Tensor:
    c = torch.as_tensor(centers, dtype=x.dtype, device=x.device)  # (K, 2)
    sq_dist = ((x[:, None, :] - c[None, :, :]) ** 2).sum(-1)  # (n, K)
    k = c.shape[0]
    return (
        torch.logsumexp(-sq_dist / (2.0 * std**2), dim=1)
        - math.log(k)
        - math.log(2.0 * math.pi * std**2)
    )


def _rings_log_density(x: Tensor, radii: np.ndarray, std: float) -> Tensor:
    r = torch.as_tensor(radii, dtype=x.dtype, device=x.device)  # (K,)
    rho = x.norm(dim=1, keepdim=True)  # (n, 1)
    # log of exp(-(rho - r)^2 / 2s^2) * I0e(rho r / s^2); I0e is scaled, so no overflow.
    log_terms = -((rho - r) ** 2) / (2.0 * std**2) + torch.log(
        torch.special.i0e(rho * r / std**2)
    )  # (n, K)
    k = r.shape[0]
    return torch.logsumexp(log_terms, dim=1) - math.log(k) - math.log(2.0 * math.pi * std**2)


def log_density(name: str, x: Tensor) -> Tensor:
    """Exact log density log p(x) of a toy data set at points ``x``.

    Computed in float64 and returned in ``x``'s floating dtype (float32 for integer input).
    For ``moons`` the density is standardised data of scikit-learn's make_moons, which has no
    closed form.

    Arguments:
        name: One of ``8gaussians``, ``25gaussians``, ``ring8``, ``circles``, ``rings``,
            ``checkerboard``.
        x: Points, shape (n, 2).

    Returns:
        Tensor of shape (n,): log p(x) in nats (``-inf`` outside the checkerboard's support).

    Raises:
        UnknownNameError: ``name`` is not a toy data set.
        IntractableLikelihood: the data set has no closed-form density (moons, spirals,
            pinwheel).
        ShapeError: ``x`` is not of shape (n, 2).

    Example:
        >>> import torch
        >>> from genlab.data.toy2d import log_density
        >>> log_density("checkerboard", torch.tensor([[0.5, 0.5], [2.5, 0.5]]))
        tensor([-3.4657,    -inf])
    """
    _check_density_name(name)
    if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ShapeError(f"Expected x of shape (n, 2) for log_density, but found {shape}.")
    out_dtype = x.dtype if x.is_floating_point() else torch.float32
    x64 = x.detach().to(torch.float64)
    if name in GAUSSIAN_MIXTURES:
        out = _mixture_log_density(x64, *mixture_spec(name))
    elif name in NOISY_RINGS:
        out = _rings_log_density(x64, *ring_spec(name))
    else:  # checkerboard: uniform on total area 32
        out = torch.full((x64.shape[0],), -math.log(32.0), dtype=torch.float64, device=x.device)
        out[~checkerboard_inside(x64)] = -math.inf
    return out.to(out_dtype)


# Gauss-Hermite nodes per axis for the entropy quadrature; log p is analytic, so the product
# rule converges geometrically (64 and 96 nodes agree to ~1e-12 nats on every set here).
_HERMITE_NODES = 64


@functools.cache
def entropy(name: str) -> float:
    """Differential entropy H = -E_p[log p(X)] of a toy data set, in nats.

    * ``checkerboard``: exactly log 32 (uniform on area 32).
    * Gaussian mixtures: H = -(1/K) sum_k E_{X ~ N(c_k, sigma^2 I)}[log p(X)], each expectation
      by a 64 x 64 Gauss-Hermite product rule, X = c_k + sqrt(2) sigma (t_i, t_j), weights
      w_i w_j / pi. Deterministic; accurate to ~1e-12 nats.
    * Noisy rings: log p is rotation invariant, so E over ring k equals the expectation at
      angle 0: X = (r_k, 0) + sigma Z, by the same quadrature.

    For well separated modes H -> log K + log(2 pi e sigma^2) (25gaussians, ring8 equal it to
    machine precision).

    Raises:
        UnknownNameError: ``name`` is not a toy data set.
        IntractableLikelihood: no closed-form density (moons, spirals, pinwheel).

    Example:
        >>> from genlab.data.toy2d import entropy
        >>> round(entropy("checkerboard"), 6)
        3.465736
    """
    _check_density_name(name)
    if name == "checkerboard":
        return math.log(32.0)
    t, w = np.polynomial.hermite.hermgauss(_HERMITE_NODES)
    tx, ty = np.meshgrid(t, t, indexing="ij")
    offsets = math.sqrt(2.0) * np.stack([tx.ravel(), ty.ravel()], axis=1)  # (m*m, 2)
    weights = torch.as_tensor(np.outer(w, w).ravel() / math.pi)  # (m*m,), sums to 1
    if name in GAUSSIAN_MIXTURES:
        centers, std = mixture_spec(name)
    else:
        radii, std = ring_spec(name)
        centers = np.stack([radii, np.zeros_like(radii)], axis=1)  # angle 0 on each ring
    total = 0.0
    for c in centers:
        points = torch.as_tensor(c[None, :] + std * offsets)  # (m*m, 2), float64
        total += float((weights * log_density(name, points)).sum())
    return -total / len(centers)
