"""Paired digits: sketches, low-resolution and masked images, attributes, prompts, drawings."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.data import attributes as attrs
from genlab.data.conditions import (
    check_sketch,
    lowres,
    masks,
    paired_digits,
    sketch,
    thin,
)
from genlab.data.drawings import load_drawing
from genlab.data.prompts import parse_prompt, prompt_vocabulary, split_words, write_prompt
from genlab.errors import ConfigError, DataError, ShapeError


@pytest.fixture(scope="module")
def test_pairs():
    return paired_digits("test", seed=3)


def test_same_seed_same_conditions_other_seed_other_prompts(test_pairs):
    again = paired_digits("test", seed=3)
    assert again.conditions["prompt"] == test_pairs.conditions["prompt"]
    for name in ("sketch", "lowres", "mask", "masked"):
        assert torch.equal(again.conditions[name], test_pairs.conditions[name])
    other = paired_digits("test", ("prompt", "mask"), seed=4)
    assert other.conditions["prompt"] != test_pairs.conditions["prompt"]
    assert not torch.equal(other.conditions["mask"], test_pairs.conditions["mask"])
    # an image's conditions do not depend on the split it is read from
    whole = paired_digits("all", ("prompt", "mask"), seed=3)
    assert whole.conditions["prompt"][1500:] == test_pairs.conditions["prompt"]
    assert torch.equal(whole.conditions["mask"][1500:], test_pairs.conditions["mask"])


def test_condition_shapes_and_values(test_pairs):
    c, x = test_pairs.conditions, test_pairs.x
    assert x.shape == (297, 1, 8, 8) and torch.equal(c["label"], test_pairs.y)
    for name in ("sketch", "mask"):
        assert c[name].shape == x.shape and set(c[name].unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(c["masked"], x * c["mask"])
    # a half mask hides exactly half of the pixels; the low-res image keeps block means
    assert (c["mask"].sum((1, 2, 3)) == 32).all()
    assert torch.allclose(c["lowres"].sum((1, 2, 3)), x.sum((1, 2, 3)))
    assert torch.equal(c["lowres"][:, :, ::2, ::2], c["lowres"][:, :, 1::2, 1::2])
    # sketches are thin lines inside the thresholded strokes
    assert (c["sketch"] <= (x >= 8).float()).all()
    assert (c["sketch"].sum((1, 2, 3)) > 0).all()
    assert c["sketch"].sum() < (x >= 8).sum()


def test_thinning_is_idempotent_and_thins_a_thick_bar():
    s = sketch(paired_digits("val", ()).x)
    assert torch.equal(thin(s[:, 0]).float(), s[:, 0])
    bar = torch.zeros(1, 9, 9, dtype=torch.long)
    bar[0, 1:8, 3:6] = 1  # three pixels wide
    thinned = thin(bar)
    assert (thinned.sum(2) <= 1).all() and thinned.sum() >= 3  # one pixel per row, still a line


def test_random_masks_hide_about_half():
    m = masks(torch.arange(400), kind="random", seed=0)
    # 400 * 64 Bernoulli(1/2) pixels: 4 standard errors of the mean
    assert abs(m.mean().item() - 0.5) < 4 * 0.5 / np.sqrt(m.numel())


def test_held_out_combinations_never_in_train_and_marked_elsewhere():
    train = paired_digits("train", ("prompt",))
    assert not train.held_out.any()
    for label, attribute, category in attrs.HELD_OUT:
        code = attrs.CATEGORIES[attribute].index(category)
        assert not ((train.y == label) & (train.categories[attribute] == code)).any()
        assert not any(parse_prompt(p).get(attribute) == category and p_label == label
                       for p, p_label in zip(train.conditions["prompt"], train.y.tolist(),
                                             strict=True))
    every = paired_digits("all", ("prompt",))
    assert len(every) - len(train) > 150 + 297  # the dropped train images exist in "all"
    held = paired_digits("test", ("prompt",), held_out="only")
    assert len(held) > 0 and held.held_out.all()
    # held-out images always name their combination
    for p, label in zip(held.conditions["prompt"], held.y.tolist(), strict=True):
        named = parse_prompt(p)
        assert any(named.get(a) == c for k, a, c in attrs.HELD_OUT if k == label)


def test_measures_on_constructed_images():
    lean_right = torch.zeros(1, 1, 8, 8)
    lean_left = torch.zeros(1, 1, 8, 8)
    for r in range(8):
        lean_right[0, 0, r, 7 - r] = 16.0  # top right to bottom left
        lean_left[0, 0, r, r] = 16.0
    upright = torch.zeros(1, 1, 8, 8)
    upright[0, 0, :, 3:5] = 16.0
    m = attrs.measure_attributes(torch.cat([lean_right, lean_left, upright, upright / 2]))
    assert torch.allclose(m["slant"], torch.tensor([1.0, -1.0, 0.0, 0.0], dtype=torch.float64))
    assert torch.allclose(m["mass"], torch.tensor([8.0, 8.0, 16.0, 8.0], dtype=torch.float64))
    # a vertical bar two pixels wide: Var(r) = (64 - 1) / 12, Var(c) = 1/4
    assert m["size"][2].item() == pytest.approx(np.sqrt(63 / 12 + 0.25))
    assert m["offset_x"][2].item() == pytest.approx(0.0)
    shifted = attrs.measure_attributes(torch.roll(upright, 2, 3))
    assert shifted["offset_x"].item() == pytest.approx(2.0)
    cats = attrs.attribute_categories(m, torch.tensor([1, 1, 1, 1]))
    assert cats["slant"].tolist()[:3] == [2, 0, 1]  # right, left, upright
    # for a 1, three full columns (mass 24) are thick and half a column's worth (mass 8) thin
    wide = torch.zeros(1, 1, 8, 8)
    wide[0, 0, :, 2:5] = 16.0
    both = torch.cat([wide, upright / 2])
    thickness = attrs.attribute_categories(attrs.measure_attributes(both), torch.tensor([1, 1]))
    assert thickness["thickness"].tolist() == [2, 0]


def test_thresholds_split_each_class_in_thirds(test_pairs):
    train = paired_digits("train", (), held_out="keep")
    for attribute, k in (("thickness", 3), ("slant", 3), ("size", 2)):
        counts = torch.bincount(train.categories[attribute], minlength=k).double()
        # quantiles of the train split itself: each category holds its share up to ties
        assert (counts / len(train) - 1 / k).abs().max() < 0.02


def test_prompts_use_the_vocabulary_and_parse_back(test_pairs):
    vocabulary = set(prompt_vocabulary())
    for variant in range(3):
        prompts = test_pairs.prompts(variant)
        for i, p in enumerate(prompts):
            assert set(split_words(p)) <= vocabulary
            named = parse_prompt(p)
            assert named["label"] == str(test_pairs.y[i].item())
            truth = test_pairs.category_names(i)
            assert all(truth[a] == c for a, c in named.items() if a != "label")
    assert test_pairs.prompts(0) != test_pairs.prompts(1)
    shapes = {p.split(" ")[0] for p in test_pairs.prompts(0)}
    assert {"a", "the"} <= shapes and len(shapes) > 5  # several sentence shapes


def test_prompt_examples_and_parse_errors():
    p = write_prompt(7, {"thickness": "thick", "slant": "right"}, force=["thickness", "slant"])
    assert parse_prompt(p) == {"label": "7", "thickness": "thick", "slant": "right"}
    assert parse_prompt("seven, bold, tilted to the right") == {
        "label": "7", "thickness": "thick", "slant": "right"}
    with pytest.raises(DataError, match="at most one thickness"):
        parse_prompt("a thin thick 3")


def test_bad_arguments():
    with pytest.raises(ConfigError):
        paired_digits("train", ("sketch", "colour"))
    with pytest.raises(ConfigError):
        paired_digits("valid")
    with pytest.raises(ShapeError):
        check_sketch(torch.zeros(1, 7, 7))
    with pytest.raises(DataError):
        check_sketch(torch.full((1, 8, 8), 0.5))
    with pytest.raises(ShapeError):
        lowres(torch.zeros(2, 1, 7, 8))


def _save(array: np.ndarray, path) -> None:
    Image.fromarray(array.astype(np.uint8)).save(path)


def test_load_drawing_polarity_size_and_format(tmp_path, test_pairs):
    s = test_pairs.conditions["sketch"][:10, 0].numpy()
    for i, one in enumerate(s):
        big = np.kron(one, np.ones((12, 12))) * 255  # light strokes on dark, 96 x 96
        _save(big, tmp_path / f"light{i}.png")
        _save(255 - big, tmp_path / f"dark{i}.png")
        light = load_drawing(tmp_path / f"light{i}.png")
        assert torch.equal(light, load_drawing(tmp_path / f"dark{i}.png"))
        assert torch.equal(light[0], torch.from_numpy(one))
    # a JPEG of another size and aspect reads the same way (lossy, so compare loosely)
    stretched = np.kron(s[0], np.ones((10, 10))) * 255
    Image.fromarray((255 - stretched).astype(np.uint8)).save(tmp_path / "d.jpg", quality=95)
    drawn = load_drawing(tmp_path / "d.jpg")
    assert drawn.shape == (1, 8, 8) and torch.equal(drawn[0], torch.from_numpy(s[0]))


def test_load_drawing_errors(tmp_path):
    _save(np.full((30, 40), 255), tmp_path / "blank.png")
    with pytest.raises(DataError, match="blank"):
        load_drawing(tmp_path / "blank.png")
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(DataError, match="image file"):
        load_drawing(tmp_path / "notes.png")
    with pytest.raises(DataError, match="no file"):
        load_drawing(tmp_path / "missing.png")
    with pytest.raises(ShapeError):
        load_drawing(np.zeros((4, 4, 4, 4)))


def test_committed_drawings_are_reproduced_and_read_as_sketches():
    folder = Path(__file__).parents[1] / "docs" / "figures"
    spec = importlib.util.spec_from_file_location("make_drawings", folder / "make_drawings.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    rendered = script.render_all()
    assert sorted(rendered) == sorted(p.name for p in (folder / "drawings").glob("*.png"))
    for name, data in rendered.items():
        assert (folder / "drawings" / name).read_bytes() == data  # same seed, same bytes
        drawn = load_drawing(folder / "drawings" / name)
        assert drawn.shape == (1, 8, 8) and 4 <= drawn.sum() <= 24
