"""Exponential moving average of model weights (Polyak averaging).

theta_ema <- decay * theta_ema + (1 - decay) * theta after every step. Floating-point buffers
are averaged too; integer buffers (counters, flags) are copied.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn


class EMA:
    """Shadow copy of a module's state dict, averaged after each optimizer step.

    Arguments:
        module: The model whose weights are averaged.
        decay: Weight of the old average, in [0, 1).
    """

    def __init__(self, module: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"Expected ema decay in [0, 1), but found {decay}.")
        self.module = module
        self.decay = decay
        self.shadow: dict[str, Tensor] = {
            k: v.detach().clone() for k, v in module.state_dict().items()
        }

    @torch.no_grad()
    def update(self) -> None:
        for name, value in self.module.state_dict().items():
            shadow = self.shadow[name]
            if shadow.shape != value.shape:  # a buffer resized by the model (rare)
                self.shadow[name] = value.detach().clone()
            elif value.is_floating_point():
                shadow.lerp_(value.detach(), 1.0 - self.decay)
            else:
                shadow.copy_(value)

    def state_dict(self) -> dict[str, Tensor]:
        return {k: v.clone() for k, v in self.shadow.items()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.shadow = {k: v.detach().clone() for k, v in state.items()}

    @contextmanager
    def applied(self) -> Iterator[None]:
        """Temporarily load the averaged weights into the module."""
        backup = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
        self.module.load_state_dict(self.shadow)
        try:
            yield
        finally:
            self.module.load_state_dict(backup)
