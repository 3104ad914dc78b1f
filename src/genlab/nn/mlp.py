"""A fully connected network with an optional context input, shared by the families.

The last layer starts at zero, so a fresh flow coupling or autoregressive layer built on it is
the identity map (a stable start, as in Glow).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.base import check_choice
from genlab.errors import ConfigError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}

# The MLP applies its activation as a function. ReLU works in place on the fresh output of
# each linear layer (its backward needs only its own output), which saves one allocation
# per layer; at the small sizes of most flows the step time is dominated by such overheads.
_FUNCTIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": lambda h: torch.relu_(h),
    "leaky_relu": lambda h: F.leaky_relu(h, 0.01, inplace=True),
    "elu": F.elu,
    "silu": F.silu,
    "tanh": torch.tanh,
}


def check_hidden(hidden: Sequence[int]) -> tuple[int, ...]:
    """Validate a list of hidden sizes (positive ints, at least one)."""
    try:
        sizes = tuple(int(h) for h in hidden)
    except (TypeError, ValueError):
        raise ConfigError(f"Expected hidden to be a list of ints, but found {hidden!r}.") from None
    if not sizes or any(h < 1 for h in sizes):
        raise ConfigError(f"Expected hidden to be non-empty positive sizes, but found {hidden!r}.")
    return sizes


class MLP(nn.Module):
    """Fully connected network ``[x, context] -> out`` with ``len(hidden)`` hidden layers.

    Arguments:
        in_features: Size of ``x``.
        out_features: Size of the output.
        hidden: Hidden layer sizes, e.g. ``(64, 64)``.
        context_dim: Size of the context appended to ``x`` (0 for none).
        activation: One of ``relu, leaky_relu, elu, silu, tanh``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        hidden: Sequence[int] = (64, 64),
        context_dim: int = 0,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        check_choice("activation", activation, ACTIVATIONS)
        sizes = [in_features + context_dim, *check_hidden(hidden), out_features]
        self.linears = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        nn.init.zeros_(self.linears[-1].weight)
        nn.init.zeros_(self.linears[-1].bias)
        self.activation = _FUNCTIONS[activation]
        self.context_dim = context_dim

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        if self.context_dim:
            x = torch.cat([x, context], dim=-1)  # (n, in + context_dim)
        *hidden, last = self.linears
        for layer in hidden:
            x = self.activation(F.linear(x, layer.weight, layer.bias))
        return F.linear(x, last.weight, last.bias)
