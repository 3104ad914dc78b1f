"""Conditions beyond class labels: the Conditions container, the checks of user input, the
``conditions`` data argument, data sets whose y is a Conditions, and training and save/load
of a family that takes them (a Gaussian whose mean reads every kind, written here)."""

from __future__ import annotations

import json
import math
from typing import ClassVar

import pytest
import torch
from torch import Tensor, nn

from genlab import Dataset, create, fit, load
from genlab.base import GenerativeModel
from genlab.conditioning import (
    Conditions,
    canonical_kinds,
    check_conditions,
    prompt_tokenizer,
    random_conditions,
)
from genlab.data.conditions import paired_digits
from genlab.errors import ConfigError, DataError, ShapeError
from genlab.registry import _REGISTRY
from genlab.settings import Annotated, Setting
from genlab.train import Callback
from genlab.train.checkpoint import save_model

SHAPE = (1, 8, 8)


class ToyConditional(GenerativeModel):
    """N(mean(y), s^2 I) with the mean read from a label, image channels and prompt words:
    all a family does to take conditions (supported_conditions, a ``conditions`` argument
    passed to the base class, Conditions in _log_prob and _sample)."""

    supported_conditions: ClassVar[tuple[str, ...]] = ("label", "sketch", "lowres", "mask",
                                                       "prompt")

    def __init__(self, *, event_shape, num_classes=None, num_levels=None, conditions=None,
                 condition_dropout: Annotated[float, Setting(
                     "probability of dropping each condition", ge=0, lt=1)] = 0.0) -> None:
        super().__init__(event_shape=event_shape, num_classes=num_classes,
                         num_levels=num_levels, conditions=conditions)
        self.condition_dropout = condition_dropout
        images = sum(2 if k != "mask" else 3 for k in self.conditions
                     if k in ("sketch", "lowres", "mask"))
        self.image = nn.Conv2d(images, 1, 1) if images else None
        self.label = nn.Embedding((num_classes or 0) + 1, math.prod(self.event_shape))
        self.words = nn.Embedding(prompt_tokenizer().vocab_size, 1)
        self.log_scale = nn.Parameter(torch.zeros(()))

    @property
    def optional_conditions(self) -> tuple[str, ...]:
        return self.conditions if self.condition_dropout > 0 else ()

    def _mean(self, y: Conditions, n: int) -> Tensor:
        mean = torch.zeros(n, *self.event_shape, device=self.device)
        if self.training and self.condition_dropout > 0:
            y = y.dropout({k: self.condition_dropout for k in y.kinds})
        if self.image is not None:
            mean = mean + self.image(y.image_channels(presence=True))
        if "label" in y.kinds:  # absent labels read the extra "null" row
            label = torch.where(y.present("label"), y["label"], self.num_classes)
            mean = mean + self.label(label).reshape(n, *self.event_shape)
        if "prompt" in y.kinds:
            words = (self.words.weight[y["prompt"], 0] * y["prompt_mask"]).sum(1)  # (n,)
            mean = mean + words.reshape(n, *(1,) * len(self.event_shape))
        return mean

    def _log_prob(self, x: Tensor, y: Conditions) -> Tensor:
        z = (x - self._mean(y, len(x))) / self.log_scale.exp()
        return (-0.5 * z**2 - self.log_scale - 0.5 * math.log(2 * math.pi)).flatten(1).sum(1)

    def _sample(self, n: int, y: Conditions, *, generator=None) -> Tensor:
        eps = torch.randn(n, *self.event_shape, generator=generator, device=self.device)
        return self._mean(y, n) + self.log_scale.exp() * eps


class Interrupt(Callback):
    """Stops a run after step 3, before its step-4 checkpoint: it resumes from step 2."""

    def on_step_end(self, trainer, step, logs):
        if step == 3:
            raise KeyboardInterrupt


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(_REGISTRY, "toy-conditional", ToyConditional)
    ToyConditional.name = "toy-conditional"
    return ToyConditional


def toy(**kw):
    return ToyConditional(event_shape=SHAPE, **kw)


