"""Noise schedules: closed forms in float64, q(x_t | x_0) moments, q(x_T) ~ N(0, I)."""

from __future__ import annotations

import math

import pytest
import torch

from genlab.errors import ConfigError
from genlab.models.diffusion import NoiseSchedule, spaced_timesteps
from genlab.models.diffusion.schedule import make_schedule

SCHEDULES = {"linear": NoiseSchedule.linear(1000), "cosine": NoiseSchedule.cosine(1000)}


def test_linear_betas_and_alpha_bar_closed_form():
    s = SCHEDULES["linear"]
    assert s.betas.dtype == torch.float64 and s.alpha_bar.shape == (1000,)
    assert s.betas[0].item() == pytest.approx(1e-4, rel=1e-12)
    assert s.betas[-1].item() == pytest.approx(0.02, rel=1e-12)
    steps = torch.diff(s.betas)
    assert torch.allclose(steps, torch.full_like(steps, (0.02 - 1e-4) / 999), rtol=1e-9)
    # alpha_bar_t = prod (1 - beta_s) = exp(sum log(1 - beta_s)), computed independently.
    expected = torch.exp(torch.cumsum(torch.log1p(-s.betas), 0))
    assert torch.allclose(s.alpha_bar, expected, rtol=1e-12, atol=0)


def test_cosine_alpha_bar_closed_form():
    s = SCHEDULES["cosine"]

    def f(u):
        return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

    # alpha_bar at index t is the paper's alpha_bar(t + 1) = f((t + 1) / T) / f(0), exactly
    # wherever beta was not clipped (every step but the last, where f reaches 0).
    clipped = s.betas >= 0.999
    assert clipped.nonzero().flatten().tolist() == [999]
    expected = torch.tensor([f((t + 1) / 1000) / f(0) for t in range(999)], dtype=torch.float64)
    assert torch.allclose(s.alpha_bar[:999], expected, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_posterior_coefficients_equal_bayes_rule(name):
    s = SCHEDULES[name]
    # q(x_{t-1} | x_t, x_0) is proportional to q(x_t | x_{t-1}) q(x_{t-1} | x_0), a product of
    # Gaussians in x_{t-1}: precision = alpha_t / beta_t + 1 / (1 - ab_{t-1}), and the mean is
    # var * (sqrt(alpha_t) / beta_t x_t + sqrt(ab_{t-1}) / (1 - ab_{t-1}) x_0).
    beta, alpha, ab_prev = s.betas[1:], s.alphas[1:], s.alpha_bar[:-1]
    var = 1.0 / (alpha / beta + 1.0 / (1.0 - ab_prev))
    assert torch.allclose(s.posterior_variance[1:], var, rtol=1e-10)
    assert torch.allclose(s.posterior_mean_coef_xt[1:], var * alpha.sqrt() / beta, rtol=1e-10)
    assert torch.allclose(
        s.posterior_mean_coef_x0[1:], var * ab_prev.sqrt() / (1.0 - ab_prev), rtol=1e-10
    )
    # First step: x_{-1} is x_0 itself (zero variance, mean x_0).
    assert s.posterior_variance[0] == 0 and s.posterior_mean_coef_xt[0] == 0
    assert s.posterior_mean_coef_x0[0].item() == pytest.approx(1.0, rel=1e-10)


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_q_sample_moments_within_sampling_error(name):
    s = SCHEDULES[name]
    n = 20000
    g = torch.Generator().manual_seed(0)
    x0 = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64).expand(n, 3)
    for t in (0, 100, 500, 999):
        xt = s.q_sample(x0, t, generator=g)
        ab = float(s.alpha_bar[t])
        # Sample mean of n draws of N(m, v): standard error sqrt(v / n). Sample variance:
        # standard error v sqrt(2 / (n - 1)). 5 standard errors over 24 comparisons: a false
        # alarm has probability about 24 * 6e-7.
        var = 1.0 - ab
        se_mean, se_var = math.sqrt(var / n), var * math.sqrt(2.0 / (n - 1))
        assert (xt.mean(0) - math.sqrt(ab) * x0[0]).abs().max() < 5 * se_mean
        assert (xt.var(0) - var).abs().max() < 5 * se_var


def test_forward_steps_compose_into_the_diffusion_kernel():
    # t + 1 applications of q(x_t | x_{t-1}) = N(sqrt(1 - beta) x, beta I) must give
    # q(x_t | x_0) = N(sqrt(ab_t) x_0, (1 - ab_t) I): same SEs as above, 5 of them.
    s = NoiseSchedule.linear(200, 1e-3, 0.05)
    n, t = 20000, 120
    g = torch.Generator().manual_seed(5)
    x0 = torch.full((n, 2), 1.5, dtype=torch.float64)
    x = x0
    for k in range(t + 1):
        x = s.q_step(x, k, generator=g)
    ab = float(s.alpha_bar[t])
    var = 1.0 - ab
    assert (x.mean(0) - math.sqrt(ab) * 1.5).abs().max() < 5 * math.sqrt(var / n)
    assert (x.var(0) - var).abs().max() < 5 * var * math.sqrt(2.0 / (n - 1))


