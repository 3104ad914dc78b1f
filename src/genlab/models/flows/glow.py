r"""Multi-scale image flow (Dinh et al. 2017; steps of flow as in Kingma & Dhariwal's Glow).

Seen from the data (the inverse, as ``log_prob`` runs it), each level

1. squeezes the image, :math:`(c, h, w) \to (4c, h/2, w/2)`;
2. applies ``steps`` steps of flow: ActNorm, an invertible 1x1 convolution (LU), and an
   affine coupling with a channel mask whose ``s, t`` come from a small conv net;
3. factors out half of the channels: they are final latent coordinates, and only the other
   half goes on to the next, coarser level.

The factored-out channels are kept in place (see :class:`~.reshape.FactorOut`) and the
image is unsqueezed back at the end, so the latent has the data's shape and the base is a
standard Gaussian over all of it; the density is that of the multi-scale architecture.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from genlab.errors import ConfigError
from genlab.models.flows.bijections import Bijection, Compose, Inverse
from genlab.models.flows.common import check_float, check_int, hidden_sizes
from genlab.models.flows.coupling import MaskedAffineCoupling, channel_mask
from genlab.models.flows.flow import Flow
from genlab.models.flows.linear import LULinear
from genlab.models.flows.normalization import ActNorm
from genlab.models.flows.reshape import FactorOut, Squeeze
from genlab.recipes import Recipe
from genlab.registry import register


@register("glow")
class Glow(Flow):
    """Multi-scale flow for images ``(c, h, w)`` with ``h, w`` divisible by ``2**levels``.

    Arguments:
        event_shape: ``(c, h, w)``.
        num_classes: Classes for p(x | y); the label reaches every coupling.
        num_levels: Levels of discrete data (dequantization + logit preprocessing).
        levels: Number of scales.
        steps: Steps of flow (ActNorm, 1x1 LU conv, coupling) per level.
        hidden: Conv-net width ``hidden[0]`` and depth ``len(hidden)`` of each coupling.
        activation: ``relu, leaky_relu, elu, silu, tanh``.
        scale_bound: Bound of the soft-clamped log-scale.
        embedding_dim: Learned label embedding size; None uses one-hot labels.
        conditional_base: Per-class Gaussian base.
        alpha: Logit margin for discrete data.
    """

    recipes: ClassVar[dict[str, Recipe]] = {
        "images": Recipe(
            params={"levels": 2, "steps": 4, "hidden": [32, 32]},
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
        levels: int = 2,
        steps: int = 4,
        hidden: Sequence[int] = (32, 32),
        activation: str = "relu",
        scale_bound: float = 3.0,
        embedding_dim: int | None = None,
        conditional_base: bool = False,
        alpha: float = 0.05,
    ) -> None:
        check_int("levels", levels)
        check_int("steps", steps)
        check_float("scale_bound", scale_bound)
        hidden = hidden_sizes(hidden)
        shape = tuple(int(s) for s in event_shape)
        if len(shape) != 3:
            raise ConfigError(f"Expected an image event_shape (c, h, w), but found {shape}.")
        c, h, w = shape
        if h % 2**levels or w % 2**levels:
            raise ConfigError(
                f"Expected h and w divisible by 2**levels = {2**levels}, but found {(h, w)}."
            )
        conv = {
            "hidden_channels": hidden[0],
            "hidden_layers": len(hidden),
            "context_dim": Flow.context_dim(num_classes, embedding_dim),
            "activation": activation,
            "scale_bound": scale_bound,
        }
        super().__init__(
            event_shape=shape,
            bijections=_level(shape, 0, levels, steps, conv)[::-1],
            num_classes=num_classes,
            num_levels=num_levels,
            embedding_dim=embedding_dim,
            conditional_base=conditional_base,
            alpha=alpha,
        )

    @classmethod
    def tiny_configs(cls) -> list[dict[str, Any]]:
        """Small configurations: unconditional and conditional digits-shaped flows."""
        return [
            {"event_shape": (1, 8, 8), "num_levels": 17, "levels": 2, "steps": 1, "hidden": [4]},
            {
                "event_shape": (1, 8, 8),
                "num_levels": 17,
                "num_classes": 3,
                "levels": 2,
                "steps": 1,
                "hidden": [4],
            },
        ]


def _level(
    shape: tuple[int, int, int], level: int, levels: int, steps: int, conv: dict[str, Any]
) -> list[Bijection]:
    """Bijections of one level and the levels below it, in the order the data meets them."""
    c, h, w = shape
    squeezed = (4 * c, h // 2, w // 2)
    from_data: list[Bijection] = [Squeeze()]  # the data side squeezes: (c, h, w) -> (4c, ...)
    for i in range(steps):
        from_data += [
            ActNorm(4 * c),
            LULinear(4 * c),
            MaskedAffineCoupling(channel_mask(squeezed, i % 2), **conv),
        ]
    if level + 1 < levels:
        keep = 2 * c  # half of the 4c channels continue; the rest are latent already
        inner = _level((keep, h // 2, w // 2), level + 1, levels, steps, conv)
        from_data.append(FactorOut(Compose(inner[::-1]), keep))
    from_data.append(Inverse(Squeeze()))  # unsqueeze: the latent keeps the data's shape
    return from_data
