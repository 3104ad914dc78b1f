"""The trainer's state: everything a resumed run needs to continue bit for bit.

Raw weights, optimizers, learning-rate schedules, EMA, the data sampler (generator, epoch
order, position), the global random stream and every batch shard's stream (gathered from all
processes), early-stopping and overfitting bookkeeping, and the learning-rate scale that NaN
rollbacks lowered. It is saved with ``torch.save`` and read back with ``weights_only=True``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from genlab.errors import CheckpointError, ConfigError
from genlab.train import checkpoint as ckpt
from genlab.train import distributed

if TYPE_CHECKING:
    from genlab.train.trainer import Trainer


def trainer_state(trainer: Trainer) -> dict[str, Any]:
    """The state of ``trainer`` (every process must call it: the shard streams are gathered)."""
    t = trainer
    shards = distributed.all_gather(t.streams.states, t.world) if t.streams.total > 1 else []
    state: dict[str, Any] = {
        "step": t.step,
        "config": t.config.to_dict(),
        "model": t.model.state_dict(),
        "optimizers": [o.state_dict() for o in t.optimizers],
        "schedulers": [s.state_dict() for s in t.schedulers],
        "sampler": t.sampler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "shards": t.streams.total,
        "shard_rng": [s for process in shards for s in process],
        "lr_scale": t.lr_scale,
        "best_val": t.best_val,
        "bad_validations": t.bad_validations,
        "best_step": t.best_step,
        "val_history": torch.tensor(t.val_history, dtype=torch.float64).reshape(-1, 3),
        "train_losses": torch.tensor(t._train_losses, dtype=torch.float64),
        "overfitting": t.overfitting or "",
        "stopped_early": t.stopped_early,
    }
    if t.device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(t.device)
    if t.ema is not None:
        state["ema"] = t.ema.state_dict()
    if t.best_state is not None:
        state["best_state"] = t.best_state
    return state


def read_state(path: Path) -> dict[str, Any]:
    """Load a ``trainer_state.pt`` (no code runs: ``weights_only=True``).

    Raises:
        CheckpointError: the file is unreadable, corrupt, truncated or holds a disallowed
            object (one line; :func:`genlab.train.checkpoint.load_trainer_state`).
    """
    return ckpt.load_trainer_state(path)


def restore(trainer: Trainer, state: dict[str, Any], source: str) -> None:
    """Put ``trainer`` back in ``state`` (from :func:`trainer_state`), rebuilding its
    optimizers.

    Raises:
        ConfigError: a setting that must not change on resume changed, or the batch is cut
            into another number of shards.
        CheckpointError: the state does not fit the model.
    """
    t = trainer
    t.config.check_resume(state.get("config", {}))
    ckpt.load_state_into(t.model, state["model"], source)
    t.build()
    saved_shards = int(state.get("shards", 1))
    if saved_shards != t.streams.total:
        raise ConfigError(
            f"Expected to resume with {saved_shards} batch shards (processes x accumulate) as "
            f"the run was started, but found {t.streams.total}."
        )
    try:
        for opt, s in zip(t.optimizers, state["optimizers"], strict=True):
            opt.load_state_dict(s)
        for sch, s in zip(t.schedulers, state["schedulers"], strict=True):
            sch.load_state_dict(s)
    except (ValueError, KeyError) as err:
        raise CheckpointError(f"{source}: optimizer state does not match the model: {err}") \
            from None
    t.sampler.load_state_dict(state["sampler"])
    torch.set_rng_state(state["torch_rng"])
    if saved_shards > 1:
        t.streams.load(state["shard_rng"])
    if "cuda_rng" in state and t.device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"], t.device)
    if t.ema is not None and "ema" in state:
        t.ema.load_state_dict(state["ema"])
    t.step = int(state["step"])
    t.lr_scale = float(state.get("lr_scale", 1.0))
    t.best_val = float(state["best_val"])
    t.bad_validations = int(state["bad_validations"])
    t.stopped_early = bool(state.get("stopped_early", False))
    t.best_state = state.get("best_state")
    t.best_step = int(state.get("best_step", 0))
    history = state.get("val_history")
    t.val_history = [] if history is None else [
        (int(s), float(v), float(loss)) for s, v, loss in history.tolist()]
    losses = state.get("train_losses")
    t._train_losses = [] if losses is None else losses.tolist()
    t.overfitting = state.get("overfitting") or None


def scale_learning_rates(trainer: Trainer, factor: float) -> None:
    """Multiply every objective's learning rate (and its schedule) by ``factor``."""
    trainer.lr_scale *= factor
    for opt, sch in zip(trainer.optimizers, trainer.schedulers, strict=True):
        sch.base_lrs = [base * factor for base in sch.base_lrs]
        for group, lr in zip(opt.param_groups, sch.base_lrs, strict=True):
            group["lr"] = lr * sch.lr_lambdas[0](sch.last_epoch)
