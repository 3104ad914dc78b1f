"""DCGAN generator (transposed convolutions) and convolutional discriminator features.

The course's picture: the discriminator is an image classifier (a CNN), and the generator is
"a reversed CNN": a linear layer lifts z to a small feature map, then each stride-2 transposed
convolution doubles the resolution while halving the channels (batch norm + ReLU between,
tanh at the end so pixels land in (-1, 1)) (Radford et al., "DCGAN", 2016).

Any image size works: the number of up-sampling stages is how often the height and width can
both be halved down to at least 2 pixels (at most 4 times): 8x8 from 2x2 in two stages,
28x28 from 7x7 in two, 32x32 from 2x2 in four.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def num_stages(height: int, width: int, max_stages: int = 4) -> int:
    """Number of stride-2 stages: halve both sides while they stay even and >= 2 after halving."""
    k = 0
    while k < max_stages and height % 2 == 0 and width % 2 == 0 and min(height, width) >= 4:
        height, width, k = height // 2, width // 2, k + 1
    return k


def stage_channels(channels: int, stages: int) -> list[int]:
    """Channels from the smallest feature map to the largest: ``channels * 2^(k - j)``."""
    return [channels * 2 ** (stages - j) for j in range(stages + 1)]


class DCGANGenerator(nn.Module):
    """``G(z, y)``: z (with a label embedding for a conditional model) to an image in (-1, 1).

    Arguments:
        latent_size: Size of z.
        event_shape: ``(c, h, w)`` of one image.
        channels: Channels of the last (full-resolution) feature map; doubled per stage below.
        num_classes: Number of class labels; None for G(z).
    """

    def __init__(
        self,
        latent_size: int,
        event_shape: Sequence[int],
        channels: int,
        *,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        c, h, w = event_shape
        k = num_stages(h, w)
        self.base = (h // 2**k, w // 2**k)
        chans = stage_channels(channels, k)
        self.embed = nn.Embedding(num_classes, latent_size) if num_classes is not None else None
        in_dim = latent_size * (2 if num_classes is not None else 1)
        self.project = nn.Linear(in_dim, chans[0] * self.base[0] * self.base[1], bias=False)
        self.bn0 = nn.BatchNorm2d(chans[0])
        blocks: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:], strict=True):
            # kernel 4, stride 2, padding 1: exactly doubles the height and width
            blocks += [
                nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(),
            ]
        self.blocks = nn.Sequential(*blocks)
        self.to_image = nn.Conv2d(chans[-1], c, 3, padding=1)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(y)], dim=1)  # (b, 2 * latent_size)
        h = self.project(z).reshape(z.shape[0], -1, *self.base)  # (b, c0, h / 2^k, w / 2^k)
        h = self.blocks(torch.relu(self.bn0(h)))  # (b, channels, h, w)
        return torch.tanh(self.to_image(h))  # (b, c, h, w)


def cnn_features(
    in_channels: int, height: int, width: int, channels: int
) -> tuple[nn.Module, int]:
    """phi for the discriminator: a 3x3 convolution, then stride-2 convolutions that halve the
    resolution and double the channels (leaky ReLU 0.2, no batch norm, so gradient penalties
    stay per-sample), then flatten.

    Returns:
        The module and its output size.
    """
    k = num_stages(height, width)
    chans = stage_channels(channels, k)[::-1]  # largest map first
    layers: list[nn.Module] = [nn.Conv2d(in_channels, chans[0], 3, padding=1), nn.LeakyReLU(0.2)]
    for c_in, c_out in zip(chans[:-1], chans[1:], strict=True):
        layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
    layers.append(nn.Flatten())
    return nn.Sequential(*layers), chans[-1] * (height // 2**k) * (width // 2**k)