# ------------------------------------------------------------------ kinds and config
def test_kinds_are_checked_and_put_in_canonical_order():
    assert canonical_kinds(["prompt", "label", "sketch"]) == ("label", "sketch", "prompt")
    assert canonical_kinds("prompt, mask") == ("mask", "prompt")
    with pytest.raises(ConfigError, match="Did you mean 'sketch'"):
        canonical_kinds(["sketchh"])
    with pytest.raises(ConfigError, match="each condition once"):
        canonical_kinds(["sketch", "sketch"])


def test_constructor_validates_conditions_against_data_and_family():
    model = toy(conditions=["prompt", "sketch"])
    assert model.conditions == ("sketch", "prompt") and model.y_is_conditions
    assert model.config["conditions"] == ["sketch", "prompt"]  # canonical, JSON-able
    with pytest.raises(ConfigError, match="num_classes exactly when 'label'"):
        toy(conditions=["label", "sketch"])
    with pytest.raises(ConfigError, match="num_classes exactly when 'label'"):
        toy(conditions=["sketch"], num_classes=10)
    with pytest.raises(ConfigError, match=r"image data \(C, H, W\)"):
        ToyConditional(event_shape=(2,), conditions=["sketch"])
    with pytest.raises(ConfigError, match="supports conditions \\('label',\\), but found "
                                          "'sketch'"):
        create("gmm", event_shape=(1, 8, 8), conditions=["sketch"])


def test_label_only_models_are_unchanged():
    plain = create("gmm", event_shape=(2,), num_classes=3, components=2, seed=0)
    spelled = create("gmm", event_shape=(2,), num_classes=3, components=2, seed=0,
                     conditions=("label",))
    assert plain.config == spelled.config and "conditions" not in plain.config
    assert plain.conditions == ("label",) and not plain.y_is_conditions
    assert plain._check_y(2, 4).tolist() == [2, 2, 2, 2]
    assert plain._check_y({"label": torch.tensor([0, 1])}, 2).tolist() == [0, 1]
    assert create("gmm", event_shape=(2,), components=2).conditions == ()


# ------------------------------------------------------------------ the container
def test_conditions_index_chunk_cat_and_drop():
    g = torch.Generator().manual_seed(0)
    c = random_conditions(("label", "sketch", "mask", "prompt"), 6, event_shape=SHAPE,
                          num_classes=10, num_levels=17, generator=g)
    assert c.n == 6 and c.kinds == ("label", "sketch", "mask", "prompt")
    assert set(c) == {"label", "sketch", "mask", "masked", "prompt", "prompt_mask"}
    rows = torch.tensor([4, 1])
    picked = c[rows]
    assert picked.n == 2 and torch.equal(picked["sketch"], c["sketch"][rows])
    assert torch.equal(c[torch.arange(6) < 2]["label"], c["label"][:2])
    parts = c.chunk(4)
    assert [p.n for p in parts] == [2, 2, 2]
    whole = Conditions.cat(parts)
    assert whole == c and c.to("cpu") == c and c.drop("label") != c
    dropped = c.drop("sketch", torch.tensor([True, False, True, False, False, False]))
    assert dropped.present("sketch").tolist() == [False, True, False, True, True, True]
    assert dropped["sketch"][0].sum() == 0 and torch.equal(dropped["sketch"][1], c["sketch"][1])
    assert dropped[rows].present("sketch").tolist() == [True, True]
    everywhere = c.drop(["prompt", "label"])
    assert everywhere.is_absent("prompt") and not everywhere["prompt_mask"].any()
    # image channels: sketch, mask, masked, then one presence channel per kind
    channels = dropped.image_channels(presence=True)
    assert channels.shape == (6, 5, 8, 8)
    assert channels[:, 3].flatten(1).mean(1).tolist() == [0, 1, 0, 1, 1, 1]


def test_dropout_drops_each_kind_at_its_rate():
    n = 4000
    c = random_conditions(("sketch", "prompt"), n, event_shape=SHAPE)
    out = c.dropout({"sketch": 0.3, "prompt": 0.1}, torch.Generator().manual_seed(0))
    for kind, rate in (("sketch", 0.3), ("prompt", 0.1)):
        dropped = (~out.present(kind)).double().mean().item()
        assert abs(dropped - rate) < 5 * math.sqrt(rate * (1 - rate) / n)
    both = (~out.present("sketch") & ~out.present("prompt")).double().mean().item()
    assert abs(both - 0.03) < 5 * math.sqrt(0.03 * 0.97 / n)  # independent


