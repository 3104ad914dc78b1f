"""GAN training: bit-exact resume of both players, save/load, and the diagnostics callback."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from genlab.data.dataset import Dataset
from genlab.errors import ConfigError
from genlab.models.gan import DCGAN, GAN
from genlab.models.gan.callback import GANDiagnostics
from genlab.train import Callback, fit, load


class Interrupt(Callback):
    """Stops training right after step ``at`` (after that step's checkpoint is written)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_step_end(self, trainer, step, logs):
        if step == self.at + 1:
            raise KeyboardInterrupt


def toy_data(n: int = 256) -> Dataset:
    g = torch.Generator().manual_seed(0)
    centers = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.0]])
    k = torch.randint(3, (n,), generator=g)
    x = centers[k] + 0.05 * torch.randn(n, 2, generator=g)
    return Dataset(x=x, y=k, name="three", info={"centers": centers.tolist(), "std": 0.05})


def digits_like(n: int = 64) -> Dataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(17, (n, 1, 8, 8), generator=g).float()
    return Dataset(x=x, y=torch.randint(3, (n,), generator=g), kind="discrete", num_levels=17)


@pytest.mark.parametrize(
    "make, data",
    [
        (lambda: GAN(event_shape=(2,), width=16, depth=1, latent_size=4, pack=2,
                     d_repeats=2, r1_weight=0.5, spectral_norm=True, minibatch_features=3,
                     g_batchnorm=True, instance_noise=0.2,
                     instance_noise_steps=6, diag_every=4), toy_data),
        (lambda: DCGAN(event_shape=(1, 8, 8), num_levels=17, num_classes=3, width=4,
                       latent_size=4, loss="wasserstein"), digits_like),
    ],
    ids=["gan", "dcgan"],
)
def test_resume_is_bit_exact(tmp_path: Path, make, data):
    """N steps in one run == N/2 steps, an interruption, and a resume: both networks (with
    batch-norm statistics and spectral-norm vectors) and both optimizers' states equal
    bit for bit on CPU."""
    data = data()
    settings = {"steps": 8, "batch_size": 32, "lr": 1e-3, "seed": 0, "progress": False}
    warnings.simplefilter("ignore")
    torch.manual_seed(0)  # the networks' initial weights
    fit(make(), data, out=tmp_path / "full", **settings)
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        fit(make(), data, out=tmp_path / "cut", checkpoint_every=4, callbacks=[Interrupt(4)],
            **settings)
    fit(make(), data, out=tmp_path / "cut", resume=True, checkpoint_every=4, **settings)
    full = load_file(tmp_path / "full" / "model.safetensors")
    cut = load_file(tmp_path / "cut" / "model.safetensors")
    assert full.keys() == cut.keys()
    assert any("running_mean" in k or "_u" in k for k in full)  # BN or spectral-norm state
    for k in full:
        assert torch.equal(full[k], cut[k]), k
    opt_full = torch.load(tmp_path / "full" / "trainer_state.pt", weights_only=True)["optimizers"]
    opt_cut = torch.load(tmp_path / "cut" / "trainer_state.pt", weights_only=True)["optimizers"]
    assert len(opt_full) == 2  # discriminator and generator
    for a, b in zip(opt_full, opt_cut, strict=True):
        assert a["param_groups"] == b["param_groups"]
        for i, state in a["state"].items():
            for key, value in state.items():
                assert torch.equal(value, b["state"][i][key]), (i, key)

    # The folder alone rebuilds the model: same samples from the same seed.
    model = load(tmp_path / "full")
    again = load(tmp_path / "cut")
    y = 1 if model.conditional else None
    assert torch.equal(model.sample(5, y=y, generator=torch.Generator().manual_seed(0)),
                       again.sample(5, y=y, generator=torch.Generator().manual_seed(0)))
    records = [json.loads(line) for line in
               (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if "loss_generator" in r]
    assert steps == sorted(set(steps))  # no duplicated lines after the resume
    logged = {"loss_discriminator", "loss_generator", "grad_norm_discriminator"}
    assert logged <= records[-1].keys()
    assert (tmp_path / "full" / "training_report.png").is_file()


def fake_trainer(model, data, out: Path | None, steps: int = 30):
    """What the callback uses of a Trainer; ``log`` keeps records as the Trainer's does."""
    trainer = SimpleNamespace(model=model, data=data, out=out, step=0, history=[],
                              config=SimpleNamespace(steps=steps, batch_size=64))

    def log(record):
        trainer.history.append(record)
        if out is not None:
            with open(out / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    trainer.log = log
    return trainer


def test_callback_warns_when_discriminator_wins(tmp_path: Path):
    """G outputs the constant (10, 10), far from data near the origin, and D's logit is
    5 - x_1 - x_2: D(x) ~ sigmoid(5) = 0.993 on the data, D(G(z)) = sigmoid(-15) ~ 3e-7.
    After ``patience`` = 3 checks the callback warns that D wins, and, since every sample is
    the same point, that the samples collapsed; both warnings go to metrics.jsonl too."""
    data = toy_data()
    model = GAN(event_shape=(2,), depth=0, latent_size=2, pack=1)
    with torch.no_grad():
        model.generator.net[0].weight.zero_()
        model.generator.net[0].bias.fill_(10.0)
        model.discriminator.head.weight.fill_(-1.0)
        model.discriminator.head.bias.fill_(5.0)
    trainer = fake_trainer(model, data, tmp_path)
    callback = GANDiagnostics(every=10)
    callback.on_train_start(trainer)
    with pytest.warns(RuntimeWarning) as caught:
        for step in range(1, 31):
            callback.on_step_end(trainer, step, {})
    messages = [str(w.message) for w in caught]
    assert any("discriminator wins outright" in m and "step 30" in m for m in messages)
    assert any("samples collapsed" in m and "step 30" in m for m in messages)
    callback.on_train_end(trainer)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    checks = [r for r in records if "check_d_real" in r]
    assert [r["step"] for r in checks] == [10, 20, 30]
    assert checks[0]["check_d_real"] > 0.95 and checks[0]["check_d_fake"] < 1e-6
    assert checks[0]["modes_hit"] == 0 and checks[0]["high_quality_fraction"] == 0.0
    assert sum("warning" in r for r in records) == 2
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [
        "step_000010.png", "step_000020.png", "step_000030.png"]
    assert (tmp_path / "training_report.png").is_file()

    # The same report, and the snapshots in a row, drawn again from the run folder alone.
    assert set(GAN.figures()) == {"training", "interpolation"}
    written = model.plot("training", tmp_path, tmp_path / "figs" / "gan.png")
    assert written == [tmp_path / "figs" / "gan.png", tmp_path / "figs" / "gan-samples.png"]
    assert all(p.is_file() and p.stat().st_size > 0 for p in written)
    with pytest.raises(ConfigError, match="training"):
        model.plot("density", tmp_path, tmp_path / "figs" / "density.png")


def test_callback_reports_coverage_and_leaves_state_alone():
    """A generator that puts its mass on the three modes is seen covering all three, with no
    warning; checks use their own random generator and evaluation mode, so neither the
    global RNG nor the model (batch-norm statistics, training flag) changes."""
    data = toy_data()
    model = GAN(event_shape=(2,), depth=0, latent_size=2, pack=1)
    with torch.no_grad():  # G(z) = 2 z: wide enough to touch every mode
        model.generator.net[0].weight.copy_(2 * torch.eye(2))
        model.generator.net[0].bias.zero_()
    trainer = fake_trainer(model, data, None)
    callback = GANDiagnostics(every=5)
    callback.on_train_start(trainer)
    state = torch.get_rng_state()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        record = callback.check(trainer, 5)
    assert torch.equal(state, torch.get_rng_state())
    assert model.training
    assert record["modes_hit"] == 3 and 0 < record["high_quality_fraction"] < 0.1


def test_callback_every_defaults_to_an_epoch_capped_at_max_checks():
    data = toy_data(256)
    model = GAN(event_shape=(2,), width=4, depth=1)
    callback = GANDiagnostics()
    callback.on_train_start(fake_trainer(model, data, None, steps=100))
    assert callback.every == 5  # ceil(256 / 64) = 4 steps per epoch, but 100 / 20 checks = 5
    callback = GANDiagnostics()
    callback.on_train_start(fake_trainer(model, data, None, steps=10))
    assert callback.every == 4
