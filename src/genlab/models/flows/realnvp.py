r"""RealNVP (Dinh, Sohl-Dickstein, Bengio, 2017): a stack of affine coupling layers.

Vectors: couplings with alternating (or random, complementary in pairs) masks, optionally
each preceded by ActNorm. Images ``(c, h, w)``: half of the couplings use checkerboard masks
on the image, then the image is squeezed to ``(4c, h/2, w/2)`` and the other half use
channel masks (the paper's one-scale block); conv nets compute ``s`` and ``t``.
Other event shapes are flattened to vectors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Any, ClassVar

import torch

from genlab.models.flows import common
from genlab.models.flows.bijections import Bijection, Inverse
from genlab.models.flows.coupling import (
    AffineCoupling,
    MaskedAffineCoupling,
    channel_mask,
    checkerboard_mask,
)
from genlab.models.flows.flow import Flow
from genlab.models.flows.normalization import ActNorm
from genlab.models.flows.reshape import Squeeze
from genlab.recipes import Recipe
from genlab.registry import register
from genlab.settings import Annotated, Setting


@register("realnvp")
class RealNVP(Flow):
    r"""RealNVP flow of affine couplings :math:`x_B = z_B \odot e^{s(z_A)} + t(z_A)`.

    Arguments:
        event_shape: ``(D,)`` for vectors, ``(c, h, w)`` for images.
        num_classes: Classes for p(x | y); the label reaches ``s`` and ``t`` in every layer.
        num_levels: Levels of discrete data (dequantization + logit preprocessing).
        transforms: Number of coupling layers.
        width: Units of each hidden layer of every conditioner (MLP for vectors; channels of
            the conv net for images).
        depth: Hidden layers of every conditioner.
        mask: ``"alternating"`` or ``"random"`` (vectors only).
        actnorm: Put an ActNorm before every coupling (data side).
        activation: ``relu, leaky_relu, elu, silu, tanh``.
        scale_bound: Bound of the soft-clamped log-scale ``s``.
        condition_size: Learned label embedding size; None uses one-hot labels.
        conditional_base: Per-class Gaussian base.
        alpha: Logit margin for discrete data.
        order_seed: Seed of the random masks (the masks are also saved as buffers).

    Example:
        >>> from genlab.models.flows import RealNVP
        >>> flow = RealNVP(event_shape=(2,), transforms=4, width=16, depth=2)
        >>> flow.sample(5).shape
        torch.Size([5, 2])
    """

    recipes: ClassVar[dict[str, Recipe]] = {
        "points": Recipe(
            params={"transforms": 8, "width": 64, "depth": 2},
            train={"steps": 2000, "batch_size": 256, "lr": 1e-3, "patience": 5},
            quick={"steps": 400},
            showcase=True,
            note="bench/bench_flows.py (8gaussians and checkerboard test NLL)",
        ),
        "images": Recipe(
            params={"transforms": 6, "width": 32, "depth": 2},
            train={"steps": 1500, "batch_size": 64, "lr": 1e-3, "patience": 5},
            quick={"steps": 150},
            showcase=True,
            note="bench/bench_flows.py (digits bits/dim)",
        ),
    }

    def __init__(
        self,
        *,
        event_shape: Sequence[int],
        num_classes: int | None = None,
        num_levels: int | None = None,
        transforms: Annotated[int, Setting("number of affine coupling layers", ge=1)] = 8,
        width: Annotated[int, Setting(
            "units of each hidden layer of every conditioner (conv channels for images)",
            ge=1)] = 64,
        depth: common.Depth = 2,
        mask: Annotated[str, Setting(
            "masks of vector couplings: alternating coordinates, or random halves "
            "complementary in pairs", choices=("alternating", "random"))] = "alternating",
        actnorm: common.ActNormFlag = False,
        activation: common.Activation = "relu",
        scale_bound: common.ScaleBound = 3.0,
        condition_size: common.ConditionSize = None,
        conditional_base: common.ConditionalBase = False,
        alpha: common.Alpha = 0.05,
        order_seed: common.OrderSeed = 0,
    ) -> None:
        ctx = Flow.context_dim(num_classes, condition_size)
        shape = tuple(event_shape)
        net = {"width": width, "depth": depth, "context_dim": ctx, "activation": activation,
               "scale_bound": scale_bound}
        if len(shape) == 3:
            chain = _image_chain(shape, transforms, actnorm, net)
        else:
            d = math.prod(int(s) for s in shape)
            generator = torch.Generator().manual_seed(order_seed)
            masks = common.coupling_masks(d, transforms, mask, generator)
            chain = common.vector_chain(
                shape, (partial(AffineCoupling, m, **net) for m in masks), actnorm=actnorm
            )
        super().__init__(
            event_shape=shape,
            bijections=chain,
            num_classes=num_classes,
            num_levels=num_levels,
            condition_size=condition_size,
            conditional_base=conditional_base,
            alpha=alpha,
        )

    @classmethod
    def tiny_configs(cls) -> list[dict[str, Any]]:
        """Small configurations covering vector, random-mask, conditional and image variants."""
        return [
            {"event_shape": (2,), "transforms": 2, "width": 8, "depth": 1},
            {
                "event_shape": (2,),
                "num_classes": 3,
                "transforms": 2,
                "width": 8,
                "depth": 1,
                "mask": "random",
                "actnorm": True,
                "conditional_base": True,
            },
            {"event_shape": (1, 8, 8), "num_levels": 17, "transforms": 2, "width": 4, "depth": 1},
            {
                "event_shape": (1, 8, 8),
                "num_levels": 17,
                "num_classes": 3,
                "transforms": 2,
                "width": 4,
                "depth": 1,
                "actnorm": True,
                "condition_size": 4,
            },
        ]


def _image_chain(
    shape: tuple[int, ...], transforms: int, actnorm: bool, conv: dict[str, Any]
) -> list[Bijection]:
    """Checkerboard couplings, squeeze, channel couplings, unsqueeze (latent-to-data order)."""
    c, h, w = shape
    can_squeeze = h % 2 == 0 and w % 2 == 0
    n_checker = (transforms + 1) // 2 if can_squeeze else transforms
    from_data: list[Bijection] = []
    for i in range(n_checker):
        if actnorm:
            from_data.append(ActNorm(c))
        from_data.append(MaskedAffineCoupling(checkerboard_mask(shape, i % 2), **conv))
    if can_squeeze and transforms > n_checker:
        squeezed = (4 * c, h // 2, w // 2)
        from_data.append(Squeeze())  # its inverse squeezes the image the data arrives as
        for i in range(transforms - n_checker):
            if actnorm:
                from_data.append(ActNorm(4 * c))
            from_data.append(MaskedAffineCoupling(channel_mask(squeezed, i % 2), **conv))
        from_data.append(Inverse(Squeeze()))  # back to (c, h, w): the latent has x's shape
    return from_data[::-1]
