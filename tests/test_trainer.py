"""The trainer: optimisation, determinism, bit-exact resume, NaN guard, early stopping."""

from __future__ import annotations

import json
import math
import os
from dataclasses import fields

import pytest
import torch

from _toy_models import DiagGaussian, TwoPlayer
from genlab import Dataset, create, fit, load
from genlab.errors import CheckpointError, ConfigError, TrainingError
from genlab.registry import register
from genlab.settings import Annotated, Setting
from genlab.train import Callback, TrainConfig
from genlab.train.guard import NonFiniteWarning


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


# ---------------------------------------------------------------- NaN policies
@register("_flaky-gaussian")
class FlakyGaussian(DiagGaussian):
    """A Gaussian whose loss is NaN for ``bad_calls`` loss calls from call ``first_bad``; the
    count is a Python attribute, so a rollback does not turn it back."""

    def __init__(self, *, event_shape=(2,), num_classes=None, num_levels=None,
                 first_bad: Annotated[int, Setting("first NaN loss call", ge=1)] = 1,
                 bad_calls: Annotated[int, Setting("NaN loss calls in a row", ge=0)] = 0) -> None:
        super().__init__(event_shape=event_shape, num_classes=num_classes, num_levels=num_levels)
        self.first_bad, self.bad_calls = first_bad, bad_calls
        self.loss_calls = 0

    def training_loss(self, x, y):
        self.loss_calls += 1
        loss, logs = super().training_loss(x, y)
        if self.first_bad <= self.loss_calls < self.first_bad + self.bad_calls:
            loss = loss * math.nan
        return loss, logs


class RecordSteps(Callback):
    def __init__(self) -> None:
        self.records = []

    def on_step_end(self, trainer, step, logs):
        self.records.append((step, trainer.schedulers[0].get_last_lr()[0],
                             trainer.model.loc.detach().clone()))


def _events(run):
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return records, [r for r in records if r.get("event") == "non-finite"]


def test_on_nan_skip_drops_the_update(tmp_path):
    recorder = RecordSteps()
    with pytest.warns(NonFiniteWarning, match="skipped"):
        fit(FlakyGaussian(first_bad=4, bad_calls=2), gaussian_data(), steps=8, lr=0.05,
            on_nan="skip", out=tmp_path, callbacks=[recorder], log_every=1)
    locs = {step: loc for step, _, loc in recorder.records}
    assert [s for s, _, _ in recorder.records] == list(range(1, 9))
    assert torch.equal(locs[3], locs[4]) and torch.equal(locs[4], locs[5])  # no update
    assert not torch.equal(locs[5], locs[6])
    _, events = _events(tmp_path)
    assert [(e["step"], e["action"], e["what"]) for e in events] == [(4, "skip", "loss"),
                                                                      (5, "skip", "loss")]
    with pytest.raises(TrainingError, match="10 updates in a row were skipped"):
        fit(FlakyGaussian(first_bad=2, bad_calls=100), gaussian_data(), steps=30,
            on_nan="skip", progress=False)


def test_on_nan_rollback_returns_to_the_checkpoint_with_half_the_lr(tmp_path):
    recorder = RecordSteps()
    with pytest.warns(NonFiniteWarning, match="rolling back"):
        fit(FlakyGaussian(first_bad=7, bad_calls=1), gaussian_data(), steps=10, lr=0.05,
            schedule="constant", checkpoint_every=4, on_nan="rollback", out=tmp_path,
            callbacks=[recorder], log_every=1)
    steps = [s for s, _, _ in recorder.records]
    assert steps == [1, 2, 3, 4, 5, 6, 5, 6, 7, 8, 9, 10]  # the NaN at step 7: back to 4
    lrs = [lr for _, lr, _ in recorder.records]
    assert lrs[:6] == [0.05] * 6 and lrs[6:] == [0.025] * 6
    assert not torch.equal(recorder.records[4][2], recorder.records[6][2])  # lr changed
    records, events = _events(tmp_path)
    assert [(e["step"], e["action"], e["failed_step"], e["lr_scale"]) for e in events] == [
        (4, "rollback", 7, 0.5)]
    assert [r["step"] for r in records if "event" not in r] == list(range(1, 11))
    state = torch.load(tmp_path / "trainer_state.pt", weights_only=True)
    assert state["lr_scale"] == 0.5 and state["step"] == 10
    # Without a run folder the checkpoint is kept in memory; a NaN that never goes away
    # ends the run after the allowed rollbacks.
    with pytest.raises(TrainingError, match="after 5 rollbacks"):
        fit(FlakyGaussian(first_bad=3, bad_calls=1000), gaussian_data(), steps=20,
            on_nan="rollback", checkpoint_every=2, progress=False)


# ---------------------------------------------------------------- GPU paths on the CPU
def test_precision_and_compile_options_are_validated():
    assert TrainConfig(precision="bf16", compile=True, accumulate=2).precision == "bf16"
    for bad in (dict(precision="fp16"), dict(compile="yes"), dict(accumulate=0),
                dict(on_nan="ignore")):
        with pytest.raises(ConfigError):
            TrainConfig(**bad)
    with pytest.raises(ConfigError, match="divisible by 3 shards"):
        fit(DiagGaussian(), gaussian_data(), steps=1, batch_size=64, accumulate=3)


