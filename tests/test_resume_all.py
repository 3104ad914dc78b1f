"""Bit-exact resume for every registered model, in each of its tiny configurations.

Each model trained by SGD runs 4 steps without a break, and again interrupted at step 3 (its
last checkpoint at step 2) then resumed to step 4: both run folders must hold the same bytes
of ``model.safetensors`` (and of ``model_last.safetensors`` where the best weights are kept).
Models fitted in closed form have nothing to resume; fitting them twice gives the same bytes.
"""

from __future__ import annotations

import pytest

from genlab import available, fit
from genlab.registry import create, get
from genlab.train import Callback
from test_contract import make_data

SETTINGS = dict(steps=4, batch_size=16, checkpoint_every=2, val_every=2, progress=False)


def no_gan_pictures() -> None:
    """Leave out the GAN diagnostics' pictures (drawn from the weights, never feeding back
    into them): they would take most of this file's time."""
    from genlab.models.gan import callback

    callback.plot_samples = callback.plot_training_report = lambda *args, **kwargs: None


@pytest.fixture(autouse=True)
def _no_pictures(monkeypatch):
    from genlab.models.gan import callback

    monkeypatch.setattr(callback, "plot_samples", callback.plot_samples)
    monkeypatch.setattr(callback, "plot_training_report", callback.plot_training_report)
    no_gan_pictures()


class Interrupt(Callback):
    """Stops a run after step 3, before its step-4 checkpoint: the run resumes from step 2."""

    def on_step_end(self, trainer, step, logs):
        if step == 3:
            raise KeyboardInterrupt


def cases():
    return [pytest.param(name, config, id=f"{name}-{i}")
            for name in available() if not name.startswith("_")
            for i, config in enumerate(get(name).tiny_configs())]


@pytest.mark.parametrize("name,config", cases())
def test_resume_is_bit_exact(name, config, tmp_path):
    data, val = make_data(config, seed=0), make_data(config, n=8, seed=1)
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    if create(name, seed=0, **config).closed_form:
        for out in (whole, broken):
            fit(create(name, seed=0, **config), data, val_data=val, out=out)
    else:
        fit(create(name, seed=0, **config), data, val_data=val, out=whole, **SETTINGS)
        with pytest.raises(KeyboardInterrupt):
            fit(create(name, seed=0, **config), data, val_data=val, out=broken,
                callbacks=[Interrupt()], **SETTINGS)
        fit(create(name, seed=0, **config), data, val_data=val, out=broken, resume=True,
            **SETTINGS)
    for file in ("model.safetensors", "model_last.safetensors"):
        if (whole / file).exists() or (broken / file).exists():
            assert (whole / file).read_bytes() == (broken / file).read_bytes(), file
