"""Schedules and samplers against Hugging Face diffusers' schedulers (a trusted implementation).

diffusers is in the dev extra, so ``make test`` and CI run these checks; they skip, saying so,
only where it is not installed. Both sides
are driven by one deterministic "network", the exact noise predictor of a 2-D Gaussian, from
the same starting noise and the same seeded generator, so equal algorithms must give equal
outputs up to the rounding of diffusers' float32 coefficients (the states are float64, so
only the coefficients round).
"""

from __future__ import annotations

import math

import pytest
import torch

from genlab.models.diffusion import NoiseSchedule, make_sampler, reverse_process, spaced_timesteps

diffusers = pytest.importorskip(
    "diffusers", reason="diffusers is not installed (pip install genlab[dev])"
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # inside diffusers

MU = torch.tensor([1.0, -0.5], dtype=torch.float64)
SIGMA = torch.tensor([[1.0, 0.6], [0.6, 0.5]], dtype=torch.float64)
#: Disagreement allowed: diffusers computes its coefficients in float32 (relative rounding
#: 6e-8). Where they are ill-conditioned this grows: x0 = (x_t - sigma eps) / alpha at the first
#: cosine step (1 / alpha = 2e4) gives 6e-8 * 2e4 * |eps| ~ 4e-3 on x0 there, and
#: 1 - alpha_bar_t / alpha_bar_{t-1} for beta ~ 4e-5 at the last DDPM steps carries 1.5e-3
#: relative error. The final outputs, O(1), move by at most 4e-4 (measured); we allow 1e-3,
#: well below the gaps between different algorithms (1e-2 to 1e-1 here).
TOL = {"atol": 1e-3, "rtol": 1e-3}

NAMES = {"linear": "linear", "cosine": "squaredcos_cap_v2"}


def ours(kind: str) -> NoiseSchedule:
    return NoiseSchedule.linear(1000) if kind == "linear" else NoiseSchedule.cosine(1000)


def eps_fn(alphas_cumprod):
    def eps(x, t):
        ab = float(alphas_cumprod[int(t)])
        cov = ab * SIGMA + (1 - ab) * torch.eye(2, dtype=torch.float64)
        return math.sqrt(1 - ab) * (x - math.sqrt(ab) * MU) @ torch.linalg.inv(cov).T

    return eps


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_schedules_match_ddpm_scheduler(kind):
    theirs = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule=NAMES[kind])
    s = ours(kind)
    # diffusers keeps float32 tensors: agree to float32 rounding (cumprod of 1000 factors).
    assert torch.allclose(s.betas.float(), theirs.betas, rtol=1e-6, atol=1e-9)
    assert torch.allclose(s.alpha_bar.float(), theirs.alphas_cumprod, rtol=2e-5, atol=1e-9)


def run_ours(kind, sampler, steps, x_T, seed, **options):
    s = ours(kind)
    eps = eps_fn(s.alpha_bar)

    def denoise(x, t):
        e = eps(x, t)
        ab = s.alpha_bar_at(t)
        return (x - math.sqrt(1 - ab) * e) / math.sqrt(ab), e

    return reverse_process(denoise, s, x_T.clone(), make_sampler(sampler, **options),
                           spaced_timesteps(1000, steps),
                           generator=torch.Generator().manual_seed(seed))


def run_theirs(scheduler, steps, x_T, seed, **step_kwargs):
    scheduler.set_timesteps(steps)
    eps = eps_fn(scheduler.alphas_cumprod)
    g = torch.Generator().manual_seed(seed)
    x = x_T.clone()
    for t in scheduler.timesteps:
        x = scheduler.step(eps(x, t), t, x, generator=g, **step_kwargs).prev_sample
    return x


@pytest.mark.parametrize("kind,steps,variance", [("linear", 1000, "small"),
                                                  ("cosine", 1000, "large"),
                                                  ("linear", 50, "small")])
def test_ddpm_matches_ddpm_scheduler(kind, steps, variance):
    x_T = torch.randn(500, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    theirs = diffusers.DDPMScheduler(
        num_train_timesteps=1000, beta_schedule=NAMES[kind], clip_sample=False,
        variance_type=f"fixed_{variance}", timestep_spacing="trailing",
    )
    a = run_ours(kind, "ddpm", steps, x_T, seed=1, variance=variance)
    b = run_theirs(theirs, steps, x_T, seed=1)
    # Same algorithm, same noise draws: differences are float32 rounding of the coefficients.
    assert torch.allclose(a, b, **TOL), (a - b).abs().max()


@pytest.mark.parametrize("kind,steps,eta", [("linear", 50, 0.0), ("cosine", 20, 0.0),
                                             ("linear", 10, 1.0)])
def test_ddim_matches_ddim_scheduler(kind, steps, eta):
    x_T = torch.randn(500, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    theirs = diffusers.DDIMScheduler(
        num_train_timesteps=1000, beta_schedule=NAMES[kind], clip_sample=False,
        timestep_spacing="trailing", set_alpha_to_one=True,
    )
    a = run_ours(kind, "ddim", steps, x_T, seed=2, eta=eta)
    b = run_theirs(theirs, steps, x_T, seed=2, eta=eta)
    assert torch.allclose(a, b, **TOL), (a - b).abs().max()


@pytest.mark.parametrize("kind,steps", [("linear", 20), ("linear", 10), ("cosine", 15)])
def test_dpm_solver_matches_dpm_solver_multistep_scheduler(kind, steps):
    x_T = torch.randn(500, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    theirs = diffusers.DPMSolverMultistepScheduler(
        num_train_timesteps=1000, beta_schedule=NAMES[kind], algorithm_type="dpmsolver++",
        solver_order=2, timestep_spacing="trailing", final_sigmas_type="zero",
    )
    a = run_ours(kind, "dpm-solver", steps, x_T, seed=3)
    b = run_theirs(theirs, steps, x_T, seed=3)
    assert torch.allclose(a, b, **TOL), (a - b).abs().max()
