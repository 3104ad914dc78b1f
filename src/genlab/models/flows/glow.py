r"""Multi-scale image flow (Dinh et al. 2017; steps of flow as in Kingma & Dhariwal's Glow).

Seen from the data (the inverse, as ``log_prob`` runs it), each scale

1. squeezes the image, :math:`(c, h, w) \to (4c, h/2, w/2)`;
2. applies ``transforms`` steps of flow: ActNorm, an invertible 1x1 convolution (LU), and an
   affine coupling with a channel mask whose ``s, t`` come from a small conv net;
3. factors out half of the channels: they are final latent coordinates, and only the other
   half goes on to the next, coarser scale.

The factored-out channels are kept in place (see :class:`~.reshape.FactorOut`) and the
image is unsqueezed back at the end, so the latent has the data's shape and the base is a
standard Gaussian over all of it; the density is that of the multi-scale architecture.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from genlab.errors import ConfigError
from genlab.models.flows import common
from genlab.models.flows.bijections import Bijection, Compose, Inverse
from genlab.models.flows.coupling import MaskedAffineCoupling, channel_mask
from genlab.models.flows.flow import Flow
from genlab.models.flows.linear import LULinear
from genlab.models.flows.normalization import ActNorm
from genlab.models.flows.reshape import FactorOut, Squeeze
from genlab.recipes import Recipe
from genlab.registry import register
from genlab.settings import Annotated, Setting


@register("glow")
class Glow(Flow):
    """Multi-scale flow for images ``(c, h, w)`` with ``h, w`` divisible by ``2**scales``.

    Arguments:
        event_shape: ``(c, h, w)``.
        num_classes: Classes for p(x | y); the label reaches every coupling.
        num_levels: Levels of discrete data (dequantization + logit preprocessing).
        scales: Number of scales.
        transforms: Steps of flow (ActNorm, 1x1 LU conv, coupling) per scale.
        width: Channels of each hidden layer of every coupling's conv net.
        depth: Hidden layers of every coupling's conv net.
        activation: ``relu, leaky_relu, elu, silu, tanh``.
        scale_bound: Bound of the soft-clamped log-scale.
        condition_size: Learned label embedding size; None uses one-hot labels.
        conditional_base: Per-class Gaussian base.
        alpha: Logit margin for discrete data.
    """

    recipes: ClassVar[dict[str, Recipe]] = {
        "images": Recipe(
            params={"scales": 2, "transforms": 4, "width": 32, "depth": 2},
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
        scales: Annotated[int, Setting(
            "number of scales: squeeze, steps of flow, factor out half", ge=1)] = 2,
        transforms: Annotated[int, Setting(
            "steps of flow (ActNorm, invertible 1x1 conv, affine coupling) per scale",
            ge=1)] = 4,
        width: Annotated[int, Setting(
            "channels of each hidden layer of every coupling's conv net", ge=1)] = 32,
        depth: common.Depth = 2,
        activation: common.Activation = "relu",
        scale_bound: common.ScaleBound = 3.0,
        condition_size: common.ConditionSize = None,
        conditional_base: common.ConditionalBase = False,
        alpha: common.Alpha = 0.05,
    ) -> None:
        shape = tuple(int(s) for s in event_shape)
        if len(shape) != 3:
            raise ConfigError(f"Expected an image event_shape (c, h, w), but found {shape}.")
        c, h, w = shape
        if h % 2**scales or w % 2**scales:
            raise ConfigError(
                f"Expected h and w divisible by 2**scales = {2**scales}, but found {(h, w)}."
            )
        conv = {
            "width": width,
            "depth": depth,
            "context_dim": Flow.context_dim(num_classes, condition_size),
            "activation": activation,
            "scale_bound": scale_bound,
        }
        super().__init__(
            event_shape=shape,
            bijections=_scale(shape, 0, scales, transforms, conv)[::-1],
            num_classes=num_classes,
            num_levels=num_levels,
            condition_size=condition_size,
            conditional_base=conditional_base,
            alpha=alpha,
        )

    @classmethod
    def tiny_configs(cls) -> list[dict[str, Any]]:
        """Small configurations: unconditional and conditional digits-shaped flows."""
        return [
            {
                "event_shape": (1, 8, 8),
                "num_levels": 17,
                "scales": 2,
                "transforms": 1,
                "width": 4,
                "depth": 1,
            },
            {
                "event_shape": (1, 8, 8),
                "num_levels": 17,
                "num_classes": 3,
                "scales": 2,
                "transforms": 1,
                "width": 4,
                "depth": 1,
            },
        ]


def _scale(
    shape: tuple[int, int, int], scale: int, scales: int, transforms: int, conv: dict[str, Any]
) -> list[Bijection]:
    """Bijections of one scale and the scales below it, in the order the data meets them."""
    c, h, w = shape
    squeezed = (4 * c, h // 2, w // 2)
    from_data: list[Bijection] = [Squeeze()]  # the data side squeezes: (c, h, w) -> (4c, ...)
    for i in range(transforms):
        from_data += [
            ActNorm(4 * c),
            LULinear(4 * c),
            MaskedAffineCoupling(channel_mask(squeezed, i % 2), **conv),
        ]
    if scale + 1 < scales:
        keep = 2 * c  # half of the 4c channels continue; the rest are latent already
        inner = _scale((keep, h // 2, w // 2), scale + 1, scales, transforms, conv)
        from_data.append(FactorOut(Compose(inner[::-1]), keep))
    from_data.append(Inverse(Squeeze()))  # unsqueeze: the latent keeps the data's shape
    return from_data
