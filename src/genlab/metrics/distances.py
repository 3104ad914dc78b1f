"""Two-sample distances: how far a set of samples is from a reference set.

* :func:`mmd` -- unbiased squared maximum mean discrepancy with a mixture of RBF kernels;
* :func:`sliced_wasserstein` -- Wasserstein-p distance averaged over random 1-D projections;
* :func:`energy_distance` -- the energy distance of Szekely and Rizzo.

Inputs are tensors (or numpy arrays) of shape ``(n, *shape)``, flattened to vectors and
compared in float64 (:mod:`genlab.metrics.pairwise`); results are Python floats. Definitions,
what good values look like and references are in ``docs/metrics.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from genlab.checks import check_int, check_number
from genlab.errors import ConfigError
from genlab.metrics.pairwise import (
    BLOCK_ELEMENTS,
    ArrayLike,
    as_pair,
    median_distance,
    sq_dist_blocks,
)

#: Default bandwidth multiples of the median heuristic for :func:`mmd`.
MMD_BANDWIDTH_MULTIPLES: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)


# ---------------------------------------------------------------------------- MMD
def mmd(x: ArrayLike, y: ArrayLike, *, bandwidths: Sequence[float] | None = None) -> float:
    r"""Unbiased estimate of the squared maximum mean discrepancy MMD^2(P, Q).

    With samples x_1..x_n ~ P, y_1..y_m ~ Q and a kernel k,

    .. math::
        \widehat{\mathrm{MMD}}^2 = \frac{1}{n(n-1)}\sum_{i \ne j} k(x_i, x_j)
            + \frac{1}{m(m-1)}\sum_{i \ne j} k(y_i, y_j) - \frac{2}{nm}\sum_{i,j} k(x_i, y_j).

    The kernel is the average of RBF kernels ``exp(-|a - b|^2 / (2 s^2))`` over the
    bandwidths ``s`` (a characteristic kernel, so MMD = 0 iff P = Q; with k(a, a) = 1 the
    value lies in [-1, 2]). The estimate is unbiased, so it can be slightly negative when
    P = Q.

    Arguments:
        x: Samples, shape ``(n, *shape)``, n >= 2.
        y: Reference samples, shape ``(m, *shape)``, m >= 2.
        bandwidths: Kernel bandwidths. Default: the median pairwise distance of ``y`` times
            ``(0.25, 0.5, 1, 2, 4)``. Taken from the reference only, so several sample sets
            compared with one reference are scored with the same kernel.

    Returns:
        The MMD^2 estimate (float).

    References:
        Gretton et al., "A Kernel Two-Sample Test", JMLR 2012, eq. (3).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x, y = torch.randn(500, 2, generator=g), torch.randn(500, 2, generator=g)
        >>> abs(mmd(x, y)) < 0.01
        True
    """
    a, b = as_pair(x, y, ("x", "y"), min_rows=2)
    if bandwidths is None:
        median = median_distance(b)
        median = median if median > 0 else 1.0  # a reference set of one repeated point
        bandwidths = [median * s for s in MMD_BANDWIDTH_MULTIPLES]
    scales = torch.tensor([float(s) for s in bandwidths], dtype=torch.float64, device=a.device)
    if scales.numel() == 0 or not bool((scales > 0).all()) or not bool(scales.isfinite().all()):
        raise ConfigError(f"Expected positive finite bandwidths, but found {list(bandwidths)}.")
    gammas = (1.0 / (2.0 * scales**2)).tolist()

    def kernel_sum(u: Tensor, v: Tensor) -> float:
        # sum over pairs of the mean over bandwidths of exp(-gamma d^2)
        total = 0.0
        for _, d2 in sq_dist_blocks(u, v):
            total += sum(torch.exp(d2 * -g).sum().item() for g in gammas) / len(gammas)
        return total

    n, m = a.shape[0], b.shape[0]
    # k(a, a) = 1 on the diagonal: remove it for the unbiased within-set terms
    k_xx = (kernel_sum(a, a) - n) / (n * (n - 1))
    k_yy = (kernel_sum(b, b) - m) / (m * (m - 1))
    k_xy = kernel_sum(a, b) / (n * m)
    return k_xx + k_yy - 2.0 * k_xy


# ---------------------------------------------------------------------------- Wasserstein
def _wasserstein_1d_pow(xs: Tensor, ys: Tensor, p: float) -> Tensor:
    """W_p^p between empirical 1-D measures, for each row; ``xs`` (P, n), ``ys`` (P, m) sorted.

    W_p^p = int_0^1 |F^{-1}(t) - G^{-1}(t)|^p dt, and both empirical quantile functions are
    constant between consecutive levels of {i/n} U {j/m}, so the integral is an exact sum.
    """
    n, m = xs.shape[1], ys.shape[1]
    levels = torch.cat([torch.arange(1, n + 1, dtype=xs.dtype, device=xs.device) / n,
                        torch.arange(1, m + 1, dtype=xs.dtype, device=xs.device) / m])
    levels = torch.unique(levels.clamp_max(1.0))  # sorted, ends at 1
    edges = torch.cat([levels.new_zeros(1), levels])
    widths = edges[1:] - edges[:-1]  # (L,)
    mids = 0.5 * (edges[1:] + edges[:-1])
    ix = (mids * n).floor().long().clamp_max(n - 1)  # quantile index of x in each piece
    iy = (mids * m).floor().long().clamp_max(m - 1)
    return ((xs[:, ix] - ys[:, iy]).abs() ** p * widths).sum(1)  # (P,)


def sliced_wasserstein(
    x: ArrayLike,
    y: ArrayLike,
    *,
    n_projections: int = 256,
    p: float = 2.0,
    generator: torch.Generator | None = None,
) -> float:
    r"""Sliced Wasserstein-p distance between two sample sets.

    .. math::
        SW_p(P, Q) = \Big(\mathbb{E}_{\theta \sim U(S^{D-1})}
            W_p^p(\theta_\# P, \theta_\# Q)\Big)^{1/p},

    estimated with ``n_projections`` random unit directions. Each 1-D distance is exact for
    the two empirical measures (sizes may differ): both quantile functions are step
    functions and the integral of ``|F^{-1} - G^{-1}|^p`` is summed piece by piece.
    In 1-D the value is the exact W_p (``p=1`` equals ``scipy.stats.wasserstein_distance``).
    For two Gaussians N(mu_1, s^2 I), N(mu_2, s^2 I) in D dimensions,
    SW_2 = |mu_1 - mu_2| / sqrt(D).

    Arguments:
        x: Samples, shape ``(n, *shape)``.
        y: Reference samples, shape ``(m, *shape)``.
        n_projections: Number of random directions (Monte Carlo error ~ 1/sqrt of it).
        p: Order p >= 1 (default 2, the usual sliced W_2).
        generator: Source of the random directions.

    Returns:
        SW_p (float), in the units of the data.

    References:
        Bonneel, Rabin, Peyre, Pfister, "Sliced and Radon Wasserstein Barycenters of
        Measures", JMIV 2015; Kolouri et al., "Sliced Wasserstein Auto-Encoders", ICLR 2019.
    """
    check_int("n_projections", n_projections)
    check_number("p", p, ge=1)
    a, b = as_pair(x, y, ("x", "y"))
    d = a.shape[1]
    if d == 1:
        # one direction is all there is (W_p does not change when both sets are negated)
        theta = torch.ones(1, 1, dtype=torch.float64)
    else:
        theta = torch.randn(n_projections, d, generator=generator, dtype=torch.float64)
        theta = theta / theta.norm(dim=1, keepdim=True)  # (P, D) unit directions
    theta = theta.to(a.device)
    chunk = max(1, BLOCK_ELEMENTS // (a.shape[0] + b.shape[0]))
    total = 0.0
    for start in range(0, theta.shape[0], chunk):
        t = theta[start:start + chunk]
        xs = (a @ t.T).T.sort(dim=1).values  # (chunk, n)
        ys = (b @ t.T).T.sort(dim=1).values  # (chunk, m)
        total += _wasserstein_1d_pow(xs, ys, float(p)).sum().item()
    return (total / theta.shape[0]) ** (1.0 / p)


# ---------------------------------------------------------------------------- energy
def energy_distance(x: ArrayLike, y: ArrayLike) -> float:
    r"""Energy distance between the empirical distributions of two sample sets.

    .. math::
        \mathcal{E}(P, Q) = \big(2\,\mathbb{E}|X - Y| - \mathbb{E}|X - X'|
            - \mathbb{E}|Y - Y'|\big)^{1/2},

    with every expectation over the empirical measures (V-statistics: each mean includes the
    zero ``i = j`` terms). The quantity under the root is >= 0 and 0 only for equal sets; in
    1-D the value equals ``scipy.stats.energy_distance``.

    Arguments:
        x: Samples, shape ``(n, *shape)``.
        y: Reference samples, shape ``(m, *shape)``.

    Returns:
        The energy distance (float), in square-root units of the data.

    References:
        Szekely and Rizzo, "Energy statistics: A class of statistics based on distances",
        J. Stat. Planning and Inference 2013.
    """
    a, b = as_pair(x, y, ("x", "y"))

    def mean_distance(u: Tensor, v: Tensor) -> float:
        total = sum(d2.sqrt().sum().item() for _, d2 in sq_dist_blocks(u, v))
        return total / (u.shape[0] * v.shape[0])

    value = 2.0 * mean_distance(a, b) - mean_distance(a, a) - mean_distance(b, b)
    return math.sqrt(max(value, 0.0))
