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

import warnings

from genlab.errors import TrainingError

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