def test_q_sample_uses_the_given_noise_and_int_or_tensor_t():
    s = SCHEDULES["linear"]
    x0, noise = torch.randn(4, 2), torch.randn(4, 2)
    t = torch.tensor([0, 10, 500, 999])
    out = s.q_sample(x0, t, noise)
    ab = s.alpha_bar[t].float()[:, None]
    assert torch.allclose(out, ab.sqrt() * x0 + (1 - ab).sqrt() * noise, atol=1e-6)
    assert torch.equal(s.q_sample(x0, 7, noise), s.q_sample(x0, torch.full((4,), 7), noise))


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_q_x_T_is_close_to_standard_normal(name):
    s = SCHEDULES[name]
    ab_T = float(s.alpha_bar[-1])
    # KL(q(x_T | x_0) || N(0, 1)) per dimension = 0.5 (ab x0^2 - ab - log(1 - ab)); for data
    # within |x0| <= 4 it is below 4e-4 nats, so q(x_T) is N(0, I) for every practical purpose.
    x0 = 4.0
    kl = 0.5 * (ab_T * x0**2 - ab_T - math.log1p(-ab_T))
    assert kl < 4e-4
    # Empirically, far-from-Gaussian data (uniform on [-3, 3]^2) diffuse to mean 0, covariance I.
    g = torch.Generator().manual_seed(1)
    n = 20000
    data = 6 * torch.rand(n, 2, generator=g, dtype=torch.float64) - 3
    xT = s.q_sample(data, s.num_timesteps - 1, generator=g)
    # Standard errors of the N(0, I) sample mean, variance, covariance: 1/sqrt(n),
    # sqrt(2/n), 1/sqrt(n); bias from ab_T (< 4e-5 * var(x0) = 1.2e-4) is negligible.
    assert xT.mean(0).abs().max() < 5 / math.sqrt(n)
    cov = torch.cov(xT.T)
    assert (cov.diagonal() - 1).abs().max() < 5 * math.sqrt(2 / n)
    assert cov[0, 1].abs() < 5 / math.sqrt(n)


def test_custom_betas_and_errors():
    betas = [0.1, 0.2, 0.3]
    s = make_schedule("custom", 3, betas=betas)
    assert torch.equal(s.betas, torch.tensor(betas, dtype=torch.float64))
    assert s.alpha_bar[-1].item() == pytest.approx(0.9 * 0.8 * 0.7, rel=1e-14)
    with pytest.raises(ConfigError, match="Expected every beta in"):
        NoiseSchedule([0.1, 1.0])
    with pytest.raises(ConfigError, match="Expected betas with 4 values"):
        make_schedule("custom", 4, betas=betas)
    with pytest.raises(ConfigError, match="Expected schedule to be one of"):
        make_schedule("quadratic", 10)
    with pytest.raises(ConfigError, match="beta_start"):
        make_schedule("linear", 10, beta_start=0.1, beta_end=0.01)


def test_spaced_timesteps():
    assert spaced_timesteps(10, 10) == list(range(9, -1, -1))
    assert spaced_timesteps(1000, 1) == [999]
    assert spaced_timesteps(1000, 10) == list(range(999, 0, -100))
    for steps in (3, 7, 15, 33, 999):
        ts = spaced_timesteps(1000, steps)
        assert len(ts) == steps and ts[0] == 999 and ts[-1] >= 0
        assert all(b < a for a, b in zip(ts, ts[1:], strict=False))
    for bad in (0, 1001, 2.5):
        with pytest.raises(ConfigError, match="Expected steps in"):
            spaced_timesteps(1000, bad)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_diffused_marginal_of_a_gaussian_mixture_matches_samples(kind):
    """q(x_t) of the 8gaussians data is the mixture with each component diffused in closed
    form; samples pushed through q(x_t | x_0) must follow it. Goodness of fit: a
    Kolmogorov-Smirnov test of 1-D projections on 6 random directions at 5 times, with the
    critical value for a family-wise level of 1e-3 (Bonferroni over the 30 tests):
    D_crit = sqrt(-log(alpha / 2) / 2) / sqrt(n)."""
    from genlab import load_data

    schedule = SCHEDULES[kind]
    data = load_data("8gaussians", n=4000, seed=5)
    centres = torch.tensor(data.info["centers"], dtype=torch.float64)  # (K, 2)
    std = float(data.info["std"])
    g = torch.Generator().manual_seed(11)
    directions = torch.nn.functional.normalize(torch.randn(6, 2, generator=g,
                                                           dtype=torch.float64), dim=1)
    n, tests = len(data), 6 * 5
    d_crit = math.sqrt(-math.log(1e-3 / tests / 2) / 2) / math.sqrt(n)
    for t in (0, 50, 200, 500, 999):
        xt = schedule.q_sample(data.x.double(), t, generator=g)  # (n, 2)
        means, s_t = schedule.diffused_gaussian(centres, std, t)  # (K, 2), scalar
        for u in directions:
            proj = torch.sort(xt @ u).values  # (n,)
            mu = means @ u  # (K,) the projected component means
            cdf = torch.special.ndtr((proj[:, None] - mu[None, :]) / s_t).mean(1)  # (n,)
            ranks = torch.arange(1, n + 1, dtype=torch.float64) / n
            d = torch.maximum((ranks - cdf).abs(), (ranks - 1.0 / n - cdf).abs()).max()
            assert d < d_crit, (t, u.tolist(), d.item(), d_crit)
    # A wrong marginal is caught at this sample size: the undiffused mixture at t = 500.
    xt = schedule.q_sample(data.x.double(), 500, generator=g)
    proj = torch.sort(xt @ directions[0]).values
    cdf = torch.special.ndtr((proj[:, None] - (centres @ directions[0])[None, :]) / std).mean(1)
    assert ((torch.arange(1, n + 1, dtype=torch.float64) / n) - cdf).abs().max() > d_crit
