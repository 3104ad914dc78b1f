r"""Masked autoregressive flow (Papamakarios, Pavlakou, Murray, 2017).

A stack of MADE-based affine autoregressive layers, the order reversed (or freshly drawn at
random) from one layer to the next so that every coordinate conditions on every other
somewhere in the stack. Images are flattened to vectors. Density evaluation is one pass per
layer; sampling is D passes per layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from genlab.base import check_choice
from genlab.models.flows.autoregressive import MaskedAutoregressive
from genlab.models.flows.bijections import Bijection
from genlab.models.flows.common import check_float, check_int, flatten_to_vector, hidden_sizes
from genlab.models.flows.flow import Flow
from genlab.models.flows.normalization import ActNorm
from genlab.recipes import Recipe
from genlab.registry import register


@register("maf")
class MAF(Flow):
    r"""Masked autoregressive flow, :math:`x_i = z_i e^{s_i(x_{<i})} + t_i(x_{<i})` per layer.

    Arguments:
        event_shape: Any shape; flattened to ``(D,)``.
        num_classes: Classes for p(x | y); the label feeds every MADE.
        num_levels: Levels of discrete data (dequantization + logit preprocessing).
        layers: Number of autoregressive layers.
        hidden: Hidden sizes of each MADE.
        order: ``"reverse"`` (alternate natural and reversed order) or ``"random"``.
        actnorm: Put an ActNorm before every layer (data side).
        activation: ``relu, leaky_relu, elu, silu, tanh``.
        scale_bound: Bound of the soft-clamped log-scale.
        embedding_dim: Learned label embedding size; None uses one-hot labels.
        conditional_base: Per-class Gaussian base.
        alpha: Logit margin for discrete data.
        seed: Seed of the random orders (saved with the MADE mask buffers).
    """

    recipes: ClassVar[dict[str, Recipe]] = {
        "points": Recipe(
            params={"layers": 8, "hidden": [64, 64]},
            train={"steps": 2000, "batch_size": 256, "lr": 1e-3, "patience": 5},
            quick={"steps": 400},
        ),
        "images": Recipe(
            params={"layers": 4, "hidden": [256]},
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
        layers: int = 5,
        hidden: Sequence[int] = (64, 64),
        order: str = "reverse",
        actnorm: bool = False,
        activation: str = "relu",
        scale_bound: float = 3.0,
        embedding_dim: int | None = None,
        conditional_base: bool = False,
        alpha: float = 0.05,
        seed: int = 0,
    ) -> None:
        check_int("layers", layers)
        check_choice("order", order, ("reverse", "random"))
        check_float("scale_bound", scale_bound)
        hidden = hidden_sizes(hidden)
        shape = tuple(int(s) for s in event_shape)
        d = 1
        for s in shape:
            d *= s
        generator = torch.Generator().manual_seed(int(seed))
        from_data: list[Bijection] = []
        for i in range(layers):
            if order == "random":
                positions = torch.randperm(d, generator=generator)
            else:
                positions = torch.arange(d) if i % 2 == 0 else torch.arange(d - 1, -1, -1)
            if actnorm:
                from_data.append(ActNorm(d))
            from_data.append(
                MaskedAutoregressive(
                    d,
                    hidden=hidden,
                    context_dim=Flow.context_dim(num_classes, embedding_dim),
                    order=positions.tolist(),
                    activation=activation,
                    scale_bound=scale_bound,
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
            {"event_shape": (2,), "layers": 2, "hidden": [8]},
            {
                "event_shape": (2,),
                "num_classes": 3,
                "layers": 2,
                "hidden": [8],
                "order": "random",
                "actnorm": True,
            },
            {"event_shape": (1, 8, 8), "num_levels": 17, "layers": 1, "hidden": [16]},
        ]
