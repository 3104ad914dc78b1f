"""A fair real-data reference for the digits Frechet distance.

The Frechet distance is biased upward for small sets, and a set the feature classifier was
trained on sits closer to its training features than new digits do. A sample score therefore
means little beside a "real data" score computed on other images or at another size. Here
both are computed alike: the digits the classifier never saw (the validation and test
splits; :func:`~genlab.metrics.features.train_digits_classifier` trains on the train split)
are split at random into a reference half and a real half, and the samples are scored against
the same reference half with a set of the same size as the real half. Repeating over several
random splits averages out which digits land where.
"""

from __future__ import annotations

import statistics

import numpy as np
import torch
from torch import Tensor

from genlab.errors import ShapeError
from genlab.metrics.features import (
    DigitsClassifier,
    _as_digits,
    digits_classifier,
    digits_split,
    frechet_distance,
)

#: Digits splits the cached classifier never trains on.
HELD_OUT_SPLITS = ("val", "test")


def held_out_digits() -> Tensor:
    """The digits the classifier never saw: the val and test splits, ``(447, 1, 8, 8)``."""
    return torch.cat([digits_split(split)[0] for split in HELD_OUT_SPLITS])


def size_matched_frechet(
    samples: Tensor | np.ndarray,
    *,
    held_out: Tensor | np.ndarray | None = None,
    repeats: int = 5,
    seed: int = 0,
    classifier: DigitsClassifier | None = None,
) -> dict[str, float | int]:
    """Frechet distance of samples and of unseen real digits to the same reference, same size.

    For each of ``repeats`` random splits of ``held_out`` (seeded) into a reference of
    ``len(held_out) - n`` digits and a real set of ``n = len(held_out) // 2``, score the real
    set and ``n`` samples drawn without replacement from ``samples`` against the reference.

    Arguments:
        samples: Generated digits in data space, ``(m, 1, 8, 8)`` with ``m >= n``.
        held_out: Real digits the classifier never saw; None uses :func:`held_out_digits`.
        repeats: Number of random splits averaged.
        seed: Seed of the splits (``seed + 1``: of the sample subsets).
        classifier: Feature classifier; None uses the cached :func:`digits_classifier`.

    Returns:
        ``samples`` and ``real``: mean distances over the splits; ``samples_sd`` and
        ``real_sd``: their standard deviations over splits (0 for one split); ``n``: the
        size of both scored sets; ``reference_n``: the reference's size; ``repeats``.

    Raises:
        ShapeError: fewer than ``n`` samples, fewer than 4 held-out digits, or repeats < 1.
    """
    x = _as_digits(samples, "samples")
    pool = held_out_digits() if held_out is None else _as_digits(held_out, "held_out")
    n = len(pool) // 2
    if len(pool) < 4 or repeats < 1:
        raise ShapeError(f"Expected at least 4 held-out digits and repeats >= 1, but found "
                         f"{len(pool)} and {repeats}.")
    if len(x) < n:
        raise ShapeError(f"Expected at least {n} samples (half the {len(pool)} held-out "
                         f"digits), but found {len(x)}.")
    classifier = digits_classifier() if classifier is None else classifier
    # Separate streams: the splits depend on the seed alone, not on how many samples there are.
    g_split = torch.Generator().manual_seed(seed)
    g_subset = torch.Generator().manual_seed(seed + 1)
    fake, real = [], []
    for _ in range(repeats):
        order = torch.randperm(len(pool), generator=g_split)
        reference, real_set = pool[order[n:]], pool[order[:n]]
        subset = x[torch.randperm(len(x), generator=g_subset)[:n]]
        fake.append(frechet_distance(subset, reference, classifier=classifier))
        real.append(frechet_distance(real_set, reference, classifier=classifier))

    def sd(values: list[float]) -> float:
        return statistics.stdev(values) if len(values) > 1 else 0.0

    return {"samples": statistics.mean(fake), "real": statistics.mean(real),
            "samples_sd": sd(fake), "real_sd": sd(real), "n": n,
            "reference_n": len(pool) - n, "repeats": repeats}
