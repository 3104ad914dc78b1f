"""Masked layers: a weight matrix or kernel multiplied by a fixed 0/1 mask.

Masking is how one network computes every conditional ``p(x_i | x_<i)`` in a single parallel
pass: a connection is kept only if it cannot carry information from ``x_j`` (``j >= i``) to
the output for ``x_i``. The masks are registered as buffers, so they travel with the weights
in ``model.safetensors`` and a loaded model has exactly the connectivity it was trained with.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MaskedLinear(nn.Linear):
    """``y = (W * M) x + b`` with a fixed mask ``M`` of shape ``(out_features, in_features)``."""

    def __init__(self, in_features: int, out_features: int, mask: Tensor, bias: bool = True):
        super().__init__(in_features, out_features, bias=bias)
        self.register_buffer("mask", mask.to(self.weight.dtype))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


def made_mask(degrees_in: Tensor, degrees_out: Tensor, *, strict: bool) -> Tensor:
    """MADE connectivity (Germain et al. 2015, eq. 12-13).

    Unit k of a layer with degree ``m(k)`` may feed unit k' of the next layer when
    ``m'(k') >= m(k)`` (hidden layers) or ``m'(k') > m(k)`` (``strict``, the output layer and
    the direct input-to-output connection), so output ``d`` sees only inputs of smaller degree.

    Returns:
        Float mask of shape ``(len(degrees_out), len(degrees_in))``.
    """
    out, inp = degrees_out[:, None], degrees_in[None, :]
    return (out > inp if strict else out >= inp).float()


def conv_mask(
    out_channels: int,
    in_channels: int,
    kernel_size: tuple[int, int],
    *,
    mask_type: str,
    groups: int,
) -> Tensor:
    """Raster-scan mask of a PixelCNN convolution (van den Oord et al. 2016).

    Kernel taps above the centre row, and left of the centre on the centre row, see pixels
    earlier in raster order and are kept; taps after the centre are zeroed. At the centre tap
    the image channels are ordered too: channels are split into ``groups`` contiguous blocks
    (one per image channel, e.g. R, G, B) and output block g may see input block g' when
    ``g' < g`` (type ``"A"``, the first layer: x_i must not see itself) or ``g' <= g``
    (type ``"B"``, later layers, whose features at the centre already exclude x_i).

    Returns:
        Float mask of shape ``(out_channels, in_channels, kh, kw)``.
    """
    kh, kw = kernel_size
    ch, cw = kh // 2, kw // 2
    mask = torch.zeros(out_channels, in_channels, kh, kw)
    mask[:, :, :ch, :] = 1.0  # rows above the centre
    mask[:, :, ch, :cw] = 1.0  # left of the centre on the centre row
    g_out = torch.arange(out_channels) * groups // out_channels
    g_in = torch.arange(in_channels) * groups // in_channels
    if mask_type == "A":
        centre = g_out[:, None] > g_in[None, :]
    else:
        centre = g_out[:, None] >= g_in[None, :]
    mask[:, :, ch, cw] = centre.float()
    return mask


class MaskedConv2d(nn.Conv2d):
    """A 'same'-padded convolution whose kernel is multiplied by a fixed mask."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, int],
                 mask: Tensor) -> None:
        kh, kw = kernel_size
        super().__init__(in_channels, out_channels, kernel_size, padding=(kh // 2, kw // 2))
        self.register_buffer("mask", mask.to(self.weight.dtype))

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)
