"""How well conditional samples obey their condition, and how varied they stay.

Samples are digits in data space, ``(n, 1, 8, 8)`` with values 0..16; row i was generated
under condition i (a label, a prompt, a sketch).

* **Label accuracy** (:func:`label_accuracy`): the fraction of samples that genlab's digits
  classifier (:func:`~genlab.metrics.features.digits_classifier`) assigns to the asked label.
* **Attribute error** (:func:`attribute_error`): for each attribute a prompt names, the
  fraction of samples whose measured category
  (:func:`~genlab.data.attributes.attribute_categories`, thresholds of the asked digit)
  differs from the named one, and the mean number of category steps between them. Real
  digits with prompts written from them score 0 by construction.
* **Sketch agreement** (:func:`sketch_agreement`): the sample's own sketch
  (:func:`~genlab.data.conditions.sketch`) against the given sketch, by IoU (stroke pixels
  in both over stroke pixels in either; 1 when both are empty) and symmetric Chamfer distance
  (the mean, over both sketches, of each stroke pixel's distance to the nearest stroke pixel
  of the other, in pixels; 0 when both are empty, the image diagonal when one is).
* **Diversity** (:func:`diversity`): the mean Euclidean distance between two samples of the
  same condition, on images scaled to [0, 1] (x / 16); 0 means the model ignores its noise.

References for sketch agreement come from real digits (:func:`real_sketch_reference`): a
digit against its own sketch gives IoU 1 and Chamfer 0 by construction, so the useful
reference is a digit against the sketch of **another digit of the same class** -- what a
model that obeys the label but ignores the sketch reaches. A sample that follows its sketch
should land between the two.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from genlab.data import attributes as attrs
from genlab.data.conditions import check_sketch, sketch
from genlab.data.prompts import parse_prompt
from genlab.errors import DataError, ShapeError
from genlab.metrics.features import DigitsClassifier, _as_digits, class_accuracy

__all__ = ["attribute_error", "chamfer_distance", "diversity", "label_accuracy", "obedience",
           "real_sketch_reference", "sketch_agreement", "sketch_iou"]


def label_accuracy(samples: Tensor, labels: Tensor | Sequence[int] | int, *,
                   classifier: DigitsClassifier | None = None) -> float:
    """Fraction of samples ``(n, 1, 8, 8)`` classified as their labels ``(n,)`` (or one int)."""
    return class_accuracy(samples, torch.as_tensor(labels), classifier=classifier)


def attribute_error(samples: Tensor, prompts: Sequence[str],
                    labels: Tensor | Sequence[int] | None = None) -> dict[str, dict[str, float]]:
    """Disagreement between the attributes prompts name and those measured on the samples.

    Arguments:
        samples: Digits ``(n, 1, 8, 8)``, values 0..16.
        prompts: The n prompts the samples were generated from.
        labels: The asked digits ``(n,)``; default: the digit each prompt names (a prompt
            without a digit then raises).

    Returns:
        ``{attribute: {"error", "steps", "n"}}`` for each attribute some prompt names:
        mismatch rate, mean absolute category steps (thin -> thick is 2), number of prompts.

    Raises:
        ShapeError: n prompts for a different number of samples.
        DataError: a prompt naming no digit when ``labels`` is None.
    """
    x = _as_digits(samples)
    if len(prompts) != len(x):
        raise ShapeError(f"Expected {len(x)} prompts, but found {len(prompts)}.")
    targets = [parse_prompt(p) for p in prompts]
    if labels is None:
        missing = [p for p, t in zip(prompts, targets, strict=True) if "label" not in t]
        if missing:
            raise DataError(f"Expected every prompt to name a digit, but found {missing[0]!r}.")
        labels = [int(t["label"]) for t in targets]
    labels = torch.as_tensor(labels).reshape(-1).long()
    measured = attrs.attribute_categories(attrs.measure_attributes(x), labels)
    out: dict[str, dict[str, float]] = {}
    for attribute in attrs.ATTRIBUTES:
        rows = [i for i, t in enumerate(targets) if attribute in t]
        if not rows:
            continue
        wanted = torch.tensor([attrs.CATEGORIES[attribute].index(targets[i][attribute])
                               for i in rows])
        steps = (measured[attribute][rows] - wanted).abs().double()
        out[attribute] = {"error": (steps > 0).double().mean().item(),
                          "steps": steps.mean().item(), "n": len(rows)}
    return out


def sketch_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU of the stroke pixels of sketches ``a`` and ``b``, each ``(n, 1, h, w)`` in {0, 1}.

    Returns:
        float64 ``(n,)``; 1 where both sketches are empty.
    """
    a, b = _pair(a, b)
    both = (a * b).sum((1, 2, 3))
    either = ((a + b) > 0).double().sum((1, 2, 3))
    return torch.where(either > 0, both / either.clamp_min(1), torch.ones_like(both))


