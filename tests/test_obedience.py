"""Measures of obedience (label, attributes, sketch) and variety of conditional samples."""

from __future__ import annotations

import math

import pytest
import torch

from genlab.data.conditions import paired_digits
from genlab.errors import DataError, ShapeError
from genlab.metrics.obedience import (
    attribute_error,
    chamfer_distance,
    diversity,
    obedience,
    real_sketch_reference,
    sketch_agreement,
    sketch_iou,
)


@pytest.fixture(scope="module")
def test_pairs():
    return paired_digits("test", ("sketch", "prompt"))


def test_real_digits_obey_their_own_conditions(test_pairs):
    x, c = test_pairs.x, test_pairs.conditions
    scores = obedience(x, prompts=c["prompt"], sketches=c["sketch"], groups=test_pairs.y)
    assert scores["sketch_iou"] == 1.0 and scores["sketch_chamfer"] == 0.0
    assert all(scores[k] == 0.0 for k in scores if k.endswith(("_error", "_steps")))
    assert scores["label_accuracy"] >= 0.95  # the classifier's documented test accuracy
    assert scores["diversity"] > 0


def test_sketch_iou_decreases_with_shift(test_pairs):
    s = test_pairs.conditions["sketch"]
    assert torch.equal(sketch_iou(s, s), torch.ones(len(s), dtype=torch.float64))
    previous_iou, previous_chamfer = 1.0, 0.0
    for shift in (1, 2, 3):
        moved = torch.zeros_like(s)
        moved[..., shift:] = s[..., :-shift]  # shift right, no wrap around
        iou = sketch_iou(s, moved).mean().item()
        chamfer = chamfer_distance(s, moved).mean().item()
        assert iou < previous_iou and chamfer > previous_chamfer
        previous_iou, previous_chamfer = iou, chamfer


def test_chamfer_and_iou_on_known_sketches():
    a = torch.zeros(3, 1, 8, 8)
    b = torch.zeros(3, 1, 8, 8)
    a[0, 0, 2, 2] = b[0, 0, 2, 5] = 1  # one pixel each, 3 apart
    a[1, 0, 4, 1:4] = 1  # a 3-pixel line against nothing
    c = chamfer_distance(a, b)
    assert c[0].item() == pytest.approx(3.0)
    assert c[1].item() == pytest.approx(math.hypot(8, 8))
    assert c[2].item() == 0.0
    assert sketch_iou(a, b).tolist() == [0.0, 0.0, 1.0]
    with pytest.raises(ShapeError):
        sketch_iou(a, b[:2])


def test_another_digits_sketch_is_a_lower_reference():
    ref = real_sketch_reference("val", seed=0)
    assert ref["own_iou"] == 1.0 and ref["own_chamfer"] == 0.0
    assert 0.0 < ref["other_iou"] < 0.8 and ref["other_chamfer"] > 0.2
    assert real_sketch_reference("val", seed=0) == ref


def test_attribute_error_sees_a_wrong_attribute(test_pairs):
    x = test_pairs.x[:40]
    labels = test_pairs.y[:40]
    thick = [f"a thick {k}" for k in labels.tolist()]
    thin = [f"a thin {k}" for k in labels.tolist()]
    real = test_pairs.categories["thickness"][:40]
    on_thick, on_thin = attribute_error(x, thick), attribute_error(x, thin)
    assert on_thick["thickness"]["error"] == pytest.approx((real != 2).double().mean().item())
    assert on_thin["thickness"]["error"] == pytest.approx((real != 0).double().mean().item())
    assert on_thick["thickness"]["n"] == 40 and set(on_thick) == {"thickness"}
    with pytest.raises(DataError, match="name a digit"):
        attribute_error(x[:1], ["a thick"])


def test_diversity_of_copies_is_zero_and_grows_with_spread(test_pairs):
    x = test_pairs.x[:1].expand(6, -1, -1, -1)
    groups = torch.tensor([0, 0, 0, 1, 1, 1])
    assert diversity(x, groups) == {"diversity": 0.0, "groups": 2}
    real = diversity(test_pairs.x, test_pairs.y)
    assert real["groups"] == 10 and real["diversity"] > 1.0
    with pytest.raises(DataError):
        diversity(test_pairs.x[:3], torch.arange(3))


def test_sketch_agreement_of_a_blank_sample(test_pairs):
    blank = torch.zeros(2, 1, 8, 8)
    scores = sketch_agreement(blank, test_pairs.conditions["sketch"][:2])
    assert scores["iou"] == 0.0 and scores["chamfer"] == pytest.approx(math.hypot(8, 8))
