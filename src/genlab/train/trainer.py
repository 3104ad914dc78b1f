"""One trainer for every family.

A model hands the trainer its objectives (:meth:`GenerativeModel.objectives`): one for
likelihood models and diffusion, discriminator then generator for GANs. Each step runs every
objective in order, ``repeats`` times, each repeat on a fresh batch, with one optimizer and one
learning-rate schedule per objective. Everything else lives here once: warm-up + cosine
schedule, gradient clipping, EMA, validation and early stopping, the NaN guard
(:mod:`~genlab.train.guard`), checkpoints written as one unit, bit-exact resume
(:mod:`~genlab.train.state`), data-parallel training under ``torchrun``
(:mod:`~genlab.train.distributed`), a progress bar and ``metrics.jsonl``. The trainer knows no
family.

Users call :func:`genlab.train.fit`, which also covers models fitted in closed form.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from genlab.base import GenerativeModel, Objective
from genlab.data.dataset import Dataset
from genlab.errors import ConfigError
from genlab.train import checkpoint as ckpt
from genlab.train import distributed
from genlab.train import state as run_state
from genlab.train.callbacks import Callback
from genlab.train.commit import commit_files, recover
from genlab.train.config import TrainConfig
from genlab.train.ema import EMA
from genlab.train.guard import NanGuard, RollBack, roll_back
from genlab.train.sampler import BatchSampler, model_data
from genlab.train.step import compute_update
from genlab.train.streams import ShardStreams
from genlab.train.validation import OverfittingWarning, overfitting_since, validation_nll

__all__ = ["OverfittingWarning", "Trainer"]


class Trainer:
    """Runs a model's objectives on a data set. Most users call :func:`fit` instead.

    Attributes:
        model: The model being trained.
        data: Training data.
        val_data: Validation data or None.
        config: The :class:`TrainConfig`.
        out: Run folder, on the first process only (None elsewhere and without a folder):
            callbacks write files where it is set.
        step: Number of completed steps.
    """

    def __init__(
        self,
        model: GenerativeModel,
        data: Dataset,
        config: TrainConfig,
        *,
        val_data: Dataset | None = None,
        out: str | Path | None = None,
        callbacks: Iterable[Callback] = (),
    ) -> None:
        data = model_data(model, data, "training")
        if val_data is not None:
            val_data = model_data(model, val_data, "validation")
        if config.patience is not None and val_data is None:
            raise ConfigError("Early stopping (patience) needs validation data (val_data).")
        self.model = model
        self.data = data
        self.val_data = val_data
        self.config = config
        self.callbacks = list(callbacks) + list(model.callbacks())
        self.step = 0
        self.rank, self.world = distributed.setup(config.device)
        self.device = distributed.device_for(config.device, self.rank)
        self.run_dir = None if out is None else Path(out)
        self.out = self.run_dir if self.rank == 0 else None
        shards = self.world * config.accumulate
        batch = min(config.batch_size, len(data))
        if batch % shards:
            raise ConfigError(
                f"Expected a batch size divisible by {shards} shards ({self.world} processes x "
                f"accumulate {config.accumulate}), but found {batch}."
            )
        self.guard = NanGuard(config.on_nan)
        self.lr_scale = 1.0
        self.good_state: bytes | None = None  # the last checkpoint, for rollbacks
        self.history: list[dict[str, Any]] = []
        self.best_val = math.inf
        self.best_state: dict[str, Tensor] | None = None
        self.bad_validations = 0
        self.best_step = 0
        self.stopped_early = False
        # A caller (a callback, the lab) asked the loop to end after this step; unlike
        # stopped_early it is not saved, so the run resumes where it stopped.
        self.stop_requested = False
        # (step, validation NLL, mean training loss since the previous validation)
        self.val_history: list[tuple[int, float, float]] = []
        self._train_losses: list[float] = []
        self.overfitting: str | None = None

    # ---------------------------------------------------------------- set-up
    def build(self) -> None:
        """Optimizers, schedules, EMA, the data sampler, the shard streams and each
        objective's module (DDP-wrapped under ``torchrun``, compiled with ``compile``)."""
        config = self.config
        self.model.to(self.device)
        self.model_params = list(self.model.parameters())
        self.objectives: list[Objective] = self.model.objectives()
        if not self.objectives:
            raise ConfigError(f"{type(self.model).__name__}.objectives() returned no objective.")
        self.optimizers: list[torch.optim.Optimizer] = []
        self.schedulers: list[torch.optim.lr_scheduler.LambdaLR] = []
        self.modules: list[torch.nn.Module] = []
        for obj in self.objectives:
            params = [p for p in obj.parameters if p.requires_grad]
            if not params:
                raise ConfigError(f"Objective {obj.name!r} has no trainable parameters.")
            cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
            settings = dict(lr=obj.lr or config.lr, betas=obj.betas or config.betas,
                            weight_decay=config.weight_decay)
            try:  # the fused kernel is the fastest Adam step where torch has one
                opt = cls(params, fused=True, **settings)
            except (RuntimeError, TypeError):
                opt = cls(params, foreach=True, **settings)
            self.optimizers.append(opt)
            self.schedulers.append(torch.optim.lr_scheduler.LambdaLR(opt, config.lr_factor()))
            module = distributed.wrap(obj, self.world, self.device)
            self.modules.append(torch.compile(module) if config.compile else module)
        self.ema = EMA(self.model, config.ema_decay) if config.ema_decay else None
        self.sampler = BatchSampler(len(self.data), config.batch_size, config.seed + 1)
        self.streams = ShardStreams(config.seed, self.rank * config.accumulate,
                                    config.accumulate, self.world * config.accumulate,
                                    self.device)

    # ---------------------------------------------------------------- checkpoints
    def _last_weights(self) -> dict[str, Tensor]:
        """The current weights (their EMA when EMA is on)."""
        return self.ema.state_dict() if self.ema is not None else self.model.state_dict()

    @property
    def keeps_best(self) -> bool:
        """Whether the run ends with its best-validation weights (``keep="best"`` and a
        validation NLL or bound to rank them by)."""
        return self.config.keep == "best" and self.best_state is not None

    def save_checkpoint(self) -> None:
        """Write the kept weights, config and trainer state into the run folder, as one unit
        (:mod:`genlab.train.commit`); every process calls it.

        ``model.safetensors`` holds the kept weights (best or last, see ``TrainConfig.keep``);
        with ``keep="best"`` the last weights are written as ``model_last.safetensors`` too.
        The state is also kept in memory when NaN rollbacks are on.
        """
        rollback = self.config.on_nan == "rollback"
        if self.run_dir is None and not rollback:
            return
        state = run_state.trainer_state(self)  # every process: it gathers the shard streams
        state_bytes = ckpt.torch_bytes(state)
        if rollback:
            self.good_state = state_bytes
        if self.out is not None:
            self._sync_metrics()
            last = self._last_weights()
            kept = self.best_state if self.keeps_best else last
            files = {ckpt.TRAINER_STATE_FILE: state_bytes}
            if self.config.keep == "best":
                files[ckpt.LAST_WEIGHTS_FILE] = ckpt.weights_bytes(last)
            ckpt.save_model(self.model, self.out, data=self.data.describe(), state=kept,
                            extra=files)
        distributed.barrier(self.world)

    def _sync_metrics(self) -> None:
        """fsync ``metrics.jsonl``: the lines up to a checkpoint survive what it survives."""
        path = self.out / ckpt.METRICS_FILE
        if path.is_file():
            with open(path, "rb+") as f:
                os.fsync(f.fileno())

    def log(self, record: dict[str, Any]) -> None:
        """Append ``record`` (JSON-able, with a ``"step"``) to the run's history and, on the
        first process of a run with ``out``, as one line to ``metrics.jsonl``.

        The trainer logs every ``log_every`` steps; callbacks log their own diagnostics here
        (a resume drops the lines written after its checkpoint, by their ``step``).
        """
        self.history.append(record)
        if self.out is not None and self.rank == 0:
            with open(self.out / ckpt.METRICS_FILE, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    # ---------------------------------------------------------------- validation
    @torch.no_grad()
    def validate(self) -> dict[str, float] | None:
        """Mean validation loss (nats per dimension) with the EMA weights if EMA is on."""
        if self.val_data is None:
            return None
        was_training = self.model.training
        self.model.eval()
        try:
            if self.ema is not None:
                with self.ema.applied():
                    value = self._val_nll()
            else:
                value = self._val_nll()
        finally:
            self.model.train(was_training)
        if value is None:
            return None
        measure = self.model.validation_measure
        return {measure.key: value, measure.bits_key: value / math.log(2.0)}

    def _val_nll(self) -> float | None:
        # each process scores its own share of the batches; the sums are added over processes
        return validation_nll(self.model, self.val_data, batch_size=self.config.val_batch_size,
                              device=self.device, rank=self.rank, world=self.world)

    def _after_validation(self, logs: dict[str, float]) -> None:
        train_loss = sum(self._train_losses) / max(1, len(self._train_losses))
        self._train_losses = []
        value = logs[self.model.validation_measure.key]
        self.val_history.append((self.step, value, train_loss))
        if value < self.best_val:
            self.best_val = value
            self.best_step = self.step
            self.bad_validations = 0
            self.overfitting = None
            if self.config.keep == "best":
                self.best_state = {k: v.detach().clone() for k, v in self._last_weights().items()}
        else:
            self.bad_validations += 1
            if self.config.patience is not None and self.bad_validations >= self.config.patience:
                self.stopped_early = True
            self._check_overfitting()

    def _check_overfitting(self) -> None:
        """Warn once when the run overfits (:func:`~genlab.train.validation.overfitting_since`)."""
        window = self.config.overfit_window
        if self.overfitting is not None or self.bad_validations < window:
            return
        since = overfitting_since(self.val_history, self.best_step, self.best_val, window)
        if since is not None:
            self.overfitting = f"overfitting since step {since}; best val at step {self.best_step}"
            if self.rank == 0:
                warnings.warn(f"{self.model.name or type(self.model).__name__}: "
                              f"{self.overfitting}.", OverfittingWarning, stacklevel=2)

    # ---------------------------------------------------------------- the loop
    def _batch(self) -> tuple[Tensor, Tensor | None]:
        index = distributed.shard(self.sampler.next(), self.rank, self.world)
        x = self.data.x[index].to(self.device)
        y = None
        if self.model.conditional:
            y = self.data.y[index].to(self.device)
        return x, y

    def _run_objective(self, i: int, obj: Objective, logs: dict[str, Any]) -> None:
        params = self.optimizers[i].param_groups[0]["params"]
        config = self.config
        done = None  # the last update that went through
        for _ in range(obj.repeats):
            x, y = self._batch()
            for p in self.model_params:  # the model's zero_grad, without its module walk
                p.grad = None
            update = compute_update(self.modules[i], params, x, y, accumulate=config.accumulate,
                                    streams=self.streams, precision=config.precision,
                                    clip_grad=config.clip_grad, world=self.world)
            if update.finite:
                self.guard.finite()
                self.optimizers[i].step()
                done = update
                continue
            what = "loss" if not math.isfinite(update.loss) else "gradient"
            value = update.loss if what == "loss" else update.grad_norm
            message = self._nan_message(f"{what} of objective {obj.name!r}", value)
            action = self.guard.non_finite(message)  # raises unless the update is skipped
            self.log({"step": self.step + 1, "event": "non-finite", "objective": obj.name,
                      "what": what, "value": str(value), "action": action})
        self.schedulers[i].step()
        logs[f"lr_{obj.name}"] = self.schedulers[i].get_last_lr()[0]
        if done is not None:  # else every update of this step was skipped: nothing to report
            logs[f"loss_{obj.name}"] = done.loss
            logs[f"grad_norm_{obj.name}"] = done.grad_norm
            logs.update(done.logs)

    def _nan_message(self, what: str, value: float) -> str:
        kept = "no checkpoint was written yet"
        if self.run_dir is not None and (self.run_dir / ckpt.TRAINER_STATE_FILE).is_file():
            kept = f"the last good checkpoint is kept in {self.run_dir}"
        return (
            f"The {what} became {value} at step {self.step + 1}; {kept}. "
            "Try a lower lr, clip_grad, or check the data for extreme values."
        )

    def fit(self, *, resume: bool = False) -> GenerativeModel:
        """Train for ``config.steps`` steps (or resume and finish a run); returns the model."""
        run_dir = self.run_dir
        if self.out is not None:
            recover(self.out)  # finish or drop a checkpoint write that was interrupted
        distributed.barrier(self.world)
        state_path = None if run_dir is None else run_dir / ckpt.TRAINER_STATE_FILE
        if resume and state_path is not None and state_path.is_file():
            run_state.restore(self, run_state.read_state(state_path), str(state_path))
            if self.out is not None:
                ckpt.truncate_metrics(self.out / ckpt.METRICS_FILE, self.step)
        else:
            if resume and run_dir is None:
                raise ConfigError("resume=True needs out= (the run folder to resume from).")
            torch.manual_seed(self.config.seed)
            self.model.to(self.device)
            self.model.initialize(self.data)
            self.build()
            if self.out is not None:
                self._start_folder()
        if self.config.on_nan == "rollback":
            self.good_state = ckpt.torch_bytes(run_state.trainer_state(self))
        distributed.barrier(self.world)
        for cb in self.callbacks:
            cb.on_train_start(self)
        self._loop()
        if self.keeps_best:
            self.model.load_state_dict(self.best_state)
        elif self.ema is not None:
            self.model.load_state_dict(self.ema.state_dict())
        self.model.eval()
        for cb in self.callbacks:
            cb.on_train_end(self)
        return self.model

    def _start_folder(self) -> None:
        """A fresh run's folder: its config and initial weights, and nothing of an earlier
        run (written as one unit: an interrupted start leaves the earlier run whole)."""
        commit_files(self.out, {
            ckpt.CONFIG_FILE: ckpt.config_bytes(self.model, self.data.describe()),
            ckpt.INIT_WEIGHTS_FILE: ckpt.weights_bytes(self.model.state_dict()),
        }, remove=(ckpt.WEIGHTS_FILE, ckpt.LAST_WEIGHTS_FILE, ckpt.TRAINER_STATE_FILE))
        (self.out / ckpt.METRICS_FILE).unlink(missing_ok=True)

    def _loop(self) -> None:
        config = self.config
        # disable=None lets tqdm show the bar on a terminal only.
        disable = None if config.progress is None else not config.progress
        if self.rank != 0:
            disable = True
        bar = tqdm(total=config.steps, initial=self.step, disable=disable,
                   desc=self.model.name or type(self.model).__name__, dynamic_ncols=True)
        start = time.perf_counter()
        self.model.train()
        checkpoints = self.run_dir is not None or config.on_nan == "rollback"
        try:
            while self.step < config.steps and not (self.stopped_early or self.stop_requested):
                logs: dict[str, Any] = {}
                try:
                    for i, obj in enumerate(self.objectives):
                        self._run_objective(i, obj, logs)
                except RollBack as reason:
                    roll_back(self, reason)
                    bar.reset(total=config.steps)
                    bar.update(self.step)
                    self.model.train()
                    continue
                if self.ema is not None:
                    self.ema.update()
                self.step += 1
                for cb in self.callbacks:
                    cb.on_step_end(self, self.step, logs)
                last = self.step == config.steps
                if f"loss_{self.objectives[0].name}" in logs:
                    self._train_losses.append(logs[f"loss_{self.objectives[0].name}"])
                if self.val_data is not None and (self.step % config.val_interval == 0 or last):
                    val = self.validate()
                    if val is not None:
                        logs.update(val)
                        self._after_validation(val)
                        for cb in self.callbacks:
                            cb.on_validation_end(self, self.step, val)
                        self.model.train()
                validated = self.model.validation_measure.key in logs
                if validated and self.overfitting is not None:
                    logs["warning"] = self.overfitting
                ending = last or self.stopped_early or self.stop_requested
                if self.step % config.log_every == 0 or ending or validated:
                    elapsed = round(time.perf_counter() - start, 3)
                    self.log({"step": self.step, "time": elapsed, **logs})
                if (checkpoints and self.step % config.checkpoint_interval == 0) or ending:
                    self.save_checkpoint()
                bar.set_postfix(self._progress(logs), refresh=False)
                bar.update(1)
        finally:
            bar.close()

    def _progress(self, logs: dict[str, Any]) -> dict[str, str]:
        """The progress line: losses, the best validation bits/dim so far (named by the
        family's validation measure), and a warning."""
        shown = {k.removeprefix("loss_"): f"{v:.4g}" for k, v in logs.items()
                 if k.startswith("loss_")}
        if math.isfinite(self.best_val):
            name = f"best_{self.model.validation_measure.bits_key}"
            shown[name] = f"{self.best_val / math.log(2.0):.4g}@{self.best_step}"
        if self.guard.skipped:
            shown["skipped"] = str(self.guard.skipped)
        if self.overfitting is not None:
            shown["warning"] = self.overfitting
        return shown
