"""Tests of genlab.metrics: likelihood units, sample distances, coverage, memorization, digits.

Tolerances are derived from the math (exact identities) or from standard errors of the
estimators, written next to each check.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch

import genlab.metrics.features as features
from genlab.errors import ConfigError, DataError, IntractableLikelihood, ShapeError
from genlab.metrics import (
    bits_per_dim_from_density,
    class_accuracy,
    digits_classifier,
    energy_distance,
    frechet_distance,
    gaussian_frechet_distance,
    knn_precision_recall,
    memorization_ratio,
    mmd,
    mode_coverage,
    nll,
    sample_metrics,
    sliced_wasserstein,
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------- likelihood
class FakeModel:
    """log p(x) = -|x|^2 (any numbers will do); optional labels shift it by y."""

    has_likelihood_bound = False

    def __init__(self, *, exact: bool = True, bound: bool = False, num_classes=None):
        self.has_exact_likelihood = exact
        self.has_likelihood_bound = bound
        self.num_classes = num_classes
        self.event_dim = 4
        self.calls = 0

    def log_prob_bound(self, x, y=None):
        self.calls += 1
        lp = -(x.reshape(len(x), -1) ** 2).sum(1)
        return lp if y is None else lp - y.double()


def test_nll_units_and_batching():
    x = torch.randn(50, 2, 2, generator=gen(0), dtype=torch.float64)
    model = FakeModel()
    result = nll(model, x, batch_size=7)
    nats = (x.reshape(50, -1) ** 2).sum(1)  # -log p of each sample
    assert model.calls == math.ceil(50 / 7)
    assert result["nll_nats"] == pytest.approx(nats.mean().item(), rel=1e-12)
    assert result["nll_nats_per_dim"] == pytest.approx(nats.mean().item() / 4, rel=1e-12)
    assert result["bits_per_dim"] == pytest.approx(nats.mean().item() / (4 * math.log(2)),
                                                   rel=1e-12)
    assert result["nll_nats_stderr"] == pytest.approx(nats.std().item() / math.sqrt(50),
                                                      rel=1e-12)
    assert result["n"] == 50 and result["bound"] is False


def test_nll_bound_flag_labels_and_gan_error():
    x = torch.zeros(6, 4)
    assert nll(FakeModel(exact=False, bound=True), x)["bound"] is True

    class Data:  # a Dataset-like object: labels are used for a conditional model
        def __init__(self):
            self.x, self.y = x, torch.arange(6)

    result = nll(FakeModel(num_classes=6), Data())
    assert result["nll_nats"] == pytest.approx(2.5)  # mean of y = 0..5
    with pytest.raises(IntractableLikelihood):
        nll(FakeModel(exact=False, bound=False), x)
    with pytest.raises(ConfigError):
        nll(FakeModel(), x, batch_size=0)


def test_bits_per_dim_from_density():
    # a uniform density on the unit cube codes each of L levels with log2 L bits
    assert bits_per_dim_from_density(0.0, 64, 256) == pytest.approx(8.0)
    assert bits_per_dim_from_density(0.0, 3, 17) == pytest.approx(math.log2(17))
    # a density constant on each of the L^D cells, p_c(v) = L^D P(x), gives exactly
    # -log2 P(x) / D: the dequantization correction undoes the L^D volume factor
    num_levels, dims = 4, 2
    probs = torch.rand(num_levels**dims, generator=gen(1), dtype=torch.float64)
    probs = probs / probs.sum()
    log_density = probs.log() + dims * math.log(num_levels)
    expected = -probs.log2() / dims
    value = bits_per_dim_from_density(log_density, dims, num_levels)
    assert (value - expected).abs().max().item() < 1e-12
    with pytest.raises(ConfigError):
        bits_per_dim_from_density(0.0, 2, 1)


# ---------------------------------------------------------------------------- MMD
def _naive_mmd_and_null_stderr(x, y, bandwidths):
    def k(a, b):
        d2 = torch.cdist(a, b) ** 2
        return torch.stack([torch.exp(-d2 / (2 * s * s)) for s in bandwidths]).mean(0)

    n, m = len(x), len(y)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    value = ((kxx.sum() - kxx.trace()) / (n * (n - 1)) + (kyy.sum() - kyy.trace()) / (m * (m - 1))
             - 2 * kxy.mean())
    # Under P = Q the U-statistic with kernel h_ij = k(x_i,x_j) + k(y_i,y_j) - k(x_i,y_j)
    # - k(x_j,y_i) is degenerate (zeta_1 = 0), so Var = 2 E[h^2] / (n (n - 1)) (Serfling 5.2.1).
    h = kxx + kyy - kxy - kxy.T
    off = ~torch.eye(n, dtype=torch.bool)
    stderr = math.sqrt(2 * (h[off] ** 2).mean().item() / (n * (n - 1)))
    return value.item(), stderr


def test_mmd_equals_definition_and_is_zero_within_stderr():
    x = torch.randn(400, 2, generator=gen(2), dtype=torch.float64)
    y = torch.randn(400, 2, generator=gen(3), dtype=torch.float64)
    bandwidths = [0.5, 1.0, 2.0]
    expected, stderr = _naive_mmd_and_null_stderr(x, y, bandwidths)
    value = mmd(x, y, bandwidths=bandwidths)
    assert value == pytest.approx(expected, rel=1e-9, abs=1e-12)
    # The library's estimator (Gretton eq. 3) differs from the h-form above only by terms of
    # order n^{-3/2}, far below the n^{-1} standard error: 4 standard errors is the test.
    assert abs(value) < 4 * stderr
    shifted = mmd(x + torch.tensor([0.5, 0.0], dtype=torch.float64), y, bandwidths=bandwidths)
    assert shifted > 10 * stderr
    # default bandwidths (median heuristic on the reference) behave the same way
    assert abs(mmd(x, y)) < mmd(x + 0.5, y)
    with pytest.raises(ConfigError):
        mmd(x, y, bandwidths=[0.0])
    with pytest.raises(ShapeError):
        mmd(x, torch.zeros(10, 3))


# ---------------------------------------------------------------------------- Wasserstein
def test_sliced_wasserstein_is_exact_w1_in_1d():
    x = torch.randn(300, generator=gen(4), dtype=torch.float64)
    y = 0.5 + 2 * torch.randn(457, 1, generator=gen(5), dtype=torch.float64)  # unequal sizes
    expected = scipy.stats.wasserstein_distance(x.numpy(), y[:, 0].numpy())
    assert sliced_wasserstein(x, y, p=1) == pytest.approx(expected, rel=1e-10)


def test_sliced_wasserstein_1d_w2_between_gaussians():
    # Quantile-spaced samples q_i = Phi^{-1}((i - 1/2) / n) of N(0, 1) and 1 + 2 q_i of N(1, 4):
    # their empirical W2^2 is exactly mean((1 + q_i)^2) = 1 + mean(q_i^2).
    n = 2000
    q = torch.as_tensor(scipy.stats.norm.ppf((np.arange(n) + 0.5) / n))
    value = sliced_wasserstein(q, 1 + 2 * q, p=2)
    assert value**2 == pytest.approx(1 + (q**2).mean().item(), rel=1e-10)
    # The Gaussians' W2^2 = (mu1 - mu2)^2 + (s1 - s2)^2 = 2; the discretization misses only
    # 1 - mean(q^2) of the second moment, which bounds the difference.
    assert abs(value**2 - 2.0) <= 1 - (q**2).mean().item() + 1e-12


def test_sliced_wasserstein_of_a_translation():
    # y = x + delta: every projection is a translation by theta.delta, whose W_p is exactly
    # |theta.delta|. For theta uniform on the circle, E (theta.delta)^2 = |delta|^2 / 2 with
    # Var = |delta|^4 Var(cos^2) = |delta|^4 / 8, and E|theta.delta| = 2|delta| / pi with
    # Var = |delta|^2 (1/2 - 4/pi^2); the projection average has SE sqrt(Var / P).
    x = torch.randn(300, 2, generator=gen(6), dtype=torch.float64)
    delta = torch.tensor([2.0, 0.0], dtype=torch.float64)
    P = 2000
    sw2 = sliced_wasserstein(x, x + delta, n_projections=P, generator=gen(7))
    assert abs(sw2**2 - 2.0) < 4 * math.sqrt(16 / 8 / P)
    sw1 = sliced_wasserstein(x, x + delta, n_projections=P, p=1, generator=gen(7))
    assert abs(sw1 - 4 / math.pi) < 4 * 2 * math.sqrt((0.5 - 4 / math.pi**2) / P)
    assert sw2 == sliced_wasserstein(x, x + delta, n_projections=P, generator=gen(7))
    with pytest.raises(ConfigError):
        sliced_wasserstein(x, x, n_projections=0)
    for p in (0.5, math.inf, "2"):
        with pytest.raises(ConfigError, match="Expected p to be a number >= 1"):
            sliced_wasserstein(x, x, p=p)


# ---------------------------------------------------------------------------- energy
def test_energy_distance_matches_scipy_in_1d():
    x = torch.randn(300, generator=gen(8), dtype=torch.float64)
    y = 0.3 + torch.randn(401, generator=gen(9), dtype=torch.float64)
    expected = scipy.stats.energy_distance(x.numpy(), y.numpy())
    assert energy_distance(x, y) == pytest.approx(expected, rel=1e-9)
    assert energy_distance(x, x) == pytest.approx(0.0, abs=1e-6)


# ---------------------------------------------------------------------------- k-NN P/R
def test_knn_precision_recall_constructed():
    real = torch.rand(2000, 2, generator=gen(10), dtype=torch.float64)
    left = real[real[:, 0] < 0.5]
    # fake = the real points of the left half: each sits on a real point, so precision is 1;
    # every left real point is a fake centre (recall >= its share); right points are only
    # covered within one k-NN radius (~ sqrt(5 / (pi * 2000)) = 0.03) of the cut
    result = knn_precision_recall(real, left, k=5)
    assert result["precision"] == 1.0
    assert len(left) / len(real) <= result["recall"] < len(left) / len(real) + 0.1
    far = knn_precision_recall(real, left + 10.0, k=5)
    assert far == {"precision": 0.0, "recall": 0.0}


# ---------------------------------------------------------------------------- modes
GRID = torch.tensor([[-4.0 + 2 * i, -4.0 + 2 * j] for i in range(5) for j in range(5)])


def test_mode_coverage_constructed():
    std = 0.05
    g = gen(11)
    angles = torch.rand(5, 20, generator=g) * 2 * math.pi
    ring = torch.stack([angles.cos(), angles.sin()], -1) * std  # 1 std from the centre
    populated = [0, 3, 7, 12, 24]
    good = (GRID[populated][:, None] + ring).reshape(-1, 2)  # 100 high-quality samples
    junk = GRID[:6] + torch.tensor([1.0, 1.0])  # halfway between modes: 14 std away
    two = GRID[5] + torch.tensor([[0.1, 0.0], [0.0, -0.1]])  # 2 std from mode 5
    samples = torch.cat([good, junk, two])
    result = mode_coverage(samples, GRID, std)
    assert result["modes_hit"] == 6 and result["num_modes"] == 25
    assert result["high_quality_fraction"] == pytest.approx(102 / 108)
    assert result["counts"][5] == 2 and result["counts"][3] == 20
    assert mode_coverage(samples, GRID, std, min_count=5)["modes_hit"] == 5
    with pytest.raises(ConfigError):
        mode_coverage(samples, GRID, -1.0)


def test_mode_coverage_of_the_true_mixture():
    # 2,500 exact samples: P(some mode gets none) <= 25 (24/25)^2500 ~ 1e-43. In 2-D,
    # |x - c|^2 / std^2 ~ chi^2_2, so P(high quality) = 1 - exp(-9/2) = 0.98889; the
    # fraction has SE sqrt(p (1 - p) / 2500) = 0.0021.
    std, n = 0.05, 2500
    g = gen(12)
    samples = GRID[torch.randint(25, (n,), generator=g)] + std * torch.randn(n, 2, generator=g)
    result = mode_coverage(samples, GRID, std)
    p = 1 - math.exp(-4.5)
    assert result["modes_hit"] == 25
    assert abs(result["high_quality_fraction"] - p) < 4 * math.sqrt(p * (1 - p) / n)


# ---------------------------------------------------------------------------- memorization
def test_memorization_ratio():
    g = gen(13)
    n = 4000
    train, heldout, fresh = (torch.rand(n, 2, generator=g, dtype=torch.float64) for _ in range(3))
    copied = memorization_ratio(train[:1000], train, heldout)
    assert copied["ratio"] < 1e-6 and copied["copy_fraction"] == 1.0
    # Uniform data of density N: d^2 to the nearest training point ~ Exp(pi N), so the median
    # distance m has relative SE 1 / (2 ln 2 sqrt(n)) and a ratio of two independent medians
    # sqrt(2) times that: 1.02 / sqrt(4000) = 0.016; 4 SE = 0.065.
    generalizing = memorization_ratio(fresh, train, heldout)
    assert abs(generalizing["ratio"] - 1.0) < 4 * math.sqrt(2) / (2 * math.log(2) * math.sqrt(n))
    # P(d(s) < min_k d(h_k)) = 1 / (m + 1) for exchangeable points: ~1 of 4000 samples;
    # P(Poisson(1) >= 9) ~ 1e-6
    assert generalizing["copy_fraction"] <= 8 / n


def test_sample_metrics_vectors():
    g = gen(14)
    centers = GRID[:4]
    ref = centers[torch.randint(4, (500,), generator=g)] + 0.05 * torch.randn(500, 2, generator=g)
    train = centers[torch.randint(4, (500,), generator=g)] + 0.05 * torch.randn(500, 2,
                                                                                generator=g)
    info = {"centers": centers.tolist(), "std": 0.05}
    result = sample_metrics(train[:300], ref, train=train, info=info, generator=gen(0))
    assert set(result) == {"mmd2", "sliced_wasserstein", "energy_distance", "precision",
                           "recall", "modes_hit", "num_modes", "high_quality_fraction",
                           "memorization_ratio", "copy_fraction"}
    assert result["modes_hit"] == 4 and result["memorization_ratio"] < 1e-6
    with pytest.raises(DataError):
        sample_metrics(torch.full((10, 2), math.nan), ref)


# ---------------------------------------------------------------------------- Frechet
def test_gaussian_frechet_distance_closed_forms():
    # diagonal covariances commute: d^2 = |mu1 - mu2|^2 + sum (s1 - s2)^2
    s1, s2 = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 1.0, 1.0])
    mu1, mu2 = torch.zeros(3), torch.tensor([1.0, 2.0, 0.0])
    expected = 5.0 + ((s1.sqrt() - s2.sqrt()) ** 2).sum().item()
    value = gaussian_frechet_distance(mu1, torch.diag(s1), mu2, torch.diag(s2))
    assert value == pytest.approx(expected, rel=1e-12)
    # general case against scipy's matrix square root
    a = torch.randn(6, 6, generator=gen(15), dtype=torch.float64)
    b = torch.randn(6, 6, generator=gen(16), dtype=torch.float64)
    c1, c2 = a @ a.T, b @ b.T + 0.1 * torch.eye(6, dtype=torch.float64)
    covmean = scipy.linalg.sqrtm(c1.numpy() @ c2.numpy()).real
    expected = (c1.trace() + c2.trace()).item() - 2 * np.trace(covmean)
    zero = torch.zeros(6)
    assert gaussian_frechet_distance(zero, c1, zero, c2) == pytest.approx(expected, rel=1e-8)


@pytest.fixture(scope="session")
def classifier(tmp_path_factory):
    """The digits classifier, trained once per session into a temporary GENLAB_CACHE."""
    cache = tmp_path_factory.mktemp("genlab-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_CACHE", str(cache))
        features._LOADED.clear()
        model = digits_classifier()
        yield model
    features._LOADED.clear()


def test_classifier_accuracy_cache_and_determinism(classifier):
    x, y = features.digits_split("test")
    assert classifier.accuracy(x, y) >= 0.95
    path = features.cache_dir() / "digits_classifier_v1.safetensors"
    assert path.is_file() and not list(path.parent.glob(".*.tmp"))
    assert digits_classifier() is classifier  # in-memory for the session
    reloaded = features._load(path)
    for key, value in classifier.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value)
    # same seed, same recipe: the same weights (one epoch is enough to show it), and the
    # global RNG is left alone
    state = torch.get_rng_state()
    first, second = (features.train_digits_classifier(epochs=1) for _ in range(2))
    assert torch.equal(torch.get_rng_state(), state)
    for key, value in first.state_dict().items():
        assert torch.equal(second.state_dict()[key], value)


def test_classifier_corrupt_cache_is_retrained(classifier, tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path))
    path = tmp_path / "digits_classifier_v1.safetensors"
    path.write_bytes(b"not a safetensors file")
    assert features._load(path) is None
    trained = []
    monkeypatch.setattr(features, "train_digits_classifier",
                        lambda: trained.append(1) or classifier)
    assert digits_classifier() is classifier and trained == [1]
    assert features._load(path) is not None  # rewritten whole
    features._LOADED.pop(path, None)


def test_frechet_distance_and_class_accuracy(classifier):
    x, y = features.digits_split("test")
    train, _ = features.digits_split("train")
    assert frechet_distance(x, x) < 1e-6
    ab, ba = frechet_distance(x, train), frechet_distance(train, x)
    # tr((S1 S2)^1/2) = tr((S2 S1)^1/2); float64 eigendecompositions of 64 x 64 matrices
    # with rounding-level eigenvalues zeroed agree to ~D eps cond, far below 1e-8
    assert ab == pytest.approx(ba, rel=1e-8)
    shifted = [frechet_distance((x + k).clamp(0, 16), x) for k in (1, 2, 4, 8)]
    assert 0 < shifted[0] < shifted[1] < shifted[2] < shifted[3]
    # a collapsed generator (one class only) is far from the data; farther than the
    # train split, whose distance to the test split is the held-out reference score
    assert frechet_distance(x[y == 3], x) > 10 * ab
    assert class_accuracy(x, y) == classifier.accuracy(x, y)
    assert class_accuracy(x, (y + 1) % 10) < 0.05  # at most 1 - 0.95 of the test digits
    assert class_accuracy(x[y == 0], 0) == classifier.accuracy(x[y == 0], y[y == 0])
    with pytest.raises(DataError):
        class_accuracy(x + 20, y)
    with pytest.raises(ShapeError):
        frechet_distance(torch.zeros(5, 7), x)
    metrics = sample_metrics(train[:297], x, train=train)
    assert metrics["frechet_distance"] == pytest.approx(
        frechet_distance(train[:297], x), rel=1e-12)
    assert os.environ["GENLAB_CACHE"]
