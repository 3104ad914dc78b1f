"""Metrics that mean the same across families (definitions in ``docs/metrics.md``).

* Likelihood: :func:`nll` (nats, nats/dim, bits/dim; bound flag for diffusion),
  :func:`bits_per_dim_from_density` (dequantization correction for your own density).
* Samples vs reference: :func:`mmd`, :func:`sliced_wasserstein`, :func:`energy_distance`,
  :func:`knn_precision_recall`, :func:`mode_coverage`, :func:`memorization_ratio`,
  and :func:`sample_metrics` for all that apply.
* Digits: :func:`digits_classifier` (trained by genlab, cached), :func:`frechet_distance`
  on its features, :func:`class_accuracy` of conditional samples, and
  :func:`size_matched_frechet` (samples and unseen real digits, same size, same reference).
"""

from genlab.metrics.distances import energy_distance, mmd, sliced_wasserstein
from genlab.metrics.features import (
    DigitsClassifier,
    class_accuracy,
    digits_classifier,
    frechet_distance,
    gaussian_frechet_distance,
)
from genlab.metrics.likelihood import bits_per_dim_from_density, nll
from genlab.metrics.reference import size_matched_frechet
from genlab.metrics.samples import (
    knn_precision_recall,
    memorization_ratio,
    mode_coverage,
    sample_metrics,
)

__all__ = [
    "DigitsClassifier", "bits_per_dim_from_density", "class_accuracy", "digits_classifier",
    "energy_distance", "frechet_distance", "gaussian_frechet_distance", "knn_precision_recall",
    "memorization_ratio", "mmd", "mode_coverage", "nll", "sample_metrics",
    "size_matched_frechet", "sliced_wasserstein",
]
