"""Gaussian mixture: equality with scikit-learn, EM, normalisation, sampling moments, SGD."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from genlab import Dataset, fit, load_data
from genlab.errors import ConfigError, DataError, NotFittedError
from genlab.models.gmm import Gaussian, GaussianMixture
from genlab.models.gmm.em import Mixture, em, m_step
from genlab.models.gmm.init import hard_responsibilities, kmeans_plusplus


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def blobs(n: int = 600, seed: int = 0) -> torch.Tensor:
    """Three anisotropic 2-D clusters."""
    g = gen(seed)
    centres = torch.tensor([[-3.0, 0.0], [2.0, 2.0], [1.0, -2.5]])
    a = torch.tensor([[1.0, 0.6], [0.0, 0.5]])
    labels = torch.arange(n) % 3
    return centres[labels] + torch.randn(n, 2, generator=g) @ a * 0.7


def mixture_of(model: GaussianMixture, cls: int = 0) -> tuple[np.ndarray, ...]:
    """float64 numpy weights, means, covariances, precision Cholesky factors of one class."""
    w = torch.softmax(model.logits[cls].double(), -1).detach()
    mu = model.means[cls].double().detach()
    scale = model.scale_tril()[cls].double().detach()
    if model.full:
        cov = scale @ scale.transpose(-1, -2)
        prec_chol = torch.linalg.inv(scale).transpose(-1, -2)
    else:
        cov, prec_chol = scale.square(), scale.reciprocal()
    return w.numpy(), mu.numpy(), cov.numpy(), prec_chol.numpy()


def sklearn_with(model: GaussianMixture, cls: int = 0) -> SkGaussianMixture:
    w, mu, cov, prec_chol = mixture_of(model, cls)
    sk = SkGaussianMixture(model.components, covariance_type=model.covariance)
    sk.weights_, sk.means_, sk.covariances_, sk.precisions_cholesky_ = w, mu, cov, prec_chol
    return sk


# ---------------------------------------------------------------------------- vs scikit-learn
@pytest.mark.parametrize("covariance", ["full", "diag"])
def test_log_prob_equals_sklearn_score_samples(covariance):
    x = blobs()
    model = GaussianMixture(event_shape=(2,), components=3, covariance=covariance)
    model = model.fit_closed_form(x).double()
    points = torch.randn(200, 2, generator=gen(1), dtype=torch.float64) * 3
    expected = sklearn_with(model).score_samples(points.numpy())
    np.testing.assert_allclose(
        model.log_prob(points).detach().numpy(), expected, rtol=1e-10, atol=1e-10
    )


def test_conditional_log_prob_uses_each_class_mixture():
    x = blobs(900)
    y = torch.arange(900) % 3  # each class is one blob
    model = GaussianMixture(event_shape=(2,), components=2, num_classes=3)
    model = model.fit_closed_form(Dataset(x=x, y=y)).double()
    points = torch.randn(30, 2, generator=gen(2), dtype=torch.float64)
    labels = torch.arange(30) % 3
    lp = model.log_prob(points, labels).detach().numpy()
    for c in range(3):
        expected = sklearn_with(model, c).score_samples(points[labels == c].numpy())
        np.testing.assert_allclose(lp[labels.numpy() == c], expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("covariance", ["full", "diag"])
def test_em_matches_sklearn_from_the_same_initialisation(covariance):
    """Same data, same starting mixture, same tol and reg_covar: EM is deterministic, so the
    two runs differ only by float64 rounding (sums in another order), far below 1e-8."""
    x = blobs(900, seed=3).double()
    model = GaussianMixture(event_shape=(2,), components=4, covariance=covariance, tol=1e-6)
    # The model's own initialisation: seeded generator, centred data, k-means++ + M-step.
    g = gen(model.init_seed)
    centre = x.mean(0)
    start = model._initial_mixture(x - centre, g)
    model.fit_closed_form(x.float())
    if covariance == "full":
        precisions = torch.cholesky_inverse(start.scale).numpy()
    else:
        precisions = start.scale.pow(-2).numpy()
    sk = SkGaussianMixture(
        4,
        covariance_type=covariance,
        tol=1e-6,
        reg_covar=1e-6,
        max_iter=100,
        weights_init=start.weights.numpy(),
        means_init=(start.means + centre).numpy(),
        precisions_init=precisions,
        init_params="random_from_data",
        random_state=0,
    ).fit(x.float().double().numpy())
    assert sk.converged_ and int(model.em_iterations[0]) == sk.n_iter_
    assert abs(float(model.em_log_likelihood[0]) - sk.lower_bound_) < 1e-8
    w, mu, _, _ = mixture_of(model)
    np.testing.assert_allclose(w, sk.weights_, rtol=1e-5, atol=1e-6)  # float32 parameters
    np.testing.assert_allclose(mu, sk.means_, rtol=1e-5, atol=1e-5)


def test_em_in_many_dimensions_matches_sklearn():
    """Full covariances in D = 20 > 16 take the per-component path, whose two big products
    run in float32 on centred values: each Mahalanobis term then carries a relative error
    of about D * 2^-24 ~ 1e-6, i.e. ~1e-5 nats per point here (values ~ D), far below the
    1e-4 nats allowed on the average log-likelihood."""
    g = gen(14)
    centres = torch.randn(3, 20, generator=g, dtype=torch.float64) * 0.7  # overlapping
    x = centres[torch.arange(600) % 3] + torch.randn(600, 20, generator=g, dtype=torch.float64)
    x = x.float().double()
    model = GaussianMixture(event_shape=(20,), components=3, tol=1e-4)
    start = model._initial_mixture(x - x.mean(0), gen(model.init_seed))
    model.fit_closed_form(x.float())
    sk = SkGaussianMixture(
        3,
        tol=1e-4,
        weights_init=start.weights.numpy(),
        means_init=(start.means + x.mean(0)).numpy(),
        precisions_init=torch.cholesky_inverse(start.scale).numpy(),
        init_params="random_from_data",
    ).fit(x.numpy())
    assert abs(float(model.em_log_likelihood[0]) - sk.lower_bound_) < 1e-4
    np.testing.assert_allclose(mixture_of(model)[1], sk.means_, atol=1e-4)


def test_em_never_lowers_the_log_likelihood():
    x = blobs(300, seed=4).double()
    init = m_step(
        x, hard_responsibilities(x, kmeans_plusplus(x, 5, gen(0))), full=True, reg_covar=1e-6
    )
    values = [
        em(x, init, reg_covar=1e-6, max_iter=i, tol=0.0).log_likelihood for i in range(1, 15)
    ]
    assert all(b >= a - 1e-12 for a, b in zip(values[:-1], values[1:], strict=True))


def test_em_in_many_dimensions_never_lowers_the_log_likelihood():
    """Full covariances in D = 20 take the per-component path (float32 E-step GEMM): each
    mean log-likelihood then carries a rounding error of about D * 2^-24 relative to the
    Mahalanobis terms (~D), i.e. ~3e-5 nats; EM may not lower it by more than that."""
    g = gen(15)
    centres = torch.randn(4, 20, generator=g, dtype=torch.float64)
    x = centres[torch.arange(800) % 4] + torch.randn(800, 20, generator=g, dtype=torch.float64)
    x = x - x.mean(0)
    init = m_step(
        x, hard_responsibilities(x, kmeans_plusplus(x, 4, gen(1))), full=True, reg_covar=1e-6
    )
    values = [
        em(x, init, reg_covar=1e-6, max_iter=i, tol=0.0).log_likelihood for i in range(1, 12)
    ]
    assert values[-1] > values[0]
    assert all(b >= a - 20 * 20 * 2**-24 for a, b in zip(values[:-1], values[1:], strict=True))


def test_kmeans_plusplus_picks_distinct_data_points_reproducibly():
    x = blobs(200).double()
    c1, c2 = kmeans_plusplus(x, 6, gen(5)), kmeans_plusplus(x, 6, gen(5))
    assert torch.equal(c1, c2)
    assert all((x == c).all(1).any() for c in c1)
    assert torch.unique(c1, dim=0).shape[0] == 6


def test_kmeans_plusplus_with_one_candidate_is_d2_sampling():
    """98 points at 0, one at 3, one at -10. When the first centre lands at 0 (p = 0.98), the
    original k-means++ (one candidate) takes the point at 3 with probability q = 9/109 (its
    squared distance over the total); the greedy variant (2 candidates here) only if both
    draws are that point, q^2. Counts over 600 runs each are checked against binomial bounds
    of 4 standard deviations."""
    x = torch.cat([torch.zeros(98), torch.tensor([3.0, -10.0])]).double()[:, None]
    runs, g, q = 600, gen(7), 9 / 109
    for candidates, p in ((1, 0.98 * q), (None, 0.98 * q**2)):
        near = sum(
            int(c[0, 0] == 0 and c[1, 0] == 3)
            for c in (kmeans_plusplus(x, 2, g, candidates=candidates) for _ in range(runs))
        )
        assert abs(near - runs * p) < 4 * math.sqrt(runs * p * (1 - p))


def test_single_gaussian_is_the_maximum_likelihood_mean_and_covariance():
    x = blobs(500).double()
    model = Gaussian(event_shape=(2,), reg_covar=0.0).double().fit_closed_form(x)
    cov = torch.cov(x.T, correction=0)  # the MLE divides by n
    scale = model.scale_tril()[0, 0].detach()
    torch.testing.assert_close(model.means[0, 0].detach(), x.mean(0))
    torch.testing.assert_close(scale @ scale.T, cov)
    assert int(model.em_iterations[0]) <= 2


# ---------------------------------------------------------------------------- normalisation
@pytest.mark.parametrize("covariance", ["full", "diag"])
def test_density_integrates_to_one_on_a_grid(covariance):
    """Midpoint rule with spacing h on an unbounded grid: by Poisson summation its error for
    a function f is sum over integer vectors m != 0 of the Fourier transform f^(2 pi m / h),
    which for N(mu, Sigma) has modulus exp(-2 pi^2 m^T Sigma m / h^2). The grid is cut to a
    box 9 standard deviations past every mean (tail mass < 4 Phi(-9) < 1e-18 per component);
    float64 rounding of ~1e5 terms adds < 1e-12."""
    model = GaussianMixture(event_shape=(2,), components=3, covariance=covariance)
    model = model.fit_closed_form(blobs(300, seed=6)).double()
    w, mu, cov, _ = (torch.tensor(a) for a in mixture_of(model))
    full_cov = cov if cov.dim() == 3 else torch.diag_embed(cov)
    sd = full_cov.diagonal(dim1=-2, dim2=-1).sqrt()
    h = 0.5 * sd.min().item()  # coarse on purpose: the aliasing term is what limits the rule
    low, high = (mu - 9 * sd).min(0).values, (mu + 9 * sd).max(0).values
    axes = [
        torch.arange(lo + h / 2, hi + h, h, dtype=torch.float64)
        for lo, hi in zip(low, high, strict=True)
    ]
    total = model.log_prob(torch.cartesian_prod(*axes)).exp().sum().item() * h * h
    m = torch.cartesian_prod(torch.arange(-3, 4), torch.arange(-3, 4)).double()
    m = m[(m != 0).any(1)]  # (48, 2); further terms are smaller by far than these
    quad = torch.einsum("md,kde,me->km", m, full_cov, m)  # m^T Sigma_k m
    aliasing = 2 * (w[:, None] * torch.exp(-2 * math.pi**2 * quad / h**2)).sum().item()
    bound = aliasing + 3 * 1e-18 + 1e-12
    assert abs(total - 1.0) < bound, (total, bound)


# ---------------------------------------------------------------------------- sampling
@pytest.mark.parametrize("covariance", ["full", "diag"])
def test_sample_moments_match_the_mixture(covariance):
    """Mean sum_k w_k mu_k and covariance sum_k w_k (Sigma_k + mu_k mu_k^T) - m m^T; each
    estimate is compared within 5 standard errors (its sample std / sqrt(n)), a per-entry
    false-alarm rate below 1e-6 for a random seed."""
    model = GaussianMixture(event_shape=(2,), components=3, covariance=covariance)
    model = model.fit_closed_form(blobs(300, seed=7))
    w, mu, cov, _ = (torch.tensor(a) for a in mixture_of(model))
    full_cov = cov if cov.dim() == 3 else torch.diag_embed(cov)
    mean = (w[:, None] * mu).sum(0)
    second = (w[:, None, None] * (full_cov + mu[:, :, None] * mu[:, None, :])).sum(0)
    covariance_matrix = second - torch.outer(mean, mean)
    n = 40000
    s = model.sample(n, generator=gen(8)).double()
    assert s.dtype == torch.float64 and model.sample(2).dtype == torch.float32
    se = s.std(0) / math.sqrt(n)
    assert ((s.mean(0) - mean).abs() < 5 * se).all()
    centred = s - s.mean(0)
    for d in range(2):
        for e in range(2):
            z = centred[:, d] * centred[:, e]
            assert abs(z.mean() - covariance_matrix[d, e]) < 5 * z.std() / math.sqrt(n)


def test_component_choice_follows_the_weights():
    model = GaussianMixture(event_shape=(2,), components=3).fit_closed_form(blobs(300, seed=9))
    with torch.no_grad():  # make the components far apart so the nearest mean names the source
        model.means[0] = torch.tensor([[-50.0, 0.0], [0.0, 50.0], [50.0, 0.0]])
    n = 6000
    s = model.sample(n, generator=gen(10))
    source = torch.cdist(s, model.means[0].detach()).argmin(1)
    observed = torch.bincount(source, minlength=3).numpy()
    p = torch.softmax(model.logits[0].double(), -1).detach().numpy()
    assert stats.chisquare(observed, n * p).pvalue > 1e-3


# ---------------------------------------------------------------------------- rsample
@pytest.mark.parametrize(
    "kwargs", [{"covariance": "full"}, {"covariance": "diag"}, {"num_classes": 3}]
)
def test_rsample_draws_what_sample_draws_with_a_graph(kwargs):
    model = GaussianMixture(event_shape=(2,), components=3, **kwargs)
    data = blobs(300, seed=13)
    if "num_classes" in kwargs:
        data = Dataset(x=data, y=torch.arange(300) % 3)
    model = model.fit_closed_form(data)
    y = torch.arange(50) % 3 if "num_classes" in kwargs else None
    r = model.rsample(50, y, generator=gen(14))
    assert r.shape == (50, 2) and r.dtype == torch.float32 and r.requires_grad
    assert torch.equal(r.detach(), model.sample(50, y, generator=gen(14)))


def test_gaussian_rsample_gradient_is_the_reparameterisation():
    """x = mu + L eps, so for f = sum_i |x_i|^2: df/dmu = 2 sum_i x_i and
    df/dL = 2 sum_i x_i eps_i^T (lower triangle), with eps recovered as L^{-1} (x - mu)."""
    mixing = torch.tensor([[1.0, 0.5, 0.2], [0.0, 0.8, -0.3], [0.0, 0.0, 0.6]])
    data = torch.randn(300, 3, generator=gen(15)) @ mixing + 1.0
    model = Gaussian(event_shape=(3,)).fit_closed_form(data).double()
    x = model.rsample(200, generator=gen(16))
    x.square().sum().backward()
    mu, scale = model.means[0, 0].detach(), model.scale_tril()[0, 0].detach()  # (D,), (D, D)
    eps = torch.linalg.solve_triangular(scale, (x.detach() - mu).T, upper=False).T  # (n, D)
    d_scale = (2 * x.detach().T @ eps).tril()  # (D, D)
    rows, cols = torch.tril_indices(3, 3, -1)
    torch.testing.assert_close(model.means.grad[0, 0], 2 * x.detach().sum(0))
    torch.testing.assert_close(model.log_scale.grad[0, 0], d_scale.diagonal() * scale.diagonal())
    torch.testing.assert_close(model.scale_offdiag.grad[0, 0], d_scale[rows, cols])
    assert model.logits.grad is None


def test_mixture_rsample_gradient_reaches_the_chosen_components_not_the_weights():
    """d sum(x) / d mu_k is the number of samples drawn from component k (each entry)."""
    model = GaussianMixture(event_shape=(2,), components=3).fit_closed_form(blobs(300, seed=9))
    with torch.no_grad():  # far apart, so the nearest mean names the source component
        model.means[0] = torch.tensor([[-50.0, 0.0], [0.0, 50.0], [50.0, 0.0]])
    x = model.rsample(500, generator=gen(17))
    x.sum().backward()
    source = torch.cdist(x.detach(), model.means[0].detach()).argmin(1)
    counts = torch.bincount(source, minlength=3).float()
    assert (counts > 0).all()
    torch.testing.assert_close(model.means.grad[0], counts[:, None].expand(3, 2))
    assert model.log_scale.grad.abs().sum(-1).gt(0).all()
    assert model.scale_offdiag.grad.abs().sum(-1).gt(0).all()
    assert model.logits.grad is None


def test_rsample_errors_are_typed():
    model = GaussianMixture(event_shape=(2,), components=2)
    with pytest.raises(NotFittedError):
        model.rsample(3)
    model = model.fit_closed_form(blobs(100))
    with pytest.raises(ConfigError, match="n to be an int >= 1"):
        model.rsample(0)
    with pytest.raises(DataError, match="unconditional"):
        model.rsample(3, y=1)
    x = torch.randint(0, 4, (100, 2), generator=gen(18)).float()
    discrete = GaussianMixture(event_shape=(2,), num_levels=4, components=2).fit_closed_form(x)
    with pytest.raises(ConfigError, match="no gradient"):
        discrete.rsample(3)


# ---------------------------------------------------------------------------- discrete data
def test_discrete_log_prob_is_the_dequantization_bound():
    """For 1-D data with L levels, P(x) = F((x+1)/L) - F(x/L) is the mass of the cell, and by
    Jensen E_u[log p((x+u)/L)] - log L <= log P(x). The one-sample value must equal
    log p((x+u)/L) - log L for the model's own noise."""
    x = torch.randint(0, 4, (400, 1), generator=gen(11)).float()
    model = (
        GaussianMixture(event_shape=(1,), num_levels=4, components=2).fit_closed_form(x).double()
    )
    levels = torch.arange(4, dtype=torch.float64)[:, None]
    w, mu, cov, _ = mixture_of(model)
    mu, sd = mu.reshape(2), np.sqrt(cov.reshape(2))

    def cdf(v: np.ndarray) -> np.ndarray:
        return (w * stats.norm.cdf((v - mu) / sd)).sum(-1)

    exact = np.log(cdf(((levels + 1) / 4).numpy()) - cdf((levels / 4).numpy()))
    reps = 4000
    bound = model.log_prob(levels.repeat(reps, 1)).detach().reshape(reps, 4).mean(0).numpy()
    assert (bound <= exact + 0.05).all()  # MC error of the average is < 0.01 here
    u = torch.rand(4, 1, generator=gen(model.init_seed + 1), dtype=torch.float64)
    dens = GaussianMixture._continuous_log_prob(model, (levels + u) / 4, None) - math.log(4)
    torch.testing.assert_close(model.log_prob(levels), dens)
    s = model.sample(500, generator=gen(12))
    assert torch.equal(s, s.round()) and s.min() >= 0 and s.max() <= 3


