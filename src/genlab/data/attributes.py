"""Attributes measured on digit images: stroke mass, slant, size and position.

Every measure comes from the image's ink ``w = x / sum(x)`` seen as a distribution over pixel
coordinates (row r downwards, column c rightwards, pixel centres 0..7):

* ``mass`` -- total ink in fully-on pixels, ``sum(x) / 16``: thin strokes give little ink.
* ``slant`` -- the shear that best explains the ink's column from its row,
  ``-Cov(r, c) / Var(r)`` (columns per row, from second moments). Positive values lean
  right: the top of the digit sits to the right of its bottom.
* ``size`` -- the radius of gyration ``sqrt(Var(r) + Var(c))`` in pixels.
* ``offset_x``, ``offset_y`` -- the centroid's offset from the image centre (3.5, 3.5), pixels.

Words come from these numbers by thresholds fitted on the digits train split, **per class**:
a "thick 1" is thick for a 1, a 7 "leaning left" leans left of the typical 7 (most 7s lean
right, most 6s lean left, so class-free thresholds would make slant a synonym of the label).

* thickness: thin / medium / thick = lower / middle / upper third of the class's ``mass``;
* slant: left / upright / right = lower / middle / upper third of the class's ``slant``;
* size: small / large = below / above the class's median ``size``;
* position: left / centred / right = ``offset_x`` below -0.5, within +-0.5, above +0.5 pixel
  (a fixed rule: the digits are centred by construction, so few are off centre).

Some (label, attribute, category) combinations are held out of training (:data:`HELD_OUT`) to
test whether a model composes words it saw apart; :func:`held_out_mask` finds them.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import Tensor

from genlab.errors import DataError, ShapeError

__all__ = [
    "ATTRIBUTES", "CATEGORIES", "HELD_OUT", "attribute_categories", "attribute_thresholds",
    "held_out_mask", "measure_attributes",
]

#: The attributes written into prompts and scored by the obedience metrics.
ATTRIBUTES = ("thickness", "slant", "size", "position")

#: Category names of each attribute; a category's code is its index here.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "thickness": ("thin", "medium", "thick"),
    "slant": ("left", "upright", "right"),
    "size": ("small", "large"),
    "position": ("left", "centred", "right"),
}

#: (label, attribute, category) combinations never present in the training split: every thin
#: 4 and every 7 leaning left is removed from it (they stay in val and test, marked).
HELD_OUT: tuple[tuple[int, str, str], ...] = ((4, "thickness", "thin"), (7, "slant", "left"))

#: Centroid offset (pixels) beyond which a digit counts as shifted left or right.
POSITION_THRESHOLD = 0.5
_MEASURE_OF = {"thickness": "mass", "slant": "slant", "size": "size"}


def _as_images(x: Tensor) -> Tensor:
    if not isinstance(x, Tensor):
        x = torch.as_tensor(np.asarray(x))
    if x.dim() != 4 or x.shape[1] != 1 or x.shape[0] < 1:
        raise ShapeError(f"Expected images of shape (n, 1, h, w), but found {tuple(x.shape)}.")
    x = x.detach().double()
    if not torch.isfinite(x).all() or (x < 0).any():
        raise DataError("Expected images with finite non-negative ink values, but found "
                        f"values in [{x.min().item():g}, {x.max().item():g}].")
    return x


def measure_attributes(x: Tensor, *, max_level: float = 16.0) -> dict[str, Tensor]:
    """Measure stroke mass, slant, size and position of each image.

    Arguments:
        x: Images of shape ``(n, 1, h, w)``, non-negative ink (digits: levels 0..16).
        max_level: The value of a fully-on pixel (16 for digits); ``mass`` counts in it.

    Returns:
        ``{"mass", "slant", "size", "offset_x", "offset_y"}``, each float64 of shape ``(n,)``.
        A blank image has mass 0 and the other measures 0.

    Raises:
        ShapeError: ``x`` not of shape ``(n, 1, h, w)``.
        DataError: NaN, Inf or negative values.

    Example:
        >>> bar = torch.zeros(1, 1, 8, 8)
        >>> for r in range(8):
        ...     bar[0, 0, r, 7 - r] = 16.0  # top right to bottom left: leans right
        >>> round(measure_attributes(bar)["slant"].item(), 3)
        1.0
    """
    x = _as_images(x)[:, 0]  # (n, h, w)
    n, h, w = x.shape
    total = x.sum((1, 2))  # (n,)
    weights = x / total.clamp_min(1e-12)[:, None, None]  # ink as a distribution
    rows = torch.arange(h, dtype=x.dtype)[None, :, None]  # (1, h, 1)
    cols = torch.arange(w, dtype=x.dtype)[None, None, :]  # (1, 1, w)
    mean_r = (weights * rows).sum((1, 2))  # (n,)
    mean_c = (weights * cols).sum((1, 2))
    dr = rows - mean_r[:, None, None]  # (n, h, 1)
    dc = cols - mean_c[:, None, None]  # (n, 1, w)
    var_r = (weights * dr**2).sum((1, 2))
    var_c = (weights * dc**2).sum((1, 2))
    cov_rc = (weights * dr * dc).sum((1, 2))
    blank = total <= 0
    # least-squares shear c = a - slant * r; a one-row image has no slant to measure
    slant = torch.where(var_r > 1e-12, -cov_rc / var_r.clamp_min(1e-12), torch.zeros_like(var_r))
    centre_r, centre_c = (h - 1) / 2, (w - 1) / 2
    zero = torch.zeros(n, dtype=x.dtype)
    return {
        "mass": total / max_level,
        "slant": torch.where(blank, zero, slant),
        "size": torch.where(blank, zero, (var_r + var_c).sqrt()),
        "offset_x": torch.where(blank, zero, mean_c - centre_c),
        "offset_y": torch.where(blank, zero, mean_r - centre_r),
    }


@functools.lru_cache(maxsize=1)
def attribute_thresholds() -> dict[str, np.ndarray]:
    """Per-class thresholds fitted on the digits train split (all 1350 images).

    Returns:
        ``{"thickness": (10, 2), "slant": (10, 2), "size": (10, 1)}`` arrays: row k holds the
        boundaries between the categories for digit k (tertiles or the median).
    """
    from genlab.data import digits

    train = digits.load("train")
    measured = measure_attributes(train.x)
    quantiles = {"thickness": (1 / 3, 2 / 3), "slant": (1 / 3, 2 / 3), "size": (0.5,)}
    out = {}
    for attribute, qs in quantiles.items():
        values = measured[_MEASURE_OF[attribute]].numpy()
        table = np.stack([np.quantile(values[train.y.numpy() == k], qs)
                          for k in range(digits.NUM_CLASSES)])
        table.setflags(write=False)
        out[attribute] = table
    return out


def attribute_categories(measured: dict[str, Tensor], labels: Tensor) -> dict[str, Tensor]:
    """Category codes (indices into :data:`CATEGORIES`) of measured attributes.

    Arguments:
        measured: The output of :func:`measure_attributes`, tensors of shape ``(n,)``.
        labels: Digit labels 0..9 of shape ``(n,)``: thresholds depend on the class.

    Returns:
        ``{"thickness", "slant", "size", "position"}``, int64 codes of shape ``(n,)``.

    Raises:
        ShapeError: labels not of shape ``(n,)``.
        DataError: labels outside 0..9.
    """
    n = measured["mass"].shape[0]
    labels = torch.as_tensor(labels).reshape(-1).long()
    if labels.shape != (n,):
        raise ShapeError(f"Expected labels of shape ({n},), but found {tuple(labels.shape)}.")
    if n and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"Expected labels in 0..9, but found values in "
                        f"[{labels.min().item()}, {labels.max().item()}].")
    thresholds = attribute_thresholds()
    out = {}
    for attribute, table in thresholds.items():
        bounds = torch.tensor(table)[labels]  # (n, k)
        value = measured[_MEASURE_OF[attribute]].double()[:, None]  # (n, 1)
        out[attribute] = (value > bounds).sum(1)  # number of boundaries passed
    offset = measured["offset_x"]
    out["position"] = ((offset >= -POSITION_THRESHOLD).long()
                       + (offset > POSITION_THRESHOLD).long())
    return out


def held_out_mask(categories: dict[str, Tensor], labels: Tensor) -> Tensor:
    """Which images show a held-out combination of :data:`HELD_OUT`.

    Arguments:
        categories: The output of :func:`attribute_categories`, codes of shape ``(n,)``.
        labels: Digit labels of shape ``(n,)``.

    Returns:
        Bool tensor of shape ``(n,)``; its complement is the seen combinations.
    """
    labels = torch.as_tensor(labels).reshape(-1).long()
    mask = torch.zeros(labels.shape, dtype=torch.bool)
    for label, attribute, category in HELD_OUT:
        code = CATEGORIES[attribute].index(category)
        mask |= (labels == label) & (categories[attribute] == code)
    return mask
