r"""The RBM's partition function: exact by enumeration for small models, and its annealed
importance sampling (AIS) estimate with an error bar for the others.

``p(v) = exp(-F(v)) / Z`` with ``Z = sum_v exp(-F(v))``: a sum over ``L^D`` visible (or ``2^H``
hidden) configurations, which is what makes an RBM's likelihood intractable.

AIS (Neal 2001; Salakhutdinov & Murray 2008) anneals from a *base-rate* model ``p_A`` (no
hidden units: independent visible units with natural parameters ``base``, whose ``Z_A`` is a
product of per-unit sums) to the RBM ``p_B`` through the intermediate distributions

.. math::

    p^*_\beta(v) = m(v)\, e^{(1-\beta)\, base \cdot \phi(v) + \beta\, a \cdot \phi(v)}
        \prod_j \bigl(1 + e^{\beta (b_j + \phi(v)^\top W_{:j})}\bigr),
    \qquad 0 = \beta_0 < \beta_1 < \dots < \beta_T = 1,

where ``Z_0 = Z_A 2^H`` (the ``H`` hidden units are unconnected at ``beta = 0``). Each chain
starts at ``v_1 ~ p_A``, adds ``log p*_k(v_k) - log p*_{k-1}(v_k)`` to its log weight and moves
by one Gibbs sweep that leaves ``p_k`` invariant. The mean importance weight estimates
``Z_B / Z_0`` without bias; its log (what is reported) is biased low by about ``se^2 / 2``, so
``log p(x) = -F(x) - log Z`` is, in expectation, slightly overestimated. The error bar is the
delta-method standard error of ``log Z``: ``std(w) / (sqrt(M) mean(w))`` over the ``M`` chains.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor
from torch.nn import functional as F  # noqa: N812

from genlab import rand
from genlab.errors import ConfigError

if TYPE_CHECKING:
    from genlab.models.rbm.model import RBM

#: Most configurations :func:`exact_log_z` sums over (2^20).
MAX_ENUMERATION = 2**20


class AISEstimate(NamedTuple):
    """An AIS estimate of ``log Z`` (one per class for a conditional RBM).

    Attributes:
        log_z: The estimate, shape ``()`` or ``(num_classes,)``.
        stderr: Its standard error (delta method over the chains), same shape.
        ess: Effective sample size of the importance weights ``(sum w)^2 / sum w^2``, out of
            the number of chains; a small one means the error bar itself is unreliable.
    """

    log_z: Tensor
    stderr: Tensor
    ess: Tensor


def beta_schedule(temperatures: int, *, dtype: torch.dtype = torch.float64) -> Tensor:
    """Inverse temperatures ``beta_0 = 0 < ... < beta_T = 1``, shape ``(T + 1,)``.

    Spaced as in Salakhutdinov & Murray (2008): 500/14500 of the steps on [0, 0.5],
    4000/14500 on [0.5, 0.9] and the rest on [0.9, 1], where the distributions change fastest.
    """
    if temperatures < 3:
        raise ConfigError(f"Expected temperatures >= 3, but found {temperatures}.")
    first = max(1, round(temperatures * 500 / 14500))
    second = max(1, round(temperatures * 4000 / 14500))
    third = temperatures - first - second
    return torch.cat([
        torch.linspace(0.0, 0.5, first + 1, dtype=dtype),
        torch.linspace(0.5, 0.9, second + 1, dtype=dtype)[1:],
        torch.linspace(0.9, 1.0, third + 1, dtype=dtype)[1:],
    ])


@torch.no_grad()
def ais_log_z(model: RBM, *, chains: int = 100, temperatures: int = 1000,
              generator: torch.Generator | None = None) -> AISEstimate:
    """Estimate ``log Z`` of ``model`` (per class if conditional) by AIS from its base-rate
    model (``model.base_logits``, set from the data's level frequencies by ``initialize``).

    Arguments:
        model: The RBM.
        chains: Annealing runs M per class.
        temperatures: Intermediate distributions T.
        generator: Source of randomness.

    Returns:
        :class:`AISEstimate` with tensors of shape ``()`` (``(num_classes,)`` if conditional).

    References:
        Salakhutdinov & Murray, "On the quantitative analysis of deep belief networks",
        ICML 2008; Neal, "Annealed importance sampling", Statistics and Computing 2001.
    """
    units, classes = model.units, model.num_classes or 1
    y = torch.arange(classes, device=model.device).repeat_interleave(chains)  # (C M,)
    base = model.base_logits  # (D, K)
    visible_bias = model.visible_bias[y]  # (C M, D, K)
    # log Z_0 = log Z_A + H log 2: independent visible units, unconnected hidden units
    log_z0 = units.log_partition(base.double()).sum() + model.width * math.log(2.0)
    betas = beta_schedule(temperatures).tolist()
    v = units.sample(base.expand(len(y), *base.shape), generator)  # (C M, D) ~ p_A
    log_w = torch.zeros(len(y), dtype=torch.float64, device=model.device)
    for k in range(1, len(betas)):
        beta, previous = betas[k], betas[k - 1]
        s = model.hidden_input(v, y)  # (C M, H)
        bias_term = units.dot(visible_bias - base, v)  # (C M,)
        # log p*_k(v) - log p*_{k-1}(v)
        log_w += ((beta - previous) * bias_term
                  + (F.softplus(beta * s) - F.softplus(previous * s)).sum(1)).double()
        if k < len(betas) - 1:  # one Gibbs sweep that leaves p_k invariant
            h = rand.bernoulli(torch.sigmoid(beta * s), generator=generator)
            field = (1.0 - beta) * base + beta * (visible_bias + model.interaction(h))
            v = units.sample(field, generator)
    log_w = log_w.reshape(classes, chains)
    log_mean = torch.logsumexp(log_w, 1) - math.log(chains)  # (C,)
    w = torch.exp(log_w - log_w.max(1, keepdim=True).values)  # (C, M), the largest is 1
    stderr = w.std(1) / (math.sqrt(chains) * w.mean(1))
    ess = w.sum(1) ** 2 / (w**2).sum(1)
    shape = () if model.num_classes is None else (classes,)
    return AISEstimate((log_z0 + log_mean).float().reshape(shape),
                       stderr.float().reshape(shape), ess.float().reshape(shape))


def enumeration_size(model: RBM) -> tuple[str, int]:
    """The smaller side to enumerate, ``("hidden", 2^H)`` or ``("visible", L^D)``."""
    hidden = 2 ** model.width
    visible = model.num_levels ** model.visible_units
    return ("hidden", hidden) if hidden <= visible else ("visible", visible)


def exact_log_z(model: RBM) -> Tensor:
    """``log Z`` by summing over every configuration of the smaller layer, in float64.

    Over the hidden layer: ``log Z = logsumexp_h [b . h + sum_d A_d(a_d + W_d h)]`` (the
    visible units summed out in closed form); over the visible one: ``logsumexp_v -F(v)``.
    Differentiable in the parameters.

    Returns:
        Shape ``()``, or ``(num_classes,)`` for a conditional RBM.

    Raises:
        ConfigError: both sides have more than 2^20 configurations.
    """
    side, count = enumeration_size(model)
    if count > MAX_ENUMERATION:
        raise ConfigError(
            f"Expected at most 2^20 configurations of the smaller layer for exact "
            f"enumeration (at most 20 hidden units), but found {model.width} hidden units and "
            f"{model.num_levels}^{model.visible_units} visible configurations; use "
            "log_z_estimate (AIS)."
        )
    device, classes = model.device, model.num_classes or 1
    weight = model.weight.double()  # (D, K, H)
    out = []
    for c in range(classes):
        a, b = model.visible_bias[c].double(), model.hidden_bias[c].double()  # (D, K), (H,)
        terms = []
        for configs in _configurations(side, model, device):
            if side == "hidden":  # configs: (m, H) in {0, 1}
                field = a + torch.einsum("mh,dkh->mdk", configs, weight)
                terms.append(configs @ b + model.units.log_partition(field).sum(1))
            else:  # configs: (m, D) levels
                phi = model.units.features(configs)  # (m, D, K)
                s = b + phi.flatten(1) @ weight.flatten(0, 1)  # (m, H)
                terms.append((phi * a).flatten(1).sum(1) + model.units.log_base(configs)
                             + F.softplus(s).sum(1))
        out.append(torch.logsumexp(torch.cat(terms), 0))
    log_z = torch.stack(out).float()
    return log_z[0] if model.num_classes is None else log_z


def _configurations(side: str, model: RBM, device: torch.device, chunk: int = 2**14):
    """Every configuration of one layer, in float64 chunks of at most ``chunk`` rows."""
    size, base = (model.width, 2) if side == "hidden" else (model.visible_units,
                                                            model.num_levels)
    total = base**size
    powers = base ** torch.arange(size, device=device)  # digit d of index i: (i // base^d) % base
    for start in range(0, total, chunk):
        index = torch.arange(start, min(total, start + chunk), device=device)
        yield ((index[:, None] // powers) % base).double()  # (m, size)
