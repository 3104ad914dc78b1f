"""One contract for every registered model (picked up from the registry, no editing needed).

Each model's ``tiny_configs()`` lists small variants (continuous / discrete / conditional).
Every variant must: fit for two steps, give log-likelihoods of the right shape that are finite
and differentiable (every parameter gets a gradient from its objective), sample with the right
shape and dtype, repeat its samples under the same generator seed, save and load to the same
numbers, round-trip its config, and refuse bad input with the documented error.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from genlab import Dataset, available, fit, load
from genlab.conditioning import random_conditions
from genlab.errors import ConfigError, DataError, IntractableLikelihood, ShapeError
from genlab.registry import get
from genlab.train.checkpoint import save_model

N = 48


def cases():
    out = []
    for name in available():
        if name.startswith("_"):
            continue
        cls = get(name)
        configs = cls.tiny_configs() if hasattr(cls, "tiny_configs") else []
        for i, config in enumerate(configs):
            out.append(pytest.param(name, config, id=f"{name}-{i}"))
    return out


CASES = cases()


def test_every_family_has_tiny_configs_and_recipes():
    for name in available():
        if name.startswith("_"):
            continue
        cls = get(name)
        assert hasattr(cls, "tiny_configs") and cls.tiny_configs(), f"{name} lacks tiny_configs()"
        assert isinstance(getattr(cls, "recipes", None), dict), f"{name} lacks a recipes dict"


#: One name per idea across families (docs/design.md, "One vocabulary"); these are retired.
RETIRED_NAMES = {"hidden_features", "hidden_channels", "hidden_size", "d_model", "hidden",
                 "g_hidden", "d_hidden", "layers", "num_layers", "levels", "steps", "num_heads",
                 "embedding_dim", "latent_dim", "channels", "cond_drop_prob", "d_steps", "seed"}


@pytest.mark.parametrize("name", [n for n in available() if not n.startswith("_")])
def test_every_setting_is_declared_once_in_the_vocabulary(name):
    cls = get(name)
    specs = cls.settings()
    assert specs, f"{name} declares no settings"
    for spec in specs.values():
        assert spec.help, f"{name}: setting {spec.name!r} has no Setting(help=...)"
        if not spec.required:
            spec.check(spec.default)  # the default fits its own declaration
    assert not set(specs) & RETIRED_NAMES, f"{name}: retired names {set(specs) & RETIRED_NAMES}"
    for spec in cls.sample_options().values():
        assert spec.help, f"{name}: sampling option {spec.name!r} has no Setting(help=...)"
        spec.check(spec.default)


def make_data(config, n=N, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape = tuple(config["event_shape"])
    if config.get("num_levels"):
        x = torch.randint(0, config["num_levels"], (n, *shape), generator=g).float()
        kind, levels = "discrete", config["num_levels"]
    else:
        x = torch.randn((n, *shape), generator=g)
        kind, levels = "continuous", None
    y = None
    if config.get("num_classes"):
        y = torch.arange(n) % config["num_classes"]
    if set(config.get("conditions") or ()) - {"label"}:
        y = random_conditions(config["conditions"], n, event_shape=shape, generator=g,
                              num_classes=config.get("num_classes"), num_levels=levels)
    return Dataset(x=x, y=y, kind=kind, num_levels=levels, num_classes=config.get("num_classes"),
                   name="synthetic", split="train")


def fitted(name, config):
    torch.manual_seed(0)
    model = get(name)(**config)
    data = make_data(config)
    if model.closed_form:
        fit(model, data)
    else:
        fit(model, data, steps=2, batch_size=16, progress=False)
    return model, data


def labels(model, n):
    if model.y_is_conditions:  # the first n of one fixed draw, as the labels are
        return random_conditions(model.conditions, max(n, N), event_shape=model.event_shape,
                                 num_classes=model.num_classes, num_levels=model.num_levels,
                                 generator=torch.Generator().manual_seed(0))[:n]
    return None if not model.conditional else torch.arange(n) % model.num_classes


def scores(model, x, y):
    torch.manual_seed(123)  # continuous families on discrete data dequantize with global noise
    if model.has_exact_likelihood:
        return model.log_prob(x, y)
    return model.log_prob_bound(x, y)


@pytest.mark.parametrize("name,config", CASES)
def test_contract(name, config, tmp_path):
    model, data = fitted(name, config)
    x, n = data.x[:8], 8
    y = labels(model, n)
    likelihood = model.has_exact_likelihood or model.has_likelihood_bound

    # log_prob: one finite value per sample; batch dims are kept.
    if likelihood:
        lp = scores(model, x, y)
        assert lp.shape == (n,) and torch.isfinite(lp).all()
        lp2 = scores(model, x.reshape(2, 4, *model.event_shape),
                     y if y is None or model.y_is_conditions else y.reshape(2, 4))
        assert lp2.shape == (2, 4)
    else:
        with pytest.raises(IntractableLikelihood):
            model.log_prob(x, y)

    # Every trainable parameter gets a gradient from the objective that owns it.
    if not model.closed_form:
        model.train()
        for obj in model.objectives():
            model.zero_grad(set_to_none=True)
            yy = None if not model.conditional else data.y[:16]
            loss, _ = obj.loss(data.x[:16], yy)
            assert torch.isfinite(loss)
            loss.backward()
            missing = [i for i, p in enumerate(obj.parameters)
                       if p.requires_grad and p.grad is None]
            assert not missing, f"objective {obj.name!r}: parameters {missing} got no gradient"
        model.eval()

    # Samples: shape, dtype, support; same seed, same samples.
    s1 = model.sample(5, labels(model, 5), generator=torch.Generator().manual_seed(1))
    s2 = model.sample(5, labels(model, 5), generator=torch.Generator().manual_seed(1))
    assert s1.shape == (5, *model.event_shape) and s1.dtype == torch.float32
    assert torch.isfinite(s1).all() and torch.equal(s1, s2)
    if model.discrete:
        assert torch.equal(s1, s1.round()) and s1.min() >= 0 and s1.max() < model.num_levels

    # Save and load: the same numbers; config round-trips through JSON.
    save_model(model, tmp_path / "run")
    again = load(tmp_path / "run")
    assert type(again) is type(model)
    assert json.loads(json.dumps(model.config)) == again.config
    if likelihood:
        assert torch.allclose(scores(model, x, y), scores(again, x, y), rtol=1e-5, atol=1e-5)
    s3 = again.sample(5, labels(model, 5), generator=torch.Generator().manual_seed(1))
    assert torch.allclose(s1, s3, atol=1e-5)

    # Bad input gets our typed errors.
    bad_shape = torch.zeros(3, *[d + 1 for d in model.event_shape])
    if likelihood:
        with pytest.raises(ShapeError):
            scores(model, bad_shape, labels(model, 3))
        nan = x.clone()
        nan.view(-1)[0] = math.nan
        with pytest.raises(DataError):
            scores(model, nan, y)
        if model.conditional:
            with pytest.raises(DataError):  # conditions trained with dropout may be missing
                scores(model, x, {"no_such_condition": 0} if model.y_is_conditions else None)
            with pytest.raises(DataError):
                scores(model, x, torch.full((n,), model.num_classes or 0))
        else:
            with pytest.raises(DataError):
                scores(model, x, torch.zeros(n, dtype=torch.long))
        if model.discrete:
            with pytest.raises(DataError):
                scores(model, x + 0.5, y)
    with pytest.raises(ConfigError):
        model.sample(0, labels(model, 1))
    with pytest.raises(ConfigError):
        model.sample(2, labels(model, 2), no_such_option=1)


def test_unknown_model_name_is_a_clear_error():
    from genlab import create

    with pytest.raises(KeyError, match="Unknown model 'histgram'. Did you mean 'histogram'"):
        create("histgram", event_shape=(2,))
