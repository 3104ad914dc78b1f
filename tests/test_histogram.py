"""Histogram: counts, normalisation, sampling law, range handling, variants, errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import stats

from genlab import Dataset, create
from genlab.errors import ConfigError, DataError, GenlabWarning, NotFittedError
from genlab.models.histogram import Histogram

# A fixed seed makes every statistical test deterministic; the p-value threshold 1e-3 is the
# rate at which a correct sampler would fail for a random seed (so a failure is a bug).
P_MIN = 1e-3


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def real_edges(model: Histogram) -> list[np.ndarray]:
    return [model.edges[d, : b + 1].double().numpy() for d, b in enumerate(model.bins)]


# ---------------------------------------------------------------------------- counting
@pytest.mark.parametrize("bins", [8, [3, 5, 4]])
def test_counts_equal_numpy_histogramdd(bins):
    dims = 3 if isinstance(bins, list) else 2
    x = torch.randn(5000, dims, generator=gen(1))
    model = Histogram(event_shape=(dims,), bins=bins, alpha=0.0).fit_closed_form(x)
    expected, _ = np.histogramdd(x.double().numpy(), bins=real_edges(model))
    assert np.array_equal(model.counts[0].numpy(), expected.reshape(-1).astype(np.int64))
    assert int(model.totals[0]) == 5000


def test_counts_with_explicit_uneven_edges_and_points_on_edges():
    edges = [[-2.0, -0.5, 0.0, 0.25, 3.0], [-1.0, 1.0, 2.0]]
    # Points on interior edges go right; points on the last edge stay in the last bin.
    x = torch.tensor([[-0.5, 1.0], [3.0, 2.0], [-2.0, -1.0], [0.25, 1.5], [0.1, 0.0]])
    model = Histogram(event_shape=(2,), edges=edges, alpha=0.0).fit_closed_form(x)
    expected, _ = np.histogramdd(x.double().numpy(), bins=[np.array(e) for e in edges])
    assert np.array_equal(model.counts[0].numpy(), expected.reshape(-1).astype(np.int64))


# ---------------------------------------------------------------------------- normalisation
def test_density_integrates_to_one_on_a_grid():
    """The density is constant on each bin, so the midpoint rule on a grid that splits every
    bin into 3 x 3 equal cells is exact: the only error is float64 rounding (~1e-13 here).
    The grid extends one bin beyond the range on each side, where the density must be 0."""
    x = torch.randn(3000, 2, generator=gen(2)) * torch.tensor([1.0, 0.5])
    model = Histogram(event_shape=(2,), bins=[6, 4], alpha=0.3).double().fit_closed_form(x)
    axes = []
    for e in real_edges(model):
        width = e[1] - e[0]
        e = np.concatenate([[e[0] - width], e, [e[-1] + width]])
        sub = (e[:-1, None] + (e[1:] - e[:-1])[:, None] * (np.arange(3) + 0.5) / 3).reshape(-1)
        axes.append((sub, np.repeat((e[1:] - e[:-1]) / 3, 3)))
    gx, gy = np.meshgrid(axes[0][0], axes[1][0], indexing="ij")
    area = np.outer(axes[0][1], axes[1][1])
    points = torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1))
    density = model.log_prob(points).exp().numpy().reshape(gx.shape)
    assert abs((density * area).sum() - 1.0) < 1e-10
    assert density[:3].sum() == 0 and density[-3:].sum() == 0  # outside the range


@pytest.mark.parametrize("variant", [{}, {"sparse": True}, {"factorized": True}])
def test_discrete_masses_sum_to_one_over_all_values(variant):
    """2 pixels, 3 levels: the 9 log masses must sum to 1 (exact up to rounding)."""
    x = torch.tensor([[0, 0], [0, 1], [2, 2], [2, 2], [1, 0]]).float()
    model = Histogram(event_shape=(2,), num_levels=3, alpha=0.5, **variant).fit_closed_form(x)
    grid = torch.cartesian_prod(torch.arange(3), torch.arange(3)).float()  # (9, 2)
    mass = model.log_prob(grid).double().exp()
    assert abs(mass.sum().item() - 1.0) < 1e-6  # float32 log masses, 9 terms
    if not variant:  # the joint table is exactly (count + alpha) / (n + alpha K)
        counts = torch.tensor([1, 1, 0, 1, 0, 0, 0, 0, 2], dtype=torch.float64)
        torch.testing.assert_close(mass, (counts + 0.5) / (5 + 0.5 * 9), rtol=1e-6, atol=0)


# ---------------------------------------------------------------------------- sampling law
@pytest.mark.parametrize("variant", [{}, {"sparse": True}])
def test_samples_follow_bin_probabilities_chi_square(variant):
    """Pearson's X^2 = sum (O_i - N p_i)^2 / (N p_i) is asymptotically chi^2(K - 1) when the
    samples follow p; with N p_i >= 5 in every bin the approximation is standard."""
    x = torch.randn(2000, 2, generator=gen(3))
    model = Histogram(event_shape=(2,), bins=[4, 5], alpha=1.0, **variant).fit_closed_form(x)
    p = (
        model.log_prob(torch.tensor(_bin_centres(model))).double().exp()
        * torch.tensor(_bin_volumes(model))
    ).numpy()
    assert abs(p.sum() - 1) < 1e-6
    n = 20000
    s = model.sample(n, generator=gen(4))
    observed, _ = np.histogramdd(s.double().numpy(), bins=real_edges(model))
    expected = n * p
    assert expected.min() >= 5
    chi2 = ((observed.reshape(-1) - expected) ** 2 / expected).sum()
    assert stats.chi2.sf(chi2, df=p.size - 1) > P_MIN


def test_samples_are_uniform_inside_their_bin():
    """Position of each sample inside its bin, (x - low) / width, must be U(0, 1): KS test."""
    x = torch.randn(1000, 2, generator=gen(5))
    model = Histogram(event_shape=(2,), bins=3, alpha=0.0).fit_closed_form(x)
    s = model.sample(4000, generator=gen(6)).double()
    for d, e in enumerate(real_edges(model)):
        i = np.clip(np.searchsorted(e, s[:, d].numpy(), side="right") - 1, 0, len(e) - 2)
        u = (s[:, d].numpy() - e[i]) / (e[i + 1] - e[i])
        assert stats.kstest(u, "uniform").pvalue > P_MIN


def test_factorized_discrete_samples_match_per_dimension_marginals():
    x = torch.randint(0, 4, (400, 3), generator=gen(7)).float()
    x[:, 1] = (x[:, 1] * (x[:, 1] < 2)).clamp(max=3)  # make one marginal skewed
    model = Histogram(event_shape=(3,), num_levels=4, factorized=True, alpha=1.0)
    model.fit_closed_form(x)
    n = 8000
    s = model.sample(n, generator=gen(8))
    assert torch.equal(s, s.round()) and s.min() >= 0 and s.max() <= 3
    for d in range(3):
        counts = torch.bincount(x[:, d].long(), minlength=4).double()
        p = ((counts + 1.0) / (400 + 4.0)).numpy()
        observed = torch.bincount(s[:, d].long(), minlength=4).numpy()
        chi2 = ((observed - n * p) ** 2 / (n * p)).sum()
        assert stats.chi2.sf(chi2, df=3) > P_MIN


def _bin_centres(model: Histogram) -> np.ndarray:
    e = real_edges(model)
    mids = [(a[1:] + a[:-1]) / 2 for a in e]
    return np.stack([m.ravel() for m in np.meshgrid(*mids, indexing="ij")], 1)


def _bin_volumes(model: Histogram) -> np.ndarray:
    widths = [np.diff(a) for a in real_edges(model)]
    return np.prod(np.stack([w.ravel() for w in np.meshgrid(*widths, indexing="ij")], 1), 1)


# ---------------------------------------------------------------------------- variants
def test_sparse_and_dense_tables_agree_factorized_is_product_of_marginals():
    x = torch.randn(3000, 2, generator=gen(9))
    dense = Histogram(event_shape=(2,), bins=7, alpha=0.2).fit_closed_form(x)
    sparse = Histogram(event_shape=(2,), bins=7, alpha=0.2, sparse=True).fit_closed_form(x)
    points = torch.randn(500, 2, generator=gen(10))
    torch.testing.assert_close(sparse.log_prob(points), dense.log_prob(points))
    fact = Histogram(event_shape=(2,), bins=7, alpha=0.2, factorized=True).fit_closed_form(x)
    marginal = [
        Histogram(
            event_shape=(1,), bins=7, alpha=0.2, range=fact.edges[d, [0, 7]].tolist()
        ).fit_closed_form(x[:, d : d + 1])
        for d in range(2)
    ]
    inside = torch.isfinite(fact.log_prob(points))
    expected = marginal[0].log_prob(points[:, :1]) + marginal[1].log_prob(points[:, 1:])
    torch.testing.assert_close(fact.log_prob(points)[inside], expected[inside])


def test_class_conditional_tables_equal_per_class_histograms():
    x = torch.randn(900, 2, generator=gen(11))
    y = torch.arange(900) % 3
    x[y == 1] += 2.0
    data = Dataset(x=x, y=y, name="three", split="train")
    model = Histogram(event_shape=(2,), bins=5, range=[-5, 7], num_classes=3, alpha=0.5)
    model.fit_closed_form(data)
    points = torch.randn(60, 2, generator=gen(12))
    for c in range(3):
        alone = Histogram(event_shape=(2,), bins=5, range=[-5, 7], alpha=0.5)
        alone.fit_closed_form(x[y == c])
        torch.testing.assert_close(model.log_prob(points, c), alone.log_prob(points))
    # Samples of class 1 have that class's histogram mean sum_i p_i centre_i (uniform within a
    # bin); 5 standard errors (std / sqrt(n)) is a false-alarm rate below 1e-6 per coordinate.
    centres = torch.tensor(_bin_centres(model))
    p = model.log_prob(centres.float(), 1).double().exp() * torch.tensor(_bin_volumes(model))
    mean = (p[:, None] * centres).sum(0)
    s = model.sample(2000, y=1, generator=gen(13)).double()
    assert ((s.mean(0) - mean).abs() < 5 * s.std(0) / math.sqrt(2000)).all()
    assert (mean - torch.tensor([2.0, 2.0], dtype=torch.float64)).abs().max() < 1.0


def test_empty_class_with_alpha_zero_is_uniform_and_warns():
    data = Dataset(x=torch.zeros(4, 1), y=torch.tensor([0, 0, 0, 0]), num_classes=2)
    model = Histogram(event_shape=(1,), bins=4, range=[-1, 1], num_classes=2, alpha=0.0)
    with pytest.warns(GenlabWarning, match="no training points"):
        model.fit_closed_form(data)
    torch.testing.assert_close(
        model.log_prob(torch.tensor([[0.7]]), 1), torch.tensor([math.log(0.5)])
    )


# ---------------------------------------------------------------------------- outside the range
def test_outside_range_gives_minus_inf_or_error():
    x = torch.rand(100, 2, generator=gen(14))
    model = Histogram(event_shape=(2,), bins=4, alpha=0.0, margin=0.0).fit_closed_form(x)
    points = torch.tensor([[0.5, 0.5], [2.0, 0.5], [0.5, -1.0]])
    lp = model.log_prob(points)
    assert torch.isfinite(lp[0]) and lp[1:].eq(-math.inf).all()
    strict = Histogram(event_shape=(2,), bins=4, outside="error").fit_closed_form(x)
    with pytest.raises(DataError, match="outside"):
        strict.log_prob(points)


def test_training_points_outside_explicit_range_are_dropped_with_a_warning():
    x = torch.tensor([[0.1], [0.2], [5.0]])
    model = Histogram(event_shape=(1,), bins=2, range=[0, 1], alpha=0.0)
    with pytest.warns(GenlabWarning, match="1 outside"):
        model.fit_closed_form(x)
    assert int(model.totals[0]) == 2
    with pytest.raises(DataError):
        Histogram(event_shape=(1,), bins=2, range=[0, 1], outside="error").fit_closed_form(x)


# ---------------------------------------------------------------------------- size and errors
def test_huge_joint_table_is_refused_with_advice_and_large_one_warns():
    with pytest.raises(ConfigError, match="factorized=True"):
        create("histogram", event_shape=(1, 8, 8), num_levels=17)
    with pytest.warns(GenlabWarning, match="24,137,569 bins"):
        Histogram(event_shape=(6,), num_levels=17, sparse=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # sparse and factorized tables are small: no warning
        Histogram(event_shape=(8,), num_levels=17, sparse=True)
        Histogram(event_shape=(1, 8, 8), num_levels=17, factorized=True)


def test_sparse_high_dimensional_table_fits_scores_and_reloads():
    x = torch.randint(0, 17, (300, 8), generator=gen(15)).float()
    model = Histogram(event_shape=(8,), num_levels=17, sparse=True, alpha=1.0).fit_closed_form(x)
    k = 17**8
    lp = model.log_prob(x[:2]).double()
    expected = math.log((1 + 1.0) / (300 + k))  # every row of x is unique with this seed
    assert model.keys.numel() == 300
    torch.testing.assert_close(
        lp, torch.full((2,), expected, dtype=torch.float64), rtol=1e-6, atol=0
    )
    again = Histogram(event_shape=(8,), num_levels=17, sparse=True, alpha=1.0)
    again.load_state_dict(model.state_dict())
    assert torch.equal(again.log_prob(x), model.log_prob(x))
    s = again.sample(50, generator=gen(16))
    assert torch.equal(s, model.sample(50, generator=gen(16)))
    # With alpha = 1 the K - 300 empty cells carry almost all the mass (weight 1 each against
    # 2 for the 300 seen ones), so this exercises drawing empty cells by rejection.
    assert s.shape == (50, 8) and torch.equal(s, s.round()) and s.min() >= 0 and s.max() <= 16


def test_not_fitted_and_bad_configs_raise_typed_errors():
    model = Histogram(event_shape=(2,), bins=4)
    with pytest.raises(NotFittedError):
        model.log_prob(torch.zeros(1, 2))
    with pytest.raises(NotFittedError):
        model.sample(1)
    bad = [
        {"bins": 0},
        {"bins": [3]},
        {"bins": 2.5},
        {"alpha": -1},
        {"outside": "clip"},
        {"edges": [[0, 1], [1, 0]]},
        {"edges": [[0, 1, 2]]},
        {"edges": [[0, 1], [0, 1]], "bins": 3},
        {"range": [1, 0]},
        {"factorized": True, "sparse": True},
    ]
    for kwargs in bad:
        with pytest.raises(ConfigError):
            Histogram(event_shape=(2,), **kwargs)
    with pytest.raises(ConfigError, match="one bin per level"):
        Histogram(event_shape=(2,), num_levels=3, bins=4)
