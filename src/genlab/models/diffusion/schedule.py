"""Noise schedules: the forward (noising) process of a diffusion model, in closed form.

The forward process adds a little Gaussian noise at each of T steps (Ho et al. 2020, eq. 2):

    q(x_t | x_{t-1}) = N(x_t; sqrt(1 - beta_t) x_{t-1}, beta_t I).

With alpha_t = 1 - beta_t and alpha_bar_t = prod_{s<=t} alpha_s, the t steps compose into one
Gaussian, the *diffusion kernel* (eq. 4):

    q(x_t | x_0) = N(x_t; sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I),
    x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps,   eps ~ N(0, I).

Given x_0, one step back is Gaussian too (eq. 6-7), the posterior the reverse model imitates:

    q(x_{t-1} | x_t, x_0) = N(x_{t-1}; c0_t x_0 + ct_t x_t, beta_tilde_t I),
    c0_t = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t),
    ct_t = sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t),
    beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t.

**Indexing.** Arrays have length T and are indexed by ``t = 0, ..., T-1``; index ``t`` is the
paper's step ``t + 1``. Index ``-1`` stands for clean data (alpha_bar = 1), the end point of
every reverse process. Every coefficient is computed once, in float64, and cast to the data's
dtype only when it multiplies a tensor.

References:
    Ho, Jain, Abbeel. Denoising Diffusion Probabilistic Models. NeurIPS 2020.
    Nichol, Dhariwal. Improved Denoising Diffusion Probabilistic Models. ICML 2021.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from genlab import rand
from genlab.errors import ConfigError


def linear_betas(num_timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> Tensor:
    """Ho et al.'s linear schedule: beta_t evenly spaced from ``beta_start`` to ``beta_end``.

    The endpoints are given for T = 1000; they are used as they are for any T, as in the paper.

    Returns:
        Float64 tensor of shape ``(T,)``.
    """
    return torch.linspace(beta_start, beta_end, num_timesteps, dtype=torch.float64)


def cosine_betas(num_timesteps: int, s: float = 0.008, max_beta: float = 0.999) -> Tensor:
    """Nichol & Dhariwal's cosine schedule.

    alpha_bar(u) = f(u) / f(0) with f(u) = cos^2((u + s) / (1 + s) * pi / 2), u = t / T, and
    beta_t = 1 - alpha_bar(t / T) / alpha_bar((t - 1) / T), clipped at ``max_beta`` so the
    last steps (where alpha_bar reaches 0) stay finite.

    Returns:
        Float64 tensor of shape ``(T,)``.
    """
    u = torch.arange(num_timesteps + 1, dtype=torch.float64) / num_timesteps
    f = torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2  # (T + 1,)
    betas = 1.0 - f[1:] / f[:-1]
    return betas.clamp(max=max_beta)


class NoiseSchedule:
    """The forward process for a sequence of betas, with every closed form of its Gaussians.

    Arguments:
        betas: Variances beta_t of the T forward steps, each in (0, 1).

    Attributes (float64 tensors of shape ``(T,)``):
        betas: beta_t.
        alphas: alpha_t = 1 - beta_t.
        alpha_bar: alpha_bar_t = prod_{s<=t} alpha_s; decreasing from about 1 to about 0.
        alpha_bar_prev: alpha_bar_{t-1}, with 1 at the first step.
        posterior_variance: beta_tilde_t of q(x_{t-1} | x_t, x_0) (0 at the first step).
        posterior_mean_coef_x0: c0_t, the weight of x_0 in the posterior mean.
        posterior_mean_coef_xt: ct_t, the weight of x_t in the posterior mean.

    Raises:
        ConfigError: ``betas`` is empty, not 1-D, or has values outside (0, 1).

    Example:
        >>> schedule = NoiseSchedule.linear(1000)
        >>> schedule.num_timesteps
        1000
        >>> round(float(schedule.alpha_bar[-1]), 6)
        4e-05
    """

    def __init__(self, betas: Tensor | Sequence[float]) -> None:
        betas = torch.as_tensor(betas, dtype=torch.float64).detach().cpu()
        if betas.dim() != 1 or betas.numel() == 0:
            raise ConfigError(f"Expected betas of shape (T,), but found {tuple(betas.shape)}.")
        if not torch.isfinite(betas).all() or (betas <= 0).any() or (betas >= 1).any():
            raise ConfigError(
                f"Expected every beta in (0, 1), but found values in "
                f"[{betas.min().item():g}, {betas.max().item():g}]."
            )
        self.betas = betas
        self.alphas = 1.0 - betas
        self.alpha_bar = torch.cumprod(self.alphas, dim=0)
        self.alpha_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bar[:-1]])
        # q(x_{t-1} | x_t, x_0) = N(c0_t x_0 + ct_t x_t, beta_tilde_t I)   (Ho et al. eq. 7)
        one_minus_ab = 1.0 - self.alpha_bar
        self.posterior_variance = (1.0 - self.alpha_bar_prev) / one_minus_ab * betas
        self.posterior_mean_coef_x0 = self.alpha_bar_prev.sqrt() * betas / one_minus_ab
        self.posterior_mean_coef_xt = (
            self.alphas.sqrt() * (1.0 - self.alpha_bar_prev) / one_minus_ab
        )

    # ------------------------------------------------------------------ constructors
    @classmethod
    def linear(
        cls, num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02
    ) -> NoiseSchedule:
        """The linear schedule of Ho et al. (see :func:`linear_betas`)."""
        return cls(linear_betas(num_timesteps, beta_start, beta_end))

    @classmethod
    def cosine(cls, num_timesteps: int = 1000, s: float = 0.008) -> NoiseSchedule:
        """The cosine schedule of Nichol & Dhariwal (see :func:`cosine_betas`)."""
        return cls(cosine_betas(num_timesteps, s))

    @property
    def num_timesteps(self) -> int:
        """T, the number of forward steps."""
        return self.betas.numel()

    def __repr__(self) -> str:
        return (
            f"NoiseSchedule(T={self.num_timesteps}, beta=[{self.betas[0].item():.3g}, "
            f"{self.betas[-1].item():.3g}], alpha_bar_T={self.alpha_bar[-1].item():.3g})"
        )

    # ------------------------------------------------------------------ scalar look-ups
    def alpha_bar_at(self, t: int) -> float:
        """alpha_bar at index ``t`` as a Python float; ``t = -1`` (clean data) gives 1."""
        return 1.0 if t < 0 else float(self.alpha_bar[t])

    def diffused_gaussian(self, mean: Tensor, std: float, t: int) -> tuple[Tensor, float]:
        """q(x_t) of Gaussian data x_0 ~ N(mean, std^2 I), in closed form.

        x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps is a sum of independent
        Gaussians, so q(x_t) = N(sqrt(alpha_bar_t) mean, (alpha_bar_t std^2 + 1 - alpha_bar_t) I):
        the data density convolved with the noise. A mixture of Gaussians diffuses component
        by component with the same weights.

        Returns:
            The mean (shape of ``mean``) and the standard deviation of q(x_t).
        """
        ab = self.alpha_bar_at(t)
        return math.sqrt(ab) * mean, math.sqrt(ab * std**2 + 1.0 - ab)

    def log_snr(self, t: int) -> float:
        """lambda_t = log(alpha_t / sigma_t) = 0.5 log(alpha_bar / (1 - alpha_bar)); +inf at -1."""
        ab = self.alpha_bar_at(t)
        return math.inf if ab >= 1.0 else 0.5 * (math.log(ab) - math.log1p(-ab))

    # ------------------------------------------------------------------ q(x_t | x_{t-1})
    def q_step(
        self,
        x_prev: Tensor,
        t: int,
        noise: Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """One forward step: x_t ~ q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I).

        Applying it at indices 0, 1, ..., t gives a draw of q(x_t | x_0) (see :meth:`q_sample`,
        which does the same in one step).

        Arguments:
            x_prev: x_{t-1}, shape ``(n, *event_shape)`` (x_0 for ``t = 0``).
            t: Step index in ``[0, T)``.
            noise: The standard normal noise; drawn with ``generator`` when None.
            generator: Source of randomness for ``noise``.
        """
        if noise is None:
            noise = rand.randn(
                x_prev.shape, generator=generator, device=x_prev.device, dtype=x_prev.dtype
            )
        beta = float(self.betas[t])
        return math.sqrt(1.0 - beta) * x_prev + math.sqrt(beta) * noise

    # ------------------------------------------------------------------ q(x_t | x_0)
    def _gather(self, values: Tensor, t: Tensor | int, like: Tensor) -> Tensor:
        """``values[t]`` as a tensor of ``like``'s dtype, shaped to broadcast over one sample."""
        if isinstance(t, int):
            t = torch.full((like.shape[0],), t, dtype=torch.long)
        out = values[t.long().cpu()].to(device=like.device, dtype=like.dtype)  # (n,)
        return out.reshape(-1, *([1] * (like.dim() - 1)))  # (n, 1, ..., 1)

    def q_mean_std(self, x0: Tensor, t: Tensor | int) -> tuple[Tensor, Tensor]:
        """Mean ``sqrt(alpha_bar_t) x0`` and std ``sqrt(1 - alpha_bar_t)`` of q(x_t | x_0).

        Arguments:
            x0: Clean data, shape ``(n, *event_shape)``.
            t: Step indices, int or int tensor of shape ``(n,)``, in ``[0, T)``.

        Returns:
            The mean, shape of ``x0``, and the std, shape ``(n, 1, ..., 1)``.
        """
        return (
            self._gather(self.alpha_bar.sqrt(), t, x0) * x0,
            self._gather((1.0 - self.alpha_bar).sqrt(), t, x0),
        )

    def q_sample(
        self,
        x0: Tensor,
        t: Tensor | int,
        noise: Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Draw x_t ~ q(x_t | x_0): ``x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps``.

        Arguments:
            x0: Clean data, shape ``(n, *event_shape)``.
            t: Step indices, int or int tensor of shape ``(n,)``, in ``[0, T)``.
            noise: eps, shape of ``x0``; drawn from N(0, I) with ``generator`` when None.
            generator: Source of randomness for ``noise``.

        Returns:
            x_t, shape of ``x0``.

        Example:
            >>> schedule = NoiseSchedule.linear(1000)
            >>> x0 = torch.zeros(4, 2)
            >>> schedule.q_sample(x0, 999, torch.ones(4, 2))[0]
            tensor([1.0000, 1.0000])
        """
        if noise is None:
            noise = rand.randn(
                x0.shape, generator=generator, device=x0.device, dtype=x0.dtype
            )
        mean, std = self.q_mean_std(x0, t)
        return mean + std * noise

    # ------------------------------------------------------------------ q(x_{t-1} | x_t, x_0)
    def q_posterior(self, x0: Tensor, x_t: Tensor, t: Tensor | int) -> tuple[Tensor, Tensor]:
        """Mean and variance of q(x_{t-1} | x_t, x_0) (Ho et al. eq. 6-7).

        Returns:
            The mean, shape of ``x0``, and the variance beta_tilde_t, shape ``(n, 1, ..., 1)``.
        """
        mean = (
            self._gather(self.posterior_mean_coef_x0, t, x0) * x0
            + self._gather(self.posterior_mean_coef_xt, t, x0) * x_t
        )
        return mean, self._gather(self.posterior_variance, t, x0)


def make_schedule(
    kind: str,
    num_timesteps: int,
    *,
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
    betas: Sequence[float] | None = None,
) -> NoiseSchedule:
    """Build a schedule by name: ``"linear"``, ``"cosine"`` or ``"custom"`` (``betas`` given).

    Raises:
        ConfigError: unknown ``kind``, or ``betas`` missing for ``"custom"`` or of a length
            other than ``num_timesteps``.
    """
    if kind == "linear":
        if not 0 < beta_start <= beta_end < 1:
            raise ConfigError(
                "Expected 0 < beta_start <= beta_end < 1, but found "
                f"beta_start={beta_start!r}, beta_end={beta_end!r}."
            )
        return NoiseSchedule.linear(num_timesteps, beta_start, beta_end)
    if kind == "cosine":
        return NoiseSchedule.cosine(num_timesteps)
    if kind == "custom":
        if betas is None or len(betas) != num_timesteps:
            found = None if betas is None else f"{len(betas)} values"
            raise ConfigError(
                f"Expected betas with {num_timesteps} values for schedule='custom', "
                f"but found {found}."
            )
        return NoiseSchedule(betas)
    raise ConfigError(
        f"Expected schedule to be one of 'linear', 'cosine', 'custom', but found {kind!r}."
    )
