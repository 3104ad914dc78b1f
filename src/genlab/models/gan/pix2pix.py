r"""``pix2pix``: a conditional GAN from sketches, low-resolution or masked images and prompts.

The generator maps a condition ``y`` (image maps ``c`` and a vector ``v`` of label and pooled
text, :class:`~genlab.nn.condition_encoder.ConditionEncoder`) and noise to an image; the
discriminator judges (condition, image) pairs patch by patch. The two objectives are

.. math::

    \min_D\; -E_{x, y} \log D(y, x) - E_{y, z} \log(1 - D(y, G(y, z))),

    \min_G\; -E_{y, z} \log D(y, G(y, z)) + \lambda\, E_{x, y, z} \lVert x - G(y, z)\rVert_1,

the non-saturating GAN loss averaged over patches plus an L1 pull towards the paired image
(pix2pix's ``lambda = 100`` on images in [-1, 1]). The L1 term makes G follow its condition
closely but also pulls it towards one answer per condition: pix2pix is known to produce
little diversity. Its noise is the decoder's dropout (kept on when sampling) and a small
``z`` through FiLM; the benchmark reports the diversity that remains.

Each player has its own condition encoder (its own label embedding and text encoder), so
each optimizer owns every parameter its loss moves. Digits' levels are mapped to level
centres in (-1, 1), the generator ends in tanh, and samples are rounded back to levels, as
in the other GANs. There is no likelihood.

References:
    Isola, Zhu, Zhou, Efros, "Image-to-Image Translation with Conditional Adversarial
    Networks", CVPR 2017.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from genlab import rand
from genlab.base import GenerativeModel, Objective
from genlab.conditioning import CONDITION_KINDS
from genlab.data.transforms import from_symmetric, to_symmetric
from genlab.errors import ConfigError
from genlab.models.gan import losses
from genlab.models.gan.model import DiscriminatorLR, GeneratorLR, LatentSize
from genlab.models.gan.unet import PatchDiscriminator, UNetGenerator
from genlab.nn.condition_encoder import (
    ConditionEncoder,
    ConditionFeatures,
    ConditionSize,
    model_conditions,
)
from genlab.recipes import Recipe
from genlab.registry import register
from genlab.settings import Annotated, Setting


@register("pix2pix")
class Pix2Pix(GenerativeModel):
    """U-Net generator and PatchGAN discriminator on (condition, image) pairs.

    Arguments:
        event_shape: ``(c, h, w)``.
        num_classes: Labels (with the ``"label"`` condition, or alone).
        num_levels: Pixel levels (discrete images only).
        conditions: The conditions read: any of ``label, sketch, lowres, mask, prompt``.
        width: Channels of the full-resolution maps of both networks.
        latent_size: Size of the noise z given to every decoder stage through FiLM.
        dropout: Decoder dropout, on in training and sampling (pix2pix's noise).
        l1_weight: lambda, the weight of the L1 distance to the paired image.
        condition_size: Size of the condition vector.
        g_lr, d_lr: Learning rates of the generator and the discriminator.
        betas: Adam betas of both players.

    Example:
        >>> import torch
        >>> from genlab import create
        >>> model = create("pix2pix", event_shape=(1, 8, 8), num_levels=17, num_classes=10,
        ...                width=4)
        >>> model.sample(2, torch.tensor([3, 7])).shape
        torch.Size([2, 1, 8, 8])
    """

    has_exact_likelihood = False
    has_likelihood_bound = False
    supported_conditions: ClassVar[tuple[str, ...]] = CONDITION_KINDS

    recipes: ClassVar[dict[str, Recipe]] = {
        "images": Recipe(
            params={"width": 16, "latent_size": 8, "dropout": 0.5, "l1_weight": 100.0},
            train={"steps": 1000, "batch_size": 64, "keep": "last"},
            quick={"steps": 200},
            note="bench/bench_conditional.py (label accuracy, sketch IoU, diversity)",
        ),
    }

    def __init__(
        self,
        *,
        event_shape: Sequence[int],
        num_classes: int | None = None,
        num_levels: int | None = None,
        conditions: Sequence[str] | None = None,
        width: Annotated[int, Setting(
            "channels of the full-resolution maps of both networks, doubled per stage down",
            ge=1)] = 32,
        latent_size: LatentSize = 8,
        dropout: Annotated[float, Setting(
            "decoder dropout, on in training and sampling alike", ge=0, lt=1)] = 0.5,
        l1_weight: Annotated[float, Setting(
            "lambda: weight of the L1 distance to the paired image", ge=0)] = 100.0,
        condition_size: ConditionSize = 32,
        g_lr: GeneratorLR = 2e-4,
        d_lr: DiscriminatorLR = 2e-4,
        betas: Annotated[tuple[float, float], Setting(
            "Adam betas of both players", ge=0, lt=1)] = (0.5, 0.999),
    ) -> None:
        super().__init__(event_shape=event_shape, num_classes=num_classes,
                         num_levels=num_levels,
                         conditions=model_conditions(conditions, num_classes))
        if len(self.event_shape) != 3 or num_levels is None:
            raise ConfigError(f"Expected discrete images (c, h, w) with num_levels for "
                              f"Pix2Pix, but found event_shape={self.event_shape}, "
                              f"num_levels={num_levels}.")
        c, h, w = self.event_shape
        encoder = {"size": condition_size, "event_shape": self.event_shape,
                   "num_classes": num_classes, "num_levels": num_levels}
        self.g_condition = ConditionEncoder(self.conditions, **encoder)
        self.d_condition = ConditionEncoder(self.conditions, **encoder)
        maps, vector = self.g_condition.map_channels, self.g_condition.vector_size
        self.latent_size = latent_size
        self.generator = UNetGenerator(maps, c, h, w, width=width, vector_size=vector,
                                       latent_size=latent_size, dropout=dropout)
        self.discriminator = PatchDiscriminator(maps + c, h, w, width=width,
                                                vector_size=vector)
        self.l1_weight = float(l1_weight)
        self.g_lr, self.d_lr = g_lr, d_lr if d_lr is not None else g_lr
        self.betas = (float(betas[0]), float(betas[1]))

    # ------------------------------------------------------------------ generating
    def generate(self, y: Mapping[str, Any] | Tensor | None, n: int, *,
                 generator: torch.Generator | None = None) -> Tensor:
        """``G(y, z)`` in model space (-1, 1), shape ``(n, *event_shape)``; z and the
        dropout masks come from ``generator``."""
        cond = self.g_condition(y, n)
        z = rand.randn(n, self.latent_size, generator=generator, device=self.device,
                        dtype=self.dtype)
        _, h, w = self.event_shape
        return self.generator(cond.maps, cond.vector, z, size=(n, h, w), generator=generator)

    def _sample(self, n: int, y: Any, *, generator: torch.Generator | None = None) -> Tensor:
        """``G(y, z)`` rounded to levels; dropout stays on, as in pix2pix."""
        return from_symmetric(self.generate(y, n, generator=generator), self.num_levels)

    # ------------------------------------------------------------------ the two players
    def critic(self, x: Tensor, y: Mapping[str, Any] | Tensor | ConditionFeatures) -> Tensor:
        """Patch logits ``(n, P)`` of the discriminator on images ``x`` in model space."""
        if not isinstance(y, ConditionFeatures):
            y = self.d_condition(y, x.shape[0])
        return self.discriminator(y.maps, x, y.vector)

    def discriminator_loss(self, x: Tensor, y: Any) -> tuple[Tensor, dict[str, float]]:
        """``-E log D(y, x) - E log(1 - D(y, G(y, z)))`` over patches; G without a graph."""
        with torch.no_grad():
            fake = self.generate(y, x.shape[0])
        cond = self.d_condition(y, x.shape[0])  # once for both halves of the pair
        real_out = self.critic(to_symmetric(x, self.num_levels), cond)
        fake_out = self.critic(fake, cond)
        loss = losses.discriminator_loss("nonsaturating", real_out, fake_out)
        return loss, {"d_loss": loss.item(), "d_real": torch.sigmoid(real_out).mean().item(),
                      "d_fake": torch.sigmoid(fake_out).mean().item()}

    def generator_loss(self, x: Tensor, y: Any) -> tuple[Tensor, dict[str, float]]:
        """``-E log D(y, G(y, z)) + lambda E |x - G(y, z)|``, the L1 in model space."""
        fake = self.generate(y, x.shape[0])
        adversarial = losses.generator_loss("nonsaturating", self.critic(fake, y))
        l1 = (fake - to_symmetric(x, self.num_levels)).abs().mean()
        loss = adversarial + self.l1_weight * l1
        return loss, {"g_loss": adversarial.item(), "l1": l1.item()}

    def objectives(self) -> list[Objective]:
        """[discriminator, generator], each with its own optimizer and condition encoder."""
        return [
            Objective("discriminator", self.discriminator_loss,
                      [*self.discriminator.parameters(), *self.d_condition.parameters()],
                      lr=self.d_lr, betas=self.betas),
            Objective("generator", self.generator_loss,
                      [*self.generator.parameters(), *self.g_condition.parameters()],
                      lr=self.g_lr, betas=self.betas),
        ]

    @classmethod
    def tiny_configs(cls) -> list[dict[str, Any]]:
        """A label-only model and one reading a sketch and a prompt."""
        small = {"event_shape": (1, 8, 8), "num_levels": 17, "width": 4, "latent_size": 2,
                 "condition_size": 4}
        return [{**small, "num_classes": 3},
                {**small, "conditions": ("sketch", "prompt"), "dropout": 0.2}]