def _pair(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    a = torch.as_tensor(a)
    size = tuple(a.shape[-2:])
    a, b = check_sketch(a, size).double(), check_sketch(b, size).double()
    if a.shape != b.shape:
        raise ShapeError(f"Expected sketches of one shape, but found {tuple(a.shape)} and "
                         f"{tuple(b.shape)}.")
    return a, b


def chamfer_distance(a: Tensor, b: Tensor) -> Tensor:
    """Symmetric Chamfer distance, in pixels, between sketches ``(n, 1, h, w)`` in {0, 1}.

    ``0.5 * (mean_{p in A} min_{q in B} |p - q| + mean_{q in B} min_{p in A} |p - q|)``.

    Returns:
        float64 ``(n,)``; 0 where both are empty, the diagonal ``sqrt(h^2 + w^2)`` where
        exactly one is.
    """
    a, b = _pair(a, b)
    n, _, h, w = a.shape
    grid = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij"), -1)
    points = grid.reshape(-1, 2).double()  # (hw, 2)
    distance = torch.cdist(points, points)  # (hw, hw)
    fa, fb = a.reshape(n, -1) > 0, b.reshape(n, -1) > 0  # (n, hw)

    def directed(src: Tensor, dst: Tensor) -> Tensor:
        # nearest stroke pixel of dst for every pixel, then the mean over src's stroke pixels
        d = distance[None].expand(n, -1, -1).masked_fill(~dst[:, None, :], math.inf)
        nearest = d.min(2).values  # (n, hw)
        return (nearest * src).nan_to_num(0.0, posinf=0.0).sum(1) / src.sum(1).clamp_min(1)

    value = 0.5 * (directed(fa, fb) + directed(fb, fa))
    empty_a, empty_b = ~fa.any(1), ~fb.any(1)
    value = torch.where(empty_a ^ empty_b, torch.full_like(value, math.hypot(h, w)), value)
    return torch.where(empty_a & empty_b, torch.zeros_like(value), value)


def sketch_agreement(samples: Tensor, sketches: Tensor) -> dict[str, float]:
    """Mean IoU and Chamfer distance between the samples' own sketches and the given ones.

    Arguments:
        samples: Digits ``(n, 1, 8, 8)``, values 0..16.
        sketches: The sketches the samples were generated from, ``(n, 1, 8, 8)`` in {0, 1}.

    Returns:
        ``{"iou", "chamfer", "n"}``.
    """
    own = sketch(_as_digits(samples))
    return {"iou": sketch_iou(own, sketches).mean().item(),
            "chamfer": chamfer_distance(own, sketches).mean().item(), "n": len(own)}


def real_sketch_reference(split: str = "test", *, seed: int = 0) -> dict[str, float]:
    """Sketch agreement of real digits with their own sketch and with another digit's.

    Each digit of the split is paired with a different digit of the same class drawn
    uniformly by a stream seeded with ``seed``.

    Returns:
        ``{"own_iou": 1.0, "own_chamfer": 0.0, "other_iou", "other_chamfer", "n"}``.
    """
    from genlab.data import load_data

    data = load_data("digits", split=split)
    rng = np.random.default_rng(seed)
    y = data.y.numpy()
    partner = np.empty(len(y), dtype=np.int64)
    for k in np.unique(y):
        rows = np.flatnonzero(y == k)
        if len(rows) < 2:
            raise DataError(f"Expected at least 2 digits of class {k} in split {split!r}, "
                            f"but found {len(rows)}.")
        # a uniform other member: shift by 1..m-1 places within the class
        shift = rng.integers(1, len(rows), size=len(rows))
        partner[rows] = rows[(np.arange(len(rows)) + shift) % len(rows)]
    own = sketch(data.x)
    other = sketch_agreement(data.x, own[torch.from_numpy(partner)])
    mine = sketch_agreement(data.x, own)
    return {"own_iou": mine["iou"], "own_chamfer": mine["chamfer"],
            "other_iou": other["iou"], "other_chamfer": other["chamfer"], "n": len(y)}


def diversity(samples: Tensor, groups: Tensor | Sequence[int]) -> dict[str, float]:
    """Mean pairwise distance among samples of one condition, averaged over conditions.

    Arguments:
        samples: Digits ``(n, 1, 8, 8)``, values 0..16.
        groups: Condition id of each sample ``(n,)``; groups of one sample are skipped.

    Returns:
        ``{"diversity", "groups"}``: the mean over groups of the mean Euclidean distance
        between distinct pairs of x / 16 in the group, and the number of groups used.
    """
    x = _as_digits(samples).double().flatten(1) / 16.0  # (n, 64)
    groups = torch.as_tensor(groups).reshape(-1)
    if groups.shape != (len(x),):
        raise ShapeError(f"Expected groups of shape ({len(x)},), but found "
                         f"{tuple(groups.shape)}.")
    means = []
    for g in groups.unique():
        members = x[groups == g]
        m = len(members)
        if m >= 2:
            means.append(torch.pdist(members).mean().item())  # the m(m-1)/2 distinct pairs
    if not means:
        raise DataError("Expected at least one condition with 2 or more samples, but found "
                        "none.")
    return {"diversity": float(np.mean(means)), "groups": len(means)}


def obedience(samples: Tensor, *, labels: Tensor | Sequence[int] | None = None,
              prompts: Sequence[str] | None = None, sketches: Tensor | None = None,
              groups: Tensor | Sequence[int] | None = None,
              classifier: DigitsClassifier | None = None) -> dict[str, float]:
    """Every measure that the given conditions allow, as one flat dict.

    Keys: ``label_accuracy`` (labels, or the digits prompts name), ``{attribute}_error``
    and ``{attribute}_steps`` (prompts), ``sketch_iou`` and ``sketch_chamfer`` (sketches),
    ``diversity`` (groups). Call it on seen and held-out rows apart to report them apart.
    """
    out: dict[str, float] = {"n": len(_as_digits(samples))}
    if labels is None and prompts is not None:
        named = [parse_prompt(p).get("label") for p in prompts]
        labels = [int(k) for k in named] if all(k is not None for k in named) else None
    if labels is not None:
        out["label_accuracy"] = label_accuracy(samples, labels, classifier=classifier)
    if prompts is not None:
        for attribute, scores in attribute_error(samples, prompts, labels).items():
            out[f"{attribute}_error"] = scores["error"]
            out[f"{attribute}_steps"] = scores["steps"]
    if sketches is not None:
        agreement = sketch_agreement(samples, sketches)
        out["sketch_iou"], out["sketch_chamfer"] = agreement["iou"], agreement["chamfer"]
    if groups is not None:
        out["diversity"] = diversity(samples, groups)["diversity"]
    return out