def test_bf16_autocast_trains_on_the_cpu():
    """bfloat16 keeps about 3 significant digits: the fit reaches the fp32 answer to that."""
    data = gaussian_data()
    settings = dict(steps=200, lr=0.05, batch_size=128, schedule="constant", progress=False)
    full = fit(create("realnvp", event_shape=(2,), transforms=2, width=8, seed=0), data,
               **settings)
    half = fit(create("realnvp", event_shape=(2,), transforms=2, width=8, seed=0), data,
               precision="bf16", **settings)
    x = data.x[:256]
    nll_full, nll_half = -full.log_prob(x).mean().item(), -half.log_prob(x).mean().item()
    assert all(p.dtype == torch.float32 for p in half.parameters())
    # Both near the data's entropy; bf16 rounding (2^-8 relative) moves the optimum little.
    assert abs(nll_half - nll_full) < 0.05 * abs(nll_full) + 0.05


# ---------------------------------------------------------------- same seed, same bytes
def test_create_seed_builds_the_same_weights_whatever_ran_before():
    a = create("realnvp", event_shape=(2,), seed=3)
    torch.rand(10)  # the global stream moved
    b = create("realnvp", event_shape=(2,), seed=3)
    c = create("realnvp", event_shape=(2,), seed=4)
    state = torch.get_rng_state()
    create("realnvp", event_shape=(2,), seed=5)
    assert torch.equal(state, torch.get_rng_state())  # the caller's stream is untouched
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert any(not torch.equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())
    with pytest.raises(ConfigError, match="seed"):
        create("realnvp", event_shape=(2,), seed=-1)


def test_the_same_command_gives_the_same_bytes(tmp_path):
    from genlab.cli import main

    for run in ("a", "b"):
        torch.rand(7)  # whatever ran before in this process
        assert main(["train", "realnvp", "--data", "moons", "--steps", "40", "--seed", "3",
                     "--out", str(tmp_path / run), "--quiet"]) == 0
    for name in ("init.safetensors", "model.safetensors", "config.json", "trainer_state.pt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name

    def untimed(run):
        return [{k: v for k, v in json.loads(line).items() if k != "time"}
                for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]

    assert untimed("a") == untimed("b")


# ---------------------------------------------------------------- one unit on disk
class Crash(Exception):
    pass


def _crash_on_call(monkeypatch, module, name, n):
    original = getattr(module, name)
    calls = [0]

    def wrapped(*args, **kwargs):
        calls[0] += 1
        if calls[0] == n:
            raise Crash(f"{name} call {n}")
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapped)


def test_an_interrupted_write_leaves_the_old_run_whole(tmp_path, monkeypatch):
    from genlab.train import commit

    data = gaussian_data()
    fit(DiagGaussian(), data, steps=4, out=tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    # A new run in the same folder dies while writing its first files (before the commit).
    _crash_on_call(monkeypatch, commit, "_write_synced", 2)
    with pytest.raises(Crash):
        fit(DiagGaussian(noise=0.5), data, steps=4, out=tmp_path)
    monkeypatch.undo()
    old = load(tmp_path)
    assert old.config["noise"] == 0.0
    for name in ("config.json", "model.safetensors", "trainer_state.pt"):
        assert (tmp_path / name).read_bytes() == before[name]
    fit(DiagGaussian(), data, steps=4, out=tmp_path, resume=True)  # drops the leftovers
    assert not (tmp_path / ".pending").exists()


def test_an_interrupted_commit_gives_the_new_run_and_resumes(tmp_path, monkeypatch):

    data = gaussian_data()
    settings = dict(steps=4, checkpoint_every=2, seed=5, progress=False)
    fit(DiagGaussian(), data, out=tmp_path, **settings)
    reference = fit(DiagGaussian(noise=0.5), data, out=tmp_path / "ref", **settings)
    recorder = RecordSteps()
    # Renames: the start's commit point, config.json, init.safetensors; then the step-2
    # checkpoint's commit point, config.json, and a crash before model.safetensors moves.
    _crash_on_call(monkeypatch, os, "replace", 6)
    with pytest.raises(Crash):
        fit(DiagGaussian(noise=0.5), data, out=tmp_path, callbacks=[recorder], **settings)
    monkeypatch.undo()
    assert (tmp_path / ".pending" / "model.safetensors").is_file()
    new = load(tmp_path)  # the committed step-2 checkpoint, read from the journal
    assert new.config["noise"] == 0.5
    assert torch.equal(new.loc, recorder.records[1][2])
    resumed = fit(DiagGaussian(noise=0.5), data, out=tmp_path, resume=True, **settings)
    assert not (tmp_path / ".pending").exists()
    assert torch.equal(resumed.loc, reference.loc)
    assert (tmp_path / "model.safetensors").read_bytes() == \
        (tmp_path / "ref" / "model.safetensors").read_bytes()
