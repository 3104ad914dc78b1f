r"""Neural spline flow (Durkan, Bekasov, Murray, Papamakarios, 2019), coupling version.

Coupling layers whose transformed half goes through a monotone rational-quadratic spline
on ``[-bound, bound]`` (identity tails), with alternating or random masks and, optionally,
an LU linear map between layers. Images are flattened to vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from genlab.base import check_choice
from genlab.models.flows.bijections import Bijection
from genlab.models.flows.common import (
    check_float,
    check_int,
    coupling_masks,
    flatten_to_vector,
    hidden_sizes,
)
from genlab.models.flows.flow import Flow
from genlab.models.flows.linear import LULinear
from genlab.models.flows.normalization import ActNorm
from genlab.models.flows.spline import SplineCoupling
from genlab.recipes import Recipe
from genlab.registry import register


@register("nsf")
class NSF(Flow):
    """Rational-quadratic spline coupling flow.

    Arguments:
        event_shape: Any shape with at least 2 dimensions in total; flattened to ``(D,)``.
        num_classes: Classes for p(x | y); the label feeds every coupling network.
        num_levels: Levels of discrete data (dequantization + logit preprocessing).
        layers: Number of spline coupling layers.
        hidden: Hidden sizes of each coupling MLP.
        bins: Spline bins K.
        bound: The splines act on ``[-bound, bound]``, identity outside.
        mask: ``"alternating"`` or ``"random"``.
        lu: Put an invertible LU linear map before every coupling (data side).
        actnorm: Put an ActNorm before every coupling (data side).
        activation: ``relu, leaky_relu, elu, silu, tanh``.
        embedding_dim: Learned label embedding size; None uses one-hot labels.
        conditional_base: Per-class Gaussian base.
        alpha: Logit margin for discrete data.
        seed: Seed of the random masks.
    """

    recipes: ClassVar[dict[str, Recipe]] = {
        "points": Recipe(
            params={"layers": 4, "hidden": [64, 64], "bins": 8},
            train={"steps": 2000, "batch_size": 256, "lr": 1e-3, "patience": 5},
            quick={"steps": 300},
            note="bench/bench_flows.py (8gaussians and checkerboard test NLL)",
        ),
        "images": Recipe(
            params={"layers": 4, "hidden": [128], "bins": 6, "lu": True},
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
        layers: int = 4,
        hidden: Sequence[int] = (64, 64),
        bins: int = 8,
        bound: float = 5.0,
        mask: str = "alternating",
        lu: bool = False,
        actnorm: bool = False,
        activation: str = "relu",
        embedding_dim: int | None = None,
        conditional_base: bool = False,
        alpha: float = 0.05,
        seed: int = 0,
    ) -> None:
        check_int("layers", layers)
        check_int("bins", bins, 2)
        check_float("bound", bound)
        check_choice("mask", mask, ("alternating", "random"))
        hidden = hidden_sizes(hidden)
        shape = tuple(int(s) for s in event_shape)
        d = 1
        for s in shape:
            d *= s
        generator = torch.Generator().manual_seed(int(seed))
        ctx = Flow.context_dim(num_classes, embedding_dim)
        from_data: list[Bijection] = []
        for m in coupling_masks(d, layers, mask, generator):
            if actnorm:
                from_data.append(ActNorm(d))
            if lu:
                from_data.append(LULinear(d))
            from_data.append(
                SplineCoupling(
                    m,
                    bins=bins,
                    bound=bound,
                    hidden=hidden,
                    context_dim=ctx,
                    activation=activation,
                )
            )
        super().__init__(
            event_shape=shape,
            bijections=flatten_to_vector(shape, from_data[::-1]),
            num_classes=num_classes,
            num_levels=num_levels,
            embedding_dim=embedding_dim,
            conditional_base=conditional_base,
            alpha=alpha,
        )

    @classmethod
    def tiny_configs(cls) -> list[dict[str, Any]]:
        """Small configurations covering vector, conditional and image variants."""
        return [
            {"event_shape": (2,), "layers": 2, "hidden": [8], "bins": 4},
            {
                "event_shape": (2,),
                "num_classes": 3,
                "layers": 2,
                "hidden": [8],
                "bins": 4,
                "lu": True,
                "actnorm": True,
                "embedding_dim": 2,
            },
            {
                "event_shape": (1, 8, 8),
                "num_levels": 17,
                "layers": 2,
                "hidden": [8],
                "bins": 4,
                "mask": "random",
            },
        ]
