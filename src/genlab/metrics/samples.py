"""Sample-based metrics: how close a set of samples is to a reference set.

Every function takes tensors (or numpy arrays) of shape ``(n, *shape)`` and flattens each
sample to a vector of ``D`` numbers, so the same metric serves 2-D points and 8x8 images.
Pairwise quantities are computed block by block in float64, so 10,000 x 10,000 comparisons
fit in a few hundred megabytes. Results are Python floats (or dicts of them).

* :func:`mmd` -- unbiased squared maximum mean discrepancy with a mixture of RBF kernels;
* :func:`sliced_wasserstein` -- Wasserstein-p distance averaged over random 1-D projections;
* :func:`energy_distance` -- the energy distance of Szekely and Rizzo;
* :func:`knn_precision_recall` -- k-NN precision and recall (Kynkaanniemi et al. 2019);
* :func:`mode_coverage` -- modes hit and high-quality fraction on Gaussian mixtures;
* :func:`memorization_ratio` -- nearest-training-neighbour distances vs held-out data;
* :func:`sample_metrics` -- all of the above that apply, as one dict.

Definitions, what good values look like and references are in ``docs/metrics.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from genlab.errors import ConfigError, DataError, ShapeError

ArrayLike = Tensor | np.ndarray

#: Default bandwidth multiples of the median heuristic for :func:`mmd`.
MMD_BANDWIDTH_MULTIPLES: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
#: Elements of one block of a pairwise matrix (float64: 2 MiB): small enough to stay in cache
#: while the kernel is evaluated on it, which is several times faster than large blocks.
_BLOCK_ELEMENTS = 1 << 18


# ---------------------------------------------------------------------------- helpers
def _as_matrix(x: ArrayLike, name: str, *, min_rows: int = 1) -> Tensor:
    """Validate ``x`` of shape ``(n, *shape)`` and flatten it to float64 ``(n, D)``."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, Tensor):
        raise DataError(f"Expected {name} to be a torch.Tensor or numpy array, but found "
                        f"{type(x).__name__}.")
    if x.dtype == torch.bool or x.is_complex():
        raise DataError(f"Expected {name} of a real dtype, but found {x.dtype}.")
    if x.dim() == 1:
        x = x[:, None]  # (n,) -> (n, 1): a set of scalars
    x = x.detach().reshape(x.shape[0], -1).double()  # (n, D)
    if x.shape[0] < min_rows:
        raise ShapeError(f"Expected {name} with at least {min_rows} samples, but found "
                         f"{x.shape[0]}.")
    if not torch.isfinite(x).all():
        raise DataError(f"Expected finite {name}, but found NaN or Inf.")
    return x


def _as_pair(x: ArrayLike, y: ArrayLike, names: tuple[str, str], *, min_rows: int = 1
             ) -> tuple[Tensor, Tensor]:
    a = _as_matrix(x, names[0], min_rows=min_rows)
    b = _as_matrix(y, names[1], min_rows=min_rows).to(a.device)
    if a.shape[1] != b.shape[1]:
        raise ShapeError(f"Expected {names[0]} and {names[1]} with the same number of values "
                         f"per sample, but found {a.shape[1]} and {b.shape[1]}.")
    return a, b


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"Expected {name} to be a positive int, but found {value!r}.")


