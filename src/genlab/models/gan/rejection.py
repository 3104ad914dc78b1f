"""Discriminator rejection sampling: use the trained discriminator to correct the generator.

For a fixed generator the optimal discriminator is ``D*(x) = p_data(x) / (p_data(x) + p_g(x))``,
so its logit is the log density ratio ``l*(x) = log p_data(x) - log p_g(x)``. Rejection sampling
from ``p_g`` with acceptance probability ``exp(l(x) - M)``, ``M >= max l``, then returns samples
from ``p_g exp(l) / Z = p_data`` when the discriminator is optimal, and moves samples towards
the data as far as the discriminator has learned the ratio otherwise (Azadi et al.,
"Discriminator Rejection Sampling", ICLR 2019). A trained discriminator's largest logit sits on
a few outliers, and ``M = max l`` would reject nearly everything; like that paper's shift
``gamma``, ``M`` is a high quantile (99%) of the logits of the first batch of proposals, and
the few proposals above it are always kept (``min(1, exp(l - M))``).

A packed discriminator (``pack = m``) judges m samples at once; at its optimum the logit of a
pack is the sum of its members' log ratios, so one sample's log ratio is the logit of the pack
made of m copies of it, divided by m.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from genlab import rand
from genlab.errors import ConfigError
from genlab.models.gan.losses import PROBABILISTIC_LOSSES

if TYPE_CHECKING:
    from genlab.models.gan.model import GANModel


def log_ratio(model: GANModel, v: Tensor, y: Tensor | None) -> Tensor:
    """Estimate of ``log p_data(x) - log p_g(x)`` at model-space points ``v`` ``(n, ...)``."""
    m = model.pack
    if m == 1:
        return model.discriminator(v, y)
    copies = v.repeat_interleave(m, dim=0)  # (n * m, ...): m copies of each point, in a row
    labels = None if y is None else y.repeat_interleave(m)
    return model.discriminator(copies, labels) / m


def rejection_sample(
    model: GANModel,
    n: int,
    y: Tensor | None,
    *,
    generator: torch.Generator | None = None,
    truncation: float | None = None,
    max_proposals: int = 1_000_000,
) -> Tensor:
    """``n`` samples in model space, accepted with probability ``min(1, exp(l(x) - M))``.

    Arguments:
        model: A GAN trained with the minimax or non-saturating loss (a logit discriminator).
        n: Number of samples.
        y: Labels ``(n,)`` for a conditional model; sample i keeps label ``y[i]``.
        generator: Source of the proposals and of the acceptance draws.
        truncation: Truncation of the proposals' z (see :meth:`GANModel.noise`).
        max_proposals: Give up after this many proposals in total.

    Raises:
        ConfigError: the loss has no logit discriminator, or fewer than ``n`` proposals in
            ``max_proposals`` were accepted.
    """
    if model.loss not in PROBABILISTIC_LOSSES:
        raise ConfigError(
            f"Expected a minimax or nonsaturating GAN for rejection sampling (its logit is a log "
            f"density ratio), but found loss={model.loss!r}."
        )
    batch = max(n, 1024)
    slots = torch.arange(n, device=model.device)  # sample indices still to fill
    out: Tensor | None = None
    threshold: float | None = None  # M
    proposed = 0
    while len(slots) > 0:
        if proposed >= max_proposals:
            raise ConfigError(
                f"Rejection sampling accepted {n - len(slots)} of {n} samples in "
                f"{proposed} proposals; the discriminator rejects almost everything. Sample "
                "without rejection, or train longer."
            )
        # Propose for the open slots, repeated so a batch holds about `batch` proposals.
        index = slots.repeat((batch + len(slots) - 1) // len(slots))  # (k,)
        labels = None if y is None else y[index]
        z = model.noise(len(index), generator=generator, truncation=truncation)
        v = model.generator(z, labels)  # (k, ...)
        logit = log_ratio(model, v, labels)  # (k,)
        if threshold is None:
            threshold = torch.quantile(logit.double(), 0.99).item()
        u = rand.rand(len(index), generator=generator, device=model.device, dtype=logit.dtype)
        keep = u < torch.exp(logit - threshold)
        proposed += len(index)
        if out is None:
            out = torch.empty(n, *v.shape[1:], device=v.device, dtype=v.dtype)
        # The first accepted proposal of each open slot fills it.
        hits = torch.nonzero(keep).flatten()  # accepted proposals, in order
        first = torch.full((n,), len(index), dtype=torch.long, device=model.device)
        first.scatter_reduce_(0, index[hits], hits, reduce="amin")
        filled = first < len(index)  # (n,), only open slots can be filled here
        out[filled] = v[first[filled]]
        slots = slots[~filled[slots]]
    return out  # type: ignore[return-value]
