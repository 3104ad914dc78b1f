"""The trainer: optimisation, determinism, bit-exact resume, NaN guard, early stopping."""

from __future__ import annotations

import json
import math
from dataclasses import fields

import pytest
import torch

from _toy_models import DiagGaussian, TwoPlayer
from genlab import Dataset, fit, load
from genlab.errors import CheckpointError, ConfigError, TrainingError
from genlab.train import Callback, TrainConfig


def gaussian_data(n=512, seed=0, shift=(1.5, -2.0), scale=(0.5, 2.0)):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g) * torch.tensor(scale) + torch.tensor(shift)
    return Dataset(x=x, name="toy", split="train")


def test_fit_reaches_maximum_likelihood():
    data = gaussian_data()
    model = fit(DiagGaussian(), data, steps=400, lr=0.05, batch_size=128, schedule="constant")
    # The NLL is convex in (loc, log_scale) with optimum at the sample mean and the (biased)
    # sample std. Adam at lr 0.05 with minibatches of 128 leaves minibatch noise of about
    # lr-sized steps, so we ask for agreement to 0.1 (a fifth of the smallest std).
    assert torch.allclose(model.loc, data.x.mean(0), atol=0.1)
    assert torch.allclose(model.log_scale.exp(), data.x.std(0, unbiased=False), rtol=0.1)


def test_same_seed_same_weights_other_seed_differs():
    data = gaussian_data()
    a = fit(DiagGaussian(noise=0.3), data, steps=30, seed=3)
    b = fit(DiagGaussian(noise=0.3), data, steps=30, seed=3)
    c = fit(DiagGaussian(noise=0.3), data, steps=30, seed=4)
    assert torch.equal(a.loc, b.loc) and torch.equal(a.log_scale, b.log_scale)
    assert not torch.equal(a.loc, c.loc)


class Interrupt(Callback):
    def __init__(self, at: int) -> None:
        self.at = at

    def on_step_end(self, trainer, step, logs):
        if step == self.at:
            raise KeyboardInterrupt


@pytest.mark.parametrize("ema", [None, 0.9])
def test_resume_is_bit_exact(tmp_path, ema):
    data = gaussian_data()
    settings = dict(steps=40, batch_size=100, lr=0.05, checkpoint_every=10, ema_decay=ema,
                    warmup_steps=5, clip_grad=1.0, val_every=10, seed=7)
    full = fit(DiagGaussian(noise=0.5), data, val_data=gaussian_data(seed=1), out=tmp_path / "a",
               **settings)
    with pytest.raises(KeyboardInterrupt):
        fit(DiagGaussian(noise=0.5), data, val_data=gaussian_data(seed=1), out=tmp_path / "b",
            callbacks=[Interrupt(at=27)], **settings)
    resumed = fit(DiagGaussian(noise=0.5), data, val_data=gaussian_data(seed=1),
                  out=tmp_path / "b", resume=True, **settings)
    assert torch.equal(full.loc, resumed.loc)
    assert torch.equal(full.log_scale, resumed.log_scale)
    sa = torch.load(tmp_path / "a" / "trainer_state.pt", weights_only=True)
    sb = torch.load(tmp_path / "b" / "trainer_state.pt", weights_only=True)
    assert torch.equal(sa["optimizers"][0]["state"][0]["exp_avg"],
                       sb["optimizers"][0]["state"][0]["exp_avg"])
    # The log holds each step once: the lines written after the step-20 checkpoint were dropped.
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(line)["step"] for line in lines]
    assert steps == sorted(set(steps)) and steps[-1] == 40
    # What is on disk rebuilds the same model.
    again = load(tmp_path / "b")
    assert torch.equal(again.loc, resumed.loc)


def test_resume_refuses_changed_settings(tmp_path):
    data = gaussian_data()
    fit(DiagGaussian(), data, steps=5, out=tmp_path, lr=0.01)
    with pytest.raises(ConfigError, match="lr was 0.01"):
        fit(DiagGaussian(), data, steps=10, out=tmp_path, lr=0.02, resume=True)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    data = gaussian_data()
    with pytest.raises(TrainingError, match="became nan at step 7"):
        fit(DiagGaussian(nan_at_step=7), data, steps=20, checkpoint_every=2, out=tmp_path)
    state = torch.load(tmp_path / "trainer_state.pt", weights_only=True)
    assert state["step"] == 6
    load(tmp_path)  # the kept checkpoint is whole
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*tmp"))


class RecordValidation(Callback):
    def __init__(self) -> None:
        self.records = []

    def on_validation_end(self, trainer, step, logs):
        self.records.append((logs["val_nll"], step, trainer.model.loc.detach().clone()))


def test_early_stopping_keeps_best_weights():
    # Training data centred at +3, validation at -3: once the scale has grown, moving loc
    # toward +3 makes validation worse, so validation NLL has an interior minimum.
    train = gaussian_data(shift=(3.0, 3.0), scale=(1.0, 1.0))
    val = gaussian_data(seed=1, shift=(-3.0, -3.0), scale=(1.0, 1.0))
    recorder = RecordValidation()
    model = fit(DiagGaussian(), train, val_data=val, steps=400, lr=0.05, val_every=5, patience=3,
                callbacks=[recorder], schedule="constant")
    best_val, best_step, best_loc = min(recorder.records, key=lambda r: r[0])
    last_step = recorder.records[-1][1]
    assert last_step < 400, "training should stop early"
    assert last_step == best_step + 3 * 5  # three validations without improvement
    assert torch.equal(model.loc, best_loc)


