"""``gan``: a GAN with multilayer-perceptron generator and discriminator, for vector data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from torch import Tensor

from genlab.models.gan.model import (
    DiscriminatorLR,
    DRepeats,
    GANModel,
    GeneratorLR,
    LatentSize,
    Pack,
)
from genlab.models.gan.networks import MLPGenerator, mlp_features
from genlab.recipes import Recipe
from genlab.registry import register
from genlab.settings import Annotated, Setting


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
        width: Units of each hidden layer of the generator and of the discriminator.
        depth: Hidden layers of each network (0: affine generator, linear discriminator).
        g_batchnorm: Batch normalisation in the generator's hidden layers.
        latent_size, pack, d_repeats, g_lr, d_lr: As in :class:`~genlab.models.gan.model.
            GANModel`, with defaults for low-dimensional mixtures: packs of 4 against mode
            collapse, and a discriminator that learns 10 times faster and takes 2 steps per
            generator step, so it resolves sharp modes early (two time-scale updates). With
            ``g_lr``/``d_lr`` set the trainer's ``lr`` is not used; pass ``g_lr=None,
            d_lr=None`` to use it.
        **kwargs: Other shared GAN settings: ``loss``, ``betas``, ``gp_weight``,
            ``r1_weight``, ``r2_weight``, ``spectral_norm``, ``minibatch_features``,
            ``instance_noise``, ``instance_noise_steps``, ``diag_every``.

    Example:
        >>> import torch
        >>> from genlab import create
        >>> model = create("gan", event_shape=(2,), width=32, depth=1)
        >>> model.sample(5, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([5, 2])
    """

    recipes: ClassVar[dict[str, Recipe]] = {
        "points": Recipe(
            # Relativistic pairing with R1 + R2, Adam without momentum (R3GAN's choices) and
            # a wider network: the sweep's best, ahead of the defaults on the grid and 8/8
            # on the ring in every seed.
            params={"loss": "rpgan", "r1_weight": 0.01, "r2_weight": 0.01,
                    "betas": (0.0, 0.99), "g_lr": 1e-3, "d_lr": 1e-3, "pack": 1,
                    "d_repeats": 1, "width": 256},
            train={"steps": 2000, "batch_size": 256, "lr": 2e-4, "keep": "last"},
            quick={"steps": 600},
            showcase=True,
            note="bench/bench_gan.py (sweep of configurations on 25gaussians; ring8 and "
                 "25gaussians mode coverage over three seeds)",
        ),
    }

    def __init__(
        self,
        *,
        event_shape: Sequence[int],
        num_classes: int | None = None,
        num_levels: int | None = None,
        width: Annotated[int, Setting(
            "units of each hidden layer of the generator and the discriminator", ge=1)] = 128,
        depth: Annotated[int, Setting(
            "hidden layers of each network (0: affine generator, linear discriminator)",
            ge=0)] = 3,
        g_batchnorm: Annotated[bool, Setting(
            "batch normalisation in the generator's hidden layers")] = False,
        latent_size: LatentSize = 8,
        pack: Pack = 4,
        d_repeats: DRepeats = 2,
        g_lr: GeneratorLR = 2e-4,
        d_lr: DiscriminatorLR = 2e-3,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            event_shape=event_shape,
            num_classes=num_classes,
            num_levels=num_levels,
            latent_size=latent_size,
            pack=pack,
            d_repeats=d_repeats,
            g_lr=g_lr,
            d_lr=d_lr,
            **kwargs,
        )
        hidden = (width,) * depth  # the same hidden layers in both networks
        self.generator = MLPGenerator(
            self.latent_size,
            self.event_shape,
            hidden,
            num_classes=num_classes,
            tanh=self.discrete,
            batchnorm=g_batchnorm,
        )
        features, out_features = mlp_features(self.event_dim * self.pack, hidden)
        self.discriminator = self._discriminator(features, out_features)
        self._register_data_stats(self.event_shape)

    def _data_stats(self, x: Tensor) -> tuple[Tensor, Tensor]:
        # Per-coordinate mean and standard deviation: z-scored data for both networks.
        return x.mean(0), x.std(0)

    @classmethod
    def tiny_configs(cls) -> list[dict[str, Any]]:
        """Small configurations covering every loss, stabiliser and conditioning."""
        small = {"width": 8, "depth": 1, "latent_size": 3, "pack": 1, "d_repeats": 1}
        return [
            {**small, "event_shape": (2,)},
            {**small, "event_shape": (2,), "loss": "minimax", "d_repeats": 2, "r1_weight": 1.0,
             "g_batchnorm": True},
            {**small, "event_shape": (2,), "loss": "wasserstein", "minibatch_features": 3,
             "pack": 2, "instance_noise": 0.5, "instance_noise_steps": 10},
            {**small, "event_shape": (2,), "loss": "rpgan", "pack": 2, "r1_weight": 0.1,
             "r2_weight": 0.2, "betas": (0.0, 0.99)},
            {**small, "event_shape": (1, 8, 8), "num_levels": 17, "num_classes": 3,
             "loss": "hinge", "spectral_norm": True},
        ]
