r"""Neural spline flow (Durkan, Bekasov, Murray, Papamakarios, 2019), coupling version.

Coupling layers whose transformed half goes through a monotone rational-quadratic spline
on ``[-bound, bound]`` (identity tails), with alternating or random masks and, optionally,
an LU linear map between layers. Images are flattened to vectors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Any, ClassVar

import torch

from genlab.models.flows import common
from genlab.models.flows.flow import Flow
from genlab.models.flows.spline import SplineCoupling
from genlab.recipes import Recipe
from genlab.registry import register
from genlab.settings import Annotated, Setting


@register("nsf")
class NSF(Flow):
    """Rational-quadratic spline coupling flow.

    Arguments:
        event_shape: Any shape with at least 2 dimensions in total; flattened to ``(D,)``.
        num_classes: Classes for p(x | y); the label feeds every coupling network.
        num_levels: Levels of discrete data (dequantization + logit preprocessing).
        transforms: Number of spline coupling layers.
        width: Units of each hidden layer of every coupling MLP.
        depth: Hidden layers of every coupling MLP.
        bins: Spline bins K.
        bound: The splines act on ``[-bound, bound]``, identity outside.
        mask: ``"alternating"`` or ``"random"``.
        lu: Put an invertible LU linear map before every coupling (data side).
        actnorm: Put an ActNorm before every coupling (data side).
        activation: ``relu, leaky_relu, elu, silu, tanh``.
        condition_size: Learned label embedding size; None uses one-hot labels.
        conditional_base: Per-class Gaussian base.
        alpha: Logit margin for discrete data.
        order_seed: Seed of the random masks.
    """

    recipes: ClassVar[dict[str, Recipe]] = {
        "points": Recipe(
            params={"transforms": 4, "width": 64, "depth": 2, "bins": 8},
            train={"steps": 2000, "batch_size": 256, "lr": 1e-3, "patience": 5},
            quick={"steps": 300},
            note="bench/bench_flows.py (8gaussians and checkerboard test NLL)",
        ),
        "images": Recipe(
            params={"transforms": 4, "width": 128, "depth": 1, "bins": 6, "lu": True},
            train={"steps": 500, "batch_size": 64, "lr": 1e-3, "patience": 5},
            quick={"steps": 100},
        ),
    }

    def __init__(
        self,
        *,
        event_shape: Sequence[int],
        num_classes: int | None = None,
        num_levels: int | None = None,
        transforms: Annotated[int, Setting("number of spline coupling layers", ge=1)] = 4,
        width: Annotated[int, Setting(
            "units of each hidden layer of every coupling MLP", ge=1)] = 64,
        depth: common.Depth = 2,
        bins: Annotated[int, Setting("bins K of each rational-quadratic spline", ge=2)] = 8,
        bound: Annotated[float, Setting(
            "the splines act on [-bound, bound], identity outside", gt=0)] = 5.0,
        mask: Annotated[str, Setting(
            "coupling masks: alternating coordinates, or random halves complementary in pairs",
            choices=("alternating", "random"))] = "alternating",
        lu: Annotated[bool, Setting(
            "an invertible LU linear map before every coupling (data side)")] = False,
        actnorm: common.ActNormFlag = False,
        activation: common.Activation = "relu",
        condition_size: common.ConditionSize = None,
        conditional_base: common.ConditionalBase = False,
        alpha: common.Alpha = 0.05,
        order_seed: common.OrderSeed = 0,
    ) -> None:
        shape = tuple(int(s) for s in event_shape)
        generator = torch.Generator().manual_seed(order_seed)
        ctx = Flow.context_dim(num_classes, condition_size)
        layers = (
            partial(
                SplineCoupling,
                m,
                bins=bins,
                bound=bound,
                width=width,
                depth=depth,
                context_dim=ctx,
                activation=activation,
            )
            for m in common.coupling_masks(math.prod(shape), transforms, mask, generator)
        )
        super().__init__(
            event_shape=shape,
            bijections=common.vector_chain(shape, layers, actnorm=actnorm, lu=lu),
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
            {"event_shape": (2,), "transforms": 2, "width": 8, "depth": 1, "bins": 4},
            {
                "event_shape": (2,),
                "num_classes": 3,
                "transforms": 2,
                "width": 8,
                "depth": 1,
                "bins": 4,
                "lu": True,
                "actnorm": True,
                "condition_size": 2,
            },
            {
                "event_shape": (1, 8, 8),
                "num_levels": 17,
                "transforms": 2,
                "width": 8,
                "depth": 1,
                "bins": 4,
                "mask": "random",
            },
        ]
