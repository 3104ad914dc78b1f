"""Helpers the registered flows share: declared settings and vector layouts."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch

from genlab.errors import ConfigError
from genlab.models.flows.bijections import Bijection
from genlab.models.flows.coupling import alternating_mask, random_mask
from genlab.models.flows.flow import Alpha, ConditionalBase, ConditionSize
from genlab.models.flows.linear import LULinear
from genlab.models.flows.normalization import ActNorm
from genlab.models.flows.reshape import Reshape
from genlab.nn.mlp import ACTIVATIONS
from genlab.settings import Annotated, Setting

__all__ = [
    "ActNormFlag",
    "Activation",
    "Alpha",
    "ConditionSize",
    "ConditionalBase",
    "Depth",
    "OrderSeed",
    "ScaleBound",
    "coupling_masks",
    "flatten_to_vector",
    "vector_chain",
]

Activation = Annotated[str, Setting(
    "activation of the conditioner networks", choices=tuple(ACTIVATIONS))]
ActNormFlag = Annotated[bool, Setting("an ActNorm before every transform (data side)")]
ScaleBound = Annotated[float, Setting(
    "bound of the soft-clamped log-scale: one transform stretches by at most e^bound", gt=0)]
Depth = Annotated[int, Setting("hidden layers of every conditioner network", ge=1)]
OrderSeed = Annotated[int, Setting(
    "seed of the random masks or orders drawn at construction (saved with the model)")]


def coupling_masks(
    features: int, transforms: int, kind: str, generator: torch.Generator
) -> list[torch.Tensor]:
    """One mask per coupling: ``alternating`` parities or ``random`` halves."""
    if features < 2:
        raise ConfigError(
            f"Expected at least 2 dimensions for a coupling flow, but found event of {features}."
        )
    if kind == "alternating":
        return [alternating_mask(features, i % 2) for i in range(transforms)]
    masks = []
    for i in range(transforms):
        # Even couplings draw a random half; odd ones take its complement, so that every
        # coordinate is transformed once per pair of couplings.
        masks.append(random_mask(features, generator) if i % 2 == 0 else ~masks[-1])
    return masks


def flatten_to_vector(event_shape: Sequence[int], chain: list[Bijection]) -> list[Bijection]:
    """Wrap a chain on vectors ``(D,)`` so that latent and data both have ``event_shape``."""
    shape = tuple(event_shape)
    if len(shape) == 1:
        return chain
    flat = (math.prod(shape),)
    return [Reshape(shape, flat), *chain, Reshape(flat, shape)]


def vector_chain(
    event_shape: Sequence[int],
    layers: Iterable[Callable[[], Bijection]],
    *,
    actnorm: bool = False,
    lu: bool = False,
) -> list[Bijection]:
    """The chain of a flow on vectors ``(D,)``, ``D = prod(event_shape)``, latent to data.

    Each of ``layers`` is built in turn, seen from the data side after an optional ActNorm and
    an optional invertible LU linear map; the chain is wrapped by :func:`flatten_to_vector`.
    """
    d = math.prod(int(s) for s in event_shape)
    from_data: list[Bijection] = []  # in the order the data meets them
    for make in layers:
        if actnorm:
            from_data.append(ActNorm(d))
        if lu:
            from_data.append(LULinear(d))
        from_data.append(make())
    return flatten_to_vector(event_shape, from_data[::-1])
