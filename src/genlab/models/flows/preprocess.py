r"""Logit preprocessing of data in the unit cube (Dinh et al. 2017, Sec. 4.1).

Discrete pixels are first dequantized to :math:`u = (x + \epsilon)/L \in [0, 1)^D`
(``genlab.data.transforms``); the flow then models :math:`v = \mathrm{logit}(\alpha +
(1 - 2\alpha) u)`, which lives on all of :math:`\mathbb{R}^D` where Gaussians and affine
couplings are at home. The map is a bijection like any other, so its log-determinant is
counted and the reported bits/dim are an honest bound on the discrete likelihood.

Direction (latent to data, like every bijection): ``forward`` maps :math:`v` to
:math:`u = (\sigma(v) - \alpha)/(1 - 2\alpha)`; ``inverse`` is the logit preprocessing.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from genlab.models.flows.bijections import Bijection, sum_except_batch


class Logit(Bijection):
    r"""``forward``: :math:`u = (\sigma(v) - \alpha)/(1-2\alpha)`; ``inverse``: its logit.

    Arguments:
        alpha: Margin in ``[0, 0.5)`` keeping the logit away from :math:`\pm\infty` at the
            edges of the cube.
    """

    def __init__(self, alpha: float = 0.05) -> None:
        super().__init__()
        self.alpha = float(alpha)

    def forward_and_ladj(self, v: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        a = self.alpha
        u = (torch.sigmoid(v) - a) / (1.0 - 2.0 * a)
        # d sigma(v)/dv = sigma(v) sigma(-v); log-sigmoids stay finite for any v.
        log_grad = F.logsigmoid(v) + F.logsigmoid(-v) - math.log(1.0 - 2.0 * a)
        return u, sum_except_batch(log_grad)

    def inverse_and_ladj(self, u: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        a = self.alpha
        p = a + (1.0 - 2.0 * a) * u
        v = torch.log(p) - torch.log1p(-p)
        log_grad = math.log(1.0 - 2.0 * a) - torch.log(p) - torch.log1p(-p)
        return v, sum_except_batch(log_grad)
