"""One trainer for every family.

A model hands the trainer its objectives (:meth:`GenerativeModel.objectives`): one for
likelihood models and diffusion, discriminator then generator for GANs. Each step runs every
objective in order, ``repeats`` times, each repeat on a fresh batch, with one optimizer and one
learning-rate schedule per objective. Everything else lives here once: warm-up + cosine
schedule, gradient clipping, EMA, validation and early stopping, the NaN guard, atomic
checkpoints and bit-exact resume (weights, optimizers, schedules, RNG and data order), a
progress bar and ``metrics.jsonl``. The trainer knows no family.

Users call :func:`genlab.train.fit`, which also covers models fitted in closed form.
"""

from __future__ import annotations

import json
import math
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
from genlab.errors import CheckpointError, ConfigError, TrainingError
from genlab.train import checkpoint as ckpt
from genlab.train import distributed
from genlab.train.callbacks import Callback
from genlab.train.config import TrainConfig
from genlab.train.ema import EMA
from genlab.train.sampler import BatchSampler, check_data
from genlab.train.validation import OverfittingWarning, overfitting_since, validation_nll

__all__ = ["OverfittingWarning", "Trainer"]


class Trainer:
    """Runs a model's objectives on a data set. Most users call :func:`fit` instead.

    Attributes:
        model: The model being trained.
        data: Training data.
        val_data: Validation data or None.
        config: The :class:`TrainConfig`.
        out: Run folder or None.
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
        check_data(model, data, "training")
        if val_data is not None:
            check_data(model, val_data, "validation")
        if config.patience is not None and val_data is None:
            raise ConfigError("Early stopping (patience) needs validation data (val_data).")
        self.model = model
        self.data = data
        self.val_data = val_data
        self.config = config
        self.out = None if out is None else Path(out)
        self.callbacks = list(callbacks) + list(model.callbacks())
        self.step = 0
        self.rank, self.world = distributed.setup()
        self.device = distributed.device_for(config.device, self.rank)
        if config.batch_size % self.world:
            raise ConfigError(
                f"Expected batch_size divisible by the {self.world} processes, "
                f"but found {config.batch_size}."
            )
        self.history: list[dict[str, Any]] = []
        self.best_val = math.inf
        self.best_state: dict[str, Tensor] | None = None
        self.bad_validations = 0
        self.best_step = 0
        self.stopped_early = False
        # (step, validation NLL, mean training loss since the previous validation)
        self.val_history: list[tuple[int, float, float]] = []
        self._train_losses: list[float] = []
        self.overfitting: str | None = None

    # ---------------------------------------------------------------- set-up
    def _build(self) -> None:
        self.model.to(self.device)
        self.objectives: list[Objective] = self.model.objectives()
        if not self.objectives:
            raise ConfigError(f"{type(self.model).__name__}.objectives() returned no objective.")
        self.optimizers: list[torch.optim.Optimizer] = []
        self.schedulers: list[torch.optim.lr_scheduler.LambdaLR] = []
        for obj in self.objectives:
            params = [p for p in obj.parameters if p.requires_grad]
            if not params:
                raise ConfigError(f"Objective {obj.name!r} has no trainable parameters.")
            cls = torch.optim.AdamW if self.config.optimizer == "adamw" else torch.optim.Adam
            settings = dict(lr=obj.lr or self.config.lr, betas=obj.betas or self.config.betas,
                            weight_decay=self.config.weight_decay)
            try:  # the fused kernel is the fastest Adam step where torch has one
                opt = cls(params, fused=True, **settings)
            except (RuntimeError, TypeError):
                opt = cls(params, foreach=True, **settings)
            self.optimizers.append(opt)
            self.schedulers.append(
                torch.optim.lr_scheduler.LambdaLR(opt, self.config.lr_factor()))
        self.ema = EMA(self.model, self.config.ema_decay) if self.config.ema_decay else None
        self.sampler = BatchSampler(len(self.data), self.config.batch_size, self.config.seed + 1)

    def _state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "step": self.step,
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizers": [o.state_dict() for o in self.optimizers],
            "schedulers": [s.state_dict() for s in self.schedulers],
            "sampler": self.sampler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "best_val": self.best_val,
            "bad_validations": self.bad_validations,
            "best_step": self.best_step,
            "val_history": torch.tensor(self.val_history, dtype=torch.float64).reshape(-1, 3),
            "train_losses": torch.tensor(self._train_losses, dtype=torch.float64),
            "overfitting": self.overfitting or "",
            "stopped_early": self.stopped_early,
        }
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        if self.best_state is not None:
            state["best_state"] = self.best_state
        return state

    def _load_state(self, path: Path) -> None:
        state = ckpt.load_trainer_state(path)
        self.config.check_resume(state.get("config", {}))
        ckpt.load_state_into(self.model, state["model"], str(path))
        self._build()
        try:
            for opt, s in zip(self.optimizers, state["optimizers"], strict=True):
                opt.load_state_dict(s)
            for sch, s in zip(self.schedulers, state["schedulers"], strict=True):
                sch.load_state_dict(s)
        except (ValueError, KeyError) as err:
            raise CheckpointError(
                f"{path}: optimizer state does not match the model: {err}") from None
        self.sampler.load_state_dict(state["sampler"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        if self.ema is not None and "ema" in state:
            self.ema.load_state_dict(state["ema"])
        self.step = int(state["step"])
        self.best_val = float(state["best_val"])
        self.bad_validations = int(state["bad_validations"])
        self.stopped_early = bool(state.get("stopped_early", False))
        self.best_state = state.get("best_state")
        self.best_step = int(state.get("best_step", 0))
        history = state.get("val_history")
        self.val_history = [] if history is None else [
            (int(s), float(v), float(t)) for s, v, t in history.tolist()]
        losses = state.get("train_losses")
        self._train_losses = [] if losses is None else losses.tolist()
        self.overfitting = state.get("overfitting") or None

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
        """Write the kept weights, config and trainer state into ``out``.

        ``model.safetensors`` holds the kept weights (best or last, see ``TrainConfig.keep``);
        with ``keep="best"`` the last weights are written as ``model_last.safetensors`` too.
        """
        if self.out is None or self.rank != 0:
            distributed.barrier(self.world)
            return
        # Trainer state first: a run interrupted between the writes resumes from it.
        ckpt.atomic_torch_save(self._state(), self.out / ckpt.TRAINER_STATE_FILE)
        last = self._last_weights()
        kept = self.best_state if self.keeps_best else last
        if self.config.keep == "best":
            ckpt.save_weights(last, self.out / ckpt.LAST_WEIGHTS_FILE)
        ckpt.save_model(self.model, self.out, data=self.data.describe(), state=kept)
        distributed.barrier(self.world)

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
        return {"val_nll": value, "val_bpd": value / math.log(2.0)}

    def _val_nll(self) -> float | None:
        return validation_nll(self.model, self.val_data, batch_size=self.config.val_batch_size,
                              device=self.device)

    def _after_validation(self, logs: dict[str, float]) -> None:
        train_loss = sum(self._train_losses) / max(1, len(self._train_losses))
        self._train_losses = []
        self.val_history.append((self.step, logs["val_nll"], train_loss))
        if logs["val_nll"] < self.best_val:
            self.best_val = logs["val_nll"]
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
        for _ in range(obj.repeats):
            x, y = self._batch()
            loss, extra = obj.loss(x, y)
            if not torch.isfinite(loss):
                raise TrainingError(self._nan_message(f"loss of objective {obj.name!r}", loss))
            self.model.zero_grad(set_to_none=True)
            loss.backward()
            distributed.average_gradients(params, self.world)
            limit = self.config.clip_grad if self.config.clip_grad is not None else math.inf
            norm = torch.nn.utils.clip_grad_norm_(params, limit, foreach=True)
            if not torch.isfinite(norm):
                raise TrainingError(self._nan_message(f"gradient of objective {obj.name!r}", norm))
            self.optimizers[i].step()
        self.schedulers[i].step()
        logs[f"loss_{obj.name}"] = distributed.mean_scalar(loss.item(), self.world)
        logs[f"grad_norm_{obj.name}"] = norm.item()
        logs[f"lr_{obj.name}"] = self.schedulers[i].get_last_lr()[0]
        logs.update(extra)

    def _nan_message(self, what: str, value: Tensor) -> str:
        kept = "no checkpoint was written yet"
        if self.out is not None and (self.out / ckpt.TRAINER_STATE_FILE).is_file():
            kept = f"the last good checkpoint is kept in {self.out}"
        return (
            f"The {what} became {value.item()} at step {self.step + 1}; {kept}. "
            "Try a lower lr, clip_grad, or check the data for extreme values."
        )

    def fit(self, *, resume: bool = False) -> GenerativeModel:
        """Train for ``config.steps`` steps (or resume and finish a run); returns the model."""
        state_path = None if self.out is None else self.out / ckpt.TRAINER_STATE_FILE
        if resume and state_path is not None and state_path.is_file():
            self._load_state(state_path)
            ckpt.truncate_metrics(self.out / ckpt.METRICS_FILE, self.step)
        else:
            if resume and self.out is None:
                raise ConfigError("resume=True needs out= (the run folder to resume from).")
            if self.out is not None and self.rank == 0:
                self.out.mkdir(parents=True, exist_ok=True)
                (self.out / ckpt.METRICS_FILE).unlink(missing_ok=True)
            torch.manual_seed(self.config.seed)
            self.model.to(self.device)
            self.model.initialize(self.data)
            self._build()
            if self.out is not None and self.rank == 0:
                ckpt.save_weights(self.model.state_dict(), self.out / ckpt.INIT_WEIGHTS_FILE)
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
        try:
            while self.step < config.steps and not self.stopped_early:
                logs: dict[str, Any] = {}
                for i, obj in enumerate(self.objectives):
                    self._run_objective(i, obj, logs)
                if self.ema is not None:
                    self.ema.update()
                self.step += 1
                for cb in self.callbacks:
                    cb.on_step_end(self, self.step, logs)
                last = self.step == config.steps
                self._train_losses.append(float(logs[f"loss_{self.objectives[0].name}"]))
                if self.val_data is not None and (self.step % config.val_interval == 0 or last):
                    val = self.validate()
                    if val is not None:
                        logs.update(val)
                        self._after_validation(val)
                        for cb in self.callbacks:
                            cb.on_validation_end(self, self.step, val)
                        self.model.train()
                if "val_nll" in logs and self.overfitting is not None:
                    logs["warning"] = self.overfitting
                if self.step % config.log_every == 0 or last or "val_nll" in logs \
                        or self.stopped_early:
                    elapsed = round(time.perf_counter() - start, 3)
                    self.log({"step": self.step, "time": elapsed, **logs})
                if (self.out is not None and self.step % config.checkpoint_interval == 0) \
                        or last or self.stopped_early:
                    self.save_checkpoint()
                bar.set_postfix(self._progress(logs), refresh=False)
                bar.update(1)
        finally:
            bar.close()

    def _progress(self, logs: dict[str, Any]) -> dict[str, str]:
        """The progress line: losses, the best validation bits/dim so far, and a warning."""
        shown = {k.removeprefix("loss_"): f"{v:.4g}" for k, v in logs.items()
                 if k.startswith("loss_")}
        if math.isfinite(self.best_val):
            shown["best_val_bpd"] = f"{self.best_val / math.log(2.0):.4g}@{self.best_step}"
        if self.overfitting is not None:
            shown["warning"] = self.overfitting
        return shown
