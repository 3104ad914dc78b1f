"""Training settings, declared once and validated once: the trainer reads them and nothing else.

Each field is declared like a model setting (:mod:`genlab.settings`): its type, range or
choices and one line of help sit on the field, and :meth:`TrainConfig.settings` lists them for
``genlab train``'s flags, its help and the docs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from genlab.errors import ConfigError
from genlab.settings import Annotated, Setting, SettingSpec, declared

#: Settings that must not change when a run is resumed (the result would not be the same run).
RESUME_FIXED = ("batch_size", "lr", "optimizer", "weight_decay", "betas", "warmup_steps",
                "schedule", "min_lr_ratio", "clip_grad", "ema_decay", "seed", "keep",
                "precision")


@dataclass
class TrainConfig:
    """Settings of one training run; each field's type, range and help are declared on it.

    A step runs every objective of the model once (or ``repeats`` times, each on a fresh
    batch). With ``val_every=None`` the run validates 25 times when validation picks the kept
    weights or stops the run (``keep="best"`` or ``patience``), 5 times otherwise; with
    ``checkpoint_every=None`` it writes 10 checkpoints. ``keep="best"`` ends with the weights
    of the lowest validation NLL (or bound) when validation data and a validation loss exist,
    else the last, and writes the last ones too, as ``model_last.safetensors``.

    Example:
        >>> TrainConfig(steps=500, lr=3e-4).val_interval
        20
        >>> TrainConfig.settings()["optimizer"].describe()
        "one of 'adam', 'adamw'"
    """

    steps: Annotated[int, Setting("training steps", ge=1)] = 1000
    batch_size: Annotated[int, Setting("samples per update", ge=1)] = 256
    lr: Annotated[float, Setting("peak learning rate (an objective may set its own)", gt=0)] = 1e-3
    optimizer: Annotated[str, Setting("Adam, or AdamW (decoupled weight decay)",
                                             choices=("adam", "adamw"))] = "adam"
    weight_decay: Annotated[float, Setting(
        "weight decay: decoupled for adamw, L2 for adam", ge=0)] = 0.0
    betas: Annotated[tuple[float, float], Setting(
        "Adam's two betas (an objective may set its own)", ge=0, lt=1)] = (0.9, 0.999)
    warmup_steps: Annotated[int, Setting("steps of linear warm-up from 0 to lr", ge=0)] = 0
    schedule: Annotated[str, Setting(
        "learning rate after warm-up: cosine decay to min_lr_ratio * lr, or constant",
        choices=("cosine", "constant"))] = "cosine"
    min_lr_ratio: Annotated[float, Setting(
        "final learning rate of the cosine schedule, as a fraction of lr", ge=0, le=1)] = 0.0
    clip_grad: Annotated[float | None, Setting(
        "clip each objective's gradient to this global norm; None: no clipping", gt=0)] = None
    ema_decay: Annotated[float | None, Setting(
        "decay of an exponential moving average of the weights; None: no EMA",
        ge=0, lt=1)] = None
    val_every: Annotated[int | None, Setting(
        "validate every this many steps; None: 25 or 5 times per run", ge=1)] = None
    val_batch_size: Annotated[int, Setting("batch size of the validation pass", ge=1)] = 1024
    patience: Annotated[int | None, Setting(
        "stop after this many validations without improvement; None: train all steps",
        ge=1)] = None
    keep: Annotated[str, Setting(
        "weights the run ends with: best validation NLL, or last",
        choices=("best", "last"))] = "best"
    overfit_window: Annotated[int, Setting(
        "warn of overfitting after this many validations without improvement while the "
        "training loss falls", ge=1)] = 3
    checkpoint_every: Annotated[int | None, Setting(
        "write a checkpoint every this many steps; None: 10 per run", ge=1)] = None
    log_every: Annotated[int, Setting("write a metrics.jsonl line every this many steps",
                                      ge=1)] = 10
    seed: Annotated[int, Setting(
        "seeds the initialisation, the data order and the training noise", ge=0)] = 0
    progress: Annotated[bool | None, Setting(
        "show a progress bar; None: only on a terminal")] = None
    device: Annotated[str, Setting("where to train: cpu, cuda, cuda:i or auto")] = "cpu"
    accumulate: Annotated[int, Setting(
        "cut each batch into this many micro-batches, run one after another (same updates, "
        "less memory)", ge=1)] = 1
    precision: Annotated[str, Setting(
        "forward passes in float32, or under bfloat16 autocast (weights stay float32)",
        choices=("fp32", "bf16"))] = "fp32"
    compile: Annotated[bool, Setting(
        "compile each objective's loss with torch.compile (slow start, faster steps)")] = False
    on_nan: Annotated[str, Setting(
        "when a loss or gradient is NaN/Inf: stop, skip the update, or roll back to the last "
        "checkpoint with half the learning rate", choices=("raise", "skip", "rollback"))] = "raise"

    def __post_init__(self) -> None:
        for name, spec in self.settings().items():
            spec.check(getattr(self, name))
        self.betas = tuple(self.betas)  # type: ignore[assignment]  # JSON gives a list
        device = self.device
        if device not in ("cpu", "cuda", "auto") and not (
                device.startswith("cuda:") and device.removeprefix("cuda:").isdigit()):
            raise ConfigError(
                f"Expected device to be 'cpu', 'cuda', 'cuda:i' or 'auto', but found {device!r}."
            )

    @classmethod
    def settings(cls) -> dict[str, SettingSpec]:
        """Every field's declaration (:class:`~genlab.settings.SettingSpec`), in field order."""
        return declared(cls.__init__)

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> TrainConfig:
        """Build from keyword settings; an unknown name raises :class:`ConfigError`."""
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

    def lr_factor(self) -> Callable[[int], float]:
        """The learning rate at each step as a fraction of ``lr`` (for ``LambdaLR``).

        Linear warm-up over ``warmup_steps``, then constant or a cosine decay from 1 to
        ``min_lr_ratio`` at ``steps``:
        ``min_lr_ratio + (1 - min_lr_ratio) * (1 + cos(pi * progress)) / 2``.
        """

        def factor(step: int) -> float:
            if self.warmup_steps and step < self.warmup_steps:
                return (step + 1) / self.warmup_steps
            if self.schedule == "constant":
                return 1.0
            span = max(1, self.steps - self.warmup_steps)
            progress = min(1.0, (step - self.warmup_steps) / span)
            cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
            return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine

        return factor

    def check_resume(self, saved: Mapping[str, Any]) -> None:
        """Raise ConfigError if a setting of :data:`RESUME_FIXED` differs from ``saved``, the
        settings of the run being resumed (as :meth:`to_dict` wrote them)."""
        now = self.to_dict()
        changed = [k for k in RESUME_FIXED if k in saved and saved[k] != now[k]]
        if changed:
            raise ConfigError(
                "Cannot resume with different settings: "
                + ", ".join(f"{k} was {saved[k]!r}, now {now[k]!r}" for k in changed)
                + ". Start a new run (another --out) instead."
            )

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON values (``betas`` as a list)."""
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d
