"""Training settings, validated once: the trainer reads them and nothing else."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from genlab.errors import ConfigError

#: Settings that must not change when a run is resumed (the result would not be the same run).
RESUME_FIXED = ("batch_size", "lr", "optimizer", "weight_decay", "betas", "warmup_steps",
                "schedule", "min_lr_ratio", "clip_grad", "ema_decay", "seed", "keep")


@dataclass
class TrainConfig:
    """Settings of one training run.

    Attributes:
        steps: Total training steps (each runs every objective of the model once, or
            ``repeats`` times).
        batch_size: Samples per update.
        lr: Peak learning rate (objectives may set their own).
        optimizer: ``"adam"`` or ``"adamw"``.
        weight_decay: Decoupled for AdamW, L2 for Adam.
        betas: Adam betas (objectives may set their own).
        warmup_steps: Linear warm-up from 0 to ``lr``.
        schedule: ``"cosine"`` (decay to ``min_lr_ratio * lr`` at ``steps``) or ``"constant"``.
        min_lr_ratio: Final learning rate as a fraction of ``lr`` for the cosine schedule.
        clip_grad: Clip each objective's gradient to this global norm; None disables.
        ema_decay: Keep an exponential moving average of the weights; None disables.
        val_every: Validate every this many steps (needs validation data); None: 25 times per
            run when validation picks the kept weights or stops the run, else 5 times.
        val_batch_size: Batch size of the validation pass.
        patience: Early stopping: stop after this many validations without improvement;
            None trains for all ``steps``.
        keep: Which weights the run ends with and writes as ``model.safetensors``: ``"best"``
            (lowest validation NLL or bound, when validation data and a validation loss
            exist; otherwise the last) or ``"last"``. With ``"best"`` the last weights are
            written too, as ``model_last.safetensors``.
        overfit_window: Warn "overfitting since step N" once validation NLL has not improved
            for this many validations while the training loss kept falling.
        checkpoint_every: Write a checkpoint every this many steps (needs ``out``); None: 10
            times per run.
        log_every: Write a ``metrics.jsonl`` line every this many steps.
        seed: Seeds the model initialisation, data order and training noise.
        progress: Show a progress bar; None shows it only on a terminal.
        device: ``"cpu"``, ``"cuda"``, or ``"auto"``.
    """

    steps: int = 1000
    batch_size: int = 256
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0
    schedule: str = "cosine"
    min_lr_ratio: float = 0.0
    clip_grad: float | None = None
    ema_decay: float | None = None
    val_every: int | None = None
    val_batch_size: int = 1024
    patience: int | None = None
    keep: str = "best"
    overfit_window: int = 3
    checkpoint_every: int | None = None
    log_every: int = 10
    seed: int = 0
    progress: bool | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)  # type: ignore[assignment]
        for name in ("steps", "batch_size", "val_batch_size", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"Expected {name} to be a positive int, but found {value!r}.")
        for name in ("val_every", "patience", "checkpoint_every"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"Expected {name} to be a positive int or None, but found {value!r}.")
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ConfigError(f"Expected warmup_steps >= 0, but found {self.warmup_steps!r}.")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"Expected lr > 0, but found {self.lr!r}.")
        if self.keep not in ("best", "last"):
            raise ConfigError(f"Expected keep 'best' or 'last', but found {self.keep!r}.")
        if isinstance(self.overfit_window, bool) or not isinstance(self.overfit_window, int) \
                or self.overfit_window < 1:
            raise ConfigError(
                f"Expected overfit_window to be a positive int, but found {self.overfit_window!r}."
            )
        if self.optimizer not in ("adam", "adamw"):
            raise ConfigError(f"Expected optimizer 'adam' or 'adamw', but found {self.optimizer!r}.")
        if self.schedule not in ("cosine", "constant"):
            raise ConfigError(f"Expected schedule 'cosine' or 'constant', but found {self.schedule!r}.")
        if self.weight_decay < 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError("Expected weight_decay >= 0 and min_lr_ratio in [0, 1].")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"Expected two betas in [0, 1), but found {self.betas!r}.")
        if self.clip_grad is not None and not self.clip_grad > 0:
            raise ConfigError(f"Expected clip_grad > 0 or None, but found {self.clip_grad!r}.")
        if self.ema_decay is not None and not 0 <= self.ema_decay < 1:
            raise ConfigError(f"Expected ema_decay in [0, 1) or None, but found {self.ema_decay!r}.")
        if self.device not in ("cpu", "auto") and not str(self.device).startswith("cuda"):
            raise ConfigError(f"Expected device 'cpu', 'cuda[:i]' or 'auto', but found {self.device!r}.")

    @classmethod
    def settings(cls) -> dict[str, Any]:
        """Provisional: every field as an undeclared setting (replaced by declarations)."""
        from genlab.settings import Setting, SettingSpec

        hints = {"int": int, "float": float, "str": str}
        out = {}
        for f in fields(cls):
            ann = hints.get(str(f.type), Any)
            if str(f.type) in ("int | None",):
                ann = int | None
            if str(f.type) in ("float | None",):
                ann = float | None
            out[f.name] = SettingSpec(f.name, ann, f.default, Setting(f.name))
        return out

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise ConfigError(
                f"Unknown training setting(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(known))}."
            )
        return cls(**kwargs)

    @property
    def val_interval(self) -> int:
        """Steps between validations: ``val_every``; else 25 validations per run when they
        pick the kept weights or stop the run (``keep="best"`` or ``patience``), 5 otherwise."""
        per_run = 25 if self.keep == "best" or self.patience is not None else 5
        return self.val_every or max(1, self.steps // per_run)

    @property
    def checkpoint_interval(self) -> int:
        """Steps between checkpoints: ``checkpoint_every``, or 10 checkpoints per run."""
        return self.checkpoint_every or max(1, self.steps // 10)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d
