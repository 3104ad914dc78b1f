"""Trainer callbacks: logging, plots and family diagnostics hook in here, not in the trainer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genlab.train.trainer import Trainer


class Callback:
    """Base class; override the events you need. Every method is a no-op by default.

    A callback reads the run through the trainer (``trainer.model``, ``trainer.step``,
    ``trainer.out``) and writes its own records to ``metrics.jsonl`` with
    :meth:`Trainer.log <genlab.train.Trainer.log>`.

    Example:
        >>> class Spread(Callback):
        ...     def on_validation_end(self, trainer, step, logs):
        ...         spread = trainer.model.sample(256).std().item()
        ...         trainer.log({"step": step, "sample_std": spread})
    """

    def on_train_start(self, trainer: Trainer) -> None:
        """Before the first step of this run (also after a resume)."""

    def on_step_end(self, trainer: Trainer, step: int, logs: dict[str, Any]) -> None:
        """After training step ``step`` (1-based); ``logs`` holds that step's losses."""

    def on_validation_end(self, trainer: Trainer, step: int, logs: dict[str, Any]) -> None:
        """After a validation pass; ``logs`` holds ``val_nll`` and ``val_bpd``."""

    def on_train_end(self, trainer: Trainer) -> None:
        """After the last step, once the final checkpoint is written."""
