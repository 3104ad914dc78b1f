"""Reverse-process samplers: from x_T ~ N(0, I) back to data, one network call per step.

A sampler visits a decreasing list of step indices ``t_0 > t_1 > ... > t_{N-1}`` (see
:func:`spaced_timesteps`) and ends at index ``-1``, clean data (alpha_bar = 1). At each index
the network gives the denoised guess x0_hat and the matching noise guess eps_hat, linked by
``x_t = sqrt(alpha_bar_t) x0_hat + sqrt(1 - alpha_bar_t) eps_hat``; the sampler turns them into
the next state x_s. The loop that does this is :func:`reverse_process`, written once for all:

* :class:`DDPMSampler`: ancestral sampling from the Gaussian approximation of
  q(x_s | x_t), i.e. the posterior q(x_s | x_t, x_0 = x0_hat) (Ho et al. 2020, alg. 2), with
  variance beta_tilde ("small") or beta ("large"). With fewer steps than T it uses the
  posterior between two distant indices, so it stays exact for every stride.
* :class:`DDIMSampler`: the non-Markovian process of Song et al. 2021, eq. 12; ``eta = 0`` is
  deterministic, ``eta = 1`` is DDPM with the small variance.
* :class:`DPMSolverSampler`: DPM-Solver++(2M) of Lu et al. 2022, a second-order multistep
  solver of the probability-flow ODE in log-SNR time; good samples in 10 to 20 calls.

In the formulas below, for an index t: alpha_t = sqrt(alpha_bar_t), sigma_t =
sqrt(1 - alpha_bar_t), lambda_t = log(alpha_t / sigma_t); s is the next index (s < t).
Coefficients are computed as Python floats (float64) and applied to the state's dtype.

References:
    Ho, Jain, Abbeel. Denoising Diffusion Probabilistic Models. NeurIPS 2020.
    Song, Meng, Ermon. Denoising Diffusion Implicit Models. ICLR 2021.
    Lu, Zhou, Bao, Chen, Li, Zhu. DPM-Solver++: Fast Solver for Guided Sampling of Diffusion
    Probabilistic Models. arXiv:2211.01095, 2022.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor

from genlab import rand
from genlab.errors import ConfigError
from genlab.models.diffusion.schedule import NoiseSchedule
from genlab.settings import SettingSpec

#: ``denoise(x_t, t) -> (x0_hat, eps_hat)``: the network's guesses at index t, shapes of x_t.
Denoise = Callable[[Tensor, int], "tuple[Tensor, Tensor]"]
#: ``callback(i, t, x_s, x0_hat)`` after step i from index t; for trajectories and plots.
StepCallback = Callable[[int, int, Tensor, Tensor], None]

SAMPLERS = ("ddpm", "ddim", "dpm-solver")


@dataclass
class Trajectory:
    """States of one reverse run, for plots.

    Attributes:
        timesteps: Step index of each state: ``[T-1 (noise), ..., -1 (clean data)]``.
        states: Shape ``(len(timesteps), n, *event_shape)``, in the working space.
        denoised: The network's x0 guess at each visited step, shape
            ``(len(timesteps) - 1, n, *event_shape)``, in the working space.
    """

    timesteps: list[int]
    states: Tensor
    denoised: Tensor


def spaced_timesteps(num_timesteps: int, steps: int) -> list[int]:
    """``steps`` indices evenly spaced over ``[0, T)``, starting at T - 1, decreasing.

    Index i is ``round(T - i T / steps) - 1`` (the "trailing" spacing of Lin et al. 2024), so
    the first call always sees pure noise at T - 1 and ``steps = T`` visits every index.

    Example:
        >>> spaced_timesteps(1000, 4)
        [999, 749, 499, 249]
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= num_timesteps:
        raise ConfigError(f"Expected steps in [1, {num_timesteps}], but found {steps!r}.")
    ratio = num_timesteps / steps
    return [round(num_timesteps - i * ratio) - 1 for i in range(steps)]


