r"""``vae``: the variational autoencoder (Kingma & Welling 2014; Rezende et al. 2014).

A latent code :math:`z \sim p(z) = N(0, I)` of ``latent_size`` numbers is decoded into
:math:`p_\theta(x \mid z)`; the encoder gives a Gaussian posterior guess
:math:`q_\phi(z \mid x) = N(\mu_\phi(x), \mathrm{diag}\,\sigma_\phi^2(x))`. The marginal
:math:`p(x) = \int p(x \mid z) p(z) dz` has no closed form; training maximises the evidence
lower bound

.. math::

    \log p(x) \ge \mathrm{ELBO}(x) = E_{q(z|x)}[\log p(x \mid z)] - KL(q(z \mid x) \| p(z)),

with :math:`z = \mu + \sigma \odot \epsilon`, :math:`\epsilon \sim N(0, I)` (the
reparameterisation trick: one sample, a gradient through :math:`\mu` and :math:`\sigma`) and
the KL in closed form. The gap is :math:`KL(q(z|x) \| p(z|x))`. The importance-weighted
bound with K samples (Burda et al. 2016)

.. math::

    \mathcal{L}_K(x) = E\left[\log \frac{1}{K} \sum_k \frac{p(x, z_k)}{q(z_k \mid x)}\right],
    \quad z_k \sim q(z \mid x),

equals the ELBO at K = 1, never decreases with K and tends to :math:`\log p(x)`
(:meth:`VAE.iwae_bound`). With ``num_classes`` set, the label's embedding enters the encoder
and the decoder: :math:`q(z \mid x, y)`, :math:`p(x \mid z, y)` (Sohn et al. 2015).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from genlab import rand
from genlab.base import GenerativeModel
from genlab.checks import check_int
from genlab.errors import ConfigError
from genlab.models.vae import likelihoods
from genlab.models.vae.networks import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder
from genlab.recipes import Recipe
from genlab.registry import register
from genlab.settings import Annotated, Setting

#: Seed of the evaluation noise: log_prob_bound of the same x is the same number each call.
BOUND_SEED = 0
#: Rows (samples x data) per decoder call of the importance-weighted bound.
IWAE_ROWS = 8192
#: The posterior log-variance is kept in [-LOG_VAR_MAX, LOG_VAR_MAX] (no exploding exp).
LOG_VAR_MAX = 12.0


@register("vae")
class VAE(GenerativeModel):
    """Variational autoencoder with a Gaussian encoder and a decoder matched to the data.

    Arguments:
        event_shape: Shape of one sample: ``(d,)`` vectors or ``(c, h, w)`` images.
        num_classes: Labels of a conditional VAE (the label's embedding enters the encoder
            and the decoder); None for an unconditional one.
        num_levels: Levels of discrete data (17 for digits, 2 for binary data), or None.
        latent_size: Size of z.
        width: Units of each hidden layer (MLP) or channels of the first convolution (conv,
            doubled per stride-2 stage).
        depth: Hidden layers of the MLP encoder and decoder, or stride-2 stages of the conv.
        network: ``mlp``, ``conv``, or ``auto`` (conv for ``(c, h, w)`` images, else MLP).
        likelihood: ``p(x | z)``: ``gaussian`` (continuous data), ``bernoulli`` (two levels),
            ``categorical`` or ``logistic`` (discretised logistic) over levels, or ``auto``
            (gaussian, bernoulli for 2 levels, categorical otherwise).
        condition_size: Size of the label embedding of a conditional VAE.

    Example:
        >>> import torch
        >>> from genlab import create
        >>> model = create("vae", event_shape=(1, 8, 8), num_levels=17, width=8, depth=1)
        >>> x = torch.randint(0, 17, (4, 1, 8, 8)).float()
        >>> model.log_prob_bound(x).shape, model.encode(x).shape
        (torch.Size([4]), torch.Size([4, 16]))
    """

    has_exact_likelihood: ClassVar[bool] = False
    has_likelihood_bound: ClassVar[bool] = True
    has_encoder: ClassVar[bool] = True
    #: A Gaussian posterior, a N(0, I) prior and a discrete decoder: bits-back coding
    #: (:mod:`genlab.compress.bitsback`) when ``num_levels`` is set.
    has_posterior: ClassVar[bool] = True

    recipes: ClassVar[dict[str, Recipe]] = {
        "points": Recipe(
            params={"latent_size": 2, "width": 128, "depth": 2},
            train={"steps": 3000, "batch_size": 256, "lr": 2e-3, "patience": 10},
            quick={"steps": 600},
            showcase=True,
            note="bench/bench_vae.py (moons ELBO)",
        ),
        "images": Recipe(
            # On digits the MLPs overfit within 1,000 steps (width 256, depth 2: val 2.13
            # bits/dim at its best step, 2.7 by step 2,200; width 128, one layer: test ELBO
            # 2.128), while the small conv network of two stride-2 stages still improved at
            # 3,000 steps (val 1.94).
            params={"latent_size": 16, "width": 16, "depth": 2, "network": "conv"},
            train={"steps": 3000, "batch_size": 128, "lr": 1e-3, "val_every": 100,
                   "patience": 6},
            quick={"steps": 500},
            showcase=True,
            note="bench/bench_vae.py (digits ELBO, IWAE, bits-back rate); width and depth "
            "tried on the validation split",
        ),
    }

    def __init__(
        self,
        *,
        event_shape: Sequence[int],
        num_classes: int | None = None,
        num_levels: int | None = None,
        latent_size: Annotated[int, Setting("size of the latent code z", ge=1)] = 16,
        width: Annotated[int, Setting(
            "units of each hidden layer (mlp) or channels of the first convolution (conv)",
            ge=1)] = 256,
        depth: Annotated[int, Setting(
            "hidden layers (mlp) or stride-2 stages (conv) of encoder and decoder", ge=0)] = 2,
        network: Annotated[str, Setting(
            "encoder and decoder: mlp, conv, or auto (conv for (c, h, w) images)",
            choices=("auto", "mlp", "conv"))] = "auto",
        likelihood: Annotated[str, Setting(
            "p(x | z): gaussian, bernoulli, categorical, logistic (discretised), or auto",
            choices=("auto", *likelihoods.LIKELIHOODS))] = "auto",
        condition_size: Annotated[int, Setting(
            "size of the label embedding (conditional VAE)", ge=1)] = 16,
    ) -> None:
        super().__init__(event_shape=event_shape, num_classes=num_classes, num_levels=num_levels)
        if likelihood == "auto":
            likelihood = ("gaussian" if num_levels is None
                          else "bernoulli" if num_levels == 2 else "categorical")
        if (likelihood == "gaussian") != (num_levels is None):
            raise ConfigError(
                "Expected likelihood 'gaussian' for continuous data and a discrete one "
                f"(bernoulli, categorical, logistic) for num_levels set, but found "
                f"likelihood={likelihood!r} with num_levels={num_levels}."
            )
        if likelihood == "bernoulli" and num_levels != 2:
            raise ConfigError(
                f"Expected num_levels=2 for the bernoulli likelihood, but found {num_levels}."
            )
        if network == "auto":
            network = "conv" if len(self.event_shape) == 3 else "mlp"
        self.likelihood, self.network, self.latent_size = likelihood, network, latent_size
        condition = condition_size if num_classes is not None else 0
        self.embed = nn.Embedding(num_classes, condition_size) if num_classes else None
        encoder, decoder = (ConvEncoder, ConvDecoder) if network == "conv" else (
            MLPEncoder, MLPDecoder)
        self.encoder = encoder(self.event_shape, latent_size, width=width, depth=depth,
                               condition_size=condition)
        params = likelihoods.num_params(likelihood, num_levels)
        self.decoder = decoder(self.event_shape, latent_size, params, width=width, depth=depth,
                               condition_size=condition)
        # The Gaussian decoder's noise scale (in standardised units), one per dimension.
        self.log_sigma = (nn.Parameter(torch.zeros(self.event_shape))
                          if likelihood == "gaussian" else None)
        # Standardisation of continuous data, from the training data (initialize).
        self.register_buffer("shift", torch.zeros(self.event_shape))
        self.register_buffer("scale", torch.ones(self.event_shape))

    # ------------------------------------------------------------------ networks
    @torch.no_grad()
    def initialize(self, data) -> None:
        """Standardise continuous data per dimension with the training set's statistics."""
        if self.discrete:
            return
        x = data.x.to(device=self.device, dtype=self.dtype)
        self.shift.copy_(x.mean(0))
        self.scale.copy_(x.std(0).clamp_min(1e-6) if len(x) > 1 else torch.ones_like(x[0]))

    def _condition(self, y: Tensor | None) -> Tensor | None:
        return None if self.embed is None else self.embed(y)  # (n, condition_size)

    def _standardise(self, x: Tensor) -> Tensor:
        """Data -> what the networks see: levels to [-1, 1], continuous data standardised."""
        if self.discrete:
            return x * (2.0 / (self.num_levels - 1)) - 1.0
        return (x - self.shift) / self.scale

    def posterior(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """q(z | x, y) = N(mean, std^2) of validated ``x`` ``(n, *event_shape)``: the mean and
        standard deviation, ``(n, latent_size)`` each."""
        mean, log_var = self.encoder(self._standardise(x), self._condition(y))
        return mean, torch.exp(0.5 * log_var.clamp(-LOG_VAR_MAX, LOG_VAR_MAX))

    def decoder_params(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """The likelihood's parameters ``(n, P, *event_shape)`` for latents ``z``
        ``(n, latent_size)``."""
        return self.decoder(z, self._condition(y))

    def decoder_probs(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """p(x_d = l | z, y) for discrete data: ``(n, D, num_levels)`` probability tables."""
        return likelihoods.probs(self.likelihood, self.decoder_params(z, y), self.num_levels)

    def _reconstruction(self, params: Tensor, x: Tensor) -> Tensor:
        """``log p(x | z)`` ``(n,)`` in data units (a log mass for discrete data)."""
        if self.discrete:
            return likelihoods.log_prob(self.likelihood, params, x, self.num_levels)
        # density of the standardised data, times the Jacobian of the standardisation
        log_p = likelihoods.log_prob("gaussian", params, self._standardise(x), None,
                                     self.log_sigma)
        return log_p - torch.log(self.scale).sum()

    # ------------------------------------------------------------------ bounds
    def elbo(self, x: Tensor, y: Tensor | None = None, *,
             generator: torch.Generator | None = None) -> Tensor:
        """One-sample ELBO of validated ``x`` ``(n, *event_shape)``: ``(n,)`` nats, the
        reconstruction term at ``z = mean + std * eps`` and the KL in closed form."""
        mean, std = self.posterior(x, y)
        eps = rand.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        z = mean + std * eps  # (n, latent_size), differentiable in mean and std
        reconstruction = self._reconstruction(self.decoder_params(z, y), x)
        # KL(N(mean, std^2) || N(0, 1)), summed over the latent dimensions
        kl = 0.5 * (mean**2 + std**2 - 1.0 - 2.0 * torch.log(std)).sum(1)
        return reconstruction - kl

    def _log_prob_bound(self, x: Tensor, y: Tensor | None) -> Tensor:
        # Training draws from the global generator (seeded by the trainer); evaluation uses a
        # fixed seed, so the same x always gets the same bound.
        generator = None
        if not self.training:
            generator = torch.Generator(device=x.device).manual_seed(BOUND_SEED)
        return self.elbo(x, y, generator=generator)

    def iwae_bound(self, x: Tensor | np.ndarray, y: Tensor | np.ndarray | int | None = None,
                   *, k: int = 100, generator: torch.Generator | None = None) -> Tensor:
        """The importance-weighted bound L_K, in nats, one per sample.

        ``log (1/K) sum_k p(x, z_k) / q(z_k | x)`` with ``z_k ~ q(z | x)``: a lower bound on
        ``log p(x)`` in expectation that grows with K (K = 1 is the ELBO with a sampled KL).

        Arguments:
            x: Data ``(*batch, *event_shape)``.
            y: Labels (conditional VAE).
            k: Number of importance samples K.
            generator: Source of the samples.

        Returns:
            Tensor of shape ``batch``.
        """
        k = check_int("k", k, ge=1)
        x, batch_shape = self._check_x(x)
        y = self._check_y(y, x.shape[0])
        n = x.shape[0]
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                mean, std = self.posterior(x, y)
                chunk = max(1, IWAE_ROWS // n)
                log_w = []
                for start in range(0, k, chunk):
                    m = min(chunk, k - start)
                    eps = rand.randn((m, *mean.shape), generator=generator,
                                      device=mean.device, dtype=mean.dtype)
                    z = mean + std * eps  # (m, n, latent_size)
                    ys = None if y is None else y.repeat(m)  # (m * n,)
                    params = self.decoder_params(z.reshape(m * n, -1), ys)
                    log_px = self._reconstruction(params, x.repeat(m, *[1] * (x.dim() - 1))
                                                  ).reshape(m, n)
                    log_pz = (-0.5 * z**2 - 0.5 * math.log(2 * math.pi)).sum(-1)
                    log_qz = (-0.5 * eps**2 - torch.log(std) - 0.5 * math.log(2 * math.pi)
                              ).sum(-1)
                    log_w.append(log_px + log_pz - log_qz)  # (m, n)
                bound = torch.logsumexp(torch.cat(log_w), dim=0) - math.log(k)
        finally:
            self.train(was_training)
        return bound.reshape(batch_shape)

    # ------------------------------------------------------------------ sampling, encoding
    def decode(self, z: Tensor, y: Tensor | None = None, *, mode: bool = True,
               generator: torch.Generator | None = None) -> Tensor:
        """Data ``(n, *event_shape)`` for latents ``z`` ``(n, latent_size)``: a draw from
        p(x | z, y), or with ``mode`` its most likely value (levels) or mean (continuous)."""
        x = likelihoods.sample(self.likelihood, self.decoder_params(z, y), self.num_levels,
                               self.log_sigma, mode=mode, generator=generator)
        return x if self.discrete else x * self.scale + self.shift

    def _sample(self, n: int, y: Tensor | None, *, generator: torch.Generator | None = None,
                temperature: Annotated[float, Setting(
                    "scale of the prior noise z ~ N(0, temperature^2 I)", gt=0)] = 1.0,
                mode: Annotated[bool, Setting(
                    "decode to the most likely x given z (the mean for continuous data) "
                    "instead of a draw from p(x | z)")] = False) -> Tensor:
        z = temperature * rand.randn(n, self.latent_size, generator=generator,
                                      device=self.device, dtype=self.dtype)
        return self.decode(z, y, mode=mode, generator=generator)

    def _encode(self, x: Tensor, y: Tensor | None) -> Tensor:
        """The posterior mean E[z | x] ``(n, latent_size)``."""
        return self.posterior(x, y)[0]

    def interpolate(self, x0: Tensor, x1: Tensor, steps: int = 8,
                    y: Tensor | int | None = None) -> Tensor:
        """Decoded straight lines between the posterior means of ``x0`` and ``x1``
        ``(n, *event_shape)``: each point of the path is the decoder's most likely value
        (its mean for continuous data).

        Returns:
            Shape ``(n, steps, *event_shape)``.
        """
        from genlab.viz.interpolation import lerp

        n = self._check_x(x0)[0].shape[0]
        y = self._check_y(y, n)
        z0, z1 = self.encode(x0, y), self.encode(x1, y)  # (n, latent_size) each
        path = lerp(z0, z1, steps)  # (n, steps, latent_size)
        rows = torch.arange(n, device=self.device).repeat_interleave(steps)  # path i keeps y_i
        labels = None if y is None else y[rows]
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                x = self.decode(path.reshape(n * steps, -1), labels)
        finally:
            self.train(was_training)
        return x.reshape(n, steps, *self.event_shape)

    # ------------------------------------------------------------------ pictures
    @classmethod
    def figures(cls) -> dict[str, str]:
        return {
            "manifold": "the decoded grid of the first two latent dimensions at the prior's "
            "quantiles (the others at 0)",
            "interpolation": "decoded straight lines between the posterior means of test "
            "pairs",
            "reconstructions": "test inputs beside their reconstructions from the posterior "
            "mean",
        }

    def plot(self, kind: str, run_dir: Path, out: Path) -> list[Path]:
        """Draw ``manifold``, ``interpolation`` or ``reconstructions`` (:mod:`genlab.viz.vae`)
        of the run in ``run_dir``."""
        from genlab.viz import vae as drawings
        from genlab.viz.interpolation import plot_data_interpolation

        drawers = {"manifold": drawings.plot_manifold,
                   "interpolation": plot_data_interpolation,
                   "reconstructions": drawings.plot_reconstructions}
        if kind not in drawers:
            return super().plot(kind, run_dir, out)
        return [drawers[kind](self, run_dir, out)]

    @classmethod
    def tiny_configs(cls) -> list[dict]:
        return [
            {"event_shape": (2,), "latent_size": 2, "width": 8, "depth": 1},
            {"event_shape": (1, 4, 4), "num_levels": 5, "width": 4, "depth": 1,
             "latent_size": 3, "network": "conv"},
            {"event_shape": (6,), "num_levels": 4, "likelihood": "logistic", "width": 8,
             "depth": 1, "latent_size": 2, "num_classes": 3},
            {"event_shape": (5,), "num_levels": 2, "width": 8, "depth": 0, "latent_size": 2},
        ]

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, latent_size={self.latent_size}, "
                f"network={self.network}, likelihood={self.likelihood}")
