"""Validation during training: the held-out NLL, and the sign that a run overfits."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from genlab.base import GenerativeModel
from genlab.data.dataset import Dataset
from genlab.train import distributed


class OverfittingWarning(UserWarning):
    """Validation NLL has stopped improving while the training loss keeps falling."""


@torch.no_grad()
def validation_nll(model: GenerativeModel, data: Dataset, *, batch_size: int,
                   device: torch.device, rank: int = 0, world: int = 1) -> float | None:
    """Mean of ``model.validation_loss`` over ``data`` (nats per dimension, or its bound),
    in batches of ``batch_size``; None when the model has no validation loss.

    With ``world`` processes (``torchrun``), process ``rank`` evaluates only its own
    contiguous block of the batches, and the sums of losses and of samples are added over
    processes (one all-reduce, float64): the mean weighs every sample once, however unequal
    the blocks, and every process gets the same value. The batches are those of one process,
    and a family's validation loss is a function of its batch (noise, where a bound needs it,
    comes from a generator seeded on each call), so the value is one process's up to the
    order of the float64 additions.
    """
    batches = -(-len(data.x) // batch_size)
    total, count, has_loss = 0.0, 0, True
    for b in range(batches * rank // world, batches * (rank + 1) // world):
        x = data.x[b * batch_size : (b + 1) * batch_size].to(device)  # (b, *event_shape)
        y = None
        if data.y is not None and model.conditional:
            y = data.y[b * batch_size : b * batch_size + len(x)].to(device)  # (b,)
        loss = model.validation_loss(x, y)  # (b,)
        if loss is None:
            has_loss = False
            break
        total += loss.double().sum().item()
        count += len(x)
    if world > 1:  # a process without batches learns from the others whether there is a loss
        total, summed, missing = distributed.sum_over_processes(
            [total, float(count), float(not has_loss)], world)
        count, has_loss = int(summed), missing == 0
    return total / count if has_loss and count else None


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
