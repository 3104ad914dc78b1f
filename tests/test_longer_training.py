"""Training longer never leaves a user with a worse model: with the recipe's defaults (best
validation weights kept, early stopping), a run 10x longer than the default ends with a
validation NLL no worse than the default run's, for every family trained by SGD.

Each family (one data kind each, the cheaper one) runs a tiny configuration on a small
training set (200 digits, or 300 moons points), where a long run does overfit; the default
run is ``STEPS`` steps, the long one ``10 * STEPS``, both with every other setting from the
family's recipe for that data kind.
"""

from __future__ import annotations

import pytest
import torch

from genlab import create, fit, load_data
from genlab.recipes import recipe_for
from genlab.registry import available, get

STEPS = 20


def small_data(kind: str, conditions: tuple[str, ...] | None = None):
    if conditions:  # sketches, prompts, ...: the same digits with their paired conditions
        from genlab.data.conditions import paired_digits

        rows = {"train": torch.arange(200), "val": torch.arange(100)}
        return tuple(paired_digits(split, conditions).subset(rows[split]).to_dataset(conditions)
                     for split in ("train", "val"))
    if kind == "images":
        train = load_data("digits").subset(slice(0, 200))
        return train, load_data("digits", split="val").subset(slice(0, 100))
    return load_data("moons", n=300), load_data("moons", split="val", n=300)


def tiny_config(cls, kind: str) -> dict | None:
    for config in cls.tiny_configs():
        shape = tuple(config["event_shape"])
        if config.get("num_classes"):
            continue
        if kind == "images" and shape == (1, 8, 8) and config.get("num_levels") == 17:
            return config
        if kind == "points" and shape == (2,) and not config.get("num_levels"):
            return config
    return None


def cases():
    """One case per family trained by SGD with a validation loss, on its cheapest data kind."""
    out = []
    for name in available():
        cls = get(name)
        if not (cls.has_exact_likelihood or cls.has_likelihood_bound):
            continue  # GANs: no validation NLL to compare
        for kind in ("points", "images"):
            config = tiny_config(cls, kind) if recipe_for(cls, kind) is not None else None
            if config is not None and not cls(**config).closed_form:
                out.append(pytest.param(name, kind, config, id=f"{name}-{kind}"))
                break
    return out


def val_nll(model, val) -> float:
    with torch.no_grad():
        loss = model.validation_loss(val.x, val.y if model.conditional else None)
    if loss is None:
        pytest.skip(f"{model.name} has no validation loss")
    return loss.double().mean().item()


@pytest.mark.slow
@pytest.mark.parametrize("name,kind,config", cases())
def test_ten_times_longer_is_not_worse(name, kind, config):
    train, val = small_data(kind, config.get("conditions"))
    params = {k: v for k, v in config.items()
              if k not in ("event_shape", "num_levels", "conditions")}
    short = fit(create(name, data=train, **params), train, val_data=val, steps=STEPS,
                progress=False)
    long = fit(create(name, data=train, **params), train, val_data=val, steps=10 * STEPS,
               progress=False)
    assert val_nll(long, val) <= val_nll(short, val), (val_nll(long, val), val_nll(short, val))
