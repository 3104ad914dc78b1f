r"""Shape bijections for image flows: reshape, squeeze, and factoring out channels.

``Squeeze`` trades space for channels, :math:`(c, h, w) \to (4c, h/2, w/2)`, so that channel
masks can follow checkerboard masks (Dinh et al. 2017). ``FactorOut`` applies a sub-flow to
the first channels only; the others are left as they are, i.e. they are already latent
coordinates sent straight to the Gaussian: the multi-scale architecture, written so that the
latent keeps the data's shape. All three have log-determinant 0 except through the sub-flow.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from genlab.models.flows.bijections import Bijection


class Reshape(Bijection):
    """``x = z.reshape(n, *data_shape)``; ``inverse`` reshapes back to ``latent_shape``.

    Arguments:
        latent_shape: Event shape on the latent side (e.g. ``(64,)`` for a vector flow).
        data_shape: Event shape on the data side (e.g. ``(1, 8, 8)``).
    """

    def __init__(self, latent_shape: Sequence[int], data_shape: Sequence[int]) -> None:
        super().__init__()
        self.latent_shape = tuple(latent_shape)
        self.data_shape = tuple(data_shape)

    def forward_and_ladj(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return z.reshape(z.shape[0], *self.data_shape), z.new_zeros(z.shape[0])

    def inverse_and_ladj(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return x.reshape(x.shape[0], *self.latent_shape), x.new_zeros(x.shape[0])


def squeeze(x: Tensor) -> Tensor:
    """``(n, c, h, w) -> (n, 4c, h/2, w/2)``: each 2x2 patch becomes 4 channels."""
    n, c, h, w = x.shape
    x = x.reshape(n, c, h // 2, 2, w // 2, 2)
    x = x.permute(0, 1, 3, 5, 2, 4)  # (n, c, 2, 2, h/2, w/2)
    return x.reshape(n, 4 * c, h // 2, w // 2)


def unsqueeze(x: Tensor) -> Tensor:
    """Inverse of :func:`squeeze`: ``(n, 4c, h, w) -> (n, c, 2h, 2w)``."""
    n, c4, h, w = x.shape
    x = x.reshape(n, c4 // 4, 2, 2, h, w)
    x = x.permute(0, 1, 4, 2, 5, 3)  # (n, c, h, 2, w, 2)
    return x.reshape(n, c4 // 4, 2 * h, 2 * w)


class Squeeze(Bijection):
    """Latent ``(4c, h/2, w/2)`` to data ``(c, h, w)``: the forward *un*squeezes.

    Read from the data side (the inverse, as ``log_prob`` runs it), it squeezes each 2x2
    patch of the image into channels.
    """

    def forward_and_ladj(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return unsqueeze(z), z.new_zeros(z.shape[0])

    def inverse_and_ladj(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return squeeze(x), x.new_zeros(x.shape[0])


class FactorOut(Bijection):
    """Apply ``flow`` to the first ``channels`` channels; the rest pass through unchanged.

    Arguments:
        flow: Bijection on tensors of shape ``(n, channels, h, w)``.
        channels: Number of leading channels it transforms.
    """

    def __init__(self, flow: Bijection, channels: int) -> None:
        super().__init__()
        self.flow = flow
        self.channels = channels

    def forward_and_ladj(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        a, b = z[:, : self.channels], z[:, self.channels :]
        a, ladj = self.flow.forward_and_ladj(a, context)
        return torch.cat([a, b], dim=1), ladj

    def inverse_and_ladj(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        a, b = x[:, : self.channels], x[:, self.channels :]
        a, ladj = self.flow.inverse_and_ladj(a, context)
        return torch.cat([a, b], dim=1), ladj