def test_container_refuses_malformed_tensors():
    with pytest.raises(ConfigError, match="mask and masked together"):
        Conditions({"mask": torch.ones(2, 1, 8, 8)})
    with pytest.raises(ShapeError, match="n=2 rows"):
        Conditions({"label": torch.zeros(2, dtype=torch.long), "sketch": torch.zeros(3, 1, 8, 8)})
    with pytest.raises(DataError, match="sketch values 0 and 1"):
        Conditions({"sketch": torch.full((1, 1, 8, 8), 0.5)})
    with pytest.raises(DataError, match="int64 label"):
        Conditions({"label": torch.zeros(2)})


# ------------------------------------------------------------------ user input
def check(y, n, kinds=("label", "sketch", "prompt"), **kw):
    return check_conditions(y, n, kinds=kinds, event_shape=SHAPE, num_classes=10,
                            num_levels=17, **kw)


def test_user_input_is_tokenized_broadcast_and_checked():
    sketch = torch.zeros(8, 8)
    sketch[2:6, 4] = 1
    c = check({"label": 3, "sketch": sketch, "prompt": "a thin 3 leaning left"}, 4)
    assert c.n == 4 and c["label"].tolist() == [3] * 4
    assert c["sketch"].shape == (4, 1, 8, 8) and torch.equal(c["sketch"][3, 0], sketch)
    assert prompt_tokenizer().decode(c["prompt"][:1]) == ["a thin 3 leaning left"]
    many = check({"label": torch.arange(2), "sketch": sketch[None, None].expand(2, 1, 8, 8),
                  "prompt": ["a 1", "a bold 2"]}, 2)
    assert many["prompt_mask"].sum(1).tolist() == [2, 3]


@pytest.mark.parametrize("y,error,words", [
    ({"label": 3, "sketch": torch.zeros(8, 8)}, DataError, "Expected the prompt condition"),
    ({"label": 3, "sketch": torch.zeros(8, 8), "prompt": "a 3", "lowres": torch.zeros(8, 8)},
     DataError, "found extra 'lowres'"),
    ({"label": 3, "sketch": torch.zeros(8, 8), "prompt": "a 3", "skech": 1}, DataError,
     "found unknown 'skech'"),
    ({"label": 3, "sketch": torch.zeros(7, 7), "prompt": "a 3"}, ShapeError,
     r"Expected sketch of shape \(1, 8, 8\)"),
    ({"label": 3, "sketch": torch.full((8, 8), 0.5), "prompt": "a 3"}, DataError,
     "values 0 and 1"),
    ({"label": 12, "sketch": torch.zeros(8, 8), "prompt": "a 3"}, DataError,
     r"label values in \[0, 9\]"),
    ({"label": 3, "sketch": torch.zeros(8, 8), "prompt": "a thni 3"}, DataError,
     "unknown 'thni'"),
    ({"label": 3, "sketch": torch.zeros(8, 8), "prompt": ""}, DataError, "non-empty prompt"),
    ({"label": 3, "sketch": torch.zeros(8, 8), "prompt": "a 3 " * 20}, DataError,
     "at most 24 words"),
    ({"label": torch.arange(3), "sketch": torch.zeros(8, 8), "prompt": "a 3"}, ShapeError,
     "label for 1 or 4 rows"),
    ({"label": 3, "sketch": torch.full((8, 8), math.nan), "prompt": "a 3"}, DataError,
     "finite sketch"),
    (torch.tensor([3]), DataError, "mapping of conditions"),
])
def test_user_input_errors_say_expected_and_found(y, error, words):
    with pytest.raises(error, match=words):
        check(y, 4)


