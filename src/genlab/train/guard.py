"""What a run does when a loss or a gradient stops being finite (``TrainConfig.on_nan``).

* ``"raise"`` (the default): stop with :class:`~genlab.errors.TrainingError` naming the step;
  the last checkpoint in the run folder is left as it was.
* ``"skip"``: drop that update (no optimizer step) and go on; after
  :data:`MAX_SKIPS_IN_A_ROW` skipped updates in a row the run stops as with ``"raise"``.
* ``"rollback"``: go back to the last checkpoint (weights, optimizers, data order, random
  streams; kept in memory, so runs without a folder can roll back too) and go on with every
  learning rate multiplied by :data:`ROLLBACK_LR_FACTOR`; after :data:`MAX_ROLLBACKS`
  rollbacks the run stops.

Every event is a line of ``metrics.jsonl`` (``"event": "non-finite"``, the objective, what
became non-finite, the action) and a :class:`NonFiniteWarning`.
"""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING

import torch

from genlab.errors import TrainingError
from genlab.train import checkpoint as ckpt
from genlab.train import state as run_state

if TYPE_CHECKING:
    from genlab.train.trainer import Trainer

#: Learning rates are multiplied by this at each rollback (halved).
ROLLBACK_LR_FACTOR = 0.5
#: Rollbacks a run may take before it stops.
MAX_ROLLBACKS = 5
#: Consecutive skipped updates after which a run stops.
MAX_SKIPS_IN_A_ROW = 10


class NonFiniteWarning(UserWarning):
    """A loss or gradient was NaN or infinite; the update was skipped or rolled back."""


class RollBack(Exception):  # noqa: N818 - a signal inside the trainer, not an error
    """Raised inside a step to return to the last good checkpoint."""


class NanGuard:
    """Counts non-finite events and decides what each one does.

    Arguments:
        policy: ``"raise"``, ``"skip"`` or ``"rollback"``.
    """

    def __init__(self, policy: str) -> None:
        self.policy = policy
        self.skips_in_a_row = 0
        self.skipped = 0
        self.rollbacks = 0

    def finite(self) -> None:
        """An update went through."""
        self.skips_in_a_row = 0

    def non_finite(self, message: str) -> str:
        """Decide on a non-finite update described by ``message``; returns the action taken
        (``"skip"``), or raises :class:`RollBack` or :class:`TrainingError`."""
        if self.policy == "skip" and self.skips_in_a_row < MAX_SKIPS_IN_A_ROW:
            self.skips_in_a_row += 1
            self.skipped += 1
            warnings.warn(f"{message}; the update was skipped.", NonFiniteWarning, stacklevel=3)
            return "skip"
        if self.policy == "rollback" and self.rollbacks < MAX_ROLLBACKS:
            self.rollbacks += 1
            warnings.warn(f"{message}; rolling back to the last checkpoint with the learning "
                          f"rate times {ROLLBACK_LR_FACTOR}.", NonFiniteWarning, stacklevel=3)
            raise RollBack(message)
        if self.policy == "skip":
            message += f" ({MAX_SKIPS_IN_A_ROW} updates in a row were skipped)"
        elif self.policy == "rollback":
            message += f" (after {MAX_ROLLBACKS} rollbacks)"
        raise TrainingError(message)


def roll_back(trainer: Trainer, reason: RollBack) -> None:
    """Return ``trainer`` to its last checkpoint and lower every learning rate; the log keeps
    each step once, with the event at the step returned to."""
    failed = trainer.step + 1
    rollbacks = trainer.guard.rollbacks
    if trainer.good_state is None:
        raise TrainingError(f"{reason}; there is no checkpoint to roll back to.") from None
    state = torch.load(io.BytesIO(trainer.good_state), map_location="cpu", weights_only=True)
    run_state.restore(trainer, state, "the last checkpoint")
    run_state.scale_learning_rates(trainer, ROLLBACK_LR_FACTOR)
    trainer.guard.rollbacks = rollbacks
    trainer.history = [r for r in trainer.history if r.get("step", 0) <= trainer.step]
    if trainer.out is not None:
        ckpt.truncate_metrics(trainer.out / ckpt.METRICS_FILE, trainer.step)
    trainer.log({"step": trainer.step, "event": "non-finite", "failed_step": failed,
                 "action": "rollback", "lr_scale": trainer.lr_scale, "reason": str(reason)})
