"""Sample-based metrics: how close a set of samples is to a reference set.

Every function takes tensors (or numpy arrays) of shape ``(n, *shape)`` and flattens each
sample to a vector of ``D`` numbers, so the same metric serves 2-D points and 8x8 images.
Pairwise quantities are computed block by block in float64 (:mod:`genlab.metrics.pairwise`),
so 10,000 x 10,000 comparisons fit in a few hundred megabytes. Results are Python floats (or
dicts of them).

* :mod:`genlab.metrics.distances`: :func:`mmd`, :func:`sliced_wasserstein`,
  :func:`energy_distance`;
* :func:`knn_precision_recall` -- k-NN precision and recall (Kynkaanniemi et al. 2019);
* :func:`mode_coverage` -- modes hit and high-quality fraction on Gaussian mixtures;
* :func:`memorization_ratio` -- nearest-training-neighbour distances vs held-out data;
* :func:`sample_metrics` -- all of the above that apply, as one dict.

Definitions, what good values look like and references are in ``docs/metrics.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from genlab.checks import check_int, check_number
from genlab.errors import ConfigError
from genlab.metrics.distances import energy_distance, mmd, sliced_wasserstein
from genlab.metrics.pairwise import ArrayLike, as_pair, nearest_sq_dist, sq_dist_blocks


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
    check_int("k", k)
    r, g = as_pair(real, fake, ("real", "fake"), min_rows=k + 1)

    def inside_fraction(points: Tensor, centres: Tensor) -> float:
        # k-th neighbour within the set; rank k + 1 because each centre is its own nearest
        radii2 = nearest_sq_dist(centres, centres, k + 1)  # (c,)
        inside = torch.zeros(points.shape[0], dtype=torch.bool, device=points.device)
        for start, d2 in sq_dist_blocks(points, centres):
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
    x, c = as_pair(samples, torch.as_tensor(centers, dtype=torch.float64), ("samples",
                                                                               "centers"))
    s = torch.as_tensor(std, dtype=torch.float64, device=x.device).reshape(-1)
    if s.numel() not in (1, c.shape[0]) or not bool((s > 0).all()):
        raise ConfigError(f"Expected std > 0, a float or one per mode ({c.shape[0]}), but "
                          f"found {s.tolist()}.")
    check_number("threshold", threshold, gt=0)
    min_count = 1 if min_count is None else min_count
    check_int("min_count", min_count)
    s = s.expand(c.shape[0])
    nearest = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    good = torch.empty(x.shape[0], dtype=torch.bool, device=x.device)
    for start, d2 in sq_dist_blocks(x, c):
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
    s, t = as_pair(samples, train, ("samples", "train"))
    h, _ = as_pair(heldout, t, ("heldout", "train"))
    d_s = nearest_sq_dist(s, t).sqrt()  # (n,)
    d_h = nearest_sq_dist(h, t).sqrt()  # (m,)
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
    x, r = as_pair(samples, ref, ("samples", "reference"), min_rows=6)
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