class Sampler:
    """One reverse step ``x_t -> x_s``; subclasses implement :meth:`step`.

    A sampler may keep memory between the steps of one run (multistep solvers);
    :func:`reverse_process` calls :meth:`reset` before the first step.
    """

    #: Whether :meth:`step` draws fresh noise.
    stochastic: bool = False

    def reset(self) -> None:
        """Forget the memory of a previous run."""

    def step(
        self,
        schedule: NoiseSchedule,
        x_t: Tensor,
        t: int,
        s: int,
        x0: Tensor,
        eps: Tensor,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """The next state x_s from x_t and the network's guesses ``x0``, ``eps`` at index t."""
        raise NotImplementedError


def _noise(like: Tensor, generator: torch.Generator | None) -> Tensor:
    return rand.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)


class DDPMSampler(Sampler):
    """Ancestral sampling: x_s ~ N(mu_tilde(x_t, x0_hat), sigma^2 I).

    Between indices t > s, q(x_t | x_s) has alpha_{t|s} = alpha_bar_t / alpha_bar_s and
    beta_{t|s} = 1 - alpha_{t|s}; the posterior is (Ho et al. eq. 7 with a stride)

        mu_tilde = sqrt(alpha_bar_s) beta_{t|s} / (1 - alpha_bar_t) x0
                 + sqrt(alpha_{t|s}) (1 - alpha_bar_s) / (1 - alpha_bar_t) x_t,
        beta_tilde = (1 - alpha_bar_s) / (1 - alpha_bar_t) beta_{t|s}.

    Arguments:
        variance: ``"small"`` samples with sigma^2 = beta_tilde (the true posterior variance),
            ``"large"`` with sigma^2 = beta_{t|s} (Ho et al. sec. 3.2 found both work). The
            last step (to clean data) adds no noise and returns x0_hat.
    """

    stochastic = True

    def __init__(self, variance: str = "small") -> None:
        if variance not in ("small", "large"):
            raise ConfigError(
                f"Expected variance to be one of 'small', 'large', but found {variance!r}."
            )
        self.variance = variance

    def step(self, schedule, x_t, t, s, x0, eps, generator=None):
        ab_t, ab_s = schedule.alpha_bar_at(t), schedule.alpha_bar_at(s)
        beta_ts = 1.0 - ab_t / ab_s
        # q(x_s | x_t, x_0) with x_0 replaced by the network's guess
        mean = (math.sqrt(ab_s) * beta_ts / (1.0 - ab_t)) * x0 + (
            math.sqrt(ab_t / ab_s) * (1.0 - ab_s) / (1.0 - ab_t)
        ) * x_t
        if s < 0:
            return mean  # = x0_hat: no noise on the last step
        var = beta_ts if self.variance == "large" else (1.0 - ab_s) / (1.0 - ab_t) * beta_ts
        return mean + math.sqrt(var) * _noise(x_t, generator)


class DDIMSampler(Sampler):
    """DDIM: ``x_s = sqrt(ab_s) x0 + sqrt(1 - ab_s - sigma^2) eps + sigma z`` (Song et al. eq. 12).

    sigma = eta * sqrt((1 - ab_s) / (1 - ab_t)) * sqrt(1 - ab_t / ab_s): ``eta = 0`` gives the
    deterministic sampler (an Euler step of the probability-flow ODE in the right variables),
    ``eta = 1`` the DDPM posterior with the small variance.
    """

    def __init__(self, eta: float = 0.0) -> None:
        if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not eta >= 0:
            raise ConfigError(f"Expected eta >= 0, but found {eta!r}.")
        self.eta = float(eta)
        self.stochastic = self.eta > 0

    def step(self, schedule, x_t, t, s, x0, eps, generator=None):
        ab_t, ab_s = schedule.alpha_bar_at(t), schedule.alpha_bar_at(s)
        sigma = self.eta * math.sqrt((1.0 - ab_s) / (1.0 - ab_t) * (1.0 - ab_t / ab_s))
        # Towards x0 by the clean part, back out along the predicted noise direction.
        x_s = math.sqrt(ab_s) * x0 + math.sqrt(max(1.0 - ab_s - sigma**2, 0.0)) * eps
        if sigma > 0:
            x_s = x_s + sigma * _noise(x_t, generator)
        return x_s


