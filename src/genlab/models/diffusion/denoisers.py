"""Denoising networks: ``net(x_t, t, y) -> prediction`` of the same shape as ``x_t``.

The prediction is eps, x0 or v, as the model's ``prediction`` setting says; the network does
not know which. Both networks see the step index t through a sinusoidal embedding (Vaswani et
al. 2017, as used by Ho et al. 2020) and, when conditional, a learned class embedding with one
extra "null" class (index ``num_classes``) for classifier-free guidance.

* :class:`MLPDenoiser` for vectors (2-D toy data, flattened anything): residual MLP blocks.
* :class:`UNetDenoiser` for images ``(c, h, w)``: residual blocks with group norm, self-
  attention at the lowest resolution, skip connections across each resolution (Ronneberger et
  al. 2015; Ho et al. 2020, app. B).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.errors import ConfigError
from genlab.models.diffusion.conditional import Context, CrossAttention
from genlab.nn.embedding import sinusoidal_embedding

#: Largest feature-map side (pixels) with cross-attention to condition tokens: the 8 x 8 and
#: 4 x 4 levels of the digits, where a word such as "thin" or "leaning" acts on the shape.
CROSS_ATTENTION_SIZE = 8


class TimeClassEmbedding(nn.Module):
    """Embedding of the step index t (and class y): sinusoid -> MLP, plus a class vector.

    t is rescaled to ``1000 t / T`` so that the sinusoid sees the same range for every T.
    """

    def __init__(self, num_timesteps: int, dim: int, num_classes: int | None) -> None:
        super().__init__()
        self.num_timesteps = num_timesteps
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        # One extra row: the "no label" class used for classifier-free guidance.
        self.classes = None if num_classes is None else nn.Embedding(num_classes + 1, dim)

    def forward(self, t: Tensor, y: Tensor | None) -> Tensor:
        emb = self.mlp(sinusoidal_embedding(t * (1000.0 / self.num_timesteps), self.dim))
        if self.classes is not None:
            if y is None:
                raise ConfigError("Expected class labels y for a conditional denoiser.")
            emb = emb + self.classes(y)
        return emb  # (n, dim)


class ResidualMLPBlock(nn.Module):
    """``h + W2 silu(W1 silu(LayerNorm h) + E emb)``: the time code enters every block."""

    def __init__(self, width: int, emb_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.emb = nn.Linear(emb_dim, width)
        self.fc2 = nn.Linear(width, width)

    def forward(self, h: Tensor, emb: Tensor) -> Tensor:
        r = self.fc1(F.silu(self.norm(h))) + self.emb(F.silu(emb))
        return h + self.fc2(F.silu(r))


class MLPDenoiser(nn.Module):
    """Residual MLP for data of any shape, flattened to D numbers.

    Arguments:
        event_shape: Shape of one sample.
        num_timesteps: T (for the time embedding's scale).
        num_classes: Number of classes for a conditional model, or None.
        width: Units of the hidden layers (and of the time embedding).
        depth: Number of residual blocks.
    """

    def __init__(
        self,
        event_shape: Sequence[int],
        num_timesteps: int,
        num_classes: int | None = None,
        *,
        width: int = 128,
        depth: int = 3,
    ) -> None:
        super().__init__()
        self.event_shape = tuple(event_shape)
        dim = math.prod(self.event_shape)
        self.embed = TimeClassEmbedding(num_timesteps, width, num_classes)
        self.emb_dim = width
        self.inp = nn.Linear(dim, width)
        self.blocks = nn.ModuleList(ResidualMLPBlock(width, width) for _ in range(depth))
        self.out = nn.Linear(width, dim)

    def features(self, x: Tensor, t: Tensor, y: Tensor | None = None,
                 context: Context | None = None) -> Tensor:
        """The residual stream after the last block: ``(n, width)``."""
        emb = self.embed(t, y)  # (n, width)
        if context is not None and context.vector is not None:
            emb = emb + context.vector
        h = self.inp(x.reshape(x.shape[0], -1))  # (n, width)
        for block in self.blocks:
            h = block(h, emb)
        return h

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None,
                context: Context | None = None) -> Tensor:
        h = self.features(x, t, y, context)  # (n, width)
        # No normalisation on the residual stream: it carries x linearly, so the output can
        # follow x_t far into the tails (eps ~ x_t at high noise) instead of saturating.
        return self.out(h).reshape(x.shape)  # (n, *event_shape)


def _groups(channels: int, max_groups: int = 8) -> int:
    """The largest group count <= ``max_groups`` that divides ``channels``."""
    return max(g for g in range(1, max_groups + 1) if channels % g == 0)


class ResBlock(nn.Module):
    """GroupNorm -> SiLU -> conv3x3, add the time code per channel, again, plus a skip.

    With ``film`` the code gives a scale and a shift of the second normalised feature map,
    ``GroupNorm(h) (1 + scale) + shift`` (FiLM, Perez et al. 2018; the adaptive group norm of
    Dhariwal and Nichol 2021), so a condition can gate channels, not only offset them.
    """

    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float = 0.0,
                 film: bool = False) -> None:
        super().__init__()
        self.film = film
        self.norm1 = nn.GroupNorm(_groups(c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * c_out if film else c_out)
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (n, c_out, h, w)
        code = self.emb(F.silu(emb))[:, :, None, None]
        if self.film:
            scale, shift = code.chunk(2, dim=1)  # (n, c_out, 1, 1) each
            h = self.norm2(h) * (1 + scale) + shift
        else:
            h = self.norm2(h + code)
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Multi-head self-attention over the h*w positions of a feature map, with a residual."""

    def __init__(self, channels: int, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads if channels % heads == 0 else 1
        self.norm = nn.GroupNorm(_groups(channels), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(n, 3, self.heads, c // self.heads, h * w)
        q, k, v = qkv.transpose(-1, -2).unbind(1)  # each (n, heads, h w, c / heads)
        out = F.scaled_dot_product_attention(q, k, v)  # (n, heads, h w, c / heads)
        out = out.transpose(-1, -2).reshape(n, c, h, w)
        return x + self.proj(out)


class UNetDenoiser(nn.Module):
    """A small UNet for images of shape ``(c, h, w)``.

    Resolution level i has ``width * channel_mults[i]`` channels and ``depth`` residual
    blocks; each level but the last halves the resolution (strided conv). The
    lowest resolution has self-attention after every block and a middle block of
    ResBlock-attention-ResBlock. The way up mirrors the way down, each block concatenating
    the matching feature map from the way down (skip connection), then upsampling (nearest +
    conv).

    Arguments:
        event_shape: ``(c, h, w)``; h and w divisible by ``2^(len(channel_mults) - 1)``.
        num_timesteps: T (for the time embedding's scale).
        num_classes: Number of classes for a conditional model, or None.
        width: Channels at full resolution.
        channel_mults: Channel multiplier per resolution level.
        depth: Residual blocks per level on the way down.
        dropout: Dropout inside the residual blocks.
        extra_channels: Condition channels concatenated to the input (image conditions).
        context_dim: Feature size of condition tokens: a cross-attention layer follows every
            residual block at resolutions of at most ``CROSS_ATTENTION_SIZE`` (None: none).
        film: Residual blocks scale and shift their features by the embedding (FiLM)
            instead of only shifting them.

    Raises:
        ConfigError: ``event_shape`` is not ``(c, h, w)`` or h, w cannot be halved enough.
    """

    def __init__(
        self,
        event_shape: Sequence[int],
        num_timesteps: int,
        num_classes: int | None = None,
        *,
        width: int = 16,
        channel_mults: Sequence[int] = (1, 2),
        depth: int = 1,
        dropout: float = 0.0,
        extra_channels: int = 0,
        context_dim: int | None = None,
        film: bool = False,
    ) -> None:
        super().__init__()
        if len(event_shape) != 3:
            raise ConfigError(
                f"Expected event_shape (c, h, w) for the UNet denoiser, but found "
                f"{tuple(event_shape)}."
            )
        c, height, image_width = event_shape
        factor = 2 ** (len(channel_mults) - 1)
        if height % factor or image_width % factor:
            raise ConfigError(
                f"Expected image height and width divisible by {factor} for "
                f"{len(channel_mults)} UNet levels, but found {height}x{image_width}."
            )
        emb_dim = 4 * width
        self.emb_dim = emb_dim
        widths = [width * m for m in channel_mults]
        self.embed = TimeClassEmbedding(num_timesteps, emb_dim, num_classes)
        self.inp = nn.Conv2d(c + extra_channels, width, 3, padding=1)

        def block(c_in: int, c_out: int, level: int) -> list[nn.Module]:
            # a residual block, and cross-attention to the condition tokens at low resolution
            layers: list[nn.Module] = [ResBlock(c_in, c_out, emb_dim, dropout, film)]
            if context_dim is not None and \
                    max(height, image_width) >> level <= CROSS_ATTENTION_SIZE:
                layers.append(CrossAttention(c_out, context_dim))
            return layers

        self.down = nn.ModuleList()
        skips, c_now = [width], width
        for level, w in enumerate(widths):
            last = level == len(widths) - 1
            for _ in range(depth):
                self.down.extend(block(c_now, w, level))
                if last:
                    self.down.append(SelfAttention(w))
                c_now = w
                skips.append(c_now)
            if not last:
                self.down.append(nn.Conv2d(c_now, c_now, 3, stride=2, padding=1))
                skips.append(c_now)

        bottom = len(widths) - 1
        self.mid = nn.ModuleList(
            [*block(c_now, c_now, bottom), SelfAttention(c_now), *block(c_now, c_now, bottom)]
        )

        self.up = nn.ModuleList()
        for level in reversed(range(len(widths))):
            w = widths[level]
            for _ in range(depth + 1):
                self.up.extend(block(c_now + skips.pop(), w, level))
                if level == len(widths) - 1:
                    self.up.append(SelfAttention(w))
                c_now = w
            if level > 0:
                self.up.append(nn.Sequential(
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.Conv2d(c_now, c_now, 3, padding=1),
                ))
        self.out_norm = nn.GroupNorm(_groups(c_now), c_now)
        self.out = nn.Conv2d(c_now, c, 3, padding=1)

    def features(self, x: Tensor, t: Tensor, y: Tensor | None = None,
                 context: Context | None = None) -> Tensor:
        """The bottleneck (after the middle block), flattened: ``(n, C * h' * w')`` with C
        the last level's channels and ``h' x w'`` the lowest resolution."""
        h = self._down(*self._inputs(x, t, y, context), context)[0]  # (n, C, h', w')
        return h.reshape(h.shape[0], -1)

    def _inputs(self, x: Tensor, t: Tensor, y: Tensor | None, context: Context | None
                ) -> tuple[Tensor, Tensor]:
        """The input with any condition channels, and the embedding with any condition
        vector: ``(n, c + extra, h, w)`` and ``(n, 4 width)``."""
        emb = self.embed(t, y)  # (n, 4 width)
        if context is not None:
            if context.channels is not None:
                x = torch.cat([x, context.channels], dim=1)
            if context.vector is not None:
                emb = emb + context.vector
        return x, emb

    @staticmethod
    def _layer(layer: nn.Module, h: Tensor, emb: Tensor, context: Context | None) -> Tensor:
        if isinstance(layer, ResBlock):
            return layer(h, emb)
        if isinstance(layer, CrossAttention):
            return layer(h, context.tokens, context.mask)
        return layer(h)  # self-attention, down- or upsampling

    def _down(self, x: Tensor, emb: Tensor, context: Context | None = None
              ) -> tuple[Tensor, list[Tensor]]:
        """The way down and the middle block: the bottleneck and the skip features."""
        h = self.inp(x)  # (n, width, h, w)
        skips = [h]
        for layer in self.down:
            h = self._layer(layer, h, emb, context)
            if isinstance(layer, (SelfAttention, CrossAttention)):
                skips[-1] = h  # attention refines the block's output in place
            else:
                skips.append(h)
        for layer in self.mid:
            h = self._layer(layer, h, emb, context)
        return h, skips

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None,
                context: Context | None = None) -> Tensor:
        x, emb = self._inputs(x, t, y, context)
        h, skips = self._down(x, emb, context)
        for layer in self.up:
            if isinstance(layer, ResBlock):
                h = torch.cat([h, skips.pop()], dim=1)
            h = self._layer(layer, h, emb, context)
        return self.out(F.silu(self.out_norm(h)))  # (n, c, h, w)
