r"""Classifier-free guidance with one scale for all conditions or one per condition.

The network output ``f`` (eps, x0 or v: every parametrisation is linear in the score, so the
same combination applies) is evaluated with conditions dropped, in one batched call.

* **One scale** ``w`` (a float): the usual joint form of Ho and Salimans (2022), every
  condition dropped together,

  .. math:: f = f(\varnothing) + w\,\big(f(C) - f(\varnothing)\big).

* **One scale per condition** ``{"sketch": 2, "prompt": 3}`` (kinds not named keep 1): each
  condition's term is measured against the prediction with *only that condition* dropped,

  .. math:: f = f(C) + \sum_{c} (w_c - 1)\,\big(f(C) - f(C \setminus c)\big).

  As scores, ``f(C) - f(C \ c)`` estimates ``-sigma_t \nabla \log p(c \mid x_t, C \setminus
  c)``: how much ``c`` says about x given the other conditions, so ``w_c`` sharpens
  ``p(c | x, C \ c)^{w_c}`` alone. Why this form rather than the independent sum
  ``f(\varnothing) + \sum_c w_c (f(c) - f(\varnothing))`` or the nested chain
  ``f(\varnothing) + w_1 (f(c_1) - f(\varnothing)) + w_2 (f(c_1, c_2) - f(c_1)) + ...``
  (Brooks et al. 2023): with every ``w_c = 1`` it is exactly the conditional prediction
  ``f(C)`` (the independent sum is not, the conditions being dependent), and ``w_c = 0`` with
  the others at 1 is exactly ``f(C \ c)``, dropping ``c``, for every ``c`` (the nested chain
  gives that for its last condition only). It costs one extra network call per condition
  whose scale is not 1. With one condition both forms are the usual one.

A condition can be guided only if the model was trained to do without it (condition
dropout); otherwise its "dropped" prediction was never learned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from genlab.conditioning import Conditions
from genlab.errors import ConfigError

#: ``net(x_t, t_batch, y) -> output`` for a batch of conditions.
NetCall = Callable[[Tensor, Tensor, Conditions], Tensor]


def check_guidance(guidance: Any, kinds: tuple[str, ...], droppable: tuple[str, ...]
                   ) -> float | dict[str, float]:
    """A guidance option checked against the model's conditions.

    Arguments:
        guidance: A number >= 0, or a mapping from condition kind to a number >= 0.
        kinds: The model's condition kinds.
        droppable: Kinds it was trained to drop.

    Raises:
        ConfigError: a negative or non-finite scale, an unknown kind, or a scale other than
            1 for a condition the model was not trained to drop (or for a model without
            conditions).
    """
    if isinstance(guidance, Mapping):
        scales = {}
        for kind, w in guidance.items():
            if kind not in kinds:
                raise ConfigError(f"Expected guidance for the model's conditions {kinds}, but "
                                  f"found {kind!r}.")
            scales[kind] = _scale(w, f"guidance for {kind}")
        guided = [k for k, w in scales.items() if w != 1.0]
    else:
        scales = _scale(guidance, "guidance")
        guided = list(kinds) if scales != 1.0 else []
    if guided and not kinds:
        raise ConfigError(f"Expected guidance 1.0 for an unconditional model, but found "
                          f"{guidance!r}.")
    blocked = [k for k in guided if k not in droppable]
    if blocked:
        raise ConfigError(f"Expected guidance only on conditions the model was trained to drop "
                          f"(condition_dropout > 0): {droppable or 'none'}, but found "
                          f"{', '.join(blocked)}.")
    return scales


def _scale(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < \
            float("inf"):
        raise ConfigError(f"Expected {what} to be a number >= 0, but found {value!r}.")
    return float(value)


def guided_output(net: NetCall, x_t: Tensor, t_batch: Tensor, y: Conditions,
                  guidance: float | Mapping[str, float]) -> Tensor:
    """The guided network output for ``x_t`` ``(n, ...)`` under conditions ``y`` (see the
    module's formulas); one network call on the stacked variants of ``y``."""
    n = x_t.shape[0]
    if isinstance(guidance, Mapping):
        guided = [(k, float(w)) for k, w in guidance.items() if float(w) != 1.0]
        variants = [y] + [y.drop(kind) for kind, _ in guided]
    else:
        guided = [(None, float(guidance))] if float(guidance) != 1.0 else []
        variants = [y] + ([y.drop(y.kinds)] if guided else [])
    out = net(torch.cat([x_t] * len(variants)), t_batch.repeat(len(variants)),
              Conditions.cat(variants))
    full, dropped = out[:n], [out[n * i:n * (i + 1)] for i in range(1, len(variants))]
    if not isinstance(guidance, Mapping):
        return full if not guided else dropped[0] + guided[0][1] * (full - dropped[0])
    for (_, w), without in zip(guided, dropped, strict=True):
        full = full + (w - 1.0) * (out[:n] - without)
    return full
