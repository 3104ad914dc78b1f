r"""RealNVP affine coupling, exactly as the course writes it, and its masks.

With a mask choosing the kept coordinates :math:`A` (the course's :math:`1{:}d`) and the
transformed ones :math:`B` (:math:`d{+}1{:}D`), the forward map (latent to data) is

.. math::
    x_A = z_A, \qquad x_B = z_B \odot \exp(s(z_A)) + t(z_A),

with :math:`s, t` neural networks. Its inverse needs no inverse of :math:`s` or :math:`t`:
:math:`z_B = (x_B - t(x_A)) \odot \exp(-s(x_A))`, and the Jacobian is triangular, so
:math:`\log|\det \partial x / \partial z| = \sum_j s_j(z_A)`.

The scale is stabilised by a soft clamp :math:`s = b \tanh(\tilde s / b)` (``scale_bound``
:math:`b`): a layer can stretch by at most :math:`e^{b}`, which keeps training from blowing up
and keeps extreme inputs finite.

References:
    Dinh, Sohl-Dickstein, Bengio, "Density estimation using Real NVP", 2017.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from genlab import rand
from genlab.models.flows.bijections import Bijection, sum_except_batch
from genlab.models.flows.nets import ConvNet
from genlab.nn.mlp import MLP


def soft_clamp(s: Tensor, bound: float) -> Tensor:
    """``bound * tanh(s / bound)``: the identity near 0, smoothly bounded by ``+-bound``."""
    return bound * torch.tanh(s / bound)


# ---------------------------------------------------------------------------------- masks
# A mask is a bool tensor of the event shape; True marks the kept coordinates A.


def alternating_mask(features: int, parity: int) -> Tensor:
    """Keep every other coordinate: ``i % 2 == parity``; shape ``(features,)``."""
    return torch.arange(features) % 2 == parity


def random_mask(features: int, generator: torch.Generator) -> Tensor:
    """Keep a random half (``features // 2``) of the coordinates; shape ``(features,)``."""
    keep = rand.randperm(features, generator=generator)[: features // 2]
    mask = torch.zeros(features, dtype=torch.bool)
    mask[keep] = True
    return mask


def checkerboard_mask(shape: Sequence[int], parity: int) -> Tensor:
    """Keep pixels with ``(i + j) % 2 == parity`` in every channel; shape ``(c, h, w)``."""
    c, h, w = shape
    i = torch.arange(h)[:, None]
    j = torch.arange(w)[None, :]
    return ((i + j) % 2 == parity).expand(c, h, w).clone()


def channel_mask(shape: Sequence[int], parity: int) -> Tensor:
    """Keep the first (parity 0) or second (parity 1) half of the channels; ``(c, h, w)``."""
    c, h, w = shape
    first = torch.arange(c) < c // 2
    return (first if parity == 0 else ~first)[:, None, None].expand(c, h, w).clone()


# ---------------------------------------------------------------------------------- layers


class Partition(torch.nn.Module):
    """Split ``x`` of shape ``(n, D)`` into kept and transformed coordinates, and merge back.

    Index lists are buffers (saved with the model). Common masks (a first/second half,
    alternating coordinates) are also recognised as slices, which avoids gather and scatter
    ops in the training step; other masks fall back to indexing.

    Arguments:
        mask: Bool tensor of shape ``(D,)``, True for kept coordinates.
    """

    def __init__(self, mask: Tensor) -> None:
        super().__init__()
        mask = mask.bool()
        kept = mask.nonzero().squeeze(1)
        changed = (~mask).nonzero().squeeze(1)
        self.register_buffer("kept", kept)
        self.register_buffer("changed", changed)
        # x = cat([x_A, x_B])[:, unshuffle] puts the two halves back in place.
        self.register_buffer("unshuffle", torch.argsort(torch.cat([kept, changed])))
        self.sizes = (kept.numel(), changed.numel())
        self._a, self._b = _as_slice(kept), _as_slice(changed)
        self._merge = "index"
        if self._a is not None and self._b is not None:
            d, a, b = mask.numel(), self._a, self._b
            if a.step == 1 and b.step == 1:
                self._merge = "cat" if a.start == 0 else "cat_swapped"
            elif a.step == 2 and b.step == 2 and d % 2 == 0:
                self._merge = "interleave" if a.start == 0 else "interleave_swapped"

    def split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self._merge == "index":
            return x[:, self.kept], x[:, self.changed]
        return x[:, self._a], x[:, self._b]

    def merge(self, a: Tensor, b: Tensor) -> Tensor:
        kind = self._merge
        if kind == "cat":
            return torch.cat([a, b], dim=1)
        if kind == "cat_swapped":
            return torch.cat([b, a], dim=1)
        if kind == "interleave":
            return torch.stack([a, b], dim=2).reshape(a.shape[0], -1)  # (n, D)
        if kind == "interleave_swapped":
            return torch.stack([b, a], dim=2).reshape(a.shape[0], -1)
        return torch.cat([a, b], dim=1)[:, self.unshuffle]


def _as_slice(index: Tensor) -> slice | None:
    """``index`` as a slice if it is an arithmetic progression with step 1 or 2."""
    values = index.tolist()
    if not values:
        return None
    step = values[1] - values[0] if len(values) > 1 else 1
    if step not in (1, 2) or values != list(range(values[0], values[-1] + 1, step)):
        return None
    return slice(values[0], values[-1] + 1, step)


class AffineCoupling(Bijection):
    """RealNVP affine coupling on vectors of shape ``(n, D)``, split by a mask.

    The kept coordinates are split off (not zeroed), so the MLP sees only the ``d`` inputs
    it depends on and outputs ``s`` and ``t`` for the ``D - d`` others.

    Arguments:
        mask: Bool tensor of shape ``(D,)``, True for kept coordinates (at least one of each).
        width: Units of each hidden layer of the MLP computing ``[s, t]``.
        depth: Number of hidden layers of the MLP.
        context_dim: Size of the context fed to the MLP (0 for none).
        activation: Activation of the MLP.
        scale_bound: Bound ``b`` of the soft-clamped log-scale ``s``.
    """

    def __init__(
        self,
        mask: Tensor,
        *,
        width: int = 64,
        depth: int = 2,
        context_dim: int = 0,
        activation: str = "relu",
        scale_bound: float = 3.0,
    ) -> None:
        super().__init__()
        self.partition = Partition(mask)
        d_kept, d_changed = self.partition.sizes
        self.net = MLP(
            d_kept,
            2 * d_changed,
            width=width,
            depth=depth,
            context_dim=context_dim,
            activation=activation,
        )
        self.scale_bound = float(scale_bound)

    def _scale_shift(self, a: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor]:
        s, t = self.net(a, context).chunk(2, dim=-1)  # (n, D - d) each
        return soft_clamp(s, self.scale_bound), t

    def forward_and_ladj(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        z_a, z_b = self.partition.split(z)
        s, t = self._scale_shift(z_a, context)
        x_b = z_b * torch.exp(s) + t  # x_B = z_B * exp(s(z_A)) + t(z_A)
        return self.partition.merge(z_a, x_b), s.sum(dim=-1)

    def inverse_and_ladj(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x_a, x_b = self.partition.split(x)
        s, t = self._scale_shift(x_a, context)
        z_b = (x_b - t) / torch.exp(s)  # z_B = (x_B - t(x_A)) * exp(-s(x_A))
        return self.partition.merge(x_a, z_b), -s.sum(dim=-1)


class MaskedAffineCoupling(Bijection):
    """RealNVP affine coupling on images ``(n, c, h, w)`` with a checkerboard or channel mask.

    The conv net sees the image with the transformed pixels zeroed,
    ``x_A = mask * x``, and its ``s, t`` are used only where the mask is 0.

    Arguments:
        mask: Bool tensor of shape ``(c, h, w)``, True for kept pixels.
        width: Channels of each hidden layer of the conv net.
        depth: Number of hidden layers of the conv net.
        context_dim: Size of the context, broadcast over pixels (0 for none).
        activation: Activation of the conv net.
        scale_bound: Bound of the soft-clamped log-scale.
    """

    def __init__(
        self,
        mask: Tensor,
        *,
        width: int = 32,
        depth: int = 2,
        context_dim: int = 0,
        activation: str = "relu",
        scale_bound: float = 3.0,
    ) -> None:
        super().__init__()
        c = mask.shape[0]
        self.register_buffer("mask", mask.to(torch.get_default_dtype()))
        self.net = ConvNet(
            c,
            2 * c,
            width=width,
            depth=depth,
            context_dim=context_dim,
            activation=activation,
        )
        self.scale_bound = float(scale_bound)

    def _scale_shift(self, a: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor]:
        s, t = self.net(a, context).chunk(2, dim=1)  # (n, c, h, w) each
        free = 1.0 - self.mask
        return soft_clamp(s, self.scale_bound) * free, t * free

    def forward_and_ladj(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        z_a = z * self.mask
        s, t = self._scale_shift(z_a, context)
        x = z_a + (1.0 - self.mask) * (z * torch.exp(s) + t)
        return x, sum_except_batch(s)

    def inverse_and_ladj(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x_a = x * self.mask
        s, t = self._scale_shift(x_a, context)
        z = x_a + (1.0 - self.mask) * ((x - t) * torch.exp(-s))
        return z, -sum_except_batch(s)
