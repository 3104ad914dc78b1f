"""Tiny registered models used by the trainer and checkpoint tests (names start with '_')."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from genlab.base import GenerativeModel, Objective
from genlab.registry import register
from genlab.settings import Annotated, Setting


@register("_diag-gaussian")
class DiagGaussian(GenerativeModel):
    """N(loc, diag(scale^2)) with learnable loc and log scale; optional training noise."""

    def __init__(
        self,
        *,
        event_shape=(2,),
        num_classes=None,
        num_levels=None,
        noise: Annotated[float, Setting("std of noise added to each training batch", ge=0)] = 0.0,
        nan_at_step: Annotated[int | None, Setting(
            "training-loss call from which the loss is NaN; None: never", ge=1)] = None,
    ) -> None:
        super().__init__(event_shape=event_shape, num_classes=num_classes, num_levels=num_levels)
        self.loc = nn.Parameter(torch.zeros(self.event_shape))
        self.log_scale = nn.Parameter(torch.zeros(self.event_shape))
        self.noise = noise
        self.nan_at_step = nan_at_step
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def _log_prob(self, x: Tensor, y: Tensor | None) -> Tensor:
        z = (x - self.loc) / self.log_scale.exp()
        lp = -0.5 * z**2 - self.log_scale - 0.5 * math.log(2 * math.pi)
        return lp.flatten(1).sum(1)

    def training_loss(self, x, y):
        self.calls += 1
        if self.nan_at_step is not None and int(self.calls) >= self.nan_at_step:
            return torch.tensor(float("nan"), requires_grad=True), {}
        if self.noise:
            x = x + self.noise * torch.randn_like(x)  # global RNG: resume must restore it
        return super().training_loss(x, y)

    def _sample(self, n, y, *, generator=None):
        eps = torch.randn((n, *self.event_shape), generator=generator)
        return self.loc + self.log_scale.exp() * eps


@register("_two-player")
class TwoPlayer(GenerativeModel):
    """Two objectives with repeats, to check the trainer's alternating updates."""

    has_exact_likelihood = False

    def __init__(self, *, event_shape=(2,), num_classes=None, num_levels=None,
                 k: Annotated[int, Setting("updates of the first objective per step", ge=1)] = 3,
                 ) -> None:
        super().__init__(event_shape=event_shape, num_classes=num_classes, num_levels=num_levels)
        self.a = nn.Parameter(torch.ones(()))
        self.b = nn.Parameter(torch.ones(()))
        self.k = k
        self.counts = {"first": 0, "second": 0}

    def objectives(self):
        def first(x, y):
            self.counts["first"] += 1
            return (self.a * x.mean()) ** 2, {"a": self.a.item()}

        def second(x, y):
            self.counts["second"] += 1
            return (self.b - 3.0) ** 2, {"b": self.b.item()}

        return [Objective("first", first, [self.a], repeats=self.k),
                Objective("second", second, [self.b], lr=0.1)]

    def _sample(self, n, y, *, generator=None):
        return torch.zeros(n, *self.event_shape)
