"""MADE: a masked autoencoder for distribution estimation (Germain et al. 2015).

One MLP computes every conditional of the chain rule at once. Each input dimension d gets a
degree ``m(d) = rank of d in the order`` (1..D); each hidden unit a degree in ``1..D-1``. A
weight is kept only if it goes from degree m to a degree >= m (hidden layers) or > m (output
layer), so the outputs for dimension d depend on inputs of smaller degree only:

    h^1 = relu((W^1 * M^1) e(x) + b^1 + E^1 y)
    h^l = relu((W^l * M^l) h^{l-1} + b^l + E^l y)
    theta = (V * M^V) h^L + (A * M^A) e(x) + c + E^out y       # one row of theta per d
    p(x_d | x_<d, y) = head(theta_d)

``e(x)`` is the one-hot encoding of discrete data (or the value itself), ``A`` an optional
direct (linear autoregressive) connection and ``E y`` a label embedding for p(x | y), which
may reach every unit because y is not part of x.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.errors import ConfigError
from genlab.models.autoregressive.core import (
    AutoregressiveModel,
    Components,
    Order,
    OrderSeed,
)
from genlab.nn.masked import MaskedLinear, made_mask
from genlab.recipes import Recipe
from genlab.registry import register
from genlab.settings import Annotated, Setting

# Declared by MADE and PixelCNN, the two families that encode values themselves.
InputEncoding = Annotated[str, Setting(
    "input features: one-hot (discrete data), the value, or auto (one-hot up to 32 levels)",
    choices=("auto", "onehot", "value"))]


def resolve_encoding(input_encoding: str, num_levels: int | None) -> str:
    """``"auto"`` is one-hot for discrete data with at most 32 levels, else the value."""
    if input_encoding == "auto":
        return "onehot" if num_levels is not None and num_levels <= 32 else "value"
    if input_encoding == "onehot" and num_levels is None:
        raise ConfigError(
            "Expected input_encoding='value' for continuous data, but found 'onehot'."
        )
    return input_encoding


def encode_values(x: Tensor, encoding: str, num_levels: int | None) -> Tensor:
    """Per-position features ``(n, D, E)``: one-hot (E = L) or the value, scaled to [-1, 1]
    for discrete data (E = 1)."""
    if encoding == "onehot":
        return F.one_hot(x.long(), num_levels).to(x.dtype)
    if num_levels is not None:
        x = 2.0 * x / (num_levels - 1) - 1.0
    return x.unsqueeze(-1)


@register("made")
class MADE(AutoregressiveModel):
    """Masked MLP autoregressive model for vectors and discrete pixels.

    Arguments:
        event_shape: Shape of one sample (any; flattened to D dimensions).
        num_classes: Labels for p(x | y), or None.
        num_levels: Discrete levels (softmax outputs) or None (mixture of Gaussians).
        width: Units of each hidden layer.
        depth: Number of hidden layers.
        components: Gaussians per dimension for continuous data.
        order: ``"natural"`` or ``"random"``.
        order_seed: Seed of the random order.
        direct: Add the masked direct input-to-output connection.
        input_encoding: ``"auto"``, ``"onehot"`` or ``"value"`` (see :func:`encode_values`).
        dropout: Dropout probability on hidden units during training.

    Example:
        >>> from genlab import create
        >>> model = create("made", event_shape=(3,), num_levels=4, width=16, depth=1)
        >>> model.sample(5).shape
        torch.Size([5, 3])
    """

    has_encoder: ClassVar[bool] = True

    recipes: ClassVar[dict[str, Recipe]] = {
        "points": Recipe(
            params={"width": 128, "depth": 2, "components": 8},
            train={"steps": 800, "batch_size": 256, "lr": 2e-3, "patience": 5},
            quick={"steps": 300},
            showcase=True,
        ),
        "images": Recipe(
            params={"width": 512, "depth": 1, "dropout": 0.3},
            train={"steps": 1000, "batch_size": 64, "lr": 1e-3, "warmup_steps": 50,
                   "patience": 8},
            quick={"steps": 150},
            note="bench/bench_autoregressive.py (digits test bits/pixel)",
        ),
    }

    def __init__(
        self,
        *,
        event_shape: tuple[int, ...],
        num_classes: int | None = None,
        num_levels: int | None = None,
        width: Annotated[int, Setting("units of each hidden layer", ge=1)] = 256,
        depth: Annotated[int, Setting("number of hidden layers", ge=1)] = 2,
        components: Components = 5,
        order: Order = "natural",
        order_seed: OrderSeed = 0,
        direct: Annotated[bool, Setting(
            "add the masked direct (linear autoregressive) input-to-output connection")] = True,
        input_encoding: InputEncoding = "auto",
        dropout: Annotated[float, Setting(
            "dropout probability on hidden units during training", ge=0, lt=1)] = 0.0,
    ) -> None:
        super().__init__(
            event_shape=event_shape, num_classes=num_classes, num_levels=num_levels,
            components=components, order=order, order_seed=order_seed,
        )
        hidden = [width] * depth
        self.encoding = resolve_encoding(input_encoding, num_levels)
        d = self.event_dim
        e = num_levels if self.encoding == "onehot" else 1
        p = self.head.num_params

        # Degrees: inputs by rank (1..D), each repeated for the E features of a position;
        # hidden units cycle through 1..D-1 so every degree is represented when width >= D-1.
        deg_in = (self.rank + 1).repeat_interleave(e)  # (D*E,)
        deg_hidden = [torch.arange(h) % max(d - 1, 1) + 1 for h in hidden]
        deg_out = (self.rank + 1).repeat_interleave(p)  # (D*P,)

        layers = []
        prev, prev_deg = d * e, deg_in
        for units, deg in zip(hidden, deg_hidden, strict=True):
            layers.append(MaskedLinear(prev, units, made_mask(prev_deg, deg, strict=False)))
            prev, prev_deg = units, deg
        self.hidden = nn.ModuleList(layers)
        self.output = MaskedLinear(prev, d * p, made_mask(prev_deg, deg_out, strict=True))
        self.direct = (
            MaskedLinear(d * e, d * p, made_mask(deg_in, deg_out, strict=True), bias=False)
            if direct else None
        )
        self.dropout = nn.Dropout(dropout)
        if num_classes is not None:
            self.label_hidden = nn.ModuleList(nn.Embedding(num_classes, h) for h in hidden)
            self.label_out = nn.Embedding(num_classes, d * p)
            for emb in [*self.label_hidden, self.label_out]:
                nn.init.normal_(emb.weight, std=0.01)

    def features(self, x: Tensor) -> Tensor:
        return encode_values(x, self.encoding, self.num_levels)  # (n, D, E)

    def hidden_state(self, features: Tensor, y: Tensor | None) -> Tensor:
        """The last hidden layer ``(n, width)``: each unit sees the positions below its
        degree, and together they see every position but the last."""
        h = features.reshape(features.shape[0], -1)  # (n, D*E), position-major
        for i, layer in enumerate(self.hidden):
            h = layer(h)
            if y is not None:
                h = h + self.label_hidden[i](y)
            h = self.dropout(torch.relu(h))
        return h  # (n, width)

    def network(self, features: Tensor, y: Tensor | None) -> Tensor:
        n = features.shape[0]
        e = features.reshape(n, -1)  # (n, D*E), position-major
        theta = self.output(self.hidden_state(features, y))  # (n, D*P)
        if self.direct is not None:
            theta = theta + self.direct(e)
        if y is not None:
            theta = theta + self.label_out(y)
        return theta.reshape(n, self.event_dim, self.head.num_params)  # (n, D, P)

    @classmethod
    def tiny_configs(cls) -> list[dict]:
        return [
            {"event_shape": (2,), "width": 16, "depth": 2, "components": 2},
            {"event_shape": (2,), "width": 16, "depth": 1, "num_classes": 3, "order": "random"},
            {"event_shape": (1, 8, 8), "num_levels": 17, "width": 32, "depth": 1},
            {"event_shape": (1, 8, 8), "num_levels": 17, "width": 32, "depth": 1,
             "num_classes": 3, "order": "random", "input_encoding": "value", "direct": False},
        ]

