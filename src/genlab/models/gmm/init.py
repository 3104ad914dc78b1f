"""Starting points for EM: k-means++ seeding, Lloyd's k-means, hard responsibilities.

A mixture is started from K centres: each point is assigned to its nearest centre and one
M-step turns those hard responsibilities into weights, means and covariances.

* ``kmeans_plusplus``: D^2 seeding, each new centre drawn with probability proportional to
  the squared distance to the nearest centre so far;
* ``kmeans``: Lloyd's iterations from those seeds (assign to the nearest centre, move each
  centre to the mean of its points) until the centres stop moving.

References:
    Arthur & Vassilvitskii (2007), "k-means++: the advantages of careful seeding";
    Lloyd (1982), "Least squares quantization in PCM".
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from genlab import rand


def _draw(weights: Tensor, generator: torch.Generator | None, m: int = 1) -> Tensor:
    """Indices drawn with probability proportional to ``weights`` (inverse CDF, any size)."""
    cdf = weights.cumsum(0)
    u = rand.rand(m, generator=generator, dtype=cdf.dtype, device=cdf.device) * cdf[-1]
    return torch.searchsorted(cdf, u, right=True).clamp(max=weights.numel() - 1)


def _square_distances(x: Tensor, sq_norms: Tensor, centres: Tensor) -> Tensor:
    """``|x_n - c_j|^2`` as ``|x|^2 - 2 x.c + |c|^2`` (one GEMM), clamped at 0, ``(n, J)``."""
    return (sq_norms[:, None] - 2.0 * x @ centres.T + centres.square().sum(-1)).clamp_(min=0)


def kmeans_plusplus(
    x: Tensor, k: int, generator: torch.Generator | None = None, *, candidates: int | None = None
) -> Tensor:
    """k-means++ seeding: each new centre is drawn with probability proportional to the
    squared distance to the nearest centre chosen so far (D^2 sampling).

    Each step draws ``candidates`` points and keeps the one that lowers the total squared
    distance most: by default ``2 + floor(log k)`` (the greedy variant the k-means++ paper
    discusses, as scikit-learn does); 1 is the paper's original algorithm.

    Arguments:
        x: Points, ``(n, D)``.
        k: Number of centres, ``k <= n``.
        generator: Source of randomness.
        candidates: Draws per centre (None: ``2 + floor(log k)``).

    Returns:
        Centres, ``(k, D)``, rows of ``x``.
    """
    n = x.shape[0]
    trials = 2 + int(math.log(k)) if candidates is None else candidates
    points = x.float()  # distances for seeding need no more precision
    sq_norms = points.square().sum(-1)  # (n,)
    first = int(rand.randint(n, (1,), generator=generator, device=x.device))
    chosen = [first]
    closest = _square_distances(points, sq_norms, points[[first]])[:, 0]  # (n,) to nearest
    for _ in range(1, k):
        if closest.sum() > 0:
            drawn = _draw(closest.double(), generator, trials)
        else:  # every point sits on a centre already
            drawn = rand.randint(n, (trials,), generator=generator, device=x.device)
        dist = _square_distances(points, sq_norms, points[drawn])  # (n, trials)
        new_closest = torch.minimum(closest[:, None], dist)  # (n, trials)
        best = int(new_closest.sum(0, dtype=torch.float64).argmin())
        chosen.append(int(drawn[best]))
        closest = new_closest[:, best]
    return x[chosen]


def nearest_centre(x: Tensor, centres: Tensor) -> Tensor:
    """Index ``(n,)`` of the nearest centre, from ``|c|^2 - 2 x.c`` in float32 (one GEMM; the
    precision only matters for points almost equidistant from two centres)."""
    x32, c32 = x.float(), centres.float()
    scores = torch.addmm(c32.square().sum(-1), x32, c32.T, alpha=-2.0)  # (n, K)
    return scores.argmin(dim=1)


def hard_responsibilities(x: Tensor, centres: Tensor) -> Tensor:
    """One-hot ``(n, K)`` responsibilities assigning each point to its nearest centre."""
    nearest = nearest_centre(x, centres)
    return torch.nn.functional.one_hot(nearest, centres.shape[0]).to(x.dtype)


def kmeans(x: Tensor, centres: Tensor, *, max_iter: int = 100, tol: float = 1e-4) -> Tensor:
    """Lloyd's k-means from ``centres`` ``(K, D)``; returns the final centres.

    Stops when the total squared movement of the centres falls below ``tol`` times the mean
    per-dimension variance of ``x`` (the rule scikit-learn's ``KMeans`` uses), or after
    ``max_iter`` iterations. A centre that loses all its points stays where it is.
    """
    threshold = tol * (x - x.mean(0)).square().mean()  # mean per-dimension variance
    points = x.float()  # for the assignments only; the centres are means of x itself
    for _ in range(max_iter):
        nearest = nearest_centre(points, centres)  # (n,)
        counts = torch.bincount(nearest, minlength=centres.shape[0]).to(x.dtype)  # (K,)
        sums = torch.zeros_like(centres).index_add_(0, nearest, x)  # (K, D)
        moved = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centres)
        shift = (moved - centres).square().sum()
        centres = moved
        if shift <= threshold:
            break
    return centres
