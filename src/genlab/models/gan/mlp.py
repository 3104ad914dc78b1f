"""``gan``: a GAN with multilayer-perceptron generator and discriminator, for vector data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from torch import Tensor

from genlab.errors import ConfigError
from genlab.models.gan.layers import Discriminator
from genlab.models.gan.model import GANModel, check_widths
from genlab.models.gan.networks import MLPGenerator, mlp_features
from genlab.recipes import Recipe
from genlab.registry import register


@register("gan")
class GAN(GANModel):
    """GAN with MLP generator ``G(z, y)`` and discriminator ``D(x, y) = sigmoid(l(x, y))``.

    Any ``event_shape`` works (inputs are flattened); made for 2-D toy data and small vectors.
    See :class:`~genlab.models.gan.model.GANModel` for the losses, stabilisers and training.

    Arguments:
        event_shape: Shape of one sample, e.g. ``(2,)``.
        num_classes: Number of labels for a class-conditional GAN (label embedding in G,
            projection in D); None for an unconditional one.
        num_levels: Number of levels for integer data; None for continuous data.
        g_hidden: Hidden widths of the generator.
        d_hidden: Hidden widths of the discriminator (empty: a linear discriminator).
        g_batchnorm: Batch normalisation in the generator's hidden layers.
        latent_dim, pack, d_steps, g_lr, d_lr: As in :class:`~genlab.models.gan.model.
            GANModel`, with defaults for low-dimensional mixtures: packs of 4 against mode
            collapse, and a discriminator that learns 10 times faster and takes 2 steps per
            generator step, so it resolves sharp modes early (two time-scale updates). With
            ``g_lr``/``d_lr`` set the trainer's ``lr`` is not used; pass ``g_lr=None,
            d_lr=None`` to use it.
        **kwargs: Other shared GAN settings: ``loss``, ``betas``, ``gp_weight``,
            ``r1_weight``, ``spectral_norm``, ``minibatch_features``, ``instance_noise``,
            ``instance_noise_steps``, ``diag_every``.

    Example:
        >>> import torch
        >>> from genlab import create
        >>> model = create("gan", event_shape=(2,), g_hidden=(32,), d_hidden=(32,))
        >>> model.sample(5, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([5, 2])
    """

    recipes: ClassVar[dict[str, Recipe]] = {
        "points": Recipe(
            train={"steps": 2000, "batch_size": 256, "lr": 2e-4, "keep": "last"},
            quick={"steps": 600},
            note="bench/bench_gan.py (ring8 and 25gaussians mode coverage)",
        ),
    }

    def __init__(
        self,
        *,
        event_shape: Sequence[int],
        num_classes: int | None = None,
        num_levels: int | None = None,
        g_hidden: Sequence[int] = (128, 128, 128),
        d_hidden: Sequence[int] = (128, 128, 128),
        g_batchnorm: bool = False,
        latent_dim: int = 8,
        pack: int = 4,
        d_steps: int = 2,
        g_lr: float | None = 2e-4,
        d_lr: float | None = 2e-3,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            event_shape=event_shape,
            num_classes=num_classes,
            num_levels=num_levels,
            latent_dim=latent_dim,
            pack=pack,
            d_steps=d_steps,
            g_lr=g_lr,
            d_lr=d_lr,
            **kwargs,
        )
        g_hidden = check_widths("g_hidden", g_hidden)
        d_hidden = check_widths("d_hidden", d_hidden)
        if not isinstance(g_batchnorm, bool):
            raise ConfigError(f"Expected g_batchnorm to be a bool, but found {g_batchnorm!r}.")
        self.generator = MLPGenerator(
            self.latent_dim,
            self.event_shape,
            g_hidden,
            num_classes=num_classes,
            tanh=self.discrete,
            batchnorm=g_batchnorm,
        )
        features, width = mlp_features(self.event_dim * self.pack, d_hidden)
        self.discriminator = Discriminator(
            features,
            width,
            num_classes=num_classes,
            pack=self.pack,
            minibatch_features=self.minibatch_features,
            spectral_norm=self.use_spectral_norm,
        )
        self._register_data_stats(self.event_shape)

    def _data_stats(self, x: Tensor) -> tuple[Tensor, Tensor]:
        # Per-coordinate mean and standard deviation: z-scored data for both networks.
        return x.mean(0), x.std(0)

    @classmethod
    def tiny_configs(cls) -> list[dict[str, Any]]:
        """Small configurations covering every loss, stabiliser and conditioning."""
        small = {"g_hidden": (8,), "d_hidden": (8,), "latent_dim": 3, "pack": 1, "d_steps": 1}
        return [
            {**small, "event_shape": (2,)},
            {**small, "event_shape": (2,), "loss": "minimax", "d_steps": 2, "r1_weight": 1.0,
             "g_batchnorm": True},
            {**small, "event_shape": (2,), "loss": "wasserstein", "minibatch_features": 3,
             "pack": 2, "instance_noise": 0.5, "instance_noise_steps": 10},
            {**small, "event_shape": (1, 8, 8), "num_levels": 17, "num_classes": 3,
             "loss": "hinge", "spectral_norm": True},
        ]