def _sq_dist_blocks(a: Tensor, b: Tensor) -> Iterator[tuple[int, Tensor]]:
    """Yield ``(start, block)`` with ``block[i, j] = |a[start + i] - b[j]|^2``."""
    rows = max(1, _BLOCK_ELEMENTS // max(1, b.shape[0]))
    b_sq = (b * b).sum(1)  # (m,)
    for start in range(0, a.shape[0], rows):
        block = a[start:start + rows]
        # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b, clamped: rounding can make it slightly negative
        d2 = (block * block).sum(1, keepdim=True) + b_sq[None, :] - 2.0 * block @ b.T
        yield start, d2.clamp_min_(0.0)  # (rows, m)


def _nearest_sq_dist(a: Tensor, b: Tensor, k: int = 1) -> Tensor:
    """Squared distance from each row of ``a`` to its k-th nearest row of ``b``, shape (n,)."""
    out = torch.empty(a.shape[0], dtype=a.dtype, device=a.device)
    for start, d2 in _sq_dist_blocks(a, b):
        out[start:start + d2.shape[0]] = d2.topk(k, dim=1, largest=False).values[:, k - 1]
    return out


def _median_distance(x: Tensor, max_points: int = 1000) -> float:
    """Median pairwise distance of (an evenly strided subset of) the rows of ``x``."""
    step = max(1, math.ceil(x.shape[0] / max_points))
    sub = x[::step]
    d2 = torch.cat([blk for _, blk in _sq_dist_blocks(sub, sub)])
    upper = torch.triu_indices(sub.shape[0], sub.shape[0], offset=1, device=sub.device)
    return d2[upper[0], upper[1]].sqrt().median().item() if sub.shape[0] > 1 else 0.0


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
    a, b = _as_pair(x, y, ("x", "y"), min_rows=2)
    if bandwidths is None:
        median = _median_distance(b)
        median = median if median > 0 else 1.0  # a reference set of one repeated point
        bandwidths = [median * s for s in MMD_BANDWIDTH_MULTIPLES]
    scales = torch.tensor([float(s) for s in bandwidths], dtype=torch.float64, device=a.device)
    if scales.numel() == 0 or not bool((scales > 0).all()) or not bool(scales.isfinite().all()):
        raise ConfigError(f"Expected positive finite bandwidths, but found {list(bandwidths)}.")
    gammas = (1.0 / (2.0 * scales**2)).tolist()

    def kernel_sum(u: Tensor, v: Tensor) -> float:
        # sum over pairs of the mean over bandwidths of exp(-gamma d^2)
        total = 0.0
        for _, d2 in _sq_dist_blocks(u, v):
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
    _check_positive_int("n_projections", n_projections)
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not p >= 1:
        raise ConfigError(f"Expected p >= 1, but found {p!r}.")
    a, b = _as_pair(x, y, ("x", "y"))
    d = a.shape[1]
    if d == 1:
        # one direction is all there is (W_p does not change when both sets are negated)
        theta = torch.ones(1, 1, dtype=torch.float64)
    else:
        theta = torch.randn(n_projections, d, generator=generator, dtype=torch.float64)
        theta = theta / theta.norm(dim=1, keepdim=True)  # (P, D) unit directions
    theta = theta.to(a.device)
    chunk = max(1, _BLOCK_ELEMENTS // (a.shape[0] + b.shape[0]))
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
    a, b = _as_pair(x, y, ("x", "y"))

    def mean_distance(u: Tensor, v: Tensor) -> float:
        total = sum(d2.sqrt().sum().item() for _, d2 in _sq_dist_blocks(u, v))
        return total / (u.shape[0] * v.shape[0])

    value = 2.0 * mean_distance(a, b) - mean_distance(a, a) - mean_distance(b, b)
    return math.sqrt(max(value, 0.0))


# ---------------------------------------------------------------------------- k-NN P/R
def knn_precision_recall(real: ArrayLike, fake: ArrayLike, *, k: int = 5) -> dict[str, float]:
    r"""Improved precision and recall of Kynkaanniemi et al. (2019).

    Around each real sample put a ball reaching its k-th nearest real neighbour; the union of
    the balls estimates the support of the data. Precision is the fraction of generated
    samples inside it (quality); recall is the fraction of real samples inside the union of
    the same balls built on the generated set (coverage):

    .. math::
        \mathrm{precision} = \frac{1}{m}\sum_j \mathbb{1}\big[\exists i:
            |g_j - r_i| \le \mathrm{NN}_k(r_i)\big].

    Arguments:
        real: Reference samples, shape ``(n, *shape)``, n > k.
        fake: Generated samples, shape ``(m, *shape)``, m > k.
        k: Neighbour rank for the ball radii (the paper uses 3; genlab defaults to 5).

    Returns:
        ``{"precision": float, "recall": float}``, each in [0, 1].

    References:
        Kynkaanniemi, Karras, Laine, Lehtinen, Aila, "Improved Precision and Recall Metric for
        Assessing Generative Models", NeurIPS 2019.
    """
    _check_positive_int("k", k)
    r, g = _as_pair(real, fake, ("real", "fake"), min_rows=k + 1)

    def inside_fraction(points: Tensor, centres: Tensor) -> float:
        # k-th neighbour within the set; rank k + 1 because each centre is its own nearest
        radii2 = _nearest_sq_dist(centres, centres, k + 1)  # (c,)
        inside = torch.zeros(points.shape[0], dtype=torch.bool, device=points.device)
        for start, d2 in _sq_dist_blocks(points, centres):
            inside[start:start + d2.shape[0]] = (d2 <= radii2[None, :]).any(1)
        return inside.double().mean().item()

    return {"precision": inside_fraction(g, r), "recall": inside_fraction(r, g)}


# ---------------------------------------------------------------------------- modes
def mode_coverage(
    samples: ArrayLike,
    centers: ArrayLike | Sequence[Sequence[float]],
    std: float | ArrayLike,
    *,
    threshold: float = 3.0,
    min_count: int | None = None,
) -> dict[str, Any]:
    """Modes hit and fraction of high-quality samples on a Gaussian mixture with known modes.

    Convention of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018): a sample is
    *high quality* when its distance to the nearest centre is below ``threshold`` standard
    deviations, ``|x - c_k| < threshold * std_k``; a mode is *hit* when at least ``min_count``
    high-quality samples have it as their nearest centre (the papers use ``min_count=1``,
    2,500 samples, threshold 3). In 2-D even exact samples of an isotropic mode are within
    3 std only with probability 1 - exp(-4.5) = 98.9%.

    Arguments:
        samples: Samples, shape ``(n, D)`` (or ``(n, *shape)``, flattened).
        centers: Mode centres, shape ``(K, D)``.
        std: Standard deviation of every mode (float) or one per mode, shape ``(K,)``.
        threshold: Distance, in standard deviations, of a high-quality sample.
        min_count: High-quality samples a mode needs to count as hit (default 1).

    Returns:
        ``{"modes_hit": int, "num_modes": int, "high_quality_fraction": float,
        "counts": list[int]}`` where ``counts[k]`` is the number of high-quality samples of
        mode k.

    References:
        Srivastava et al., "VEEGAN", NeurIPS 2017, Sec. 5.1; Lin et al., "PacGAN", NeurIPS 2018.
    """
    x, c = _as_pair(samples, torch.as_tensor(centers, dtype=torch.float64), ("samples",
                                                                               "centers"))
    s = torch.as_tensor(std, dtype=torch.float64, device=x.device).reshape(-1)
    if s.numel() not in (1, c.shape[0]) or not bool((s > 0).all()):
        raise ConfigError(f"Expected std > 0, a float or one per mode ({c.shape[0]}), but "
                          f"found {s.tolist()}.")
    if not threshold > 0:
        raise ConfigError(f"Expected threshold > 0, but found {threshold!r}.")
    min_count = 1 if min_count is None else min_count
    _check_positive_int("min_count", min_count)
    s = s.expand(c.shape[0])
    nearest = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    good = torch.empty(x.shape[0], dtype=torch.bool, device=x.device)
    for start, d2 in _sq_dist_blocks(x, c):
        d2, k = d2.min(1)  # nearest centre of each sample
        nearest[start:start + d2.shape[0]] = k
        good[start:start + d2.shape[0]] = d2.sqrt() < threshold * s[k]
    counts = torch.bincount(nearest[good], minlength=c.shape[0])
    return {
        "modes_hit": int((counts >= min_count).sum().item()),
        "num_modes": int(c.shape[0]),
        "high_quality_fraction": good.double().mean().item(),
        "counts": counts.tolist(),
    }


# ---------------------------------------------------------------------------- memorization
def memorization_ratio(samples: ArrayLike, train: ArrayLike, heldout: ArrayLike
                       ) -> dict[str, float]:
    r"""Do samples sit closer to the training set than fresh data does?

    With d(x) = min_i |x - x_i^{train}|, compare samples s_j with held-out points h_j:

    .. math::
        \mathrm{ratio} = \frac{\mathrm{median}_j\, d(s_j)}{\mathrm{median}_j\, d(h_j)},
        \qquad \mathrm{copy\_fraction} = \frac{1}{n}\sum_j
            \mathbb{1}\big[d(s_j) < \min_k d(h_k)\big].

    A model that generalizes gives ratio ~ 1 and copy_fraction ~ 1/(m+1) (what fresh data
    gives); ratio << 1 and a large copy_fraction mean the model copies training points.

    Arguments:
        samples: Generated samples, shape ``(n, *shape)``.
        train: The training set, shape ``(N, *shape)``.
        heldout: Held-out data from the same distribution, shape ``(m, *shape)``.

    Returns:
        ``{"ratio", "copy_fraction", "median_sample_distance", "median_heldout_distance"}``;
        ratio is NaN when the held-out median distance is 0 (held-out points duplicate
        training points).
    """
    s, t = _as_pair(samples, train, ("samples", "train"))
    h, _ = _as_pair(heldout, t, ("heldout", "train"))
    d_s = _nearest_sq_dist(s, t).sqrt()  # (n,)
    d_h = _nearest_sq_dist(h, t).sqrt()  # (m,)
    med_s, med_h = d_s.median().item(), d_h.median().item()
    return {
        "ratio": med_s / med_h if med_h > 0 else float("nan"),
        "copy_fraction": (d_s < d_h.min()).double().mean().item(),
        "median_sample_distance": med_s,
        "median_heldout_distance": med_h,
    }


# ---------------------------------------------------------------------------- all at once
def sample_metrics(
    samples: ArrayLike,
    reference: Any,
    *,
    train: Any = None,
    info: dict[str, Any] | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Every sample metric that applies, as one flat dict of numbers.

    Always: ``mmd2``, ``sliced_wasserstein``, ``energy_distance``, ``precision``, ``recall``
    (on flattened samples). With ``info["centers"]`` and ``info["std"]`` (Gaussian-mixture
    data sets): ``modes_hit``, ``num_modes``, ``high_quality_fraction``. With ``train``:
    ``memorization_ratio`` and ``copy_fraction`` (``reference`` plays the held-out set).
    For digits (samples of shape ``(n, 1, 8, 8)`` with values in [0, 16]):
    ``frechet_distance`` on the features of genlab's digits classifier.

    Arguments:
        samples: Generated samples, shape ``(n, *shape)``.
        reference: Held-out data, a tensor ``(m, *shape)`` or a :class:`~genlab.data.Dataset`
            (whose ``info`` is used when ``info`` is None).
        train: Training data (tensor or Dataset) for the memorization check, or None.
        info: Data-set facts, e.g. ``{"centers": [[x, y], ...], "std": 0.05}``.
        generator: Source of the sliced-Wasserstein directions.

    Returns:
        ``{name: value}``; see above for the names.
    """
    if info is None:
        info = getattr(reference, "info", None) or {}
    ref = getattr(reference, "x", reference)
    x, r = _as_pair(samples, ref, ("samples", "reference"), min_rows=6)
    out: dict[str, float] = {
        "mmd2": mmd(x, r),
        "sliced_wasserstein": sliced_wasserstein(x, r, generator=generator),
        "energy_distance": energy_distance(x, r),
        **knn_precision_recall(r, x),
    }
    if "centers" in info and "std" in info:
        coverage = mode_coverage(x, info["centers"], info["std"])
        out.update({key: coverage[key] for key in ("modes_hit", "num_modes",
                                                   "high_quality_fraction")})
    if train is not None:
        memo = memorization_ratio(x, getattr(train, "x", train), r)
        out.update(memorization_ratio=memo["ratio"], copy_fraction=memo["copy_fraction"])
    shape = tuple(samples.shape[1:])
    if shape == (1, 8, 8) and x.min() >= 0 and x.max() <= 16 and r.min() >= 0 and r.max() <= 16:
        from genlab.metrics.features import frechet_distance

        out["frechet_distance"] = frechet_distance(x.reshape(-1, 1, 8, 8),
                                                   r.reshape(-1, 1, 8, 8))
    return out
