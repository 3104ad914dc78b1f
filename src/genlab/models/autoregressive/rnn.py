"""A recurrent autoregressive model: a GRU or LSTM reads the sequence one dimension at a time.

The data are read in the model's order as a sequence ``x_{o_1}, ..., x_{o_D}``. Step t reads
the previous value (a learned start vector at t = 1) and updates a hidden state that
summarises the whole prefix:

    s_t = RNN(s_{t-1}, W_in e(x_{o_{t-1}}) + P_t + E y)
    p(x_{o_t} | x_{o_<t}, y) = head(W_out s_t)

with ``e`` the level embedding (or the value for continuous data), ``P_t`` a learned position
embedding (so the network knows which pixel it is at) and ``E y`` a label embedding. Training
runs the recurrence over the whole shifted sequence in one call; sampling carries ``s_t``
from step to step, so each new dimension costs one recurrent step.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from genlab.models.autoregressive.core import (
    AutoregressiveModel,
    Components,
    Order,
    OrderSeed,
    State,
)
from genlab.recipes import Recipe
from genlab.registry import register
from genlab.settings import Annotated, Setting


@register("rnn")
class RNN(AutoregressiveModel):
    """GRU/LSTM autoregressive model over the flattened sequence of dimensions.

    Arguments:
        event_shape: Shape of one sample (flattened to a sequence of D values).
        num_classes: Labels for p(x | y), or None.
        num_levels: Discrete levels (softmax outputs) or None (mixture of Gaussians).
        cell: ``"gru"`` or ``"lstm"``.
        width: Units of the recurrent state.
        depth: Stacked recurrent layers.
        embedding_size: Size of the level embedding (discrete data).
        components: Gaussians per dimension for continuous data.
        order: ``"natural"`` (raster scan) or ``"random"``.
        order_seed: Seed of the random order.
        dropout: Dropout between stacked layers and before the output layer.

    Example:
        >>> from genlab import create
        >>> model = create("rnn", event_shape=(4,), num_levels=3, width=8)
        >>> model.sample(2).shape
        torch.Size([2, 4])
    """

    has_encoder: ClassVar[bool] = True

    recipes: ClassVar[dict[str, Recipe]] = {
        "images": Recipe(
            params={"width": 256, "cell": "gru", "dropout": 0.2},
            train={"steps": 1500, "batch_size": 64, "lr": 3e-3, "warmup_steps": 50,
                   "patience": 8},
            quick={"steps": 60},
            quick_params={"width": 64},
            note="bench/bench_autoregressive.py (digits test bits/pixel)",
        ),
    }

    def __init__(
        self,
        *,
        event_shape: tuple[int, ...],
        num_classes: int | None = None,
        num_levels: int | None = None,
        cell: Annotated[str, Setting("recurrent cell", choices=("gru", "lstm"))] = "gru",
        width: Annotated[int, Setting("units of the recurrent state", ge=1)] = 128,
        depth: Annotated[int, Setting("stacked recurrent layers", ge=1)] = 1,
        embedding_size: Annotated[int, Setting(
            "size of the level embedding (discrete data)", ge=1)] = 32,
        components: Components = 5,
        order: Order = "natural",
        order_seed: OrderSeed = 0,
        dropout: Annotated[float, Setting(
            "dropout probability between stacked layers and before the output layer",
            ge=0, lt=1)] = 0.0,
    ) -> None:
        super().__init__(
            event_shape=event_shape, num_classes=num_classes, num_levels=num_levels,
            components=components, order=order, order_seed=order_seed,
        )
        e = embedding_size if num_levels is not None else 1
        self.embed = nn.Embedding(num_levels, e) if num_levels is not None else None
        self.start = nn.Parameter(torch.zeros(e))
        self.input_proj = nn.Linear(e, width)
        self.position = nn.Parameter(torch.randn(self.event_dim, width) * 0.02)
        self.label = nn.Embedding(num_classes, width) if num_classes is not None else None
        rnn_cls = nn.GRU if cell == "gru" else nn.LSTM
        self.cell = cell
        self.rnn = rnn_cls(width, width, num_layers=depth, batch_first=True,
                           dropout=dropout if depth > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(width, self.head.num_params)

    def features(self, x: Tensor) -> Tensor:
        if self.embed is not None:
            return self.embed(x.long())  # (n, D, E)
        return x.unsqueeze(-1)  # (n, D, 1)

    def _inputs(self, prev: Tensor, t0: int, y: Tensor | None) -> Tensor:
        """Recurrent inputs for steps ``t0, t0+1, ...`` from previous features ``(n, T, E)``."""
        u = self.input_proj(prev) + self.position[t0 : t0 + prev.shape[1]]  # (n, T, H)
        if y is not None:
            u = u + self.label(y)[:, None, :]
        return u

    def _run(self, features: Tensor, y: Tensor | None) -> Tensor:
        """The top layer's states ``(n, D, H)`` in sampling order; step t has read
        ``x_{o_<t}``."""
        n = features.shape[0]
        seq = features[:, self.order]  # (n, D, E) in sampling order
        start = self.start.expand(n, 1, -1)  # (n, 1, E)
        prev = torch.cat([start, seq[:, :-1]], dim=1)  # (n, D, E): input t is x_{o_{t-1}}
        return self.rnn(self._inputs(prev, 0, y))[0]  # (n, D, H)

    def hidden_state(self, features: Tensor, y: Tensor | None) -> Tensor:
        """The final state of the top layer ``(n, width)``, after reading every dimension
        but the last in the order (the one it predicts)."""
        return self._run(features, y)[:, -1]  # (n, H)

    def network(self, features: Tensor, y: Tensor | None) -> Tensor:
        out = self._run(features, y)  # (n, D, H)
        params = self.output(self.dropout(out))  # (n, D, P) in sampling order
        return params[:, self.rank]  # (n, D, P) back in position order

    def init_state(self, n: int, y: Tensor | None) -> State:
        return {"y": y, "hidden": None}

    def next_params(self, state: State, t: int, x: Tensor) -> Tensor:
        n = x.shape[0]
        if t == 0:
            prev = self.start.expand(n, 1, -1)  # (n, 1, E)
        else:
            prev = self.features(x[:, self.order[t - 1 : t]])  # (n, 1, E)
        out, state["hidden"] = self.rnn(self._inputs(prev, t, state["y"]), state["hidden"])
        return self.output(out[:, 0])  # (n, P)

    @classmethod
    def tiny_configs(cls) -> list[dict]:
        return [
            {"event_shape": (2,), "width": 8, "components": 2},
            {"event_shape": (1, 8, 8), "num_levels": 17, "width": 16, "embedding_size": 4},
            {"event_shape": (1, 8, 8), "num_levels": 17, "width": 16, "embedding_size": 4,
             "cell": "lstm", "depth": 2, "num_classes": 3, "order": "random"},
            {"event_shape": (2,), "width": 8, "cell": "lstm", "num_classes": 3},
        ]
