"""Validation during training: the held-out NLL, and the sign that a run overfits."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from genlab.base import GenerativeModel
from genlab.data.dataset import Dataset


class OverfittingWarning(UserWarning):
    """Validation NLL has stopped improving while the training loss keeps falling."""


@torch.no_grad()
def validation_nll(model: GenerativeModel, data: Dataset, *, batch_size: int,
                   device: torch.device) -> float | None:
    """Mean of ``model.validation_loss`` over ``data`` (nats per dimension, or its bound),
    in batches of ``batch_size``; None when the model has no validation loss."""
    total, count = 0.0, 0
    x_all, y_all = data.x, data.y
    for i in range(0, len(x_all), batch_size):
        x = x_all[i : i + batch_size].to(device)  # (b, *event_shape)
        y = None
        if y_all is not None and model.conditional:
            y = y_all[i : i + len(x)].to(device)  # (b,)
        loss = model.validation_loss(x, y)  # (b,)
        if loss is None:
            return None
        total += loss.double().sum().item()
        count += len(x)
    return total / count


def overfitting_since(history: Sequence[tuple[int, float, float]], best_step: int,
                      best_val: float, window: int) -> int | None:
    """The step from which a run overfits, or None.

    A run overfits when its last ``window`` validations are all worse than the best one
    while its training loss stayed below the level it had at the best validation: the model
    is fitting its training set, not the distribution.

    Arguments:
        history: ``(step, validation NLL, mean training loss since the previous
            validation)`` of every validation so far.
        best_step: The step of the best validation.
        best_val: The best validation NLL.
        window: Validations without improvement that it takes.

    Returns:
        The step of the first validation after the best one, when the run overfits.
    """
    steps = [s for s, _, _ in history]
    if best_step not in steps:
        return None
    best = steps.index(best_step)
    recent = history[-window:]
    best_train = history[best][2]
    rising = recent[-1][1] > best_val
    falling = all(t < best_train for _, _, t in recent)
    return history[best + 1][0] if rising and falling else None