# ---------------------------------------------------------------------------- SGD route
def test_sgd_route_lowers_the_nll_through_the_trainer():
    """On moons, the k-means++ start of 4 components is about 0.1 nats from EM's maximum; the
    trainer's Adam steps must close most of that gap, and cannot go far below the maximum."""
    torch.manual_seed(0)
    data = load_data("moons", n=2000)
    model = GaussianMixture(event_shape=(2,), components=4, method="sgd")
    assert not model.closed_form
    model.initialize(data)
    before = -model.log_prob(data.x).mean().item()
    fit(model, data, steps=150, batch_size=128, lr=3e-2, progress=False)
    after = -model.log_prob(data.x).mean().item()
    em_model = GaussianMixture(event_shape=(2,), components=4).fit_closed_form(data)
    best = -em_model.log_prob(data.x).mean().item()
    assert before - best > 0.05
    assert after < best + 0.5 * (before - best)
    assert after > best - 0.05  # another local maximum may be slightly higher, not far


# ---------------------------------------------------------------------------- errors
def test_errors_are_typed():
    model = GaussianMixture(event_shape=(2,), components=2)
    with pytest.raises(NotFittedError):
        model.log_prob(torch.zeros(1, 2))
    with pytest.raises(DataError, match="at least components=5"):
        GaussianMixture(event_shape=(2,), components=5).fit_closed_form(torch.zeros(3, 2))
    for kwargs in [
        {"components": 0},
        {"covariance": "tied"},
        {"method": "adam"},
        {"reg_covar": -1.0},
        {"max_iter": 0},
        {"init": "farthest"},
        {"tol": -1},
        {"init_seed": -1},
    ]:
        with pytest.raises(ConfigError):
            GaussianMixture(event_shape=(2,), **kwargs)
    sgd = GaussianMixture(event_shape=(2,), method="sgd")
    with pytest.raises(ConfigError, match="method='em'"):
        sgd.fit_closed_form(torch.zeros(10, 2))
    assert torch.isfinite(sgd.log_prob(torch.zeros(1, 2))).all()  # SGD models start usable
    with pytest.warns(UserWarning, match="did not converge"):
        GaussianMixture(event_shape=(2,), components=3, max_iter=1, tol=0.0).fit_closed_form(
            blobs(90)
        )
    assert isinstance(Mixture, type)
