"""Training diagnostics for GANs: the failure modes a loss curve alone does not show.

Every ``every`` steps :class:`GANDiagnostics` draws samples with its own seeded generator (the
training randomness is untouched, so runs and resumes stay reproducible) and

* saves a scatter (vectors) or an image grid into ``out/samples/step_XXXXXX.png``;
* measures mean D(x) on real data and D(G(z)) on generated data, in evaluation mode;
* measures mode coverage when the data set knows its modes (``info["centers"]`` and
  ``info["std"]``, e.g. 25gaussians, ring8) and the spread of the samples;
* warns when the discriminator wins outright (D(x) > 0.95 and D(G(z)) < 0.05 for
  ``patience`` checks in a row: the generator's minimax gradient has vanished) or the samples
  collapse (modes lost since the best check, or a spread under a tenth of the data's for
  ``patience`` checks in a row).

Each check is a ``metrics.jsonl`` line; each warning is a :func:`warnings.warn` and a line
with ``"warning"``. At the end of training it writes ``out/training_report.png``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch

from genlab import rand
from genlab.metrics import mode_coverage
from genlab.models.gan.losses import PROBABILISTIC_LOSSES
from genlab.train.callbacks import Callback
from genlab.viz.curves import read_metrics
from genlab.viz.gan import plot_samples, plot_training_report


class GANDiagnostics(Callback):
    """Periodic sample snapshots, D(x)/D(G(z)), mode coverage, warnings and a report PNG.

    Arguments:
        every: Steps between checks; None means once per epoch, but at most ``max_checks``
            times in a run.
        num_samples: Samples drawn per check for coverage and spread (64 for image grids).
        max_checks: Cap on the number of checks when ``every`` is None.
        patience: Consecutive checks with the discriminator winning before warning.
        seed: Seed of the checks' own random generator.
    """

    def __init__(
        self,
        every: int | None = None,
        *,
        num_samples: int = 2500,
        max_checks: int = 20,
        patience: int = 3,
        seed: int = 0,
    ) -> None:
        self.every = every
        self.num_samples = num_samples
        self.max_checks = max_checks
        self.patience = patience
        self.seed = seed
        self.records: list[dict[str, Any]] = []

    # ---------------------------------------------------------------- trainer events
    def on_train_start(self, trainer: Any) -> None:
        config = trainer.config
        if self.every is None:
            epoch = math.ceil(len(trainer.data) / min(config.batch_size, len(trainer.data)))
            self.every = max(epoch, math.ceil(config.steps / self.max_checks))
        self.records = []
        self.wins = 0
        self.narrow = 0
        self.best_modes = 0
        self.warned: set[str] = set()

    def on_step_end(self, trainer: Any, step: int, logs: dict[str, Any]) -> None:
        if step % self.every == 0 or step == trainer.config.steps:
            self.check(trainer, step)

    def on_train_end(self, trainer: Any) -> None:
        if trainer.out is None:
            return
        plot_training_report(self._all_records(trainer), trainer.out / "training_report.png")

    # ---------------------------------------------------------------- one check
    def check(self, trainer: Any, step: int) -> dict[str, Any]:
        """Run the diagnostics at ``step``; returns the record written to the log."""
        model, data = trainer.model, trainer.data
        was_training = model.training
        model.eval()  # batch norm on running statistics; no spectral-norm power iteration
        try:
            with torch.no_grad():
                record, samples, real = self._measure(model, data, step)
        finally:
            model.train(was_training)
        self._log(trainer, record)
        self._save_snapshot(trainer, step, samples, real)
        self.records.append(record)
        for message in self._warnings(model, record):
            warnings.warn(message, RuntimeWarning, stacklevel=3)
            self._log(trainer, {"step": step, "warning": message})
        return record

    def _measure(self, model: Any, data: Any, step: int) -> tuple[dict[str, Any], Any, Any]:
        gen = torch.Generator(device=model.device).manual_seed(self.seed + step)
        images = len(model.event_shape) == 3
        n = 64 if images else self.num_samples
        index = rand.randint(len(data), (min(n, len(data)),), generator=gen, device=model.device)
        index = index.cpu()
        real = data.x[index].to(model.device, model.dtype)
        y_real = data.y[index].to(model.device) if model.conditional else None
        y = None
        if model.conditional:
            y = data.y[rand.randint(len(data), (n,), generator=gen, device=model.device).cpu()]
            y = y.to(model.device)
        z = model.noise(n, generator=gen)
        fake = model.generator(z, y)  # (n, *event_shape), model space
        out_real = model.discriminator(model.to_model_space(real), y_real)
        out_fake = model.discriminator(fake, y)
        record: dict[str, Any] = {"step": step}
        if model.loss in PROBABILISTIC_LOSSES:
            record["check_d_real"] = torch.sigmoid(out_real).mean().item()
            record["check_d_fake"] = torch.sigmoid(out_fake).mean().item()
        else:
            record["check_critic_real"] = out_real.mean().item()
            record["check_critic_fake"] = out_fake.mean().item()
        samples = model.to_data_space(fake)
        # Spread: mean per-coordinate standard deviation of samples over that of the data.
        data_std = real.reshape(len(real), -1).std(0).mean().clamp_min(1e-12)
        record["sample_spread"] = (samples.reshape(n, -1).std(0).mean() / data_std).item()
        info = data.info or {}
        if "centers" in info and "std" in info and not images:
            coverage = mode_coverage(samples, info["centers"], info["std"])
            record["modes_hit"] = coverage["modes_hit"]
            record["num_modes"] = coverage["num_modes"]
            record["high_quality_fraction"] = coverage["high_quality_fraction"]
        return record, samples, real

    def _warnings(self, model: Any, record: dict[str, Any]) -> list[str]:
        messages = []

        def once(kind: str, message: str) -> None:
            """Warn of each kind of failure once per run."""
            if kind not in self.warned:
                self.warned.add(kind)
                messages.append(message)

        step = record["step"]
        if "check_d_real" in record:
            d_real, d_fake = record["check_d_real"], record["check_d_fake"]
            wins = d_real > 0.95 and d_fake < 0.05
        else:
            d_real, d_fake = record["check_critic_real"], record["check_critic_fake"]
            wins = model.loss == "hinge" and d_real > 1.0 and d_fake < -1.0
        self.wins = self.wins + 1 if wins else 0
        if self.wins >= self.patience:
            once("wins",
                 f"GAN step {step}: the discriminator wins outright (mean D(x) = {d_real:.3f}, "
                 f"D(G(z)) = {d_fake:.3f} for {self.wins} checks); the generator's gradient "
                 "is vanishing. Try loss='nonsaturating', a lower d_lr, d_repeats=1, "
                 "spectral_norm=True or r1_weight > 0.")
        modes = record.get("modes_hit")
        if modes is not None:
            if self.best_modes >= 2 and modes <= 0.75 * self.best_modes:
                once("modes",
                     f"GAN step {step}: mode collapse, the samples cover {modes} of "
                     f"{record['num_modes']} modes, down from {self.best_modes}. Try pack=2 "
                     "or more, minibatch_features, or a lower learning rate.")
            self.best_modes = max(self.best_modes, modes)
        self.narrow = self.narrow + 1 if record["sample_spread"] < 0.1 else 0
        if self.narrow >= self.patience:
            once("spread",
                 f"GAN step {step}: the samples collapsed, their spread is "
                 f"{record['sample_spread']:.3f} of the data's for {self.narrow} checks. Try "
                 "pack=2 or more or minibatch_features.")
        return messages

    # ---------------------------------------------------------------- output
    def _log(self, trainer: Any, record: dict[str, Any]) -> None:
        """Append ``record`` to the run's log through the trainer's public ``log``."""
        trainer.log(record)

    def _save_snapshot(self, trainer: Any, step: int, samples: Any, real: Any) -> None:
        if trainer.out is None:
            return
        model = trainer.model
        images = len(model.event_shape) == 3
        plot_samples(
            samples[:64] if images else samples,
            trainer.out / "samples" / f"step_{step:06d}.png",
            data=None if images else real,
            num_levels=model.num_levels,
            title=f"{type(model).__name__} samples, step {step}",
        )

    def _all_records(self, trainer: Any) -> list[dict[str, Any]]:
        """Every record of the run: ``metrics.jsonl`` (complete across resumes) if written."""
        path = trainer.out / "metrics.jsonl"
        if path.is_file():
            return read_metrics(path)
        history = getattr(trainer, "history", None)
        return list(history) if history is not None else list(self.records)
