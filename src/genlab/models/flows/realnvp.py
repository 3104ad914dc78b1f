r"""RealNVP (Dinh, Sohl-Dickstein, Bengio, 2017): a stack of affine coupling layers.

Vectors: couplings with alternating (or random, complementary in pairs) masks, optionally
each preceded by ActNorm. Images ``(c, h, w)``: half of the couplings use checkerboard masks
on the image, then the image is squeezed to ``(4c, h/2, w/2)`` and the other half use
channel masks (the paper's one-scale block); conv nets compute ``s`` and ``t``.
Other event shapes are flattened to vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from genlab.base import check_choice
from genlab.models.flows.bijections import Bijection, Inverse
from genlab.models.flows.common import (
    check_float,
    check_int,
    coupling_masks,
    flatten_to_vector,
    hidden_sizes,
)
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


@register("realnvp")
class RealNVP(Flow):
    r"""RealNVP flow of affine couplings :math:`x_B = z_B \odot e^{s(z_A)} + t(z_A)`.

    Arguments:
        event_shape: ``(D,)`` for vectors, ``(c, h, w)`` for images.
        num_classes: Classes for p(x | y); the label reaches ``s`` and ``t`` in every layer.
        num_levels: Levels of discrete data (dequantization + logit preprocessing).
        layers: Number of coupling layers.
        hidden: Hidden sizes of each conditioner (MLP widths for vectors; for images the
            conv net uses ``hidden[0]`` channels and ``len(hidden)`` hidden layers).
        mask: ``"alternating"`` or ``"random"`` (vectors only).
        actnorm: Put an ActNorm before every coupling (data side).
        activation: ``relu, leaky_relu, elu, silu, tanh``.
        scale_bound: Bound of the soft-clamped log-scale ``s``.
        embedding_dim: Learned label embedding size; None uses one-hot labels.
        conditional_base: Per-class Gaussian base.
        alpha: Logit margin for discrete data.
        seed: Seed of the random masks (the masks are also saved as buffers).

    Example:
        >>> from genlab.models.flows import RealNVP
        >>> flow = RealNVP(event_shape=(2,), layers=4, hidden=(16, 16))
        >>> flow.sample(5).shape
        torch.Size([5, 2])
    """

    recipes: ClassVar[dict[str, Recipe]] = {
        "points": Recipe(
            params={"layers": 8, "hidden": [64, 64]},
            train={"steps": 2000, "batch_size": 256, "lr": 1e-3, "patience": 5},
            quick={"steps": 400},
            note="bench/bench_flows.py (8gaussians and checkerboard test NLL)",
        ),
        "images": Recipe(
            params={"layers": 6, "hidden": [32, 32]},
            train={"steps": 1500, "batch_size": 64, "lr": 1e-3, "patience": 5},
            quick={"steps": 150},
            note="bench/bench_flows.py (digits bits/dim)",
        ),
    }

    def __init__(
        self,
        *,
        event_shape: Sequence[int],
        num_classes: int | None = None,
        num_levels: int | None = None,
        layers: int = 8,
        hidden: Sequence[int] = (64, 64),
        mask: str = "alternating",
        actnorm: bool = False,
        activation: str = "relu",
        scale_bound: float = 3.0,
        embedding_dim: int | None = None,
        conditional_base: bool = False,
        alpha: float = 0.05,
        seed: int = 0,
    ) -> None:
        check_int("layers", layers)
        check_choice("mask", mask, ("alternating", "random"))
        check_float("scale_bound", scale_bound)
        hidden = hidden_sizes(hidden)
        ctx = Flow.context_dim(num_classes, embedding_dim)
        shape = tuple(event_shape)
        common = {"context_dim": ctx, "activation": activation, "scale_bound": scale_bound}
        if len(shape) == 3:
            chain = _image_chain(shape, layers, hidden, actnorm, common)
        else:
            d = 1
            for s in shape:
                d *= int(s)
            generator = torch.Generator().manual_seed(int(seed))
            from_data: list[Bijection] = []  # in the order the data meets them
            for m in coupling_masks(d, layers, mask, generator):
                if actnorm:
                    from_data.append(ActNorm(d))
                from_data.append(AffineCoupling(m, hidden=hidden, **common))
            chain = flatten_to_vector(shape, from_data[::-1])
        super().__init__(
            event_shape=shape,
            bijections=chain,
            num_classes=num_classes,
            num_levels=num_levels,
            embedding_dim=embedding_dim,
            conditional_base=conditional_base,
            alpha=alpha,
        )

    @classmethod
    def tiny_configs(cls) -> list[dict[str, Any]]:
        """Small configurations covering vector, random-mask, conditional and image variants."""
        return [
            {"event_shape": (2,), "layers": 2, "hidden": [8]},
            {
                "event_shape": (2,),
                "num_classes": 3,
                "layers": 2,
                "hidden": [8],
                "mask": "random",
                "actnorm": True,
                "conditional_base": True,
            },
            {"event_shape": (1, 8, 8), "num_levels": 17, "layers": 2, "hidden": [4]},
            {
                "event_shape": (1, 8, 8),
                "num_levels": 17,
                "num_classes": 3,
                "layers": 2,
                "hidden": [4],
                "actnorm": True,
                "embedding_dim": 4,
            },
        ]


def _image_chain(
    shape: tuple[int, ...],
    layers: int,
    hidden: tuple[int, ...],
    actnorm: bool,
    common: dict[str, Any],
) -> list[Bijection]:
    """Checkerboard couplings, squeeze, channel couplings, unsqueeze (latent-to-data order)."""
    c, h, w = shape
    conv = {"hidden_channels": hidden[0], "hidden_layers": len(hidden), **common}
    can_squeeze = h % 2 == 0 and w % 2 == 0
    n_checker = (layers + 1) // 2 if can_squeeze else layers
    from_data: list[Bijection] = []
    for i in range(n_checker):
        if actnorm:
            from_data.append(ActNorm(c))
        from_data.append(MaskedAffineCoupling(checkerboard_mask(shape, i % 2), **conv))
    if can_squeeze and layers > n_checker:
        squeezed = (4 * c, h // 2, w // 2)
        from_data.append(Squeeze())  # its inverse squeezes the image the data arrives as
        for i in range(layers - n_checker):
            if actnorm:
                from_data.append(ActNorm(4 * c))
            from_data.append(MaskedAffineCoupling(channel_mask(squeezed, i % 2), **conv))
        from_data.append(Inverse(Squeeze()))  # back to (c, h, w): the latent has x's shape
    return from_data[::-1]
