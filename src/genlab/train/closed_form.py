"""Fitting in closed form (counts, EM): no optimizer, one call, the same run folder as SGD."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch

from genlab.base import GenerativeModel
from genlab.data.dataset import Dataset
from genlab.errors import ConfigError
from genlab.train import checkpoint as ckpt
from genlab.train.sampler import model_data

#: Training settings a closed-form fit accepts (and ignores): those a recipe or the command
#: line passes to every family. SGD settings (lr schedules, EMA, clipping, ...) do not apply.
CLOSED_FORM_SETTINGS = frozenset({"seed", "progress", "device", "steps", "batch_size", "lr",
                                  "log_every", "val_every", "checkpoint_every", "keep"})


def fit_closed_form(
    model: GenerativeModel,
    data: Dataset,
    *,
    val_data: Dataset | None,
    out: str | Path | None,
    **settings: Any,
) -> GenerativeModel:
    """Fit a model that has a closed form (``model.closed_form``); see :func:`genlab.fit`.

    Writes one ``metrics.jsonl`` line: the training (and validation) NLL and bits/dim; for
    models with bounded support, the fraction of samples outside it (whose NLL is infinite
    and left out of the mean).

    Raises:
        ConfigError: a setting that only SGD training uses.
        DataError: data that do not fit the model.
    """
    ignored = sorted(set(settings) - CLOSED_FORM_SETTINGS)
    if ignored:
        raise ConfigError(
            f"{type(model).__name__} is fitted in closed form; settings {ignored} do not apply."
        )
    data = model_data(model, data, "training")
    if val_data is not None:
        val_data = model_data(model, val_data, "validation")
    start = time.perf_counter()
    model.fit_closed_form(data, val_data=val_data)
    record: dict[str, Any] = {"step": 0, "time": round(time.perf_counter() - start, 3)}
    with torch.no_grad():
        for name, split in (("train", data), ("val", val_data)):
            if split is None:
                continue
            y = split.y.to(model.device) if model.conditional else None
            loss = model.validation_loss(split.x.to(model.device), y)  # (n,)
            if loss is None:
                continue
            finite = torch.isfinite(loss)
            nll = loss[finite].double().mean().item() if finite.any() else math.inf
            record[f"{name}_nll"] = nll
            record[f"{name}_bpd"] = nll / math.log(2.0)
            if not finite.all():
                record[f"{name}_outside_fraction"] = 1.0 - finite.double().mean().item()
    model.eval()
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        ckpt.save_model(model, out, data=data.describe(), remove=(  # an earlier run's
            ckpt.TRAINER_STATE_FILE, ckpt.LAST_WEIGHTS_FILE, ckpt.INIT_WEIGHTS_FILE))
        ckpt.atomic_write_text(out / ckpt.METRICS_FILE, json.dumps(record) + "\n")
    return model
