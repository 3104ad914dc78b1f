"""A fully connected network with an optional context input, shared by the families.

The last layer starts at zero, so a fresh flow coupling or autoregressive layer built on it is
the identity map (a stable start, as in Glow).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.checks import check_choice

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


Layer = TypeVar("Layer", bound=nn.Module)


def zero_init(layer: Layer) -> Layer:
    """Set ``layer``'s weight and bias to zero and return it: a network ending in it outputs 0
    at the start, so the coupling or autoregressive layer built on it is the identity."""
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class MLP(nn.Module):
    """Fully connected network ``[x, context] -> out`` with ``depth`` hidden layers.

    Arguments:
        in_features: Size of ``x``.
        out_features: Size of the output.
        width: Units of each hidden layer.
        depth: Number of hidden layers (0: one linear map).
        context_dim: Size of the context appended to ``x`` (0 for none).
        activation: One of ``relu, leaky_relu, elu, silu, tanh``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        width: int = 64,
        depth: int = 2,
        context_dim: int = 0,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        check_choice("activation", activation, ACTIVATIONS)
        sizes = [in_features + context_dim, *[width] * depth, out_features]
        self.linears = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        zero_init(self.linears[-1])
        self.activation = _FUNCTIONS[activation]
        self.context_dim = context_dim

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        if self.context_dim:
            x = torch.cat([x, context], dim=-1)  # (n, in + context_dim)
        *hidden, last = self.linears
        for layer in hidden:
            x = self.activation(F.linear(x, layer.weight, layer.bias))
        return F.linear(x, last.weight, last.bias)
