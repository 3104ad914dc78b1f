r"""``cond_realnvp``: a RealNVP flow of p(x | y) whose coupling nets also read the condition.

Each affine coupling (checkerboard masks, alternating) computes its scale and shift from the
kept pixels **and** the condition:

.. math::
    x_B = z_B \odot \exp(s(z_A, y)) + t(z_A, y),

where the condition enters every conditioner as extra input channels: conditioning maps
``m(y)`` ``(n, F, h, w)`` of the image conditions (an unmasked net shared by all couplings,
:class:`~genlab.nn.condition_encoder.ConditionMaps`) stacked with the condition vector
(label embedding plus pooled text, :class:`~genlab.nn.condition_encoder.ConditionEncoder`)
broadcast over the pixels. With
``y`` held fixed each coupling is still triangular in ``x``, so

.. math::
    \log p(x \mid y) = \log \pi(f_y^{-1}(x)) + \log\left|\det
        \frac{\partial f_y^{-1}}{\partial x}\right|

is exact, and for digits' levels the uniform-dequantization bound of
:class:`~genlab.models.flows.flow.Flow` gives conditional bits/dim.

References:
    Dinh, Sohl-Dickstein, Bengio, "Density estimation using Real NVP", 2017; Winkler et al.,
    "Learning Likelihoods with Conditional Normalizing Flows", 2019.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from genlab.conditioning import CONDITION_KINDS
from genlab.errors import ConfigError
from genlab.models.flows import common
from genlab.models.flows.coupling import MaskedAffineCoupling, checkerboard_mask
from genlab.models.flows.flow import Flow
from genlab.nn.condition_encoder import (
    ConditionEncoder,
    ConditionMaps,
    ConditionSize,
    model_conditions,
)
from genlab.recipes import Recipe
from genlab.registry import register
from genlab.settings import Annotated, Setting


@register("cond_realnvp")
class ConditionalRealNVP(Flow):
    r"""Checkerboard affine couplings whose conv nets read ``[x_A, m(y), v(y)]``.

    Arguments:
        event_shape: ``(c, h, w)``.
        num_classes: Labels (with the ``"label"`` condition, or alone).
        num_levels: Levels of discrete data (dequantization + logit preprocessing).
        conditions: Any of ``label, sketch, lowres, mask, prompt``.
        transforms: Number of coupling layers.
        width: Channels of every conditioner and of the condition net ``m``.
        depth: Hidden layers of every conditioner.
        activation: Activation of the conditioners.
        scale_bound: Bound of the soft-clamped log-scale ``s``.
        condition_size: Size of the condition vector.
        alpha: Logit margin for discrete data.

    Example:
        >>> import torch
        >>> from genlab import create
        >>> flow = create("cond_realnvp", event_shape=(1, 4, 4), num_classes=2, transforms=2,
        ...               width=4, depth=1)
        >>> flow.log_prob(torch.rand(3, 1, 4, 4), torch.tensor([0, 1, 1])).shape
        torch.Size([3])
    """

    supported_conditions: ClassVar[tuple[str, ...]] = CONDITION_KINDS

    recipes: ClassVar[dict[str, Recipe]] = {
        "images": Recipe(
            params={"transforms": 6, "width": 32, "depth": 2},
            train={"steps": 800, "batch_size": 64, "lr": 1e-3, "patience": 5},
            quick={"steps": 150},
            note="bench/bench_conditional.py (conditional bits/dim, obedience)",
        ),
    }

    def __init__(
        self,
        *,
        event_shape: Sequence[int],
        num_classes: int | None = None,
        num_levels: int | None = None,
        conditions: Sequence[str] | None = None,
        transforms: Annotated[int, Setting("number of affine coupling layers", ge=1)] = 8,
        width: Annotated[int, Setting(
            "channels of every conditioner and of the condition net", ge=1)] = 64,
        depth: common.Depth = 2,
        activation: common.Activation = "relu",
        scale_bound: common.ScaleBound = 3.0,
        condition_size: ConditionSize = 32,
        alpha: common.Alpha = 0.05,
    ) -> None:
        shape = tuple(int(s) for s in event_shape)
        if len(shape) != 3:
            raise ConfigError(f"Expected event_shape (c, h, w) for ConditionalRealNVP, but "
                              f"found {shape}.")
        kinds = model_conditions(conditions, num_classes)
        encoder = ConditionEncoder(kinds, size=condition_size, event_shape=shape,
                                   num_classes=num_classes, num_levels=num_levels)
        maps = width if encoder.map_channels else 0
        net = {"width": width, "depth": depth, "context_dim": maps + encoder.vector_size,
               "activation": activation, "scale_bound": scale_bound}
        from_data = [MaskedAffineCoupling(checkerboard_mask(shape, i % 2), **net)
                     for i in range(transforms)]
        # The parent's label machinery (one-hot context, class bases) stays off: the label
        # is one of the conditions the encoder reads (context() is replaced below).
        super().__init__(event_shape=shape, bijections=from_data[::-1], num_classes=num_classes,
                         num_levels=num_levels, alpha=alpha, conditions=kinds)
        self.condition = encoder
        # m(y): an unmasked net over the image conditions, shared by every coupling.
        self.condition_net = (ConditionMaps(encoder.map_channels, width, shape[1:]) if maps
                              else None)

    def context(self, y: Mapping[str, Any] | Tensor | None) -> Tensor | None:
        """The condition as conditioner input channels ``(n, F + d, h, w)``; None for p(x)."""
        if not self.conditions:
            return None
        features = self.condition(y)
        _, h, w = self.event_shape
        parts = []
        if self.condition_net is not None:
            parts.append(self.condition_net(features.maps))  # (n, F, h, w)
        if features.vector is not None:
            v = features.vector
            parts.append(v[:, :, None, None].expand(*v.shape, h, w))  # (n, d, h, w)
        return torch.cat(parts, dim=1)

    @classmethod
    def tiny_configs(cls) -> list[dict[str, Any]]:
        small = {"transforms": 2, "width": 4, "depth": 1, "condition_size": 4}
        return [
            {**small, "event_shape": (1, 8, 8), "num_levels": 17, "num_classes": 3},
            {**small, "event_shape": (1, 8, 8), "num_levels": 17,
             "conditions": ("sketch", "prompt")},
            {**small, "event_shape": (2, 4, 4), "num_classes": 3},
        ]
