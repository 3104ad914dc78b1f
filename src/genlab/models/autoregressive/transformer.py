"""A small causal transformer over tokens (pixels as tokens), with a key/value cache.

The sequence ``x_{o_1}, ..., x_{o_D}`` is shifted right behind a start token, so the token
at step t holds ``x_{o_{t-1}}`` and the output at step t parametrises ``x_{o_t}``:

    h^0_t = e(x_{o_{t-1}}) + P_t + E y                (token, position and label embeddings)
    h^l = h^{l-1} + Attn(LN(h^{l-1})),  h^l <- h^l + MLP(LN(h^l))
    Attn(h)_t = sum_{s <= t} softmax_s(q_t . k_s / sqrt(d_head)) v_s    (causal: s <= t)
    p(x_{o_t} | x_{o_<t}, y) = head(W_out LN(h^L_t))

Training runs all D steps at once under the causal mask. In sampling, step t needs the keys
and values of steps ``s < t`` at every layer; they do not change once computed, so the cache
keeps them and step t computes only its own query, key and value: O(t) work per step instead
of re-running the whole prefix (O(t^2) attention plus t MLP passes).
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
    State,
    Temperature,
)
from genlab.recipes import Recipe
from genlab.registry import register
from genlab.settings import Annotated, Setting


class Block(nn.Module):
    """Pre-norm transformer block: causal multi-head self-attention, then an MLP."""

    def __init__(self, width: int, heads: int, mlp_ratio: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_ratio * width), nn.GELU(),
                                 nn.Linear(mlp_ratio * width, width), nn.Dropout(dropout))
        self.dropout = dropout

    def _heads(self, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        n, t, d = h.shape
        qkv = self.qkv(self.ln1(h)).reshape(n, t, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (n, heads, T, d_head)
        return q, k, v

    def _finish(self, h: Tensor, attn: Tensor) -> Tensor:
        n, _, t, _ = attn.shape
        h = h + self.proj(attn.transpose(1, 2).reshape(n, t, -1))  # (n, T, d)
        return h + self.mlp(self.ln2(h))

    def forward(self, h: Tensor) -> Tensor:
        """Whole sequence ``(n, T, d)`` under the causal mask."""
        q, k, v = self._heads(h)
        p = self.dropout if self.training else 0.0
        return self._finish(h, F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                              dropout_p=p))

    def step(self, h: Tensor, cache: tuple[Tensor, Tensor], t: int) -> Tensor:
        """One new token ``(n, 1, d)`` at step t; its key and value go into ``cache[.., t]``."""
        q, k, v = self._heads(h)  # each (n, heads, 1, d_head)
        keys, values = cache  # each (n, heads, D, d_head)
        keys[:, :, t : t + 1] = k
        values[:, :, t : t + 1] = v
        # the query may attend to every cached step s <= t: no mask needed
        attn = F.scaled_dot_product_attention(q, keys[:, :, : t + 1], values[:, :, : t + 1])
        return self._finish(h, attn)


@register("transformer")
class Transformer(AutoregressiveModel):
    """Causal transformer autoregressive model with a key/value cache for sampling.

    Arguments:
        event_shape: Shape of one sample (flattened to a sequence of D tokens).
        num_classes: Labels for p(x | y), or None.
        num_levels: Discrete levels (tokens; softmax outputs) or None (continuous values
            embedded linearly, mixture of Gaussians outputs).
        width: Width of the token representations.
        heads: Attention heads (must divide width).
        depth: Transformer blocks.
        mlp_ratio: Hidden width of each MLP, in multiples of width.
        components: Gaussians per dimension for continuous data.
        order: ``"natural"`` (raster scan) or ``"random"``.
        order_seed: Seed of the random order.
        dropout: Dropout on attention weights and MLP outputs during training.

    Example:
        >>> import torch
        >>> from genlab import create
        >>> model = create("transformer", event_shape=(4,), num_levels=3, width=8, heads=2)
        >>> a = model.sample(3, generator=torch.Generator().manual_seed(0))
        >>> b = model.sample(3, generator=torch.Generator().manual_seed(0), use_cache=False)
        >>> bool((a == b).all())
        True
    """

    has_encoder: ClassVar[bool] = True

    recipes: ClassVar[dict[str, Recipe]] = {
        "images": Recipe(
            params={"width": 96, "heads": 4, "depth": 3, "dropout": 0.2},
            train={"steps": 1500, "batch_size": 64, "lr": 1e-3, "warmup_steps": 50,
                   "patience": 8},
            quick={"steps": 60},
            quick_params={"width": 32, "heads": 2, "depth": 2},
            note="bench/bench_autoregressive.py (digits test bits/pixel)",
        ),
    }

    def __init__(
        self,
        *,
        event_shape: tuple[int, ...],
        num_classes: int | None = None,
        num_levels: int | None = None,
        width: Annotated[int, Setting("width of the token representations", ge=1)] = 64,
        heads: Annotated[int, Setting("attention heads (must divide width)", ge=1)] = 4,
        depth: Annotated[int, Setting("transformer blocks", ge=1)] = 2,
        mlp_ratio: Annotated[int, Setting(
            "hidden units of each MLP, in multiples of width", ge=1)] = 4,
        components: Components = 5,
        order: Order = "natural",
        order_seed: OrderSeed = 0,
        dropout: Annotated[float, Setting(
            "dropout probability on attention weights and MLP outputs", ge=0, lt=1)] = 0.0,
    ) -> None:
        super().__init__(
            event_shape=event_shape, num_classes=num_classes, num_levels=num_levels,
            components=components, order=order, order_seed=order_seed,
        )
        if width % heads:
            raise ConfigError(f"Expected heads to divide width={width}, but found {heads}.")
        self.width, self.heads = width, heads
        if num_levels is not None:
            self.embed: nn.Module = nn.Embedding(num_levels, width)
        else:
            self.embed = nn.Linear(1, width)
        self.start = nn.Parameter(torch.randn(width) * 0.02)
        self.position = nn.Parameter(torch.randn(self.event_dim, width) * 0.02)
        self.label = nn.Embedding(num_classes, width) if num_classes is not None else None
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio, dropout)
                                    for _ in range(depth))
        self.ln_f = nn.LayerNorm(width)
        self.output = nn.Linear(width, self.head.num_params)

    def features(self, x: Tensor) -> Tensor:
        if self.num_levels is not None:
            return self.embed(x.long())  # (n, D, d)
        return self.embed(x.unsqueeze(-1))  # (n, D, d)

    def _tokens(self, prev: Tensor, t0: int, y: Tensor | None) -> Tensor:
        """Add position (steps ``t0, t0+1, ...``) and label embeddings to ``(n, T, d)``."""
        h = prev + self.position[t0 : t0 + prev.shape[1]]
        if y is not None:
            h = h + self.label(y)[:, None, :]
        return h

    def _last_layer(self, prev: Tensor, y: Tensor | None) -> Tensor:
        """Normalised last-layer states ``(n, T, d)`` from shifted tokens ``(n, T, d)``."""
        h = self._tokens(prev, 0, y)
        for block in self.blocks:
            h = block(h)
        return self.ln_f(h)

    def _run(self, prev: Tensor, y: Tensor | None) -> Tensor:
        """Parameters ``(n, T, P)`` for steps ``0..T-1`` from shifted tokens ``(n, T, d)``."""
        return self.output(self._last_layer(prev, y))

    def hidden_state(self, features: Tensor, y: Tensor | None) -> Tensor:
        """The last layer's states averaged over the D steps: ``(n, width)``."""
        seq = features[:, self.order]  # (n, D, d) in sampling order
        return self._last_layer(self._shifted(seq[:, :-1]), y).mean(1)  # (n, d)

    def _shifted(self, seq: Tensor) -> Tensor:
        """Prepend the start token: ``(n, T, d) -> (n, T + 1, d)``."""
        return torch.cat([self.start.expand(seq.shape[0], 1, -1), seq], dim=1)

    def network(self, features: Tensor, y: Tensor | None) -> Tensor:
        seq = features[:, self.order]  # (n, D, d) in sampling order
        params = self._run(self._shifted(seq[:, :-1]), y)  # (n, D, P) in sampling order
        return params[:, self.rank]  # (n, D, P) in position order

    # ------------------------------------------------------------------ sampling
    def init_state(self, n: int, y: Tensor | None, use_cache: bool = True) -> State:
        state: State = {"y": y, "cache": None}
        if use_cache:
            shape = (n, self.heads, self.event_dim, self.width // self.heads)
            state["cache"] = [
                (torch.empty(shape, device=self.device, dtype=self.dtype),
                 torch.empty(shape, device=self.device, dtype=self.dtype))
                for _ in self.blocks
            ]
        return state

    def next_params(self, state: State, t: int, x: Tensor) -> Tensor:
        n, y = x.shape[0], state["y"]
        if state["cache"] is None:
            # No cache: re-run the network on the whole prefix (start, x_{o_1..o_{t-1}}).
            prefix = self.features(x[:, self.order[:t]])  # (n, t, d)
            return self._run(self._shifted(prefix), y)[:, -1]  # (n, P)
        if t == 0:
            prev = self.start.expand(n, 1, -1)  # (n, 1, d)
        else:
            prev = self.features(x[:, self.order[t - 1 : t]])  # (n, 1, d)
        h = self._tokens(prev, t, y)
        for block, cache in zip(self.blocks, state["cache"], strict=True):
            h = block.step(h, cache, t)
        return self.output(self.ln_f(h))[:, 0]  # (n, P)

    def _sample(
        self,
        n: int,
        y: Tensor | None,
        *,
        generator: torch.Generator | None = None,
        temperature: Temperature = 1.0,
        use_cache: Annotated[bool, Setting(
            "keep each step's keys and values (False: recompute the prefix, same samples)"
        )] = True,
    ) -> Tensor:
        """Ancestral sampling; ``use_cache=False`` recomputes the prefix at every step (the
        same samples, slower; kept for tests and the speed benchmark)."""
        state = self.init_state(n, y, use_cache=use_cache)
        return self._ancestral(n, y, state, generator, temperature)

    @classmethod
    def tiny_configs(cls) -> list[dict]:
        return [
            {"event_shape": (1, 8, 8), "num_levels": 17, "width": 16, "heads": 2,
             "depth": 1},
            {"event_shape": (1, 8, 8), "num_levels": 17, "width": 16, "heads": 2,
             "depth": 2, "num_classes": 3, "order": "random"},
            {"event_shape": (2,), "width": 16, "heads": 2, "depth": 1,
             "components": 2},
            {"event_shape": (2,), "width": 16, "heads": 2, "depth": 1,
             "components": 2, "num_classes": 3},
        ]
