"""The GAN as a genlab model: a generator, a discriminator and the two objectives.

The course's setup: a discriminator ``D(x) = Pr(real | x)`` and a generator ``G(z)`` in data
space, trained by alternating updates on

.. math::

    \\min_{\\theta_g} \\max_{\\theta_d}\\; E_{x \\sim p_{data}} \\log D(x)
        + E_{z \\sim p(z)} \\log(1 - D(G(z))).

:meth:`GANModel.objectives` returns the two players for the common trainer: first the
discriminator (gradient *ascent* on the objective, written as descent on its negative, run
``d_repeats`` times per step), then the generator (descent on ``E log(1 - D(G(z)))`` for the
minimax loss, or ascent on ``E log D(G(z))`` for the non-saturating one). Each has its own
optimizer, learning rate and Adam betas (two time-scale updates, TTUR). The trainer zeroes
every gradient before each objective, so the discriminator's gradients from the generator's
step never leak into the discriminator's update.

GANs have no likelihood: ``log_prob`` raises :class:`~genlab.errors.IntractableLikelihood`.

Data space and model space: continuous data are standardised (``gan``) or scaled to [-1, 1]
per channel (``dcgan``) with statistics stored in buffers at :meth:`GANModel.initialize`;
discrete data (``num_levels`` set) are mapped to
their level centres in (-1, 1) (:func:`~genlab.data.transforms.to_symmetric`), the generator
ends in tanh, and samples are rounded back to levels (:func:`~genlab.data.transforms.
from_symmetric`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from genlab import rand
from genlab.base import GenerativeModel, Objective
from genlab.data.transforms import from_symmetric, to_symmetric
from genlab.errors import ConfigError
from genlab.models.gan import losses
from genlab.models.gan.layers import Discriminator, pack_samples
from genlab.models.gan.rejection import rejection_sample
from genlab.settings import Annotated, Setting

if TYPE_CHECKING:
    from genlab.data.dataset import Dataset
    from genlab.train.callbacks import Callback


#: Settings whose default a subclass changes: declared once here, used in both signatures.
LatentSize = Annotated[int, Setting("size of the generator's noise z ~ N(0, I)", ge=1)]
DRepeats = Annotated[int, Setting("discriminator updates per generator update (k)", ge=1)]
GeneratorLR = Annotated[float | None, Setting(
    "generator learning rate (None: the trainer's lr)", gt=0)]
DiscriminatorLR = Annotated[float | None, Setting(
    "discriminator learning rate (None: g_lr)", gt=0)]
Pack = Annotated[int, Setting("samples per discriminator decision (PacGAN; 1 = off)", ge=1)]
#: gamma of R1 and R2 for ``loss="rpgan"`` when not given (model space: standardised units).
RPGAN_GAMMA = 0.01
MinibatchFeatures = Annotated[int, Setting(
    "minibatch-discrimination features in the discriminator (0 = off)", ge=0)]


class GANModel(GenerativeModel):
    """Shared machinery of the ``gan`` (MLP) and ``dcgan`` (convolutional) models.

    Subclasses build ``self.generator`` (``G(z, y)``, output in model space) and
    ``self.discriminator`` (with :meth:`_discriminator` on their feature network) and call
    :meth:`_register_data_stats` with the shape of their standardisation statistics.

    Arguments:
        loss: ``"minimax"`` or ``"nonsaturating"`` (the course's two generator losses),
            ``"wasserstein"`` (with gradient penalty), ``"hinge"``, or ``"rpgan"`` (relativistic
            pairing with R1 and R2, see :mod:`~genlab.models.gan.losses`).
        latent_size: Size of the noise z ~ N(0, I).
        d_repeats: Discriminator updates per generator update (k).
        g_lr: Generator learning rate; None uses the trainer's ``lr``.
        d_lr: Discriminator learning rate; None uses ``g_lr``.
        betas: Adam betas of both players.
        gp_weight: Weight of the WGAN-GP gradient penalty; None means 10 for ``wasserstein``
            and 0 otherwise.
        r1_weight: gamma of the R1 penalty ``gamma / 2 E ||grad_x l(x)||^2`` on real data
            (model space); None means :data:`RPGAN_GAMMA` for ``rpgan`` and 0 otherwise.
        r2_weight: gamma of the R2 penalty, the same on generated data; None as for R1.
        spectral_norm: Spectrally normalise the discriminator's layers.
        pack: Samples per discriminator decision (PacGAN; 1 = off).
        minibatch_features: Minibatch-discrimination features in the discriminator (0 = off).
        instance_noise: Standard deviation (in model space: standardised units, or the
            (-1, 1) pixel range) of Gaussian noise added to every discriminator input, real
            and generated, annealed linearly to 0 over ``instance_noise_steps`` generator
            updates: the discriminator first compares blurred distributions (smooth, useful
            gradients everywhere), then ever sharper ones (instance noise; Sonderby et al.,
            "Amortised MAP Inference for Image Super-resolution", 2017). 0 = off.
        instance_noise_steps: Length of that annealing, in training steps.
        diag_every: Steps between diagnostics of :class:`~genlab.models.gan.callback.
            GANDiagnostics`; None means once per epoch, at most 20 times a run.
    """

    has_exact_likelihood = False
    has_likelihood_bound = False
    #: ``encode(x)``: the discriminator's penultimate features.
    has_encoder = True

    generator: nn.Module
    discriminator: nn.Module

    def __init__(
        self,
        *,
        event_shape: Sequence[int],
        num_classes: int | None = None,
        num_levels: int | None = None,
        loss: Annotated[str, Setting(
            "the players' losses: the course's minimax or non-saturating one, Wasserstein "
            "(with gradient penalty), hinge, or relativistic pairing with R1 and R2 (rpgan)",
            choices=losses.LOSSES)] = "nonsaturating",
        latent_size: LatentSize = 16,
        d_repeats: DRepeats = 1,
        g_lr: GeneratorLR = None,
        d_lr: DiscriminatorLR = None,
        betas: Annotated[tuple[float, float], Setting(
            "Adam betas of both players", ge=0, lt=1)] = (0.5, 0.999),
        gp_weight: Annotated[float | None, Setting(
            "weight of the WGAN-GP gradient penalty (None: 10 for wasserstein, else 0)",
            ge=0)] = None,
        r1_weight: Annotated[float | None, Setting(
            "gamma of the R1 penalty on real data's input gradients (None: "
            f"{RPGAN_GAMMA} for rpgan, else 0)", ge=0)] = None,
        r2_weight: Annotated[float | None, Setting(
            "gamma of the R2 penalty on generated data's input gradients (None: "
            f"{RPGAN_GAMMA} for rpgan, else 0)", ge=0)] = None,
        spectral_norm: Annotated[bool, Setting(
            "spectrally normalise the discriminator's layers")] = False,
        pack: Pack = 1,
        minibatch_features: MinibatchFeatures = 0,
        instance_noise: Annotated[float, Setting(
            "std of Gaussian noise on every discriminator input, annealed to 0 (0 = off)",
            ge=0)] = 0.0,
        instance_noise_steps: Annotated[int, Setting(
            "generator updates over which the instance noise falls to 0", ge=1)] = 1000,
        diag_every: Annotated[int | None, Setting(
            "steps between training diagnostics (None: once per epoch, at most 20 a run)",
            ge=1)] = None,
    ) -> None:
        super().__init__(event_shape=event_shape, num_classes=num_classes, num_levels=num_levels)
        if gp_weight is None:
            gp_weight = 10.0 if loss == "wasserstein" else 0.0
        default_gamma = RPGAN_GAMMA if loss == "rpgan" else 0.0
        r1_weight = default_gamma if r1_weight is None else r1_weight
        r2_weight = default_gamma if r2_weight is None else r2_weight
        if loss == "rpgan" and r1_weight == 0 and r2_weight == 0:
            raise ConfigError("Expected r1_weight > 0 or r2_weight > 0 with loss='rpgan' (the "
                              "unpenalised pairing loss does not converge), but found both 0.")
        self.loss = loss
        self.latent_size = latent_size
        self.d_repeats = d_repeats
        self.g_lr = g_lr
        self.d_lr = d_lr if d_lr is not None else g_lr
        self.betas = (float(betas[0]), float(betas[1]))
        self.gp_weight = float(gp_weight)
        self.r1_weight = float(r1_weight)
        self.r2_weight = float(r2_weight)
        self.use_spectral_norm = spectral_norm
        self.pack = pack
        self.minibatch_features = minibatch_features
        self.diag_every = diag_every
        self.instance_noise = float(instance_noise)
        self.instance_noise_steps = instance_noise_steps
        if self.instance_noise > 0:
            # Generator updates so far: the clock of the noise schedule, saved and resumed.
            self.register_buffer("generator_updates", torch.zeros((), dtype=torch.long))

    def _discriminator(self, features: nn.Module, out_features: int) -> Discriminator:
        """``D(x, y)`` on the feature network ``features`` (``out_features`` outputs), with this
        model's conditioning, packing, minibatch discrimination and spectral norm."""
        return Discriminator(
            features,
            out_features,
            num_classes=self.num_classes,
            pack=self.pack,
            minibatch_features=self.minibatch_features,
            spectral_norm=self.use_spectral_norm,
        )

    # ------------------------------------------------------------------ data <-> model space
    def _register_data_stats(self, shape: Sequence[int]) -> None:
        """Buffers ``shift`` and ``scale``: model space is ``(x - shift) / scale``."""
        self.register_buffer("shift", torch.zeros(*shape))
        self.register_buffer("scale", torch.ones(*shape))

    def _data_stats(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Shift and scale of continuous data ``x`` of shape ``(n, *event_shape)``."""
        raise NotImplementedError

    def initialize(self, data: Dataset) -> None:
        """Store the standardisation of continuous data (no-op for discrete data)."""
        if self.discrete:
            return
        shift, scale = self._data_stats(data.x.to(self.device, self.dtype))
        self.shift.copy_(shift)
        self.scale.copy_(torch.where(scale > 0, scale, torch.ones_like(scale)))

    def to_model_space(self, x: Tensor) -> Tensor:
        """Data space to the space G outputs and D reads (level centres in (-1, 1) if discrete)."""
        if self.discrete:
            return to_symmetric(x, self.num_levels)
        return (x - self.shift) / self.scale

    def to_data_space(self, v: Tensor) -> Tensor:
        """Inverse of :meth:`to_model_space` (rounding to the nearest level if discrete)."""
        if self.discrete:
            return from_symmetric(v, self.num_levels)
        return v * self.scale + self.shift

    # ------------------------------------------------------------------ sampling
    def noise(
        self, n: int, *, generator: torch.Generator | None = None, truncation: float | None = None
    ) -> Tensor:
        """Draw the generator's input z ~ N(0, I), shape ``(n, latent_size)``, optionally
        truncated to ``|z_i| <= t``.

        Truncation uses the inverse CDF: ``z = Phi^-1(u)`` with u uniform on
        ``(Phi(-t), Phi(t))``, an exact draw from the truncated normal in one pass.
        """
        shape = (n, self.latent_size)
        if truncation is None:
            return rand.randn(shape, generator=generator, device=self.device, dtype=self.dtype)
        u = rand.rand(shape, generator=generator, device=self.device, dtype=self.dtype)
        lo = torch.special.ndtr(torch.tensor(-float(truncation), dtype=self.dtype))
        return torch.special.ndtri(lo + u * (1.0 - 2.0 * lo))

    def _sample(
        self,
        n: int,
        y: Tensor | None,
        *,
        generator: torch.Generator | None = None,
        truncation: Annotated[float | None, Setting(
            "draw z from N(0, I) truncated to [-t, t] per coordinate (None: the full prior)",
            gt=0)] = None,
        rejection: Annotated[bool, Setting(
            "discriminator rejection sampling (minimax and non-saturating losses)")] = False,
    ) -> Tensor:
        """Samples ``G(z, y)`` mapped to data space, shape ``(n, *event_shape)``.

        Arguments:
            truncation: Draw z from N(0, I) truncated to ``[-t, t]`` per coordinate: fewer,
                more typical samples (the "truncation trick"); None samples the full prior.
            rejection: Keep each G(z) with probability ``exp(l(x) - M)``, the discriminator's
                estimate of ``p_data / p_g`` (discriminator rejection sampling, see
                :mod:`~genlab.models.gan.rejection`; minimax and non-saturating losses only).
        """
        if rejection:
            v = rejection_sample(self, n, y, generator=generator, truncation=truncation)
            return self.to_data_space(v)
        z = self.noise(n, generator=generator, truncation=truncation)
        return self.to_data_space(self.generator(z, y))

    def _encode(self, x: Tensor, y: Tensor | None) -> Tensor:
        """The discriminator's penultimate features ``phi(x)`` ``(n, k)``, before minibatch
        discrimination and the output layer. With packing each sample fills its own pack
        (``pack`` copies), so its features depend on it alone."""
        v = self.to_model_space(x).repeat_interleave(self.pack, dim=0)  # (n * pack, ...)
        return self.discriminator.features(pack_samples(v, self.pack))  # (n, k)

    def interpolate_latent(self, n: int, steps: int = 8, y: Tensor | int | None = None, *,
                           generator: torch.Generator | None = None) -> Tensor:
        """``n`` paths ``G(z(s), y)`` in data space between pairs of noise draws ``z0, z1 ~
        N(0, I)``, spherical (:func:`~genlab.viz.interpolation.slerp`: the straight line
        would pass through latents far less typical than its ends).

        Returns:
            Shape ``(n, steps, *event_shape)``.
        """
        from genlab.viz.interpolation import slerp

        n = self._check_n(n)
        y = self._check_y(y, n)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                z = self.noise(2 * n, generator=generator)
                path = slerp(z[:n], z[n:], steps).reshape(n * steps, self.latent_size)
                labels = None if y is None else y.repeat_interleave(steps)
                x = self.to_data_space(self.generator(path, labels))
        finally:
            self.train(was_training)
        return x.reshape(n, steps, *self.event_shape)

    # ------------------------------------------------------------------ the two players
    def critic(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Discriminator outputs (logits, or critic scores) on data-space ``x``.

        Arguments:
            x: Data of shape ``(n, *event_shape)``.
            y: Labels of shape ``(n,)`` for a conditional model.

        Returns:
            Shape ``(n // pack,)``: one output per pack of ``pack`` consecutive samples.
        """
        x, _ = self._check_x(x)
        y = self._check_y(y, x.shape[0])
        return self.discriminator(self.to_model_space(x), y)

    def prob_real(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """The course's ``D(x) = Pr(real | x) = sigmoid(l(x))``, shape ``(n // pack,)``.

        Raises:
            ConfigError: the loss is ``wasserstein`` or ``hinge`` (its output is no logit).
        """
        if self.loss not in losses.PROBABILISTIC_LOSSES:
            raise ConfigError(
                f"Expected a minimax or nonsaturating GAN for D(x) = Pr(real | x), but found "
                f"loss={self.loss!r}, whose discriminator is a critic; use critic()."
            )
        return torch.sigmoid(self.critic(x, y))

    def _score_logs(self, real: Tensor, fake: Tensor) -> dict[str, float]:
        """Mean D(x) and D(G(z)) as probabilities, or mean critic scores."""
        if self.loss in losses.PROBABILISTIC_LOSSES:
            return {
                "d_real": torch.sigmoid(real).mean().item(),
                "d_fake": torch.sigmoid(fake).mean().item(),
            }
        return {"critic_real": real.mean().item(), "critic_fake": fake.mean().item()}

    def instance_noise_std(self) -> float:
        """Standard deviation of the instance noise now: ``instance_noise`` annealed linearly
        to 0 over ``instance_noise_steps`` generator updates."""
        done = min(1.0, self.generator_updates.item() / self.instance_noise_steps)
        return self.instance_noise * (1.0 - done)

    def _blur(self, v: Tensor) -> Tensor:
        """Add instance noise N(0, std^2) to the discriminator's inputs (model space)."""
        if self.instance_noise == 0:
            return v
        std = self.instance_noise_std()
        return v + std * torch.randn_like(v) if std > 0 else v

    def discriminator_loss(self, x: Tensor, y: Tensor | None) -> tuple[Tensor, dict[str, float]]:
        """One discriminator update's loss on a real batch ``x`` ``(b, *event_shape)``.

        ``-[E log D(x) + E log(1 - D(G(z)))]`` (or the Wasserstein, hinge or paired critic
        loss), plus the gradient penalty, R1 and R2 terms when their weights are positive.
        G(z) is computed without a graph: this objective moves only the discriminator.
        """
        real = self.to_model_space(x)
        with torch.no_grad():
            fake = self.generator(self.noise(x.shape[0]), y)
        # Inputs the R1 / R2 penalties differentiate through: one forward pass serves both.
        real = self._blur(real).detach().requires_grad_(self.r1_weight > 0)
        fake = self._blur(fake).detach().requires_grad_(self.r2_weight > 0)
        out_real = self.discriminator(real, y)
        out_fake = self.discriminator(fake, y)
        adversarial = losses.discriminator_loss(self.loss, out_real, out_fake)
        logs = {"d_loss": adversarial.item(), **self._score_logs(out_real, out_fake)}
        loss = adversarial
        if self.gp_weight > 0:
            gp = losses.gradient_penalty(
                lambda v: self.discriminator(v, y), real, fake, pack=self.pack
            )
            loss = loss + self.gp_weight * gp
            logs["gp"] = gp.item()
        for name, gamma, x_in, out in (("r1", self.r1_weight, real, out_real),
                                       ("r2", self.r2_weight, fake, out_fake)):
            if gamma > 0:
                penalty = losses.zero_centred_penalty(out, x_in, pack=self.pack)
                loss = loss + gamma * penalty
                logs[name] = penalty.item()
        return loss, logs

    def generator_loss(self, x: Tensor, y: Tensor | None) -> tuple[Tensor, dict[str, float]]:
        """One generator update's loss; ``x`` only sets the batch size (and ``y`` the labels).

        Minimax: ``E log(1 - D(G(z)))``; non-saturating: ``-E log D(G(z))``; Wasserstein and
        hinge: ``-E f(G(z))``; rpgan: ``E softplus(l(x_i) - l(G(z_i)))``, paired with the
        real batch ``x``.
        """
        fake = self.generator(self.noise(x.shape[0]), y)
        out_fake = self.discriminator(self._blur(fake), y)
        out_real = None
        if self.loss in losses.PAIRED_LOSSES:
            with torch.no_grad():  # the real side moves no generator parameter
                out_real = self.discriminator(self._blur(self.to_model_space(x)), y)
        loss = losses.generator_loss(self.loss, out_fake, out_real)
        logs = {"g_loss": loss.item()}
        if self.instance_noise > 0:
            logs["instance_noise"] = self.instance_noise_std()
            with torch.no_grad():
                self.generator_updates += 1
        if self.loss in losses.PROBABILISTIC_LOSSES:
            logs["d_fake_g"] = torch.sigmoid(out_fake).mean().item()
        return loss, logs

    def objectives(self) -> list[Objective]:
        """[discriminator (``d_repeats`` times), generator], each with its own optimizer."""
        return [
            Objective(
                "discriminator",
                self.discriminator_loss,
                list(self.discriminator.parameters()),
                lr=self.d_lr,
                betas=self.betas,
                repeats=self.d_repeats,
            ),
            Objective(
                "generator",
                self.generator_loss,
                list(self.generator.parameters()),
                lr=self.g_lr,
                betas=self.betas,
            ),
        ]

    def callbacks(self) -> list[Callback]:
        """Diagnostics: sample snapshots, D(x)/D(G(z)), mode coverage, warnings, report PNG."""
        from genlab.models.gan.callback import GANDiagnostics

        return [GANDiagnostics(every=self.diag_every)]

    @classmethod
    def figures(cls) -> dict[str, str]:
        """The GAN training report: losses, mean D(x) and D(G(z)), gradient norms and mode
        coverage against the step, and the sample snapshots of the diagnostics."""
        return {"training": "losses, mean D(x) and D(G(z)), gradient norms, mode coverage "
                            "and sample snapshots against the training step",
                "interpolation": "G along spherical paths between pairs of noise draws z: "
                                 "one strip per pair"}

    def plot(self, kind: str, run_dir: Path, out: Path) -> list[Path]:
        """Draw ``"interpolation"`` (:mod:`genlab.viz.interpolation`), or ``"training"``: the
        report of ``run_dir/metrics.jsonl`` into ``out`` and, if the run saved sample
        snapshots, a row of them into ``<out stem>-samples.png``.

        Returns:
            The paths written.

        Raises:
            DataError: the run has no readable ``metrics.jsonl``.
        """
        if kind == "interpolation":
            from genlab.viz.interpolation import ROWS, STEPS, plot_interpolation

            y = torch.arange(ROWS) % self.num_classes if self.conditional else None
            paths = self.interpolate_latent(ROWS, STEPS, y,
                                            generator=torch.Generator().manual_seed(0))
            data = None
            if self.event_shape == (2,):
                from genlab.runs import run_data

                data = run_data(run_dir, "test").x
            return [plot_interpolation(paths.cpu(), out, num_levels=self.num_levels, data=data)]
        if kind != "training":
            return super().plot(kind, run_dir, out)
        from genlab.viz.curves import read_metrics
        from genlab.viz.gan import plot_snapshots, plot_training_report

        run_dir, out = Path(run_dir), Path(out)
        written = [plot_training_report(read_metrics(run_dir / "metrics.jsonl"), out)]
        snapshots = sorted((run_dir / "samples").glob("step_*.png"))
        if snapshots:
            written.append(plot_snapshots(snapshots, out.with_name(f"{out.stem}-samples.png")))
        return written

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, loss={self.loss!r}, latent_size={self.latent_size}"
