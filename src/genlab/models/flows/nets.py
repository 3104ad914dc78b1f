"""Conditioner networks of the flows: a MADE (masked MLP) and a small conv net.

The plain MLP is :class:`genlab.nn.mlp.MLP`; the masked layers and MADE masks are those of
:mod:`genlab.nn.masked`.

Each takes an optional ``context`` (an embedded class label, shape ``(n, context_dim)``) so
every layer of a conditional flow sees the label. The last layer starts at zero, so a fresh
coupling or autoregressive layer is the identity map (a stable start, as in Glow).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from genlab.checks import check_choice
from genlab.nn.masked import MaskedLinear, made_mask
from genlab.nn.mlp import ACTIVATIONS, zero_init


class ConvNet(nn.Module):
    """Small convolutional conditioner ``(n, c_in, h, w) -> (n, c_out, h, w)``.

    A 3x3 conv, ``depth - 1`` 1x1 convs, then a zero-initialised 3x3 conv; the context
    enters as extra input channels: a vector ``(n, context_dim)`` is broadcast over the
    pixels, maps ``(n, context_dim, h, w)`` (image conditions) are taken as they are.

    Arguments:
        in_channels: Channels of the input.
        out_channels: Channels of the output.
        width: Channels of each hidden layer.
        depth: Number of hidden layers (>= 1).
        context_dim: Size of the context (0 for none).
        activation: One of ``relu, leaky_relu, elu, silu, tanh``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        width: int = 32,
        depth: int = 2,
        context_dim: int = 0,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        check_choice("activation", activation, ACTIVATIONS)
        act = ACTIVATIONS[activation]
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels + context_dim, width, 3, padding=1),
            act(),
        ]
        for _ in range(depth - 1):
            layers += [nn.Conv2d(width, width, 1), act()]
        last = zero_init(nn.Conv2d(width, out_channels, 3, padding=1))
        self.net = nn.Sequential(*layers, last)
        self.context_dim = context_dim

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        if self.context_dim:
            n, _, h, w = x.shape
            if context.dim() == 2:
                context = context[:, :, None, None].expand(n, self.context_dim, h, w)
            x = torch.cat([x, context], dim=1)  # (n, c_in + context_dim, h, w)
        return self.net(x)


class MADE(nn.Module):
    r"""Masked autoencoder for distribution estimation (Germain et al. 2015).

    Output ``i`` depends only on inputs that come before ``i`` in ``order``, so
    :math:`\theta_i = \text{MADE}(x)_i` is a function of :math:`x_{<i}` and the Jacobian of
    an autoregressive map built on it is triangular. Context inputs feed every hidden unit.

    Arguments:
        features: D, the number of autoregressive inputs.
        params: Outputs per input (e.g. 2 for a shift and a log-scale).
        width: Units of each hidden layer.
        depth: Number of hidden layers.
        context_dim: Size of the context (0 for none).
        order: A permutation of ``range(D)``: ``order[k]`` is the position of input k in the
            autoregressive order (default: 0, 1, ..., D - 1).
        activation: One of ``relu, leaky_relu, elu, silu, tanh``.

    Returns (forward):
        Tensor of shape ``(n, params, D)``.

    References:
        Germain et al., "MADE: Masked Autoencoder for Distribution Estimation", 2015.
    """

    def __init__(
        self,
        features: int,
        params: int,
        *,
        width: int = 64,
        depth: int = 2,
        context_dim: int = 0,
        order: Sequence[int] | None = None,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        check_choice("activation", activation, ACTIVATIONS)
        d = features
        # Degrees: input k has degree order[k] + 1 in 1..D; a hidden unit of degree m sees
        # inputs of degree <= m; output k sees hidden units of degree < its input's degree.
        in_deg = torch.arange(d) + 1 if order is None else torch.as_tensor(order) + 1
        ctx_deg = torch.zeros(context_dim, dtype=torch.long)  # context feeds every unit
        prev = torch.cat([in_deg, ctx_deg])
        layers: list[nn.Module] = []
        for _ in range(depth):
            deg = torch.arange(width) % max(d - 1, 1) + 1  # degrees 1..D-1, cycled
            layers += [MaskedLinear(prev.numel(), width, made_mask(prev, deg, strict=False))]
            layers += [ACTIVATIONS[activation]()]
            prev = deg
        out_deg = in_deg.repeat(params)  # (params * D,), output p*D + k belongs to input k
        last = zero_init(
            MaskedLinear(prev.numel(), params * d, made_mask(prev, out_deg, strict=True))
        )
        self.net = nn.Sequential(*layers, last)
        self.features, self.params, self.context_dim = d, params, context_dim

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        if self.context_dim:
            x = torch.cat([x, context], dim=-1)  # (n, D + context_dim)
        return self.net(x).reshape(x.shape[0], self.params, self.features)  # (n, params, D)
