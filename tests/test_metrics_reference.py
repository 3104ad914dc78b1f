"""The size-matched Frechet reference: unseen real digits and samples scored alike."""

from __future__ import annotations

import pytest
import torch

from genlab.errors import ShapeError
from genlab.metrics import DigitsClassifier, frechet_distance, size_matched_frechet
from genlab.metrics.features import digits_split
from genlab.metrics.reference import held_out_digits


@pytest.fixture(scope="module")
def features() -> DigitsClassifier:
    """A fixed random-weight classifier: any fixed feature map serves the distance's math."""
    torch.manual_seed(0)
    return DigitsClassifier().eval()


def test_held_out_digits_are_the_splits_the_classifier_never_trains_on():
    x = held_out_digits()
    assert len(x) == len(digits_split("val")[0]) + len(digits_split("test")[0])
    train = digits_split("train")[0].reshape(-1, 64)
    # No held-out image is a training image (the classifier trains on the train split).
    assert not (torch.cdist(x.reshape(-1, 64), train) == 0).any()


def test_both_sets_have_the_same_size_and_reference(features):
    """One split by hand: the real half and an n-subset of the samples, each against the
    other half, exactly as the helper scores them."""
    pool, samples = held_out_digits(), digits_split("train")[0]
    got = size_matched_frechet(samples, held_out=pool, repeats=1, seed=3, classifier=features)
    n = len(pool) // 2
    assert (got["n"], got["reference_n"], got["samples_sd"]) == (n, len(pool) - n, 0.0)
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(3))
    pick = torch.randperm(len(samples), generator=torch.Generator().manual_seed(4))
    subset = samples[pick[:n]]
    reference = pool[order[n:]]
    assert got["real"] == pytest.approx(frechet_distance(pool[order[:n]], reference,
                                                         classifier=features), rel=1e-9)
    assert got["samples"] == pytest.approx(frechet_distance(subset, reference,
                                                            classifier=features), rel=1e-9)


def test_real_digits_score_like_the_reference_and_noise_does_not(features):
    """Unseen digits of another split score within the split-to-split spread of the real
    score (same distribution, same size); uniform noise scores far above it."""
    train = digits_split("train")[0]
    real = size_matched_frechet(train, repeats=4, classifier=features)
    spread = 4 * (real["real_sd"] + real["samples_sd"]) + 0.25 * real["real"]
    assert abs(real["samples"] - real["real"]) < spread
    noise = torch.randint(0, 17, (300, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    far = size_matched_frechet(noise.float(), repeats=4, classifier=features)
    assert far["real"] == pytest.approx(real["real"], rel=1e-12)  # same seed, same splits
    assert far["samples"] > 10 * far["real"]


def test_size_matched_frechet_checks_its_input(features):
    with pytest.raises(ShapeError, match="Expected at least 223 samples"):
        size_matched_frechet(torch.zeros(100, 1, 8, 8), classifier=features)
    with pytest.raises(ShapeError, match="repeats >= 1"):
        size_matched_frechet(torch.zeros(300, 1, 8, 8), repeats=0, classifier=features)
