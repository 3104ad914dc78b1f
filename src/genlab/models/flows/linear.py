r"""Linear mixing between layers: fixed permutations and an invertible LU linear map.

Both act on dim 1 (the features of a vector, the channels of an image); on images the LU
map is Glow's invertible 1x1 convolution.

LU parametrisation (Kingma & Dhariwal 2018): :math:`W = P L (U + \mathrm{diag}(\sigma e^{v}))`
with :math:`P` a fixed permutation, :math:`L` unit lower-triangular, :math:`U` strictly upper
triangular and fixed signs :math:`\sigma`, so :math:`\log|\det W| = \sum_i v_i` costs O(c)
and the inverse is two triangular solves.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genlab.models.flows.bijections import Bijection


class Permutation(Bijection):
    """A fixed permutation of dim 1: ``x[:, i] = z[:, perm[i]]``; log-determinant 0.

    Arguments:
        perm: A permutation of ``range(c)`` (stored as a buffer, so it saves with the model).
    """

    def __init__(self, perm: Tensor) -> None:
        super().__init__()
        perm = torch.as_tensor(perm, dtype=torch.long)
        self.register_buffer("perm", perm)
        self.register_buffer("inv_perm", torch.argsort(perm))

    def forward_and_ladj(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return z[:, self.perm], z.new_zeros(z.shape[0])

    def inverse_and_ladj(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return x[:, self.inv_perm], x.new_zeros(x.shape[0])


class LULinear(Bijection):
    r"""Invertible linear map :math:`x = W z + b` on dim 1, with :math:`W` in LU form.

    Initialised at a random rotation (drawn from torch's global RNG), as in Glow.

    Arguments:
        channels: Size of dim 1.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        c = channels
        q, _ = torch.linalg.qr(torch.randn(c, c, dtype=torch.float64))
        p, lower, upper = torch.linalg.lu(q)
        diag = torch.diagonal(upper)
        dtype = torch.get_default_dtype()
        self.register_buffer("p", p.to(dtype))
        self.register_buffer("sign", torch.sign(diag).to(dtype))
        self.lower = nn.Parameter(torch.tril(lower, -1).to(dtype))
        self.upper = nn.Parameter(torch.triu(upper, 1).to(dtype))
        self.log_diag = nn.Parameter(torch.log(diag.abs()).to(dtype))
        self.bias = nn.Parameter(torch.zeros(c, dtype=dtype))
        self.register_buffer("eye", torch.eye(c, dtype=dtype))

    def _factors(self) -> tuple[Tensor, Tensor]:
        lower = torch.tril(self.lower, -1) + self.eye
        upper = torch.triu(self.upper, 1) + torch.diag(self.sign * self.log_diag.exp())
        return lower, upper

    def weight(self) -> Tensor:
        """The matrix :math:`W = P L U`, shape ``(c, c)``."""
        lower, upper = self._factors()
        return self.p @ lower @ upper

    def _mix(self, w: Tensor, v: Tensor) -> Tensor:
        # Multiply dim 1 of v by w: (n, c, ...) -> (n, c, ...).
        return torch.movedim(torch.movedim(v, 1, -1) @ w.T, -1, 1)

    def _ladj(self, v: Tensor) -> Tensor:
        spatial = v[0, 0].numel()
        return (spatial * self.log_diag.sum()).expand(v.shape[0])

    def forward_and_ladj(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        b = self.bias.reshape(1, -1, *([1] * (z.dim() - 2)))
        return self._mix(self.weight(), z) + b, self._ladj(z)

    def inverse_and_ladj(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        lower, upper = self._factors()
        # W^{-1} = U^{-1} L^{-1} P^T, from two triangular solves on the (c, c) identity.
        l_inv = torch.linalg.solve_triangular(lower, self.eye, upper=False, unitriangular=True)
        w_inv = torch.linalg.solve_triangular(upper, l_inv @ self.p.T, upper=True)
        b = self.bias.reshape(1, -1, *([1] * (x.dim() - 2)))
        return self._mix(w_inv, x - b), -self._ladj(x)