def test_missing_conditions_only_where_trained_with_dropout():
    with pytest.raises(DataError, match="trained without dropping sketch"):
        check({"label": 1, "prompt": "a 1"}, 2)
    c = check({"label": 1, "prompt": "a 1"}, 2, optional=("sketch",))
    assert c.is_absent("sketch") and c["sketch"].shape == (2, 1, 8, 8)
    masked = check_conditions({"mask": torch.ones(8, 8), "masked": torch.full((1, 8, 8), 16.0)},
                              1, kinds=("mask",), event_shape=SHAPE, num_levels=17)
    with pytest.raises(DataError, match=r"masked values in \[0, 16\]"):
        check_conditions({"mask": torch.ones(8, 8), "masked": torch.full((1, 8, 8), 17.0)},
                         1, kinds=("mask",), event_shape=SHAPE, num_levels=17)
    assert masked["masked"].max() == 16


# ------------------------------------------------------------------ data, training, runs
def paired(split, n):
    data = paired_digits(split, ("label", "sketch", "prompt"), seed=0)
    return data.subset(torch.arange(n)).to_dataset(("label", "sketch", "prompt"))


def test_paired_data_set_gives_conditions_and_create_infers_them(registered):
    data = paired("val", 32)
    assert isinstance(data.y, Conditions) and data.conditions == ("label", "sketch", "prompt")
    assert data.num_classes == 10 and data.subset(slice(0, 5)).y.n == 5
    model = create("toy-conditional", data=data, seed=0)
    assert model.conditions == ("label", "sketch", "prompt") and model.num_classes == 10
    assert data.describe()["conditions"] == ["label", "sketch", "prompt"]
    with pytest.raises(ConfigError, match="supports conditions"):
        create("gmm", data=data)
    with pytest.raises(ConfigError, match="among those made"):
        paired_digits("val", ("sketch",)).to_dataset(("prompt",))


@pytest.mark.filterwarnings("ignore:ToyNormal was built for continuous data")
def test_label_only_model_trains_on_the_labels_of_conditions_data():
    data = paired("val", 48)
    model = create("toy-normal", event_shape=SHAPE, num_classes=10, seed=0)
    fit(model, data, steps=2, batch_size=16, progress=False)
    assert torch.isfinite(model.log_prob(data.x[:4], data.y["label"][:4])).all()


def test_train_save_load_and_resume_with_conditions(registered, tmp_path):
    data, val = paired("train", 64), paired("val", 16)
    settings = dict(steps=4, batch_size=16, checkpoint_every=2, val_every=2, progress=False,
                    seed=0)
    whole = tmp_path / "whole"
    model = fit(create("toy-conditional", data=data, seed=0, condition_dropout=0.2), data,
                val_data=val, out=whole, **settings)
    config = json.loads((whole / "config.json").read_text())
    assert config["config"]["conditions"] == ["label", "sketch", "prompt"]
    again = load(whole)
    assert again.conditions == model.conditions and again.optional_conditions
    y = {"label": 7, "sketch": val.y["sketch"][0], "prompt": "a bold 7"}
    draws = [m.sample(3, y, generator=torch.Generator().manual_seed(1)) for m in (model, again)]
    assert torch.equal(draws[0], draws[1])
    no_prompt = again.sample(3, {"label": 7, "sketch": val.y["sketch"][0]})
    assert no_prompt.shape == (3, *SHAPE)  # trained with dropout: a missing prompt is absent
    # resume from the step-2 checkpoint to step 4: the same bytes as the unbroken run
    broken = tmp_path / "broken"
    with pytest.raises(KeyboardInterrupt):
        fit(create("toy-conditional", data=data, seed=0, condition_dropout=0.2), data,
            val_data=val, out=broken, callbacks=[Interrupt()], **settings)
    fit(load(broken), data, val_data=val, out=broken, resume=True, **settings)
    assert (broken / "model.safetensors").read_bytes() == \
        (whole / "model.safetensors").read_bytes()


def test_log_prob_reads_every_condition(registered, tmp_path):
    model = toy(conditions=("sketch", "prompt"))
    x = torch.zeros(2, *SHAPE)
    y = {"sketch": torch.zeros(8, 8), "prompt": ["a 1", "a bold 2"]}
    assert model.log_prob(x, y).shape == (2,)
    with pytest.raises(DataError, match="trained without dropping prompt"):
        model.log_prob(x, {"sketch": torch.zeros(8, 8)})
    save_model(model, tmp_path, data={"name": "digits"})
    assert load(tmp_path).config == model.config
    assert isinstance(Dataset(x=x, y=model._check_y(y, 2)).y, Conditions)
