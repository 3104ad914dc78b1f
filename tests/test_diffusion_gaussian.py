"""Samplers, bound and inpainting against the exact noise predictor of Gaussian data.

For data x_0 ~ N(mu, Sigma) the diffused marginal is q(x_t) = N(a mu, a^2 Sigma + s^2 I) with
a = sqrt(alpha_bar_t), s = sqrt(1 - alpha_bar_t), and the optimal noise predictor is

    eps*(x_t, t) = E[eps | x_t] = s (a^2 Sigma + s^2 I)^{-1} (x_t - a mu).

Everything is linear-Gaussian, so in the eigenbasis of Sigma (eigenvalues v) each sampler is a
scalar recursion, and the expected output moments and the expected bound follow in closed
form. The tests check the code against those numbers within sampling error.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from genlab import create
from genlab.models.diffusion import NoiseSchedule, make_sampler, reverse_process, spaced_timesteps

MU = torch.tensor([1.0, -0.5], dtype=torch.float64)
SIGMA = torch.tensor([[1.0, 0.6], [0.6, 0.5]], dtype=torch.float64)
EIGVALS, EIGVECS = torch.linalg.eigh(SIGMA)


class ExactEps(nn.Module):
    """The exact eps predictor for N(MU, SIGMA), in the denoiser signature net(x, t, y)."""

    def __init__(self, schedule: NoiseSchedule) -> None:
        super().__init__()
        ab = schedule.alpha_bar[:, None, None]  # (T, 1, 1)
        cov = ab * SIGMA + (1 - ab) * torch.eye(2, dtype=torch.float64)  # (T, 2, 2)
        # eps* = (x - sqrt(ab) mu) @ W_t with W_t = sqrt(1 - ab) cov^{-1} (symmetric).
        self.weights = (1 - ab).sqrt() * torch.linalg.inv(cov)
        self.shift = schedule.alpha_bar.sqrt()[:, None] * MU  # (T, 2)

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        k = int(t[0])
        return (x - self.shift[k]) @ self.weights[k]


def exact_denoise(schedule: NoiseSchedule):
    net = ExactEps(schedule)

    def denoise(x, t):
        ab = schedule.alpha_bar_at(t)
        eps = net(x, [t])
        return (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab), eps

    return denoise


def expected_moments(schedule, sampler, steps, variance="small"):
    """Mean and covariance of the sampler's output, by scalar recursion per eigenvalue.

    In centred eigen-coordinates w_t = U^T (x_t - a_t mu), the exact guesses are
    x0_hat - mu = g_t w_t and eps_hat = e_t w_t with g_t = a_t v / (a_t^2 v + s_t^2),
    e_t = s_t / (a_t^2 v + s_t^2); every update is then w_s = c w_t (+ noise).
    """
    ts = spaced_timesteps(schedule.num_timesteps, steps) + [-1]
    v = EIGVALS
    a_T = math.sqrt(schedule.alpha_bar_at(ts[0]))
    mean = -a_T * (EIGVECS.T @ MU)  # E[w] at the start, x_T ~ N(0, I)
    var = torch.ones(2, dtype=torch.float64)
    coef, prev_g, prev_h = torch.ones(2, dtype=torch.float64), None, None  # for DPM-Solver
    for t, s in zip(ts[:-1], ts[1:], strict=True):
        ab_t, ab_s = schedule.alpha_bar_at(t), schedule.alpha_bar_at(s)
        a_t, s_t = math.sqrt(ab_t), math.sqrt(1 - ab_t)
        a_s, s_s = math.sqrt(ab_s), math.sqrt(1 - ab_s)
        g, e = a_t * v / (a_t**2 * v + s_t**2), s_t / (a_t**2 * v + s_t**2)
        if sampler == "ddpm":
            # Posterior mean of q(x_s | x_t, x_0 = x0_hat) with a stride; noise var below.
            beta_ts = 1 - ab_t / ab_s
            c = a_s * beta_ts / (1 - ab_t) * g + math.sqrt(ab_t / ab_s) * (1 - ab_s) / (1 - ab_t)
            noise = 0.0 if s < 0 else (
                beta_ts if variance == "large" else (1 - ab_s) / (1 - ab_t) * beta_ts
            )
            mean, var = c * mean, c**2 * var + noise
        elif sampler == "ddim":
            c = a_s * g + s_s * e
            mean, var = c * mean, c**2 * var
        else:  # DPM-Solver++(2M): the state is coef * w_T, x0 deviations g * w_t
            d_now = g * coef
            if s < 0:
                coef = d_now
            else:
                h = 0.5 * math.log(ab_s / (1 - ab_s)) - 0.5 * math.log(ab_t / (1 - ab_t))
                d = d_now if prev_g is None else (
                    (1 + 0.5 * h / prev_h) * d_now - 0.5 * h / prev_h * prev_g
                )
                prev_g, prev_h = d_now, h
                coef = s_s / s_t * coef - a_s * math.expm1(-h) * d
    if sampler == "dpm-solver":
        mean, var = coef * mean, coef**2
    return MU + EIGVECS @ mean, EIGVECS @ torch.diag(var) @ EIGVECS.T


def check_moments(x, mean, cov, n_se=4.5):
    """Sample mean and covariance of x against (mean, cov) within n_se standard errors.

    SE of a sample mean: sqrt(C_ii / n); of a sample covariance entry (Gaussian data):
    sqrt((C_ii C_jj + C_ij^2) / n).
    """
    n = x.shape[0]
    se_mean = (cov.diagonal() / n).sqrt()
    d = cov.diagonal()
    se_cov = ((d[:, None] * d[None, :] + cov**2) / n).sqrt()
    assert ((x.mean(0) - mean).abs() < n_se * se_mean).all(), (x.mean(0), mean)
    assert ((torch.cov(x.T) - cov).abs() < n_se * se_cov).all(), (torch.cov(x.T), cov)


CASES = [
    ("linear", "ddpm", 1000, "small", 0.01),
    ("cosine", "ddpm", 1000, "large", 0.01),
    ("linear", "ddim", 50, "small", 0.08),
    ("linear", "ddim", 250, "small", 0.02),
    ("cosine", "ddim", 50, "small", 0.06),
    ("linear", "dpm-solver", 20, "small", 0.025),
    ("cosine", "dpm-solver", 15, "small", 0.035),
]


@pytest.mark.parametrize("kind,sampler,steps,variance,max_discretization", CASES)
def test_samplers_recover_gaussian(kind, sampler, steps, variance, max_discretization):
    schedule = NoiseSchedule.linear(1000) if kind == "linear" else NoiseSchedule.cosine(1000)
    mean, cov = expected_moments(schedule, sampler, steps, variance)
    # Recovery: the sampler's exact output moments are within its discretization error of
    # (MU, SIGMA); the bound per case is the claim (DDIM's deficit per eigen-direction is
    # 1 - prod cos^2(theta_t - theta_s) with tan(theta) = s / (a sqrt(v)), shrinking as 1/steps).
    assert (mean - MU).abs().max() < 0.01
    assert (cov - SIGMA).abs().max() < max_discretization
    # The code draws samples with exactly those moments, within sampling error.
    g = torch.Generator().manual_seed(0)
    x_T = torch.randn(10000, 2, generator=g, dtype=torch.float64)
    x = reverse_process(
        exact_denoise(schedule), schedule, x_T, make_sampler(sampler, variance=variance),
        spaced_timesteps(1000, steps), generator=g,
    )
    check_moments(x, mean, cov)


def test_ddim_eta_one_is_ddpm_and_first_dpm_step_is_ddim():
    schedule = NoiseSchedule.linear(1000)
    den = exact_denoise(schedule)
    x_T = torch.randn(100, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ts = spaced_timesteps(1000, 25)
    runs = [
        reverse_process(den, schedule, x_T, make_sampler(name, eta=1.0), ts,
                        generator=torch.Generator().manual_seed(1))
        for name in ("ddpm", "ddim")
    ]
    assert torch.allclose(runs[0], runs[1], atol=1e-10)
    x0, eps = den(x_T, 999)
    steps = [make_sampler(name).step(schedule, x_T, 999, 949, x0, eps) for name in
             ("ddim", "dpm-solver")]
    assert torch.allclose(steps[0], steps[1], atol=1e-12)


def test_dpm_solver_is_second_order():
    # Deterministic solvers converge to the probability-flow ODE solution (the finest-grid
    # result) as steps grow: error ~ 1/steps for DDIM (first order), ~ 1/steps^2 for
    # DPM-Solver++(2M), so doubling the steps cuts the error about 2x and 4x respectively.
    schedule = NoiseSchedule.linear(1000)
    den = exact_denoise(schedule)
    x_T = torch.randn(200, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = reverse_process(den, schedule, x_T, make_sampler("dpm-solver"),
                          spaced_timesteps(1000, 1000))

    def err(name, steps):
        x = reverse_process(den, schedule, x_T, make_sampler(name), spaced_timesteps(1000, steps))
        return (x - ref).abs().max().item()

    assert 1.7 < err("ddim", 40) / err("ddim", 80) < 2.3
    assert err("dpm-solver", 40) / err("dpm-solver", 80) > 3.5
    assert err("dpm-solver", 40) < err("ddim", 200)


def gaussian_model(schedule="linear", **kwargs):
    model = create(
        "ddpm", event_shape=(2,), schedule=schedule, width=4, depth=1, **kwargs
    ).double()
    model.net = ExactEps(model.schedule)
    return model


@pytest.mark.parametrize("schedule,variance,max_gap",
                         [("linear", "large", 0.01), ("cosine", "large", 0.01),
                          ("linear", "small", 1.0)])
def test_bound_matches_closed_form_and_is_below_true_log_likelihood(schedule, variance, max_gap):
    model = gaussian_model(schedule, bound_variance=variance)
    s = model.schedule
    n, D = 1000, 2
    g = torch.Generator().manual_seed(3)
    x = MU + torch.randn(n, D, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(SIGMA).T
    with torch.no_grad():
        bound = model.log_prob_bound(x)
    assert torch.isfinite(bound).all()

    # Closed-form E[bound]: with the exact predictor x0_hat = E[x_0 | x_t], so
    # E||x_0 - x0_hat||^2 = tr Cov[x_0 | x_t] = sum_v v s^2 / (a^2 v + s^2).
    def posterior_trace(t):
        ab = float(s.alpha_bar[t])
        return float((EIGVALS * (1 - ab) / (ab * EIGVALS + 1 - ab)).sum())

    ab_T = float(s.alpha_bar[-1])
    prior = 0.5 * (ab_T * (SIGMA.trace() + MU @ MU).item() - D * ab_T - D * math.log1p(-ab_T))
    # E[KL_t] = 0.5 D (log(var_p / var_q) + var_q / var_p - 1)
    #           + c0^2 E||x_0 - x0_hat||^2 / (2 var_p).
    diffusion = 0.0
    for t in range(1, s.num_timesteps):
        var_q = float(s.posterior_variance[t])
        var_p = float(s.betas[t]) if variance == "large" else var_q
        diffusion += 0.5 * D * (math.log(var_p / var_q) + var_q / var_p - 1)
        diffusion += float(s.posterior_mean_coef_x0[t]) ** 2 * posterior_trace(t) / (2 * var_p)
    beta_1 = float(s.betas[0])
    decoder = 0.5 * D * math.log(2 * math.pi * beta_1) + posterior_trace(0) / (2 * beta_1)
    expected_bound = -(prior + diffusion + decoder)
    true_log_lik = -0.5 * (D * math.log(2 * math.pi) + torch.logdet(SIGMA).item() + D)

    # The Monte Carlo bound (one x_t per step) averages to the closed form within 4.5 SE.
    se = bound.std().item() / math.sqrt(n)
    assert abs(bound.mean().item() - expected_bound) < 4.5 * se
    # A bound: below E[log p(x)] = -entropy, and tight with the large variance (which is
    # near the true reverse variance for this smooth data); the small one is about 0.9 nats
    # looser.
    assert expected_bound <= true_log_lik
    assert true_log_lik - expected_bound < max_gap
    assert bound.mean().item() <= true_log_lik + 4.5 * se


def test_bound_change_of_variables_with_data_scale():
    model = gaussian_model(num_timesteps=100)
    x = MU + torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        base = model.log_prob_bound(x)
        model.data_scale.fill_(2.0)  # the model now sees 2x through x / 2: same working data
        scaled = model.log_prob_bound(2 * x)
    assert torch.allclose(scaled, base - 2 * math.log(2.0), atol=1e-10)


def test_inpainting_samples_the_gaussian_conditional():
    model = gaussian_model()
    n, x1 = 2000, 1.8
    x = torch.zeros(n, 2, dtype=torch.float64)
    x[:, 0] = x1
    mask = torch.tensor([1.0, 0.0])
    # p(x_2 | x_1) = N(mu_2 + S21 / S11 (x_1 - mu_1), S22 - S21^2 / S11).
    cond_mean = (MU[1] + SIGMA[1, 0] / SIGMA[0, 0] * (x1 - MU[0])).item()
    cond_var = (SIGMA[1, 1] - SIGMA[1, 0] ** 2 / SIGMA[0, 0]).item()
    out = model.inpaint(x, mask, generator=torch.Generator().manual_seed(0), steps=100,
                        resample=20)
    assert (out[:, 0] == x1).all()
    # RePaint is approximate: with 100 steps x 20 resamplings the filled-in coordinate is
    # within 0.005 (mean) and 2% (variance) of the conditional at n = 20000 (measured). Allow
    # that plus 4 standard errors at n = 2000: sqrt(v / n) = 0.008, v sqrt(2 / n) = 0.004.
    se_mean, se_var = math.sqrt(cond_var / n), cond_var * math.sqrt(2 / n)
    assert abs(out[:, 1].mean().item() - cond_mean) < 0.005 + 4 * se_mean
    assert abs(out[:, 1].var().item() - cond_var) < 0.02 * cond_var + 4 * se_var
    # Plain replacement (resample = 1) is visibly biased here, which is why RePaint resamples.
    plain = model.inpaint(x, mask, generator=torch.Generator().manual_seed(0), steps=100)
    assert abs(plain[:, 1].mean().item() - cond_mean) > 0.05


def test_stratified_bound_is_unbiased_for_the_full_sum():
    from genlab.models.diffusion.bound import bound_terms

    schedule = NoiseSchedule.linear(200, 1e-3, 0.05)
    den = exact_denoise(schedule)
    x0 = MU + torch.randn(200, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def diffusion(strata, seed):
        terms = bound_terms(lambda x, t: den(x, t)[0], schedule, x0, strata=strata,
                            generator=torch.Generator().manual_seed(seed))
        return terms["diffusion"].mean().item()

    full = diffusion(None, 0)
    estimates = torch.tensor([diffusion(32, seed) for seed in range(1, 21)])
    # Unbiased: the mean of 20 independent estimates is within 4.5 of its standard errors
    # of the full sum (whose own noise, one x_t draw per step, is far smaller).
    se = estimates.std().item() / math.sqrt(len(estimates))
    assert abs(estimates.mean().item() - full) < 4.5 * se
