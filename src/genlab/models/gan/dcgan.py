"""``dcgan``: a deep convolutional GAN for images ``(c, h, w)``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from torch import Tensor

from genlab.errors import ConfigError
from genlab.models.gan.conv import DCGANGenerator, cnn_features
from genlab.models.gan.model import (
    DiscriminatorLR,
    GANModel,
    GeneratorLR,
    LatentSize,
    MinibatchFeatures,
)
from genlab.recipes import Recipe
from genlab.registry import register
from genlab.settings import Annotated, Setting


@register("dcgan")
class DCGAN(GANModel):
    """DCGAN: transposed-convolution generator, convolutional discriminator.

    The generator lifts z to a small feature map and doubles its resolution per stage (batch
    norm, ReLU, tanh output in (-1, 1)); the discriminator mirrors it with stride-2
    convolutions and leaky ReLUs. Works for digits (1, 8, 8), MNIST-like (1, 28, 28) and
    CIFAR-like (3, 32, 32) shapes. Discrete pixels are mapped to level centres in (-1, 1);
    continuous images to [-1, 1] per channel with the training data's range.

    Arguments:
        event_shape: ``(c, h, w)``.
        num_classes: Number of labels for a class-conditional model (label embedding in G,
            projection in D); None for an unconditional one.
        num_levels: Number of pixel levels (17 for digits, 256 for 8-bit images), or None.
        width: Channels of the full-resolution feature maps (doubled per stage down).
        latent_size, g_lr, d_lr: As in :class:`~genlab.models.gan.model.GANModel`; the DCGAN
            paper's learning rate 2e-4 for both players (with Adam betas (0.5, 0.999)). Pass
            ``g_lr=None, d_lr=None`` to use the trainer's ``lr``.
        minibatch_features: Minibatch-discrimination features in the discriminator; on by
            default because an unconditional DCGAN on digits otherwise collapses to one image
            within a thousand steps (Frechet distance to the test digits 18 with, 86 with
            pack=2, collapse without; 1,200 steps, width 16).
        **kwargs: Shared GAN settings (see :class:`~genlab.models.gan.model.GANModel`).

    Example:
        >>> import torch
        >>> from genlab import create
        >>> model = create("dcgan", event_shape=(1, 8, 8), num_levels=17, width=4)
        >>> model.sample(2, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([2, 1, 8, 8])
    """

    recipes: ClassVar[dict[str, Recipe]] = {
        "images": Recipe(
            params={"width": 16},
            train={"steps": 800, "batch_size": 64, "lr": 2e-4, "keep": "last"},
            quick={"steps": 200},
            showcase=True,
            note="bench/bench_gan.py (digits Frechet distance, class accuracy)",
        ),
    }

    def __init__(
        self,
        *,
        event_shape: Sequence[int],
        num_classes: int | None = None,
        num_levels: int | None = None,
        width: Annotated[int, Setting(
            "channels of the full-resolution feature maps, doubled per stage down",
            ge=1)] = 32,
        latent_size: LatentSize = 32,
        g_lr: GeneratorLR = 2e-4,
        d_lr: DiscriminatorLR = 2e-4,
        minibatch_features: MinibatchFeatures = 8,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            event_shape=event_shape,
            num_classes=num_classes,
            num_levels=num_levels,
            latent_size=latent_size,
            g_lr=g_lr,
            d_lr=d_lr,
            minibatch_features=minibatch_features,
            **kwargs,
        )
        if len(self.event_shape) != 3:
            raise ConfigError(
                f"Expected event_shape (c, h, w) for DCGAN, but found {self.event_shape}; "
                "use the 'gan' model for vectors."
            )
        c, h, w = self.event_shape
        self.generator = DCGANGenerator(
            self.latent_size, self.event_shape, width, num_classes=num_classes
        )
        features, out_features = cnn_features(c * self.pack, h, w, width)
        self.discriminator = self._discriminator(features, out_features)
        self._register_data_stats((c, 1, 1))

    def _data_stats(self, x: Tensor) -> tuple[Tensor, Tensor]:
        # Per-channel centre and half-range: the data fill [-1, 1], the range of tanh.
        lo = x.amin(dim=(0, 2, 3)).reshape(-1, 1, 1)  # (c, 1, 1)
        hi = x.amax(dim=(0, 2, 3)).reshape(-1, 1, 1)
        return (hi + lo) / 2, (hi - lo) / 2

    @classmethod
    def tiny_configs(cls) -> list[dict[str, Any]]:
        """Small configurations: discrete digits, conditional, continuous RGB with stabilisers."""
        small = {"width": 2, "latent_size": 4}
        return [
            {**small, "event_shape": (1, 8, 8), "num_levels": 17},
            {**small, "event_shape": (1, 8, 8), "num_levels": 17, "num_classes": 3, "pack": 2},
            {**small, "event_shape": (3, 4, 4), "loss": "wasserstein", "spectral_norm": True,
             "minibatch_features": 2, "r1_weight": 0.1},
        ]
