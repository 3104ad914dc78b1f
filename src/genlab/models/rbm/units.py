r"""Visible units of an RBM over discrete data with ``L`` levels.

Every unit type is an exponential family in its *features* ``phi(v)`` (``K`` numbers per
visible unit) with a *base measure* ``m(v)``: given the field ``f = a + W h`` of shape
``(n, D, K)``, each visible unit is independent with

.. math::

    p(v_d = l \mid h) = m(l)\, \exp(\psi(l) \cdot f_d - A(f_d)),

where ``psi(l)`` (the level's features) and ``A`` (its log-partition) are the unit type's:

* ``binomial``: ``K = 1``, ``psi(l) = l``, ``m(l) = C(L-1, l)``, ``A(f) = (L-1) softplus(f)``:
  the unit is the number of successes in ``L - 1`` coin flips of probability ``sigmoid(f)``.
  One parameter per pixel and hidden unit, and an ordered scale (level 9 is near level 8).
  With ``L = 2`` it is the classic binary (Bernoulli) unit.
* ``categorical``: ``K = L``, ``psi(l) = onehot(l)``, ``m = 1``, ``A(f) = logsumexp(f)``: a
  softmax over the levels, ``L`` parameters per pixel and hidden unit, no order assumed.
  With ``L = 2`` it is again a binary unit (with a redundant parameter).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F  # noqa: N812

from genlab import rand
from genlab.errors import ConfigError

UNIT_TYPES = ("binomial", "categorical")


class VisibleUnits:
    """One visible unit type (see the module docstring) for data with ``num_levels`` levels.

    Arguments:
        kind: ``"binomial"`` or ``"categorical"``.
        num_levels: L, the number of levels of each visible unit (2 for binary data).
    """

    def __init__(self, kind: str, num_levels: int) -> None:
        if kind not in UNIT_TYPES:
            raise ConfigError(f"Expected visible units in {UNIT_TYPES}, but found {kind!r}.")
        self.kind = kind
        self.num_levels = num_levels
        #: K, features per visible unit.
        self.size = 1 if kind == "binomial" else num_levels
        trials = num_levels - 1
        levels = torch.arange(num_levels, dtype=torch.float64)
        if kind == "binomial":
            self._level_features = levels[:, None]  # (L, 1)
            self._level_log_base = (math.lgamma(trials + 1) - torch.lgamma(levels + 1)
                                    - torch.lgamma(trials - levels + 1))  # (L,) log C(L-1, l)
        else:
            self._level_features = torch.eye(num_levels, dtype=torch.float64)  # (L, L)
            self._level_log_base = torch.zeros(num_levels, dtype=torch.float64)

    def level_features(self, like: Tensor) -> Tensor:
        """``psi(l)`` of every level, shape ``(L, K)``, on ``like``'s device and dtype."""
        return self._level_features.to(like.device, like.dtype)

    def level_log_base(self, like: Tensor) -> Tensor:
        """``log m(l)`` of every level, shape ``(L,)``."""
        return self._level_log_base.to(like.device, like.dtype)

    def features(self, v: Tensor) -> Tensor:
        """``phi(v)``: levels ``(n, D)`` (floats holding integers) to features ``(n, D, K)``."""
        if self.kind == "binomial":
            return v.unsqueeze(-1)
        return F.one_hot(v.long(), self.num_levels).to(v.dtype)

    def project(self, v: Tensor, weight: Tensor) -> Tensor:
        """``phi(v)^T W`` of levels ``(n, D)`` and weights ``(D, K, H)``: shape ``(n, H)``.
        Categorical units pick one weight row per unit instead of multiplying by a one-hot
        vector (L times fewer operations)."""
        if self.kind == "binomial":
            return v @ weight[:, 0]
        # row d L + v_d of W viewed as (D L, H), summed over d: one embedding bag per sample
        offsets = torch.arange(weight.shape[0], device=v.device) * self.num_levels
        return F.embedding_bag(v.long() + offsets, weight.flatten(0, 1), mode="sum")

    def dot(self, a: Tensor, v: Tensor) -> Tensor:
        """``sum_d a_d . phi(v_d)`` of natural parameters ``(n, D, K)`` (or ``(D, K)``) and
        levels ``(n, D)``: shape ``(n,)``."""
        a = a.expand(len(v), *a.shape[-2:])
        if self.kind == "binomial":
            return (a[..., 0] * v).sum(1)
        return a.gather(2, v.long()[..., None]).sum((1, 2))

    def level_weight(self, weight: Tensor) -> Tensor:
        """``W_d psi(l)``, each level's weights, shape ``(D, L, H)`` from ``(D, K, H)``."""
        if self.kind == "binomial":
            return self.level_features(weight)[None, :, 0, None] * weight  # l * W_d
        return weight

    def log_base(self, v: Tensor) -> Tensor:
        """``sum_d log m(v_d)`` of levels ``(n, D)``, shape ``(n,)``."""
        return self.level_log_base(v)[v.long()].sum(-1)

    def log_partition(self, field: Tensor) -> Tensor:
        """``A(f)`` of each unit: fields ``(..., D, K)`` to ``(..., D)`` (base measure included:
        ``A(f) = log sum_l m(l) exp(psi(l) . f)``)."""
        if self.kind == "binomial":
            return (self.num_levels - 1) * F.softplus(field[..., 0])
        return torch.logsumexp(field, dim=-1)

    def level_logits(self, field: Tensor) -> Tensor:
        """``log p(v_d = l | h)`` up to a constant: fields ``(..., D, K)`` to ``(..., D, L)``."""
        return field @ self.level_features(field).T + self.level_log_base(field)

    def sample(self, field: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Draw levels ``(n, D)`` (float) from ``p(v | h)`` given fields ``(n, D, K)``."""
        if self.kind == "binomial":
            # L - 1 coin flips per unit: exact, and it takes a generator (Binomial does not)
            p = torch.sigmoid(field)  # (n, D, 1)
            flips = rand.rand(*field.shape[:-1], self.num_levels - 1, generator=generator,
                               device=field.device, dtype=field.dtype)
            return (flips < p).sum(-1).to(field.dtype)
        # inverse CDF: the level is the number of cumulative probabilities below u
        cdf = torch.softmax(field, dim=-1).cumsum(-1)  # (n, D, L)
        u = rand.rand(*field.shape[:-1], 1, generator=generator, device=field.device,
                       dtype=field.dtype)
        return (cdf < u).sum(-1).clamp_max(self.num_levels - 1).to(field.dtype)

    def marginal_logits(self, v: Tensor, smoothing: float = 1.0) -> Tensor:
        """Natural parameters ``(D, K)`` of the factorial model that matches the per-pixel
        level frequencies of ``v`` ``(n, D)`` (``smoothing`` pseudo-counts per level): the
        base-rate model of annealed importance sampling, and the visible bias's start."""
        n = v.shape[0]
        if self.kind == "binomial":
            trials = self.num_levels - 1
            p = (v.sum(0) + smoothing) / (n * trials + 2 * smoothing)  # (D,)
            return torch.logit(p)[:, None]
        counts = F.one_hot(v.long(), self.num_levels).sum(0).to(v.dtype) + smoothing  # (D, L)
        return counts.log() - counts.log().mean(-1, keepdim=True)
