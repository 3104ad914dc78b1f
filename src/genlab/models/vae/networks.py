"""Encoder and decoder networks of the VAE: fully connected (any data) or convolutional
(images). Both take an optional class embedding (the conditional VAE).

The encoder maps ``x`` ``(n, *event_shape)`` (and the condition ``c`` ``(n, condition_size)``)
to the posterior's mean and log-variance ``(n, latent_size)`` each; the decoder maps ``z``
``(n, latent_size)`` (and ``c``) to the likelihood's parameters ``(n, P, *event_shape)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from genlab.errors import ConfigError


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """``[flatten(x), c] -> (mean, log_var)`` through ``depth`` hidden layers of ``width``."""

    def __init__(self, event_shape: Sequence[int], latent_size: int, *, width: int, depth: int,
                 condition_size: int) -> None:
        super().__init__()
        d = math.prod(event_shape)
        self.net = _mlp([d + condition_size, *[width] * depth, 2 * latent_size])

    def forward(self, x: Tensor, c: Tensor | None) -> tuple[Tensor, Tensor]:
        h = x.flatten(1)  # (n, D)
        if c is not None:
            h = torch.cat([h, c], dim=1)
        mean, log_var = self.net(h).chunk(2, dim=1)  # (n, latent_size) each
        return mean, log_var


class MLPDecoder(nn.Module):
    """``[z, c] -> params`` ``(n, P, *event_shape)`` through ``depth`` hidden layers."""

    def __init__(self, event_shape: Sequence[int], latent_size: int, params: int, *,
                 width: int, depth: int, condition_size: int) -> None:
        super().__init__()
        self.shape = (params, *event_shape)
        self.net = _mlp([latent_size + condition_size, *[width] * depth, math.prod(self.shape)])

    def forward(self, z: Tensor, c: Tensor | None) -> Tensor:
        h = z if c is None else torch.cat([z, c], dim=1)
        return self.net(h).reshape(-1, *self.shape)


def _check_image(event_shape: Sequence[int], depth: int) -> tuple[int, int, int]:
    if len(event_shape) != 3:
        raise ConfigError(
            f"Expected images of shape (c, h, w) for the convolutional VAE, but found "
            f"event_shape {tuple(event_shape)}; use network='mlp'."
        )
    c, h, w = event_shape
    if h % 2**depth or w % 2**depth:
        raise ConfigError(
            f"Expected image height and width divisible by 2^depth = {2**depth} for the "
            f"convolutional VAE, but found {h} x {w}."
        )
    return c, h, w


class ConvEncoder(nn.Module):
    """A 3x3 convolution, then ``depth`` stride-2 convolutions (each halving the size and
    doubling the channels), then a linear map of ``[features, c]`` to ``(mean, log_var)``."""

    def __init__(self, event_shape: Sequence[int], latent_size: int, *, width: int, depth: int,
                 condition_size: int) -> None:
        super().__init__()
        channels, h, w = _check_image(event_shape, depth)
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.SiLU()]
        for i in range(depth):
            layers += [nn.Conv2d(width * 2**i, width * 2 ** (i + 1), 4, stride=2, padding=1),
                       nn.SiLU()]
        self.features = nn.Sequential(*layers)
        size = width * 2**depth * (h // 2**depth) * (w // 2**depth)
        self.head = nn.Linear(size + condition_size, 2 * latent_size)

    def forward(self, x: Tensor, c: Tensor | None) -> tuple[Tensor, Tensor]:
        h = self.features(x).flatten(1)  # (n, features)
        if c is not None:
            h = torch.cat([h, c], dim=1)
        mean, log_var = self.head(h).chunk(2, dim=1)
        return mean, log_var


class ConvDecoder(nn.Module):
    """The encoder mirrored: a linear map of ``[z, c]`` to a ``(h / 2^depth, w / 2^depth)``
    feature map, ``depth`` stride-2 transposed convolutions, a 3x3 convolution to ``P * c``
    channels, viewed as ``(n, P, c, h, w)``."""

    def __init__(self, event_shape: Sequence[int], latent_size: int, params: int, *,
                 width: int, depth: int, condition_size: int) -> None:
        super().__init__()
        channels, h, w = _check_image(event_shape, depth)
        self.start = (width * 2**depth, h // 2**depth, w // 2**depth)
        self.head = nn.Sequential(nn.Linear(latent_size + condition_size, math.prod(self.start)),
                                  nn.SiLU())
        layers: list[nn.Module] = []
        for i in reversed(range(depth)):
            layers += [nn.ConvTranspose2d(width * 2 ** (i + 1), width * 2**i, 4, stride=2,
                                          padding=1), nn.SiLU()]
        layers.append(nn.Conv2d(width, params * channels, 3, padding=1))
        self.body = nn.Sequential(*layers)
        self.shape = (params, channels, h, w)

    def forward(self, z: Tensor, c: Tensor | None) -> Tensor:
        h = self.head(z if c is None else torch.cat([z, c], dim=1))
        return self.body(h.reshape(-1, *self.start)).reshape(-1, *self.shape)
