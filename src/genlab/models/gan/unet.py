"""pix2pix's two networks: a U-Net generator and a PatchGAN discriminator on pairs.

* :class:`UNetGenerator` ``G(c, v, z)``: the image conditions ``c`` ``(n, C, h, w)`` go down
  an encoder of stride-2 convolutions and come back up a decoder of transposed convolutions;
  each decoder stage also reads the encoder's map of the same resolution (the skip
  connections that let a sketch's exact stroke positions reach the output). The condition
  vector ``v`` (label, pooled text) and the noise ``z`` set a FiLM scale and shift of every
  decoder stage, and dropout in the decoder stays on when sampling (pix2pix's only noise).
* :class:`PatchDiscriminator` ``D(c, x)``: a convolutional classifier of the condition and
  the image stacked as channels, ending in a map of logits, one per overlapping patch (each
  patch judges whether the image is real *for this condition*); the vector enters through a
  projection term per patch.

References:
    Isola, Zhu, Zhou, Efros, "Image-to-Image Translation with Conditional Adversarial
    Networks", CVPR 2017; Ronneberger et al., "U-Net", 2015; Perez et al., "FiLM", 2018.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genlab import rand
from genlab.models.gan.conv import num_stages, stage_channels


def dropout(h: Tensor, p: float, generator: torch.Generator | None) -> Tensor:
    """Inverted dropout whose mask comes from ``generator``: pix2pix keeps it on when
    sampling, and a seeded generator must give the same samples."""
    if p == 0:
        return h
    keep = rand.rand(h.shape, generator=generator, device=h.device, dtype=h.dtype) >= p
    return h * keep / (1.0 - p)


class FiLM(nn.Module):
    """``h * (1 + gamma(v)) + beta(v)`` per channel; starts as the identity."""

    def __init__(self, vector_size: int, channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(vector_size, 2 * channels)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, h: Tensor, v: Tensor) -> Tensor:
        gamma, beta = self.linear(v)[:, :, None, None].chunk(2, dim=1)  # (n, c, 1, 1) each
        return h * (1.0 + gamma) + beta


class UNetGenerator(nn.Module):
    """``G(c, v, z)``: image conditions ``(n, C, h, w)`` to an image ``(n, c_out, h, w)`` in
    (-1, 1).

    Arguments:
        in_channels: C, channels of the image conditions (a constant plane if 0).
        out_channels: Channels of the image.
        height, width_px: Image size; the number of stride-2 stages is how often both halve
            (:func:`~genlab.models.gan.conv.num_stages`): 2 for 8 x 8.
        width: Channels of the full-resolution maps, doubled per stage down.
        vector_size: Size of the condition vector (0 for none).
        latent_size: Size of the noise z (0 for none).
        dropout: Dropout probability in the decoder, in training and sampling alike.
    """

    def __init__(self, in_channels: int, out_channels: int, height: int, width_px: int, *,
                 width: int, vector_size: int, latent_size: int, dropout: float) -> None:
        super().__init__()
        k = num_stages(height, width_px)
        chans = stage_channels(width, k)[::-1]  # full resolution first: w, 2w, 4w, ...
        self.in_channels = in_channels
        self.p = dropout
        self.stem = nn.Conv2d(max(in_channels, 1), chans[0], 3, padding=1)
        self.down = nn.ModuleList(nn.Conv2d(a, b, 4, stride=2, padding=1)
                                  for a, b in zip(chans[:-1], chans[1:], strict=True))
        # Up stage j reads the map below and the encoder's map of its resolution.
        self.up = nn.ModuleList(nn.ConvTranspose2d(b, a, 4, stride=2, padding=1)
                                for a, b in zip(chans[:-1], chans[1:], strict=True))
        self.merge = nn.ModuleList(nn.Conv2d(2 * a, a, 3, padding=1) for a in chans[:-1])
        film_size = vector_size + latent_size
        self.film = nn.ModuleList(FiLM(film_size, c) for c in chans) if film_size else None
        self.to_image = nn.Conv2d(chans[0], out_channels, 3, padding=1)

    def forward(self, c: Tensor | None, v: Tensor | None, z: Tensor | None, *,
                size: tuple[int, int, int] | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        """Arguments: ``c`` ``(n, C, h, w)`` (None if C = 0, then ``size`` = (n, h, w)),
        ``v`` ``(n, d)``, ``z`` ``(n, latent_size)``; returns ``(n, c_out, h, w)``."""
        if c is None:
            n, h, w = size
            c = torch.ones(n, 1, h, w, device=self.stem.weight.device)
        act = nn.functional.leaky_relu
        cond = [t for t in (v, z) if t is not None]
        vz = torch.cat(cond, dim=1) if cond else None  # (n, d + latent_size)
        skips = [act(self.stem(c), 0.2)]  # (n, w, h, w)
        for conv in self.down:
            skips.append(act(conv(skips[-1]), 0.2))  # halves the size, doubles the channels
        h = skips.pop()
        if self.film is not None:
            h = self.film[-1](h, vz)
        for j in reversed(range(len(self.up))):
            h = torch.relu(self.up[j](dropout(h, self.p, generator)))  # (n, chans[j], ...)
            h = torch.relu(self.merge[j](torch.cat([h, skips[j]], dim=1)))
            if self.film is not None:
                h = self.film[j](h, vz)
        return torch.tanh(self.to_image(h))  # (n, c_out, h, w)


class PatchDiscriminator(nn.Module):
    """``D(c, x)``: logits ``(n, P)`` of whether each patch of ``x`` is real for condition
    ``c``.

    A 3 x 3 convolution, stride-2 convolutions (all but the last of the U-Net's stages, so
    8 x 8 images give a 4 x 4 grid of patches), a 3 x 3 convolution, then a 1 x 1 logit
    per patch plus the projection ``<W v, phi_p>`` of the condition vector on each patch's
    features (Miyato and Koyama's projection discriminator, per patch).

    Arguments:
        in_channels: Channels of condition plus image.
        height, width_px: Image size.
        width: Channels of the first map, doubled per stride-2 stage.
        vector_size: Size of the condition vector (0 for none).
    """

    def __init__(self, in_channels: int, height: int, width_px: int, *, width: int,
                 vector_size: int) -> None:
        super().__init__()
        k = max(1, num_stages(height, width_px) - 1)
        chans = stage_channels(width, k)[::-1]
        layers: list[nn.Module] = [nn.Conv2d(in_channels, chans[0], 3, padding=1),
                                   nn.LeakyReLU(0.2)]
        for a, b in zip(chans[:-1], chans[1:], strict=True):
            layers += [nn.Conv2d(a, b, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        layers += [nn.Conv2d(chans[-1], chans[-1], 3, padding=1), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.logit = nn.Conv2d(chans[-1], 1, 1)
        self.project = nn.Linear(vector_size, chans[-1], bias=False) if vector_size else None

    def forward(self, c: Tensor | None, x: Tensor, v: Tensor | None) -> Tensor:
        pair = x if c is None else torch.cat([c, x], dim=1)  # (n, C + c_x, h, w)
        phi = self.features(pair)  # (n, F, h', w')
        out = self.logit(phi)  # (n, 1, h', w')
        if self.project is not None and v is not None:
            out = out + (self.project(v)[:, :, None, None] * phi).sum(1, keepdim=True)
        return out.flatten(1)  # (n, h' w')