class DPMSolverSampler(Sampler):
    """DPM-Solver++(2M): second-order multistep solver with data (x0) prediction.

    In log-SNR time lambda, with h = lambda_s - lambda_t (Lu et al. 2022, alg. 2):

        x_s = (sigma_s / sigma_t) x_t - alpha_s (exp(-h) - 1) D,

    where D = x0_hat for a first-order step (the first one, and the last one into clean
    data) and otherwise D = (1 + 1/(2r)) x0_hat_t - 1/(2r) x0_hat_prev with r = h_prev / h,
    a linear extrapolation of the denoised guesses. One network call per step.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._prev_x0: Tensor | None = None
        self._prev_h = 0.0

    def step(self, schedule, x_t, t, s, x0, eps, generator=None):
        if s < 0:
            # Into clean data (sigma_s = 0, h = inf): the first-order step gives x0_hat.
            self.reset()
            return x0
        ab_t, ab_s = schedule.alpha_bar_at(t), schedule.alpha_bar_at(s)
        alpha_s, sigma_s, sigma_t = math.sqrt(ab_s), math.sqrt(1.0 - ab_s), math.sqrt(1.0 - ab_t)
        h = schedule.log_snr(s) - schedule.log_snr(t)
        if self._prev_x0 is None:
            d = x0
        else:
            half_inv_r = 0.5 * h / self._prev_h  # 1 / (2 r)
            d = (1.0 + half_inv_r) * x0 - half_inv_r * self._prev_x0
        self._prev_x0, self._prev_h = x0, h
        return (sigma_s / sigma_t) * x_t - (alpha_s * math.expm1(-h)) * d


def make_sampler(name: str, *, eta: float = 0.0, variance: str = "small") -> Sampler:
    """A fresh sampler by name: ``"ddpm"`` (uses ``variance``), ``"ddim"`` (uses ``eta``) or
    ``"dpm-solver"``."""
    if name == "ddpm":
        return DDPMSampler(variance)
    if name == "ddim":
        return DDIMSampler(eta)
    if name == "dpm-solver":
        return DPMSolverSampler()
    raise ConfigError(
        f"Expected sampler to be one of {', '.join(map(repr, SAMPLERS))}, but found {name!r}."
    )


@dataclass(frozen=True)
class SamplingOptions:
    """How to run the reverse process: the sampling options of ``DiffusionModel.sample``.

    Names, defaults, ranges and help are declared once, on ``DiffusionModel._sample``;
    :meth:`from_declared` fills and checks an instance from that declaration, and every entry
    point (``sample``, ``sample_trajectory``, ``inpaint``) passes one instance on.

    Attributes:
        sampler: ``"ddpm"``, ``"ddim"`` or ``"dpm-solver"``.
        steps: Network calls, or None for the sampler's default (see :func:`plan`).
        eta: DDIM noise scale (0: deterministic).
        variance: DDPM variance, ``"small"`` (beta_tilde) or ``"large"`` (beta).
        guidance: Classifier-free guidance scale w: ``eps_u + w (eps_c - eps_u)``, or one
            scale per condition (:mod:`~genlab.models.diffusion.guidance`).
        clip_denoised: Clip x0 guesses to [-1, 1], or None for the model's default.
    """

    sampler: str
    steps: int | None
    eta: float
    variance: str
    guidance: float | dict[str, float]
    clip_denoised: bool | None

    @classmethod
    def from_declared(
        cls, specs: Mapping[str, SettingSpec], options: Mapping[str, Any]
    ) -> SamplingOptions:
        """The declared defaults, overridden by ``options``, each checked by its declaration.

        Raises:
            ConfigError: an option that is not declared, or a value its declaration refuses.
        """
        unknown = [name for name in options if name not in specs]
        if unknown:
            raise ConfigError(
                f"Expected sampling options among {', '.join(map(repr, specs))}, but found "
                f"{', '.join(map(repr, unknown))}."
            )
        values = {name: spec.default for name, spec in specs.items()}
        values.update({name: specs[name].check(value) for name, value in options.items()})
        return cls(**{f.name: values[f.name] for f in fields(cls)})


def plan(num_timesteps: int, options: SamplingOptions) -> tuple[Sampler, list[int]]:
    """A fresh sampler and the step indices it visits, for a schedule of T steps.

    ``options.steps=None`` means T for DDPM (every step), 50 for DDIM and 20 for DPM-Solver
    (at most T).

    Raises:
        ConfigError: unknown sampler, ``steps`` outside [1, T], negative ``eta``, unknown
            ``variance``.
    """
    sampler_obj = make_sampler(options.sampler, eta=options.eta, variance=options.variance)
    steps = options.steps
    if steps is None:
        steps = {"ddpm": num_timesteps, "ddim": 50, "dpm-solver": 20}[options.sampler]
        steps = min(steps, num_timesteps)
    return sampler_obj, spaced_timesteps(num_timesteps, steps)


def reverse_process(
    denoise: Denoise,
    schedule: NoiseSchedule,
    x_T: Tensor,
    sampler: Sampler,
    timesteps: Sequence[int],
    *,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
) -> Tensor:
    """Run the reverse process from ``x_T`` through ``timesteps`` down to clean data.

    Arguments:
        denoise: ``(x_t, t) -> (x0_hat, eps_hat)``, the trained network's guesses.
        schedule: The noise schedule the network was trained with.
        x_T: Starting noise, shape ``(n, *event_shape)``.
        sampler: The update rule (see :func:`make_sampler`).
        timesteps: Strictly decreasing indices in ``[0, T)``, e.g. :func:`spaced_timesteps`.
        generator: Source of the samplers' noise.
        callback: Called as ``callback(i, t, x_s, x0_hat)`` after each step.

    Returns:
        x_0 in the network's working space, shape of ``x_T``.
    """
    timesteps = [int(t) for t in timesteps]
    if any(b >= a for a, b in zip(timesteps, timesteps[1:], strict=False)):
        raise ConfigError(f"Expected strictly decreasing timesteps, but found {timesteps}.")
    sampler.reset()
    x = x_T
    for i, t in enumerate(timesteps):
        s = timesteps[i + 1] if i + 1 < len(timesteps) else -1  # -1: clean data
        x0, eps = denoise(x, t)
        x = sampler.step(schedule, x, t, s, x0, eps, generator)
        if callback is not None:
            callback(i, t, x, x0)
    return x


def reverse_trajectory(
    denoise: Denoise,
    schedule: NoiseSchedule,
    x_T: Tensor,
    sampler: Sampler,
    timesteps: Sequence[int],
    *,
    generator: torch.Generator | None = None,
) -> Trajectory:
    """:func:`reverse_process`, keeping every state and every x0 guess (see :class:`Trajectory`).

    Same arguments as :func:`reverse_process`; ``states[-1]`` is what it returns.
    """
    states, denoised = [x_T], []

    def keep(i: int, t: int, x_s: Tensor, x0: Tensor) -> None:
        states.append(x_s)
        denoised.append(x0)

    reverse_process(denoise, schedule, x_T, sampler, timesteps, generator=generator,
                    callback=keep)
    return Trajectory([*map(int, timesteps), -1], torch.stack(states), torch.stack(denoised))
