"""A family written inside the tests, to show that registering a class is all it takes.

``conftest.py`` imports this module, so ``toy-normal`` is registered before collection: the
contract suite, the recipe and vocabulary checks, ``genlab list``, ``genlab compare`` and the
CLI take it with no edit anywhere else (tests/test_new_family.py checks the commands).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn

from genlab.base import GenerativeModel
from genlab.recipes import Recipe
from genlab.registry import register
from genlab.settings import Annotated, Setting


@register("toy-normal")
class ToyNormal(GenerativeModel):
    """A diagonal Gaussian N(loc, diag(scale^2)) trained by SGD (a family in 40 lines).

    Arguments:
        event_shape: Shape of one sample.
        num_classes: One mean per class when set.
        num_levels: Not supported (continuous data only).
        init_scale: Starting standard deviation.
    """

    recipes: ClassVar[dict[str, Recipe]] = {
        "points": Recipe(params={"init_scale": 2.0},
                         train={"steps": 60, "batch_size": 128, "lr": 0.05, "patience": 5},
                         quick={"steps": 30}),
    }

    def __init__(self, *, event_shape, num_classes=None, num_levels=None,
                 init_scale: Annotated[float, Setting("starting standard deviation",
                                                      gt=0)] = 1.0) -> None:
        super().__init__(event_shape=event_shape, num_classes=num_classes, num_levels=num_levels)
        rows = num_classes or 1
        self.loc = nn.Parameter(torch.zeros(rows, *self.event_shape))
        self.log_scale = nn.Parameter(torch.full(self.event_shape, math.log(init_scale)))

    def _loc(self, y: Tensor | None, n: int) -> Tensor:
        return self.loc[y] if y is not None else self.loc.expand(n, *self.event_shape)

    def _log_prob(self, x: Tensor, y: Tensor | None) -> Tensor:
        z = (x - self._loc(y, len(x))) / self.log_scale.exp()
        return (-0.5 * z**2 - self.log_scale - 0.5 * math.log(2 * math.pi)).flatten(1).sum(1)

    def _sample(self, n: int, y: Tensor | None, *, generator: torch.Generator | None = None,
                temperature: Annotated[float, Setting("scale of the noise", gt=0)] = 1.0
                ) -> Tensor:
        eps = torch.randn(n, *self.event_shape, generator=generator, device=self.device)
        return self._loc(y, n) + temperature * self.log_scale.exp() * eps

    @classmethod
    def tiny_configs(cls) -> list[dict]:
        return [{"event_shape": (2,)}, {"event_shape": (3,), "num_classes": 2}]
