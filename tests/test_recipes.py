"""Defaults a user gets: each family's recipe, best-validation weights, the overfitting warning,
and the command line taking exactly the path the library (and the benchmarks) take."""

from __future__ import annotations

import json
import math
from dataclasses import fields

import pytest
import torch

from _toy_models import DiagGaussian
from genlab import Dataset, create, fit, load, load_data
from genlab.cli import main
from genlab.recipes import DATA_KINDS, data_kind, recipe_for, train_settings
from genlab.registry import available, get
from genlab.train import TrainConfig
from genlab.train.trainer import OverfittingWarning

TRAIN_FIELDS = {f.name for f in fields(TrainConfig)}


def kind_data(kind: str) -> Dataset:
    if kind == "points":
        return load_data("moons", n=200)
    if kind == "images":
        return load_data("digits")
    g = torch.Generator().manual_seed(0)
    return Dataset(x=torch.randn(100, 5, generator=g), name="table")


def test_data_kinds():
    assert data_kind(kind_data("points")) == "points"
    assert data_kind(kind_data("images")) == "images"
    assert data_kind(kind_data("table")) == "table"


@pytest.mark.parametrize("name", [n for n in available() if not n.startswith("_")])
def test_every_recipe_builds_and_validates(name):
    cls = get(name)
    assert set(cls.recipes) <= set(DATA_KINDS), f"{name}: unknown data kind in {set(cls.recipes)}"
    for kind, recipe in cls.recipes.items():
        unknown = set(recipe.train) | set(recipe.quick)
        assert unknown <= TRAIN_FIELDS, \
            f"{name}/{kind}: not training settings: {unknown - TRAIN_FIELDS}"
        TrainConfig(**{**recipe.train, **recipe.quick})  # valid values
        data = kind_data(kind)
        model = create(name, data=data)
        for key, value in recipe.params.items():
            got = model.config[key]
            assert got == (list(value) if isinstance(value, tuple) else value), (name, kind, key)
        create(name, data=data, **recipe.quick_params)


def test_likelihood_families_keep_best_and_stop_early_by_default():
    """Every family trained by SGD on a likelihood (or bound it keeps the best of) has
    patience on; GANs and diffusion state their own rule (keep the last / EMA weights)."""
    for name in available():
        cls = get(name)
        for kind, recipe in cls.recipes.items():
            model = create(name, data=kind_data(kind))
            if model.closed_form:
                continue
            keep = recipe.train.get("keep", "best")
            if model.has_exact_likelihood or keep == "best":  # a VAE keeps its best bound
                assert keep == "best" and recipe.train.get("patience"), (name, kind)
            else:
                assert keep == "last", (name, kind)


def overfit_data():
    """A 2-D Gaussian model fitted to 24 points with a far-off validation set: training NLL
    keeps falling as the scale shrinks around the training points while validation rises."""
    g = torch.Generator().manual_seed(0)
    train = Dataset(x=torch.randn(24, 2, generator=g) * 0.3 + 1.0, name="tiny")
    val = Dataset(x=torch.randn(200, 2, generator=g) * 2.0, name="tiny", split="val")
    return train, val


def test_best_weights_kept_last_written_too_and_overfitting_flagged(tmp_path):
    train, val = overfit_data()
    expected = r"overfitting since step \d+; best val at step \d+"
    with pytest.warns(OverfittingWarning, match=expected):
        model = fit(DiagGaussian(), train, val_data=val, out=tmp_path, steps=200, lr=0.05,
                    batch_size=24, val_every=5, schedule="constant")
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    vals = [r for r in records if "val_nll" in r]
    best = min(vals, key=lambda r: r["val_nll"])
    assert best["step"] < 200
    assert any("warning" in r and f"best val at step {best['step']}" in r["warning"] for r in vals)
    # The model (and model.safetensors) hold the best-validation weights, exactly.
    val_nll = (-model.log_prob(val.x) / 2).double().mean().item()
    assert math.isclose(val_nll, best["val_nll"], rel_tol=1e-5)
    assert math.isclose((-load(tmp_path).log_prob(val.x) / 2).double().mean().item(),
                        best["val_nll"], rel_tol=1e-5)
    last = load(tmp_path, weights="model_last.safetensors")
    assert (-last.log_prob(val.x) / 2).double().mean().item() > best["val_nll"]


def test_keep_last_chooses_the_last_weights(tmp_path):
    train, val = overfit_data()
    with pytest.warns(OverfittingWarning):
        fit(DiagGaussian(), train, val_data=val, out=tmp_path, steps=200, lr=0.05, batch_size=24,
            val_every=5, schedule="constant", keep="last")
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    final = [r for r in records if "val_nll" in r][-1]
    model = load(tmp_path)
    assert math.isclose((-model.log_prob(val.x) / 2).double().mean().item(), final["val_nll"],
                        rel_tol=1e-5)
    assert not (tmp_path / "model_last.safetensors").exists()


def test_no_warning_while_validation_improves(tmp_path):
    g = torch.Generator().manual_seed(1)
    train = Dataset(x=torch.randn(2000, 2, generator=g) + 2.0, name="g")
    val = Dataset(x=torch.randn(500, 2, generator=g) + 2.0, name="g", split="val")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", OverfittingWarning)
        fit(DiagGaussian(), train, val_data=val, steps=100, lr=0.05, val_every=10)


def test_cli_train_uses_the_library_defaults(tmp_path, capsys):
    """`genlab train NAME --data D` builds create(NAME, data=D) and trains with the recipe's
    settings: the same calls the benchmarks make."""
    out = tmp_path / "made"
    code = main(["train", "made", "--data", "digits", "--steps", "3", "--quiet",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert "kept the best weights" in capsys.readouterr().out
    digits = load_data("digits")
    saved = json.loads((out / "config.json").read_text())["config"]
    assert saved == create("made", data=digits).config
    state = torch.load(out / "trainer_state.pt", weights_only=True)
    expected = TrainConfig(**train_settings(create("made", data=digits), digits, has_val=True,
                                            steps=3, progress=False)).to_dict()
    assert state["config"] == expected
    assert (out / "model_last.safetensors").is_file()


def test_cli_keep_last_and_patience_none(tmp_path, capsys):
    out = tmp_path / "r"
    code = main(["train", "made", "--data", "moons", "--steps", "4", "--keep", "last",
                 "--patience", "none", "--quiet", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    state = torch.load(out / "trainer_state.pt", weights_only=True)
    assert state["config"]["keep"] == "last" and state["config"]["patience"] is None
    assert not (out / "model_last.safetensors").exists()


def test_recipe_patience_needs_validation_data():
    digits = load_data("digits")
    model = create("made", data=digits)
    assert "patience" in train_settings(model, digits, has_val=True)
    assert "patience" not in train_settings(model, digits, has_val=False)
    assert recipe_for(get("pixelcnn"), load_data("moons", n=10)) is None
