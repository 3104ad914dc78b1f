"""Multilayer-perceptron generator and discriminator features, for vector data.

The generator maps noise ``z ~ N(0, I)`` (with a label embedding concatenated for a
class-conditional model) through ReLU layers to a point in the model's data space; the
discriminator's feature network uses leaky ReLUs so that its input gradients, which the
generator learns from, do not vanish on half the space.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn


class MLPGenerator(nn.Module):
    """``G(z, y)``: noise (and label) to a flat vector reshaped to ``event_shape``.

    Arguments:
        latent_size: Size of z.
        event_shape: Shape of one output sample.
        hidden: Hidden layer widths.
        num_classes: Number of class labels (label embedding concatenated to z); None for G(z).
        tanh: Squash the output into (-1, 1) (discrete data live on level centres there).
        batchnorm: Batch normalisation before each ReLU (training batches use their own
            statistics; sampling uses the running averages).
    """

    def __init__(
        self,
        latent_size: int,
        event_shape: Sequence[int],
        hidden: Sequence[int],
        *,
        num_classes: int | None = None,
        tanh: bool = False,
        batchnorm: bool = False,
    ) -> None:
        super().__init__()
        self.event_shape = tuple(event_shape)
        self.embed = nn.Embedding(num_classes, latent_size) if num_classes is not None else None
        width = latent_size * (2 if num_classes is not None else 1)
        layers: list[nn.Module] = []
        for h in hidden:
            layers.append(nn.Linear(width, h, bias=not batchnorm))
            layers += [nn.BatchNorm1d(h), nn.ReLU()] if batchnorm else [nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, math.prod(self.event_shape)))
        if tanh:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(y)], dim=1)  # (b, 2 * latent_size)
        return self.net(z).reshape(-1, *self.event_shape)  # (b, *event_shape)


def mlp_features(in_dim: int, hidden: Sequence[int]) -> tuple[nn.Module, int]:
    """phi for the discriminator: flatten, then Linear + LeakyReLU(0.2) per hidden width.

    Returns:
        The module and its output size (``in_dim`` when ``hidden`` is empty: a linear
        discriminator, as logistic regression).
    """
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_dim
    for h in hidden:
        layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
        width = h
    return nn.Sequential(*layers), width
