"""PixelCNN: masked convolutions over images in raster-scan order (van den Oord et al. 2016).

An image ``x`` of shape ``(c, h, w)`` is ordered row by row, pixel by pixel, channel by
channel, and

    p(x | y) = prod_{r, s} prod_k p(x_{k,r,s} | x_{:, <(r,s)}, x_{<k, r, s}, y).

A stack of convolutions whose kernels are masked (:func:`genlab.nn.masked.conv_mask`) computes all
factors at once: the first layer (mask A) hides the centre pixel itself, later layers (mask
B) may use the centre of the previous features, which already exclude it.

The gated variant (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN
Decoders") removes the blind spot of stacked masked kernels with two stacks: a vertical stack
``v`` that sees every row above, and a horizontal stack ``h`` that sees the current row to
the left and receives ``v``. Each layer computes

    v' = tanh(W_{v,f} * v + V_f y) . sigmoid(W_{v,g} * v + V_g y)
    h' = h + W_o (tanh(W_{h,f} * h + U_f (W_v * v) + V_f y) . sigmoid(... g ...))

with ``.`` the elementwise product and ``V y`` a label embedding (class-conditional model).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.errors import ConfigError
from genlab.models.autoregressive.core import AutoregressiveModel, Components
from genlab.models.autoregressive.made import InputEncoding, encode_values, resolve_encoding
from genlab.nn.masked import MaskedConv2d, conv_mask
from genlab.recipes import Recipe
from genlab.registry import register
from genlab.settings import Annotated, Setting


def vertical_mask(out_channels: int, in_channels: int, k: int, *, first: bool) -> Tensor:
    """Vertical-stack kernel: rows strictly above the centre (first layer) or rows up to and
    including the centre row (later layers, whose inputs already see only rows above)."""
    mask = torch.zeros(out_channels, in_channels, k, k)
    mask[:, :, : k // 2 + (0 if first else 1), :] = 1.0
    return mask


def raster_conv(in_channels: int, out_channels: int, kernel_size: tuple[int, int], *,
                mask_type: str, groups: int) -> MaskedConv2d:
    """A convolution that sees only earlier pixels (and channel groups) in raster order."""
    mask = conv_mask(out_channels, in_channels, kernel_size, mask_type=mask_type, groups=groups)
    return MaskedConv2d(in_channels, out_channels, kernel_size, mask)


def gate(a: Tensor) -> Tensor:
    """``tanh(a_f) * sigmoid(a_g)`` on interleaved channel pairs, which keeps each pair in
    one channel group: ``(n, 2F, h, w) -> (n, F, h, w)``."""
    return torch.tanh(a[:, 0::2]) * torch.sigmoid(a[:, 1::2])


class ResidualBlock(nn.Module):
    """relu -> 1x1 (B) -> relu -> 3x3 (B) -> relu -> 1x1 (B), plus the input."""

    def __init__(self, channels: int, groups: int, dropout: float) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            raster_conv(channels, channels, (k, k), mask_type="B", groups=groups)
            for k in (1, 3, 1)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        h = x
        for i, layer in enumerate(self.convs):
            if i == len(self.convs) - 1:
                h = self.dropout(h)
            h = layer(torch.relu(h))
        return x + h


class GatedLayer(nn.Module):
    """One gated layer over the (vertical, horizontal) pair of stacks.

    Besides a label, a layer may read conditioning maps ``s`` ``(n, S, h, w)`` through a
    1 x 1 convolution (``V * s`` of the paper, added at every pixel) and a condition vector
    through a linear map (a per-channel bias): both are computed from the condition alone,
    never from ``x``, so they may see all of it.
    """

    def __init__(self, in_channels: int, channels: int, k: int, *, first: bool, groups: int,
                 num_classes: int | None, dropout: float = 0.0, map_channels: int = 0,
                 vector_size: int = 0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        f2 = 2 * channels
        self.first = first
        self.v_conv = MaskedConv2d(in_channels, f2, (k, k),
                                   vertical_mask(f2, in_channels, k, first=first))
        # v only sees rows above, so it may feed every channel of h unmasked.
        self.v_to_h = nn.Conv2d(f2, f2, 1)
        self.h_conv = raster_conv(in_channels, f2, (1, k), mask_type="A" if first else "B",
                                  groups=groups)
        self.h_out = raster_conv(channels, channels, (1, 1), mask_type="B", groups=groups)
        self.label = nn.Embedding(num_classes, f2) if num_classes is not None else None
        self.cond_map = nn.Conv2d(map_channels, f2, 1) if map_channels else None
        self.cond_vector = nn.Linear(vector_size, f2) if vector_size else None

    def forward(self, v: Tensor, h: Tensor, y: Tensor | None, maps: Tensor | None = None,
                vector: Tensor | None = None) -> tuple[Tensor, Tensor]:
        v_pre = self.v_conv(v)  # (n, 2F, h, w)
        h_pre = self.h_conv(h) + self.v_to_h(v_pre)
        bias = 0.0
        if self.label is not None:
            bias = self.label(y)[:, :, None, None]  # (n, 2F, 1, 1)
        if self.cond_vector is not None:
            bias = bias + self.cond_vector(vector)[:, :, None, None]  # (n, 2F, 1, 1)
        if self.cond_map is not None:
            bias = bias + self.cond_map(maps)  # (n, 2F, h, w)
        v_pre, h_pre = v_pre + bias, h_pre + bias
        h_new = self.h_out(self.dropout(gate(h_pre)))
        return gate(v_pre), h_new if self.first else h + h_new


@register("pixelcnn")
class PixelCNN(AutoregressiveModel):
    """PixelCNN (plain residual or gated) for images of shape ``(c, h, w)``.

    Arguments:
        event_shape: ``(c, h, w)``.
        num_classes: Labels for p(x | y), or None.
        num_levels: Discrete levels (softmax outputs) or None (mixture of Gaussians).
        width: Feature channels of each layer (a multiple of c).
        depth: Residual blocks (plain) or gated layers after the first.
        kernel_size: Odd size of the first masked kernel (gated: of every kernel).
        gated: Use the gated two-stack architecture without a blind spot.
        components: Gaussians per dimension for continuous data.
        input_encoding: ``"auto"``, ``"onehot"`` or ``"value"``.
        dropout: Dropout probability inside each residual block or gated layer.
        conditions: Condition kinds (:mod:`genlab.conditioning`); ``("label",)`` is
            ``num_classes``, other kinds are read by ``cond_pixelcnn``.

    Example:
        >>> from genlab import create
        >>> model = create("pixelcnn", event_shape=(1, 4, 4), num_levels=3, width=8)
        >>> model.sample(2).shape
        torch.Size([2, 1, 4, 4])
    """

    has_encoder: ClassVar[bool] = True

    recipes: ClassVar[dict[str, Recipe]] = {
        "images": Recipe(
            params={"width": 64, "depth": 4, "kernel_size": 5, "gated": True,
                    "dropout": 0.2},
            train={"steps": 2000, "batch_size": 64, "lr": 2e-3, "warmup_steps": 50,
                   "patience": 8},
            quick={"steps": 40},
            showcase=True,
            quick_params={"width": 16, "depth": 2},
            note="bench/bench_autoregressive.py (digits test bits/pixel)",
        ),
    }

    def __init__(
        self,
        *,
        event_shape: tuple[int, ...],
        num_classes: int | None = None,
        num_levels: int | None = None,
        width: Annotated[int, Setting(
            "feature channels of each layer (a multiple of the image channels)", ge=1)] = 64,
        depth: Annotated[int, Setting(
            "residual blocks (plain) or gated layers after the first", ge=0)] = 5,
        kernel_size: Annotated[int, Setting(
            "odd size of the first masked kernel (gated: of every kernel)", ge=1)] = 7,
        gated: Annotated[bool, Setting(
            "gated two-stack architecture, without the blind spot")] = False,
        components: Components = 5,
        input_encoding: InputEncoding = "auto",
        dropout: Annotated[float, Setting(
            "dropout probability inside each residual block or gated layer", ge=0, lt=1)] = 0.0,
        conditions: Sequence[str] | None = None,
    ) -> None:
        super().__init__(
            event_shape=event_shape, num_classes=num_classes, num_levels=num_levels,
            components=components, order="natural", conditions=conditions,
        )
        if len(self.event_shape) != 3:
            raise ConfigError(
                f"Expected event_shape (c, h, w) for PixelCNN, but found {self.event_shape}."
            )
        c = self.event_shape[0]
        if kernel_size % 2 == 0:
            raise ConfigError(f"Expected an odd kernel_size, but found {kernel_size}.")
        if width % c:
            raise ConfigError(
                f"Expected width to be a multiple of the {c} image channels, but found {width}."
            )
        self.encoding = resolve_encoding(input_encoding, num_levels)
        e = num_levels if self.encoding == "onehot" else 1
        f, p, k = width, self.head.num_params, kernel_size
        self.gated = gated
        if gated:
            self.stack = nn.ModuleList(
                GatedLayer(c * e if i == 0 else f, f, k, first=i == 0, groups=c,
                           num_classes=num_classes, dropout=dropout)
                for i in range(depth + 1)
            )
        else:
            self.input = raster_conv(c * e, f, (k, k), mask_type="A", groups=c)
            self.blocks = nn.ModuleList(ResidualBlock(f, c, dropout) for _ in range(depth))
            if num_classes is not None:
                self.labels = nn.ModuleList(nn.Embedding(num_classes, f)
                                            for _ in range(depth + 1))
        self.out_hidden = raster_conv(f, f, (1, 1), mask_type="B", groups=c)
        self.out = raster_conv(f, c * p, (1, 1), mask_type="B", groups=c)

    def features(self, x: Tensor) -> Tensor:
        return encode_values(x, self.encoding, self.num_levels)  # (n, D, E)

    def hidden_state(self, features: Tensor, y: Tensor | None) -> Tensor:
        """The last hidden feature map ``(n, F, h, w)`` averaged over each quadrant of the
        image: ``(n, 4 F)``. Pixel ``(i, j)``'s features see the pixels before it in raster
        order, so the lower quadrants carry most of the image."""
        h = F.elu(self.out_hidden(F.elu(self._trunk(features, y))))  # (n, F, h, w)
        return F.adaptive_avg_pool2d(h, 2).reshape(h.shape[0], -1)  # (n, 4F)

    def _trunk(self, features: Tensor, y: Tensor | None) -> Tensor:
        """The masked stack on the input features: ``(n, F, h, w)``."""
        img = self._as_image(features)  # (n, c*E, h, w)
        if self.gated:
            v = h = img
            for layer in self.stack:
                v, h = layer(v, h, y)
        else:
            h = self.input(img)  # (n, F, h, w)
            if y is not None:
                h = h + self.labels[0](y)[:, :, None, None]
            for i, block in enumerate(self.blocks):
                h = block(h)
                if y is not None:
                    h = h + self.labels[i + 1](y)[:, :, None, None]
        return h

    def _as_image(self, features: Tensor) -> Tensor:
        """Per-position features ``(n, D, E)`` as an image ``(n, c*E, h, w)``."""
        n, e = features.shape[0], features.shape[-1]
        c, hh, ww = self.event_shape
        # channel k's E features form the k-th contiguous channel block (its mask group)
        img = features.reshape(n, c, hh, ww, e).permute(0, 1, 4, 2, 3)  # (n, c, E, h, w)
        return img.reshape(n, c * e, hh, ww)

    def network(self, features: Tensor, y: Tensor | None) -> Tensor:
        n = features.shape[0]
        c, hh, ww = self.event_shape
        # ELU rather than ReLU here: a narrow stack whose units all start negative would
        # otherwise pass no signal (and no gradient) at all.
        h = self.out(F.elu(self.out_hidden(F.elu(self._trunk(features, y)))))  # (n, c*P, h, w)
        p = self.head.num_params
        h = h.reshape(n, c, p, hh, ww).permute(0, 1, 3, 4, 2)  # (n, c, h, w, P)
        return h.reshape(n, self.event_dim, p)  # (n, D, P)

    @classmethod
    def tiny_configs(cls) -> list[dict]:
        return [
            {"event_shape": (1, 8, 8), "num_levels": 17, "width": 8, "depth": 1,
             "kernel_size": 3},
            {"event_shape": (1, 8, 8), "num_levels": 17, "width": 8, "depth": 1,
             "kernel_size": 3, "gated": True, "num_classes": 3},
            {"event_shape": (2, 4, 4), "width": 8, "depth": 1, "kernel_size": 3,
             "components": 2, "num_classes": 3},
            {"event_shape": (2, 4, 4), "width": 8, "depth": 1, "kernel_size": 3,
             "components": 2, "gated": True},
        ]
