r"""Masked autoregressive flow (Papamakarios, Pavlakou, Murray, 2017).

A stack of MADE-based affine autoregressive layers, the order reversed (or freshly drawn at
random) from one layer to the next so that every coordinate conditions on every other
somewhere in the stack. Images are flattened to vectors. Density evaluation is one pass per
layer; sampling is D passes per layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Any, ClassVar

import torch

from genlab import rand
from genlab.models.flows import common
from genlab.models.flows.autoregressive import MaskedAutoregressive
from genlab.models.flows.flow import Flow
from genlab.recipes import Recipe
from genlab.registry import register
from genlab.settings import Annotated, Setting


@register("maf")
class MAF(Flow):
    r"""Masked autoregressive flow, :math:`x_i = z_i e^{s_i(x_{<i})} + t_i(x_{<i})` per layer.

    Arguments:
        event_shape: Any shape; flattened to ``(D,)``.
        num_classes: Classes for p(x | y); the label feeds every MADE.
        num_levels: Levels of discrete data (dequantization + logit preprocessing).
        transforms: Number of autoregressive layers.
        width: Units of each hidden layer of every MADE.
        depth: Hidden layers of every MADE.
        order: ``"reverse"`` (alternate natural and reversed order) or ``"random"``.
        actnorm: Put an ActNorm before every layer (data side).
        activation: ``relu, leaky_relu, elu, silu, tanh``.
        scale_bound: Bound of the soft-clamped log-scale.
        condition_size: Learned label embedding size; None uses one-hot labels.
        conditional_base: Per-class Gaussian base.
        alpha: Logit margin for discrete data.
        order_seed: Seed of the random orders (saved with the MADE mask buffers).
    """

    recipes: ClassVar[dict[str, Recipe]] = {
        "points": Recipe(
            params={"transforms": 8, "width": 64, "depth": 2},
            train={"steps": 2000, "batch_size": 256, "lr": 1e-3, "patience": 5},
            quick={"steps": 400},
        ),
        "images": Recipe(
            params={"transforms": 4, "width": 256, "depth": 1},
            train={"steps": 600, "batch_size": 64, "lr": 1e-3, "patience": 5},
            quick={"steps": 150},
        ),
    }

    def __init__(
        self,
        *,
        event_shape: Sequence[int],
        num_classes: int | None = None,
        num_levels: int | None = None,
        transforms: Annotated[int, Setting("number of autoregressive layers", ge=1)] = 5,
        width: Annotated[int, Setting("units of each hidden layer of every MADE", ge=1)] = 64,
        depth: common.Depth = 2,
        order: Annotated[str, Setting(
            "variable order of successive layers: natural and reversed in turn, or random",
            choices=("reverse", "random"))] = "reverse",
        actnorm: common.ActNormFlag = False,
        activation: common.Activation = "relu",
        scale_bound: common.ScaleBound = 3.0,
        condition_size: common.ConditionSize = None,
        conditional_base: common.ConditionalBase = False,
        alpha: common.Alpha = 0.05,
        order_seed: common.OrderSeed = 0,
    ) -> None:
        shape = tuple(int(s) for s in event_shape)
        d = math.prod(shape)
        generator = torch.Generator().manual_seed(order_seed)
        layers = (
            partial(
                MaskedAutoregressive,
                d,
                width=width,
                depth=depth,
                context_dim=Flow.context_dim(num_classes, condition_size),
                order=positions,
                activation=activation,
                scale_bound=scale_bound,
            )
            for positions in _orders(d, transforms, order, generator)
        )
        super().__init__(
            event_shape=shape,
            bijections=common.vector_chain(shape, layers, actnorm=actnorm),
            num_classes=num_classes,
            num_levels=num_levels,
            condition_size=condition_size,
            conditional_base=conditional_base,
            alpha=alpha,
        )

    @classmethod
    def tiny_configs(cls) -> list[dict[str, Any]]:
        """Small configurations covering vector, conditional and image variants."""
        return [
            {"event_shape": (2,), "transforms": 2, "width": 8, "depth": 1},
            {
                "event_shape": (2,),
                "num_classes": 3,
                "transforms": 2,
                "width": 8,
                "depth": 1,
                "order": "random",
                "actnorm": True,
            },
            {"event_shape": (1, 8, 8), "num_levels": 17, "transforms": 1, "width": 16, "depth": 1},
        ]


def _orders(d: int, transforms: int, order: str, generator: torch.Generator) -> list[list[int]]:
    """The autoregressive order of each layer: ``random`` draws, or natural and reversed."""
    out = []
    for i in range(transforms):
        if order == "random":
            positions = rand.randperm(d, generator=generator)
        else:
            positions = torch.arange(d) if i % 2 == 0 else torch.arange(d - 1, -1, -1)
        out.append(positions.tolist())
    return out
