"""Discriminator pieces shared by the MLP and convolutional GANs.

* :func:`pack_samples`: PacGAN packing. The discriminator judges ``m`` samples at once, all
  real or all generated; a collapsed generator's packs look alike, so the discriminator sees
  the missing diversity (Lin et al., "PacGAN", 2018).
* :class:`MinibatchDiscrimination`: features that measure how close each sample is to the
  others in the batch (Salimans et al., "Improved Techniques for Training GANs", 2016).
* :class:`Discriminator`: a feature network, then a linear head, plus the projection term
  ``<embed(y), phi(x)>`` for class-conditional models (Miyato & Koyama, "cGANs with
  Projection Discriminator", 2018).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from genlab.errors import ShapeError


def pack_samples(x: Tensor, pack: int) -> Tensor:
    """Group ``pack`` consecutive samples into one along the first event axis.

    ``(b, d)`` becomes ``(b // pack, pack * d)``; images ``(b, c, h, w)`` become
    ``(b // pack, pack * c, h, w)``. A remainder of fewer than ``pack`` samples is dropped.

    Raises:
        ShapeError: the batch holds fewer than ``pack`` samples.
    """
    if pack == 1:
        return x
    groups = x.shape[0] // pack
    if groups == 0:
        raise ShapeError(
            f"Expected a batch of at least pack={pack} samples for the packed discriminator, "
            f"but found {x.shape[0]}."
        )
    return x[: groups * pack].reshape(groups, pack * x.shape[1], *x.shape[2:])


def add_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectrally normalise every linear and convolution layer inside ``module`` (in place).

    Each weight is divided by its largest singular value, estimated by one power iteration per
    training forward pass; the power-iteration vectors are buffers, so they are saved with the
    model and a resumed run continues exactly (Miyato et al., "Spectral Normalization", 2018).
    """
    for name, child in list(module.named_children()):
        if isinstance(child, (nn.Linear, nn.Conv2d)):
            setattr(module, name, spectral_norm(child))
        else:
            add_spectral_norm(child)
    return module


class MinibatchDiscrimination(nn.Module):
    """Append, for each sample, its closeness to the other samples of the batch.

    With ``M_i = f_i T`` reshaped to ``(B, C)`` rows, the ``B`` new features of sample ``i``
    are ``o_i = sum_{j != i} exp(-||M_i - M_j||_1)`` (L1 over the ``C`` columns): large when
    many samples are alike, which is what a collapsed generator produces.

    Arguments:
        in_features: A, the feature size of ``f``.
        out_features: B, the number of closeness features added.
        kernel_dim: C, the size of each projected row.
    """

    def __init__(self, in_features: int, out_features: int, kernel_dim: int = 8) -> None:
        super().__init__()
        self.out_features = out_features
        self.kernel_dim = kernel_dim
        self.T = nn.Parameter(torch.randn(in_features, out_features * kernel_dim) * 0.1)

    def forward(self, f: Tensor) -> Tensor:
        m = (f @ self.T).reshape(-1, self.out_features, self.kernel_dim)  # (b, B, C)
        dist = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(-1)  # (b, b, B)
        o = torch.exp(-dist).sum(1) - 1.0  # (b, B), minus exp(0) = 1 for j = i
        return torch.cat([f, o], dim=1)  # (b, A + B)


class Discriminator(nn.Module):
    """``l(x, y) = w^T phi(x) + b + <embed(y), phi(x)>`` on packed inputs.

    Arguments:
        features: phi, maps packed inputs to ``(b // pack, feature_dim)``.
        feature_dim: Output size of ``features``.
        num_classes: Number of classes for the projection term; None for unconditional.
        pack: Samples per discriminator output (1 = no packing).
        minibatch_features: Number of minibatch-discrimination features (0 = off).
        spectral_norm: Spectrally normalise every linear and convolution layer.
    """

    def __init__(
        self,
        features: nn.Module,
        feature_dim: int,
        *,
        num_classes: int | None = None,
        pack: int = 1,
        minibatch_features: int = 0,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        self.pack = pack
        self.features = features
        self.minibatch = (
            MinibatchDiscrimination(feature_dim, minibatch_features)
            if minibatch_features > 0
            else None
        )
        head_dim = feature_dim + minibatch_features
        self.head = nn.Linear(head_dim, 1)
        self.embed = nn.Embedding(num_classes, head_dim) if num_classes is not None else None
        if self.embed is not None:
            nn.init.normal_(self.embed.weight, std=0.02)
        if spectral_norm:
            add_spectral_norm(self)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Outputs (logits or critic scores) of shape ``(b // pack,)`` for inputs ``(b, ...)``."""
        h = self.features(pack_samples(x, self.pack))  # (b', feature_dim)
        if self.minibatch is not None:
            h = self.minibatch(h)  # (b', feature_dim + B)
        out = self.head(h).squeeze(1)  # (b',)
        if self.embed is not None and y is not None:
            # Projection: one embedding per label, averaged over the samples of a pack.
            e = self.embed(y[: h.shape[0] * self.pack])  # (b' * pack, head_dim)
            e = e.reshape(h.shape[0], self.pack, -1).mean(1)  # (b', head_dim)
            out = out + (e * h).sum(1)
        return out
