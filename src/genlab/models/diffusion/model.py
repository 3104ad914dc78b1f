"""The diffusion model as a genlab :class:`~genlab.base.GenerativeModel`, registered as "ddpm".

Forward: ``q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)`` (see ``schedule.py``).
Training: draw t uniformly, noise x_0 to x_t, and regress the network on the noise eps (or on
x_0, or on v = alpha_t eps - sigma_t x_0) with a squared error (Ho et al. 2020, L_simple).
Sampling: start from N(0, I) and run a reverse sampler (``samplers.py``). Likelihood: the
variational bound (``bound.py``); there is no exact likelihood.

The model works in a *working space*: discrete data (``num_levels`` set) are mapped to level
centres in (-1, 1) by ``to_symmetric``; continuous data are divided by ``data_scale``, the
data's standard deviation measured by :meth:`DiffusionModel.initialize` (1 until then).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from genlab import rand
from genlab.base import GenerativeModel, Objective
from genlab.conditioning import CONDITION_KINDS, Conditions
from genlab.data.transforms import from_symmetric, to_symmetric
from genlab.errors import ConfigError
from genlab.models.diffusion.bound import bound_terms
from genlab.models.diffusion.conditional import ConditionEncoder, unet_condition_args
from genlab.models.diffusion.denoisers import MLPDenoiser, UNetDenoiser
from genlab.models.diffusion.guidance import check_guidance, guided_output
from genlab.models.diffusion.inversion import ENCODE_METHODS, encode_by_inversion
from genlab.models.diffusion.samplers import (
    SAMPLERS,
    Denoise,
    Sampler,
    SamplingOptions,
    Trajectory,
    plan,
    reverse_process,
    reverse_trajectory,
)
from genlab.models.diffusion.schedule import make_schedule
from genlab.recipes import Recipe
from genlab.registry import register
from genlab.settings import Annotated, Setting

#: Seed of the noise used by the likelihood bound, so ``log_prob_bound`` is a deterministic
#: function of the weights and x (common random numbers across models and calls).
BOUND_SEED = 0
#: Network calls of the validation bound (see :meth:`DiffusionModel.validation_loss`).
VALIDATION_STRATA = 32


@register("ddpm")
class DiffusionModel(GenerativeModel):
    """Denoising diffusion probabilistic model (DDPM) with DDIM and DPM-Solver++ sampling.

    Arguments:
        event_shape: Shape of one sample, e.g. ``(2,)`` or ``(1, 8, 8)``.
        num_classes: Classes for a conditional model p(x | y) with classifier-free guidance.
        num_levels: Levels of discrete data (17 for digits), None for continuous data.
        conditions: Condition kinds (:mod:`genlab.conditioning`): image conditions become
            input channels, the label and the prompt (read by a text encoder trained with the
            model) a FiLM vector, the prompt's words also cross-attention keys
            (:mod:`~genlab.models.diffusion.conditional`).
        num_timesteps: T, the number of diffusion steps.
        schedule: ``"linear"`` (Ho et al.), ``"cosine"`` (Nichol & Dhariwal) or ``"custom"``.
        beta_start, beta_end: End points of the linear schedule.
        betas: The T betas of a ``"custom"`` schedule.
        prediction: What the network predicts: ``"eps"``, ``"x0"`` or ``"v"``.
        denoiser: ``"mlp"``, ``"unet"`` or ``"auto"`` (UNet for (c, h, w) images, else MLP).
        width: Units of the MLP's hidden layers, or channels of the UNet's first level
            (None: 128 for the MLP, 16 for the UNet).
        depth: Residual blocks of the MLP, or residual blocks per level of the UNet
            (None: 3 for the MLP, 1 for the UNet).
        channel_mults, dropout: Channel multiplier per level and dropout of the UNet.
        condition_dropout: Probability of dropping each condition, independently per
            condition and example, in training (for guidance and for sampling without it).
        text_width, text_depth: Feature size and layers of the prompt's text encoder.
        bound_variance: Fixed reverse variance used by the likelihood bound, ``"large"``
            (beta_t) or ``"small"`` (beta_tilde_t); see ``bound.py``.

    Example:
        >>> import torch
        >>> from genlab import create
        >>> model = create("ddpm", event_shape=(2,), num_timesteps=20, width=16, depth=1)
        >>> model.sample(3, sampler="dpm-solver", steps=5).shape
        torch.Size([3, 2])
    """

    has_exact_likelihood: ClassVar[bool] = False
    has_likelihood_bound: ClassVar[bool] = True
    #: ``encode(x, t=...)``: the denoiser's features of x at noise step t.
    has_encoder: ClassVar[bool] = True
    supported_conditions: ClassVar[tuple[str, ...]] = CONDITION_KINDS

    # Demo settings. v-prediction never divides by sqrt(alpha_bar) to get x0 (eps does: 1/0.006
    # at t = T), so few-step samplers are less sensitive to network errors at high noise; T is
    # small so the T-step DDPM sampler and the T-term bound stay cheap, and the cosine schedule
    # keeps q(x_T) at N(0, I) for small T. No EMA: on 3000-step runs a decay of 0.999 averaged
    # in early weights and hurt the samples (docs/diffusion.md).
    recipes: ClassVar[dict[str, Recipe]] = {
        "points": Recipe(
            params={"num_timesteps": 250, "schedule": "cosine", "prediction": "v",
                    "width": 128, "depth": 3},
            train={"steps": 2500, "batch_size": 256, "lr": 2e-3, "keep": "last"},
            quick={"steps": 400, "val_every": 400},
            showcase=True,
        ),
        "images": Recipe(
            params={"num_timesteps": 100, "schedule": "cosine", "prediction": "v",
                    "width": 16},
            train={"steps": 1500, "batch_size": 128, "lr": 3e-3, "keep": "last"},
            quick={"steps": 100, "val_every": 100},
            showcase=True,
            note="bench/bench_diffusion.py (digits bound, Frechet distance)",
        ),
    }

    def __init__(
        self,
        *,
        event_shape: Sequence[int],
        num_classes: int | None = None,
        num_levels: int | None = None,
        conditions: Sequence[str] | None = None,
        num_timesteps: Annotated[int, Setting("T, the number of diffusion steps", ge=1)] = 1000,
        schedule: Annotated[str, Setting(
            "noise schedule: linear (Ho et al.), cosine (Nichol & Dhariwal) or custom (betas)",
            choices=("linear", "cosine", "custom"))] = "linear",
        beta_start: Annotated[float, Setting(
            "first beta of the linear schedule", gt=0, lt=1)] = 1e-4,
        beta_end: Annotated[float, Setting("last beta of the linear schedule", gt=0, lt=1)] = 0.02,
        betas: Annotated[list[float] | None, Setting(
            "the T betas of a custom schedule", gt=0, lt=1)] = None,
        prediction: Annotated[str, Setting(
            "what the network predicts: the noise eps, the data x0 or v = alpha eps - sigma x0",
            choices=("eps", "x0", "v"))] = "eps",
        denoiser: Annotated[str, Setting(
            "network: mlp, unet, or auto (UNet for (c, h, w) images, else MLP)",
            choices=("auto", "mlp", "unet"))] = "auto",
        width: Annotated[int | None, Setting(
            "units of the MLP's hidden layers or channels of the UNet's first level "
            "(None: 128 for the MLP, 16 for the UNet)", ge=1)] = None,
        depth: Annotated[int | None, Setting(
            "residual blocks of the MLP or per level of the UNet "
            "(None: 3 for the MLP, 1 for the UNet)", ge=1)] = None,
        channel_mults: Annotated[list[int], Setting(
            "UNet channel multiplier of each level (level i: width * channel_mults[i] channels)",
            ge=1)] = (1, 2),
        dropout: Annotated[float, Setting(
            "dropout inside the UNet's residual blocks", ge=0, lt=1)] = 0.0,
        condition_dropout: Annotated[float, Setting(
            "probability of dropping each condition (independently) in training, for "
            "classifier-free guidance", ge=0, lt=1)] = 0.1,
        text_width: Annotated[int, Setting(
            "feature size of the prompt's text encoder (prompt condition)", ge=1)] = 32,
        text_depth: Annotated[int, Setting(
            "transformer layers of the prompt's text encoder (prompt condition)", ge=1)] = 1,
        bound_variance: Annotated[str, Setting(
            "reverse variance of the likelihood bound: large (beta_t) or small (beta_tilde_t)",
            choices=("large", "small"))] = "large",
    ) -> None:
        super().__init__(event_shape=event_shape, num_classes=num_classes, num_levels=num_levels,
                         conditions=conditions)
        if not channel_mults:
            raise ConfigError(
                f"Expected channel_mults to be a non-empty list, but found {channel_mults!r}."
            )
        self.schedule = make_schedule(
            schedule, num_timesteps, beta_start=beta_start, beta_end=beta_end, betas=betas
        )
        self.prediction = prediction
        self.bound_variance = bound_variance
        self.condition_dropout = float(condition_dropout) if self.conditional else 0.0
        if denoiser == "auto":
            denoiser = "unet" if len(self.event_shape) == 3 else "mlp"
        # None leaves the denoiser's own default size.
        size = {k: v for k, v in (("width", width), ("depth", depth)) if v is not None}
        # Label-only models keep their networks as they were (their checkpoints load).
        extra = unet_condition_args(self.conditions, self.event_shape, text_width, denoiser) \
            if self.y_is_conditions else {}
        if denoiser == "unet":
            self.net = UNetDenoiser(
                self.event_shape, num_timesteps, num_classes,
                channel_mults=tuple(channel_mults), dropout=dropout, **size, **extra,
            )
        else:
            self.net = MLPDenoiser(self.event_shape, num_timesteps, num_classes, **size)
        if self.y_is_conditions:
            self.conditioner = ConditionEncoder(
                self.conditions, num_classes=num_classes, emb_dim=self.net.emb_dim,
                text_width=text_width, text_depth=text_depth,
                cross_attention=denoiser == "unet")
        # Scale of continuous data (their std), measured in initialize(); saved with the weights.
        self.register_buffer("data_scale", torch.ones(()))

    @classmethod
    def tiny_configs(cls) -> list[dict[str, Any]]:
        """Small configurations covering every variant, for the contract tests."""
        vec = {"num_timesteps": 20, "width": 16, "depth": 1}
        img = {"event_shape": (1, 8, 8), "num_levels": 17, "num_timesteps": 20, "width": 8}
        return [
            {"event_shape": (2,), **vec},
            {"event_shape": (2,), **vec, "schedule": "cosine", "prediction": "v",
             "num_classes": 3},
            {**img},
            {**img, "prediction": "x0", "num_classes": 3},
            {**img, "conditions": ("label", "sketch", "mask", "prompt"), "num_classes": 3,
             "text_width": 8, "condition_dropout": 0.2, "num_timesteps": 8},
            {"event_shape": (2,), **vec, "conditions": ("prompt",), "text_width": 8},
        ]

    @property
    def optional_conditions(self) -> tuple[str, ...]:
        """Every condition, when trained with condition dropout (a missing one is absent)."""
        return self.conditions if self.condition_dropout > 0 else ()

    def _net(self, x_t: Tensor, t: Tensor, y: Tensor | Conditions | None,
             features: bool = False) -> Tensor:
        """The denoiser's output (or :meth:`features`) for labels or Conditions ``y``."""
        call = self.net.features if features else self.net
        if not isinstance(y, Conditions):
            return call(x_t, t, y)
        scale = 1.0 / (self.num_levels - 1) if self.discrete else 1.0 / float(self.data_scale)
        labels, context = self.conditioner(y, scale)
        return call(x_t, t, labels, context)

    # ------------------------------------------------------------------ working space
    def to_working(self, x: Tensor) -> Tensor:
        """Data -> working space: level centres in (-1, 1), or ``x / data_scale``."""
        if self.discrete:
            return to_symmetric(x, self.num_levels)
        return x / self.data_scale

    def from_working(self, v: Tensor) -> Tensor:
        """Working space -> data: nearest level (integers) or ``v * data_scale``."""
        if self.discrete:
            return from_symmetric(v, self.num_levels)
        return v * self.data_scale

    def initialize(self, data: Any) -> None:
        """Measure ``data_scale``, the std of continuous data (kept at 1 for discrete data)."""
        if not self.discrete:
            std = data.x.float().std()
            if torch.isfinite(std) and std > 0:
                self.data_scale.fill_(float(std))

    def q_sample(
        self,
        x0: Tensor,
        t: Tensor | int,
        noise: Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Draw x_t ~ q(x_t | x_0) for ``x0`` in the working space (see :meth:`to_working`)."""
        return self.schedule.q_sample(x0, t, noise, generator=generator)

    # ------------------------------------------------------------------ network guesses
    def _guesses(
        self, x_t: Tensor, t: int, y: Tensor | Conditions | None,
        guidance: float | dict[str, float] = 1.0, clip: bool = False
    ) -> tuple[Tensor, Tensor]:
        """The network's (x0_hat, eps_hat) at step index t, with classifier-free guidance
        (:mod:`~genlab.models.diffusion.guidance` for conditions beyond a label)."""
        n = x_t.shape[0]
        t_batch = torch.full((n,), t, dtype=torch.long, device=x_t.device)
        if isinstance(y, Conditions):
            out = guided_output(self._net, x_t, t_batch, y, guidance)
        elif y is not None and guidance != 1.0:
            # One batched call for the conditional and the unconditional ("null" class) output;
            # guided = uncond + guidance * (cond - uncond), linear in any parametrisation.
            null = torch.full_like(y, self.num_classes)
            out = self.net(torch.cat([x_t, x_t]), t_batch.repeat(2), torch.cat([y, null]))
            cond, uncond = out[:n], out[n:]
            out = uncond + guidance * (cond - uncond)
        else:
            out = self.net(x_t, t_batch, y)
        ab = self.schedule.alpha_bar_at(t)
        alpha, sigma = math.sqrt(ab), math.sqrt(1.0 - ab)
        # x_t = alpha x0 + sigma eps;  v = alpha eps - sigma x0.
        if self.prediction == "eps":
            eps, x0 = out, (x_t - sigma * out) / alpha
        elif self.prediction == "x0":
            x0, eps = out, (x_t - alpha * out) / sigma
        else:
            x0, eps = alpha * x_t - sigma * out, sigma * x_t + alpha * out
        if clip:
            x0 = x0.clamp(-1.0, 1.0)
            eps = (x_t - alpha * x0) / sigma
        return x0, eps

    # ------------------------------------------------------------------ training
    def training_loss(self, x: Tensor, y: Tensor | None) -> tuple[Tensor, dict[str, float]]:
        """L_simple: ``E_{t, eps} ||target - net(x_t, t)||^2`` per dimension, t ~ U{0..T-1}.

        The target is eps, x0 or v = alpha_t eps - sigma_t x0 (``prediction``). Labels are
        replaced by the null class with probability ``condition_dropout``.
        """
        x0 = self.to_working(x)
        n = x0.shape[0]
        t = torch.randint(0, self.schedule.num_timesteps, (n,), device=x0.device)
        eps = torch.randn_like(x0)
        x_t = self.schedule.q_sample(x0, t, eps)
        if isinstance(y, Conditions):
            y = y.dropout({kind: self.condition_dropout for kind in y.kinds})
        elif y is not None and self.condition_dropout > 0:
            drop = torch.rand(n, device=x0.device) < self.condition_dropout
            y = torch.where(drop, torch.full_like(y, self.num_classes), y)
        if self.prediction == "eps":
            target = eps
        elif self.prediction == "x0":
            target = x0
        else:
            alpha, sigma = self.schedule.q_mean_std(torch.ones_like(x0), t)
            target = alpha * eps - sigma * x0
        loss = F.mse_loss(self._net(x_t, t, y), target)
        return loss, {"mse": loss.item()}

    def objectives(self) -> list[Objective]:
        """One objective: the denoising loss over every parameter."""
        return [Objective("denoise", self.training_loss, list(self.parameters()))]

    # ------------------------------------------------------------------ likelihood bound
    def _log_prob_bound(self, x: Tensor, y: Tensor | None, strata: int | None = None) -> Tensor:
        generator = torch.Generator(device=x.device).manual_seed(BOUND_SEED)
        clip = self.discrete

        def denoise(x_t: Tensor, t: int) -> Tensor:
            return self._guesses(x_t, t, y, clip=clip)[0]

        terms = bound_terms(
            denoise, self.schedule, self.to_working(x), num_levels=self.num_levels,
            variance=self.bound_variance, strata=strata, generator=generator,
        )
        log_prob = -(terms["prior"] + terms["diffusion"] + terms["decoder"])
        if not self.discrete:
            # Change of variables from the working space x / data_scale back to x.
            log_prob = log_prob - self.event_dim * torch.log(self.data_scale)
        return log_prob

    def validation_loss(self, x: Tensor, y: Tensor | None) -> Tensor:
        """The bound in nats per dimension, with the diffusion sum estimated from
        ``VALIDATION_STRATA`` steps (one per stratum, unbiased) instead of all T - 1."""
        return -self._log_prob_bound(x, y, strata=VALIDATION_STRATA) / self.event_dim

    def _encode(
        self,
        x: Tensor,
        y: Tensor | None,
        *,
        t: Annotated[int | None, Setting(
            "noise step whose denoiser features encode x (None: T // 10)", ge=0)] = None,
        method: Annotated[str, Setting(
            "features (denoiser features at t) or ddim_inversion (x_T of deterministic DDIM)",
            choices=ENCODE_METHODS)] = "features",
        steps: Annotated[int | None, Setting(
            "ddim_inversion: network calls (None: 50, at most T)", ge=1)] = None,
        refine: Annotated[int, Setting(
            "ddim_inversion: fixed-point iterations per step (0: explicit steps)", ge=0)] = 0,
    ) -> Tensor:
        """Denoiser features at step ``t`` of the noise-free ``x_t = sqrt(alpha_bar_t) x_0``
        (the mean of ``q(x_t | x_0)``: deterministic): the UNet's bottleneck, flattened, or
        the MLP's last residual stream, ``(n, k)``. With ``method="ddim_inversion"``: the
        latent x_T, flattened to ``(n, event_dim)``, that deterministic DDIM sampling with
        ``steps`` calls maps back to x (:mod:`~genlab.models.diffusion.inversion`)."""
        if method == "ddim_inversion":
            return encode_by_inversion(self, x, y, t=t, steps=steps, refine=refine)
        if steps is not None or refine:
            raise ConfigError(f"Expected steps and refine only with method='ddim_inversion', "
                              f"but found method={method!r}.")
        steps = self.schedule.num_timesteps
        t = steps // 10 if t is None else t
        if t >= steps:
            raise ConfigError(f"Expected t in [0, {steps - 1}], but found {t}.")
        x_t = math.sqrt(self.schedule.alpha_bar_at(t)) * self.to_working(x)
        t_batch = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        return self._net(x_t, t_batch, y, features=True)  # (n, k)

    # ------------------------------------------------------------------ sampling
    def _sample(
        self,
        n: int,
        y: Tensor | None,
        *,
        generator: torch.Generator | None = None,
        sampler: Annotated[str, Setting(
            "reverse sampler: ddpm (ancestral), ddim or dpm-solver (DPM-Solver++(2M))",
            choices=SAMPLERS)] = "ddpm",
        steps: Annotated[int | None, Setting(
            "network calls (None: T for ddpm, 50 for ddim, 20 for dpm-solver, at most T)",
            ge=1)] = None,
        eta: Annotated[float, Setting("DDIM noise scale (0: deterministic)", ge=0)] = 0.0,
        variance: Annotated[str, Setting(
            "variance of the DDPM steps: small (beta_tilde) or large (beta)",
            choices=("small", "large"))] = "small",
        guidance: Annotated[float | dict[str, float], Setting(
            "classifier-free guidance: one scale w, eps_u + w (eps_c - eps_u), or one per "
            "condition, e.g. sketch=2,prompt=3 (docs/conditioning.md)", ge=0)] = 1.0,
        clip_denoised: Annotated[bool | None, Setting(
            "clip x0 guesses to [-1, 1] (None: for discrete data)")] = None,
    ) -> Tensor:
        """Draw samples with the chosen reverse sampler (see :class:`SamplingOptions`)."""
        options = SamplingOptions(sampler, steps, eta, variance, guidance, clip_denoised)
        denoise, sampler_obj, timesteps, x_T = self._plan(n, y, options, generator)
        x_0 = reverse_process(denoise, self.schedule, x_T, sampler_obj, timesteps,
                              generator=generator)
        return self.from_working(x_0)

    def sampling_options(self, **options: Any) -> SamplingOptions:
        """Check sampling options against their declaration on ``sample``; fill the defaults.

        Raises:
            ConfigError: an unknown option or a value its declaration refuses.
        """
        return SamplingOptions.from_declared(self.sample_options(), options)

    def _plan(
        self, n: int, y: Tensor | None, options: SamplingOptions,
        generator: torch.Generator | None,
    ) -> tuple[Denoise, Sampler, list[int], Tensor]:
        """What a reverse run needs: ``denoise(x_t, t) -> (x0_hat, eps_hat)`` with the options'
        guidance and clipping, the sampler, the step indices it visits and x_T ~ N(0, I)."""
        guidance = options.guidance
        if self.y_is_conditions or isinstance(guidance, dict):
            guidance = check_guidance(guidance, self.conditions, self.optional_conditions)
            if isinstance(guidance, dict) and not self.y_is_conditions:
                guidance = guidance.get("label", 1.0)  # labels: the one scale of the label
        elif guidance != 1.0 and not self.conditional:
            raise ConfigError(
                f"Expected guidance 1.0 for an unconditional model, but found {guidance!r}."
            )
        clip = self.discrete if options.clip_denoised is None else options.clip_denoised

        def denoise(x_t: Tensor, t: int) -> tuple[Tensor, Tensor]:
            return self._guesses(x_t, t, y, guidance, clip)

        sampler, timesteps = plan(self.schedule.num_timesteps, options)
        x_T = rand.randn(
            (n, *self.event_shape), generator=generator, device=self.device, dtype=self.dtype
        )
        return denoise, sampler, timesteps, x_T

    @contextmanager
    def evaluating(self) -> Iterator[None]:
        """Evaluation mode without gradients inside the block; the mode is restored after."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.train(was_training)

    def sample_trajectory(
        self,
        n: int,
        y: Tensor | int | None = None,
        *,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Trajectory:
        """Run the reverse process like :meth:`sample` and keep every intermediate state.

        Arguments:
            n: Number of samples.
            y: Class labels (conditional models).
            generator: Source of randomness; with the same seed, ``states[-1]`` maps to the
                same samples that ``sample`` returns.
            **options: The sampling options of :meth:`sample` (``sampler``, ``steps``,
                ``eta``, ``variance``, ``guidance``, ``clip_denoised``).

        Returns:
            A :class:`Trajectory` in the working space (see :meth:`from_working`).
        """
        n = self._check_n(n)
        y = self._check_y(y, n)
        checked = self.sampling_options(**options)
        with self.evaluating():
            denoise, sampler, timesteps, x_T = self._plan(n, y, checked, generator)
            return reverse_trajectory(denoise, self.schedule, x_T, sampler, timesteps,
                                      generator=generator)

    def inpaint(
        self,
        x: Tensor,
        mask: Tensor,
        y: Tensor | int | None = None,
        *,
        generator: torch.Generator | None = None,
        resample: int = 1,
        **options: Any,
    ) -> Tensor:
        """Fill the unknown part of ``x`` (where ``mask`` is 0) consistently with the known part.

        See :func:`genlab.models.diffusion.inpaint.inpaint` (RePaint-style resampling) for the
        arguments; returns data of the shape of ``x``, equal to ``x`` where ``mask`` is 1.
        """
        from genlab.models.diffusion.inpaint import inpaint

        return inpaint(self, x, mask, y, generator=generator, resample=resample, **options)

    # ------------------------------------------------------------------ pictures
    @classmethod
    def figures(cls) -> dict[str, str]:
        """The forward process q(x_t) of the run's data and the reverse trajectory."""
        return {"forward": "q(x_t) of the training data at several t",
                "reverse": "the reverse denoising trajectory"}

    def plot(self, kind: str, run_dir: Path, out: Path) -> list[Path]:
        """Draw ``kind`` (see :meth:`figures`) of the trained run in ``run_dir`` to ``out``:
        :func:`genlab.viz.diffusion.plot_run`."""
        if kind not in self.figures():
            return super().plot(kind, run_dir, out)
        from genlab.viz.diffusion import plot_run

        return plot_run(self, kind, run_dir, out)
