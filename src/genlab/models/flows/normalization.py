r"""ActNorm: a per-channel affine map initialised from data (Kingma & Dhariwal, Glow, 2018).

Forward (latent to data): :math:`x = z \odot e^{\log\sigma} + \mu` per channel (dim 1), so
:math:`\log|\det \partial x / \partial z| = S \sum_c \log\sigma_c` with :math:`S` the number
of spatial positions (1 for vectors).

Data-dependent initialisation: the first inverse pass in training mode (or an explicit
:meth:`ActNorm.initialize_from`) sets :math:`\mu, \sigma` to the batch mean and standard
deviation, so the layer's output on data starts standardised. Whether this happened is the
``initialized`` **buffer**, saved with the weights: a loaded model is never re-initialised
(a bug of libraries that keep it as a plain attribute).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genlab.models.flows.bijections import Bijection


class ActNorm(Bijection):
    """Per-channel scale and shift with data-dependent initialisation.

    Arguments:
        channels: Size of dim 1 of the input (features of a vector, channels of an image).
        eps: Added to the standard deviation at initialisation.
    """

    def __init__(self, channels: int, *, eps: float = 1e-6) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(channels))
        self.shift = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialized", torch.tensor(False))
        self.eps = eps

    def _view(self, p: Tensor, x: Tensor) -> Tensor:
        return p.reshape(1, -1, *([1] * (x.dim() - 2)))  # (1, c, 1, ..., 1)

    def _ladj(self, x: Tensor) -> Tensor:
        spatial = x[0, 0].numel()  # positions sharing each channel's parameters
        return (spatial * self.log_scale.sum()).expand(x.shape[0])

    @torch.no_grad()
    def initialize_from(self, x: Tensor) -> None:
        """Set shift and scale so that ``inverse(x)`` has zero mean and unit variance."""
        dims = [d for d in range(x.dim()) if d != 1]
        self.shift.copy_(x.mean(dim=dims))
        self.log_scale.copy_(torch.log(x.std(dim=dims) + self.eps))
        self.initialized.fill_(True)

    def forward_and_ladj(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x = z * self._view(self.log_scale.exp(), z) + self._view(self.shift, z)
        return x, self._ladj(z)

    def inverse_and_ladj(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self.training and not bool(self.initialized) and x.shape[0] > 1:
            self.initialize_from(x)
        z = (x - self._view(self.shift, x)) * self._view(torch.exp(-self.log_scale), x)
        return z, -self._ladj(x)
