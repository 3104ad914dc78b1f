"""Helpers the registered flows share: argument checks and vector layouts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from genlab.errors import ConfigError
from genlab.models.flows.bijections import Bijection
from genlab.models.flows.coupling import alternating_mask, random_mask
from genlab.models.flows.nets import check_hidden
from genlab.models.flows.reshape import Reshape


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """Raise ConfigError unless ``value`` is an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"Expected {name} to be an int >= {minimum}, but found {value!r}.")
    return value


def check_float(name: str, value: Any, low: float = 0.0) -> float:
    """Raise ConfigError unless ``value`` is a number > ``low``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > low:
        raise ConfigError(f"Expected {name} > {low:g}, but found {value!r}.")
    return float(value)


def coupling_masks(
    features: int, layers: int, kind: str, generator: torch.Generator
) -> list[torch.Tensor]:
    """One mask per coupling layer: ``alternating`` parities or ``random`` halves."""
    if features < 2:
        raise ConfigError(
            f"Expected at least 2 dimensions for a coupling flow, but found event of {features}."
        )
    if kind == "alternating":
        return [alternating_mask(features, i % 2) for i in range(layers)]
    masks = []
    for i in range(layers):
        # Even layers draw a random half; odd layers take its complement, so that every
        # coordinate is transformed once per pair of layers.
        masks.append(random_mask(features, generator) if i % 2 == 0 else ~masks[-1])
    return masks


def flatten_to_vector(event_shape: Sequence[int], chain: list[Bijection]) -> list[Bijection]:
    """Wrap a chain on vectors ``(D,)`` so that latent and data both have ``event_shape``."""
    shape = tuple(event_shape)
    if len(shape) == 1:
        return chain
    flat = (math.prod(shape),)
    return [Reshape(shape, flat), *chain, Reshape(flat, shape)]


def hidden_sizes(hidden: Sequence[int]) -> tuple[int, ...]:
    """Validated hidden sizes as a tuple."""
    return check_hidden(hidden)
