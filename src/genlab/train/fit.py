"""``fit``: the one entry point that trains any model, in closed form or by SGD."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from genlab.base import GenerativeModel
from genlab.data.dataset import Dataset
from genlab.errors import ConfigError
from genlab.recipes import train_settings
from genlab.train.callbacks import Callback
from genlab.train.closed_form import fit_closed_form
from genlab.train.config import TrainConfig
from genlab.train.lock import run_lock
from genlab.train.trainer import Trainer


def fit(
    model: GenerativeModel,
    data: Dataset,
    *,
    val_data: Dataset | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    **settings: Any,
) -> GenerativeModel:
    """Fit ``model`` to ``data``: in closed form where the model has one, else by SGD.

    Arguments:
        model: Any genlab model.
        data: Training :class:`~genlab.data.Dataset`.
        val_data: Validation data for ``val_nll`` and early stopping.
        out: Run folder for ``config.json``, ``model.safetensors``, ``metrics.jsonl`` and the
            trainer state; None keeps everything in memory.
        resume: Continue the run in ``out`` from its last checkpoint (bit-exact on CPU).
        callbacks: Extra :class:`~genlab.train.callbacks.Callback` objects.
        **settings: Fields of :class:`TrainConfig` (``steps``, ``batch_size``, ``lr``,
            ``seed``, ``on_nan``, ``accumulate``, ``precision``, ...).
            Unset fields come from the family's recipe for this kind of data
            (:mod:`genlab.recipes`), then from :class:`TrainConfig`'s defaults.

    Returns:
        The fitted model (holding its EMA or best weights when those are on).

    Raises:
        ConfigError: an unknown or invalid setting, or one that does not apply.
        DataError: data that do not fit the model.
        TrainingError: the loss or a gradient became NaN or infinite (``on_nan="raise"``, or
            more often than ``"skip"`` and ``"rollback"`` allow: :mod:`genlab.train.guard`).
        CheckpointError: ``resume`` from a corrupt run folder.

    Example:
        >>> from genlab import load_data, create, fit
        >>> data = load_data("moons", n=500)
        >>> model = fit(create("gmm", event_shape=data.event_shape, components=4), data)
        >>> model.log_prob(data.x[:3]).shape
        torch.Size([3])
    """
    if not isinstance(model, GenerativeModel):
        raise ConfigError(f"Expected a genlab GenerativeModel, but found {type(model).__name__}.")
    if isinstance(data, Dataset):
        settings = train_settings(model, data, has_val=val_data is not None, **settings)
    with run_lock(out):  # one training per run folder
        if model.closed_form:
            return fit_closed_form(model, data, val_data=val_data, out=out, **settings)
        config = TrainConfig.from_kwargs(**settings)
        trainer = Trainer(model, data, config, val_data=val_data, out=out, callbacks=callbacks)
        return trainer.fit(resume=resume)