def test_objectives_alternate_with_repeats():
    model = TwoPlayer(k=3)
    fit(model, gaussian_data(), steps=50, lr=0.1, schedule="constant")
    assert model.counts == {"first": 150, "second": 50}
    assert abs(model.b.item() - 3.0) < 0.2  # the second objective used its own lr


@pytest.mark.parametrize("bad", [dict(steps=0), dict(steps=-3), dict(lr=-1.0), dict(batch_size=0),
                                 dict(optimizer="sgdd"), dict(ema_decay=1.5), dict(nonsense=1),
                                 dict(betas=(0.9, 1.0)), dict(betas=[0.9]), dict(device="gpu"),
                                 dict(progress=1), dict(seed=-1), dict(lr=math.nan)])
def test_bad_settings_raise_config_error(bad):
    with pytest.raises(ConfigError):
        fit(DiagGaussian(), gaussian_data(), **bad)


def test_every_train_setting_is_declared_with_a_flag_type():
    specs = TrainConfig.settings()
    assert list(specs) == [f.name for f in fields(TrainConfig)]
    # What `genlab train` can turn into a flag.
    flag_types = {int, float, bool, str, int | None, float | None, bool | None,
                  tuple[float, float]}
    for name, spec in specs.items():
        assert spec.help and spec.annotation in flag_types, name
        spec.check(spec.default)
    choices = {name: spec.setting.choices for name, spec in specs.items() if spec.setting.choices}
    assert choices == {"optimizer": ("adam", "adamw"), "schedule": ("cosine", "constant"),
                       "keep": ("best", "last"), "precision": ("fp32", "bf16"),
                       "on_nan": ("raise", "skip", "rollback")}
    with pytest.raises(ConfigError, match=r"Expected betas to be a pair of numbers in \[0, 1\), "
                                          r"but found \(0.9, 1.0\)\."):
        TrainConfig(betas=(0.9, 1.0))
    assert TrainConfig(betas=[0.5, 0.6], device="cuda:1").betas == (0.5, 0.6)  # JSON lists


def test_learning_rate_schedule():
    factor = TrainConfig(steps=100, warmup_steps=10, min_lr_ratio=0.1).lr_factor()
    assert factor(0) == pytest.approx(0.1) and factor(9) == pytest.approx(1.0)
    assert factor(10) == pytest.approx(1.0) and factor(100) == pytest.approx(0.1)
    assert factor(55) == pytest.approx(0.55)  # half-way down the cosine
    assert TrainConfig(schedule="constant").lr_factor()(500) == 1.0


class LogAt(Callback):
    def on_step_end(self, trainer, step, logs):
        if step == 3:
            trainer.log({"step": step, "note": "from a callback"})


def test_callbacks_log_into_the_run(tmp_path):
    model = DiagGaussian()
    fit(model, gaussian_data(), steps=5, log_every=5, out=tmp_path, callbacks=[LogAt()])
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [3, 5]
    assert records[0] == {"step": 3, "note": "from a callback"}


def test_wrong_data_shape_is_a_clear_error():
    with pytest.raises(ValueError, match="event shape"):
        fit(DiagGaussian(event_shape=(3,)), gaussian_data(), steps=1)


def test_checkpoint_errors(tmp_path):
    data = gaussian_data()
    fit(DiagGaussian(), data, steps=3, out=tmp_path / "run")
    run = tmp_path / "run"
    weights = (run / "model.safetensors").read_bytes()
    (run / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load(run)
    (run / "model.safetensors").write_bytes(weights)
    config = (run / "config.json").read_text()
    (run / "config.json").write_text(config[:20])
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load(run)
    (run / "config.json").write_text(
        config.replace('"event_shape": [\n      2\n    ]', '"event_shape": [3]')
    )
    with pytest.raises(CheckpointError, match="shape"):
        load(run)
    with pytest.raises(CheckpointError, match="does not exist"):
        load(tmp_path / "nowhere")
    (run / "config.json").write_text(config.replace('"_diag-gaussian"', '"no-such-model"'))
    with pytest.raises(KeyError, match="Unknown model"):
        load(run)


def test_a_second_training_into_the_same_folder_is_refused(tmp_path):
    """While one training holds a run folder, another one pointed at it stops before writing
    anything; once the first has ended the folder is free again."""
    from genlab.train.lock import run_lock

    data = gaussian_data()
    fit(DiagGaussian(), data, steps=3, out=tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    with run_lock(tmp_path):  # another process's training, as far as the lock can tell
        with pytest.raises(ConfigError, match="Another training .* is writing to"):
            fit(DiagGaussian(), data, steps=3, out=tmp_path, lr=0.5)
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    fit(DiagGaussian(), data, steps=3, out=tmp_path, lr=0.5)  # free again
