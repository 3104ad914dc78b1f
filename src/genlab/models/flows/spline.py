r"""Rational-quadratic spline coupling (neural spline flow; Durkan et al., 2019).

On :math:`[-B, B]` the map is a monotone rational-quadratic spline with ``bins`` K bins whose
widths, heights and knot derivatives come from a network; outside it is the identity (linear
tails, boundary derivatives 1). In bin k, with :math:`\theta = (x - x_k)/w_k`,
:math:`\delta_k = h_k / w_k` and knot derivatives :math:`d_k, d_{k+1}`,

.. math::
    g(x) = y_k + \frac{h_k (\delta_k \theta^2 + d_k \theta (1-\theta))}
                      {\delta_k + (d_{k+1} + d_k - 2\delta_k)\theta(1-\theta)},

    g'(x) = \frac{\delta_k^2 (d_{k+1}\theta^2 + 2\delta_k\theta(1-\theta) + d_k (1-\theta)^2)}
                 {(\delta_k + (d_{k+1} + d_k - 2\delta_k)\theta(1-\theta))^2},

and :math:`g^{-1}` solves a quadratic in :math:`\theta`.

Stability: inputs are **clamped into** :math:`[-B, B]` **before** any spline term is computed,
and the tail mask picks the identity afterwards. Masking only afterwards still evaluates the
spline out of its domain, which gives NaN values and NaN gradients through ``where`` (a bug
seen in several libraries). The quadratic's discriminant is clamped at 0.

Direction: the data-to-latent map (``inverse``, run by ``log_prob``) is the closed-form
:math:`g`; sampling runs :math:`g^{-1}`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from genlab.models.flows.bijections import Bijection
from genlab.models.flows.coupling import Partition
from genlab.nn.mlp import MLP

MIN_WIDTH = 1e-3
MIN_HEIGHT = 1e-3
MIN_DERIVATIVE = 1e-3
# softplus(c) + MIN_DERIVATIVE = 1: a zero network output gives derivative 1 (identity spline).
_DERIVATIVE_SHIFT = math.log(math.expm1(1.0 - MIN_DERIVATIVE))


def _knots(raw: Tensor, bound: float, minimum: float) -> tuple[Tensor, Tensor]:
    """Bin sizes from unnormalised logits ``(..., K)``: knots ``(..., K+1)`` and sizes."""
    k = raw.shape[-1]
    frac = minimum + (1.0 - minimum * k) * torch.softmax(raw, dim=-1)
    knots = F.pad(torch.cumsum(frac, dim=-1), (1, 0))  # (..., K+1), from 0 to 1
    knots = 2.0 * bound * knots - bound
    # Pin the end knots exactly, so the spline meets the tails with no rounding gap.
    knots = torch.cat(
        [
            knots.new_full(knots[..., :1].shape, -bound),
            knots[..., 1:-1],
            knots.new_full(knots[..., :1].shape, bound),
        ],
        dim=-1,
    )
    return knots, knots[..., 1:] - knots[..., :-1]


def _gather(t: Tensor, idx: Tensor) -> Tensor:
    return t.gather(-1, idx).squeeze(-1)


def rational_quadratic_spline(
    x: Tensor,
    widths: Tensor,
    heights: Tensor,
    derivatives: Tensor,
    *,
    bound: float,
    inverse: bool = False,
) -> tuple[Tensor, Tensor]:
    r"""Monotone rational-quadratic spline on :math:`[-B, B]`, identity outside.

    Arguments:
        x: Inputs of any shape ``(...)``.
        widths: Unnormalised bin widths, shape ``(..., K)``.
        heights: Unnormalised bin heights, shape ``(..., K)``.
        derivatives: Unconstrained interior knot derivatives, shape ``(..., K - 1)``.
        bound: B, half the width of the spline's domain.
        inverse: Compute :math:`g^{-1}` instead of :math:`g`.

    Returns:
        The outputs, shape ``(...)``, and the elementwise log-derivative of the map that was
        computed (:math:`\log g'` or :math:`\log (g^{-1})'`), shape ``(...)``.
    """
    inside = (x >= -bound) & (x <= bound)
    x_in = x.clamp(-bound, bound)  # clamp BEFORE any spline term: no out-of-domain math

    xs, w = _knots(widths, bound, MIN_WIDTH)  # (..., K+1), (..., K)
    ys, h = _knots(heights, bound, MIN_HEIGHT)
    d = MIN_DERIVATIVE + F.softplus(derivatives + _DERIVATIVE_SHIFT)
    d = F.pad(d, (1, 1), value=1.0)  # (..., K+1); 1 at both ends, matching the linear tails

    # Bin index: the last knot whose position is <= the input, in [0, K-1].
    knots = ys if inverse else xs
    idx = torch.searchsorted(
        knots[..., 1:-1].contiguous(), x_in[..., None].contiguous(), right=True
    )  # (..., 1)
    x_k, w_k = _gather(xs, idx), _gather(w, idx)
    y_k, h_k = _gather(ys, idx), _gather(h, idx)
    d_k, d_k1 = _gather(d, idx), _gather(d[..., 1:], idx)
    delta = h_k / w_k
    curv = d_k1 + d_k - 2.0 * delta

    if inverse:
        dy = x_in - y_k
        a = h_k * (delta - d_k) + dy * curv
        b = h_k * d_k - dy * curv
        c = -delta * dy
        disc = (b * b - 4.0 * a * c).clamp_min(0.0)
        theta = ((2.0 * c) / (-b - torch.sqrt(disc))).clamp(0.0, 1.0)
        out = x_k + theta * w_k
    else:
        theta = ((x_in - x_k) / w_k).clamp(0.0, 1.0)
        out = y_k + h_k * (delta * theta**2 + d_k * theta * (1 - theta)) / (
            delta + curv * theta * (1 - theta)
        )
    tt = theta * (1.0 - theta)
    denom = delta + curv * tt
    log_grad = (
        2.0 * torch.log(delta)
        + torch.log(d_k1 * theta**2 + 2.0 * delta * tt + d_k * (1.0 - theta) ** 2)
        - 2.0 * torch.log(denom)
    )
    if inverse:
        log_grad = -log_grad
    out = torch.where(inside, out, x)
    log_grad = torch.where(inside, log_grad, torch.zeros_like(log_grad))
    return out, log_grad


class SplineCoupling(Bijection):
    """Coupling layer whose transformed coordinates go through a rational-quadratic spline.

    As in :class:`~.coupling.AffineCoupling`, the kept coordinates ``x_A`` pass unchanged and
    an MLP of them (and of the context) gives the spline parameters of each ``x_B``.

    Arguments:
        mask: Bool tensor of shape ``(D,)``, True for kept coordinates.
        bins: K, number of spline bins.
        bound: B, the spline acts on ``[-B, B]``; identity outside.
        width: Units of each hidden layer of the MLP.
        depth: Number of hidden layers of the MLP.
        context_dim: Size of the context (0 for none).
        activation: Activation of the MLP.
    """

    def __init__(
        self,
        mask: Tensor,
        *,
        bins: int = 8,
        bound: float = 5.0,
        width: int = 64,
        depth: int = 2,
        context_dim: int = 0,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.partition = Partition(mask)
        d_kept, d_changed = self.partition.sizes
        self.bins, self.bound = int(bins), float(bound)
        self.net = MLP(
            d_kept,
            d_changed * (3 * self.bins - 1),
            width=width,
            depth=depth,
            context_dim=context_dim,
            activation=activation,
        )

    def _spline(self, a: Tensor, b: Tensor, context: Tensor | None, inverse: bool):
        k = self.bins
        params = self.net(a, context).reshape(a.shape[0], b.shape[1], 3 * k - 1)  # (n, D-d, 3K-1)
        widths, heights, derivs = params[..., :k], params[..., k : 2 * k], params[..., 2 * k :]
        out, log_grad = rational_quadratic_spline(
            b, widths, heights, derivs, bound=self.bound, inverse=inverse
        )
        return out, log_grad.sum(dim=-1)

    def inverse_and_ladj(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x_a, x_b = self.partition.split(x)
        z_b, ladj = self._spline(x_a, x_b, context, inverse=False)
        return self.partition.merge(x_a, z_b), ladj

    def forward_and_ladj(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        z_a, z_b = self.partition.split(z)
        x_b, ladj = self._spline(z_a, z_b, context, inverse=True)
        return self.partition.merge(z_a, x_b), ladj
