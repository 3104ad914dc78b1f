r"""Masked autoregressive flow layer (MAF; Papamakarios, Pavlakou, Murray, 2017).

Each coordinate is an affine function of the latent, with scale and shift computed by a
MADE from the coordinates before it in the autoregressive order:

.. math::
    x_i = z_i \exp(s_i(x_{<i})) + t_i(x_{<i}), \qquad
    z_i = (x_i - t_i(x_{<i})) \exp(-s_i(x_{<i})).

The inverse (data to latent, used by ``log_prob``) is one MADE pass; the forward (sampling)
needs D passes, one per coordinate. The Jacobian is triangular, so
:math:`\log|\det \partial x/\partial z| = \sum_i s_i`. Use :class:`~.bijections.Inverse`
for the fast-sampling direction (IAF).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from genlab.models.flows.bijections import Bijection
from genlab.models.flows.coupling import soft_clamp
from genlab.models.flows.nets import MADE


class MaskedAutoregressive(Bijection):
    """Affine autoregressive layer on vectors of shape ``(n, D)``.

    Arguments:
        features: D.
        width: Units of each hidden layer of the MADE.
        depth: Number of hidden layers of the MADE.
        context_dim: Size of the context (0 for none).
        order: Autoregressive position of each input (a permutation of ``range(D)``);
            default ``0..D-1``. Saved with the model as the MADE's mask buffers.
        activation: Activation of the MADE.
        scale_bound: Bound of the soft-clamped log-scale.
    """

    def __init__(
        self,
        features: int,
        *,
        width: int = 64,
        depth: int = 2,
        context_dim: int = 0,
        order: Sequence[int] | None = None,
        activation: str = "relu",
        scale_bound: float = 3.0,
    ) -> None:
        super().__init__()
        self.made = MADE(
            features,
            2,
            width=width,
            depth=depth,
            context_dim=context_dim,
            order=order,
            activation=activation,
        )
        self.features = features
        self.scale_bound = float(scale_bound)

    def _scale_shift(self, x: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor]:
        params = self.made(x, context)  # (n, 2, D)
        return soft_clamp(params[:, 0], self.scale_bound), params[:, 1]

    def inverse_and_ladj(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        s, t = self._scale_shift(x, context)
        return (x - t) * torch.exp(-s), -s.sum(dim=-1)

    def forward_and_ladj(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        # After pass k the first k coordinates (in autoregressive order) are final.
        x = torch.zeros_like(z)
        for _ in range(self.features):
            s, t = self._scale_shift(x, context)
            x = z * torch.exp(s) + t
        s, _ = self._scale_shift(x, context)
        return x, s.sum(dim=-1)
