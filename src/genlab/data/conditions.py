"""Conditions built from the digits themselves: sketches, low-resolution and masked images,
attributes and prompts, paired with each image. Entry point: :func:`paired_digits`.

Image conditions (all of shape ``(n, 1, 8, 8)``, the image's own size, so a model can
concatenate them to its input):

* **sketch** (:func:`sketch`): the digit thresholded at half ink (level >= 8 of 0..16), then
  thinned to one-pixel-wide lines by Zhang and Suen's algorithm; values {0, 1}. Thinning makes
  the sketch a line drawing whatever the stroke width, like a person's pen drawing
  (:func:`~genlab.data.drawings.load_drawing` turns those into the same format).
* **lowres** (:func:`lowres`): 2 x 2 average pooling (a 4 x 4 image of levels 0..16) repeated
  back to 8 x 8, so every 2 x 2 block holds its mean.
* **mask** and **masked** (:func:`masks`): a mask with 1 on known pixels and 0 on pixels to
  fill in, and the image times the mask. ``"half"`` masks hide the top, bottom, left or right
  half; ``"random"`` masks hide each pixel with probability 1/2.

Random choices (masks, prompts) come from streams seeded by ``seed`` and the image's index
in the whole data set, so an image gets the same conditions whichever split it is read from.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from genlab.checks import check_choice, check_int
from genlab.data import attributes as attrs
from genlab.data import digits
from genlab.data.dataset import Dataset
from genlab.data.prompts import prompts_for
from genlab.errors import ConfigError, DataError, ShapeError

__all__ = ["CONDITIONS", "PairedDataset", "check_sketch", "lowres", "masks", "paired_digits",
           "sketch", "thin"]

#: Condition names :func:`paired_digits` knows.
CONDITIONS = ("label", "sketch", "prompt", "lowres", "mask")
#: Ink level at and above which a digits pixel belongs to the stroke (half of 16).
SKETCH_THRESHOLD = 8.0

# neighbours P2..P9 of Zhang and Suen: north, then clockwise
_OFFSETS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))


def _neighbours(b: Tensor) -> Tensor:
    """The 8 neighbours of every pixel of binary ``b`` ``(n, h, w)``: ``(8, n, h, w)``."""
    _, h, w = b.shape
    padded = F.pad(b, (1, 1, 1, 1))  # outside the image counts as background
    return torch.stack([padded[:, 1 + dr:1 + dr + h, 1 + dc:1 + dc + w] for dr, dc in _OFFSETS])


def thin(binary: Tensor) -> Tensor:
    """Zhang-Suen thinning of binary images to one-pixel-wide lines.

    Two sub-iterations alternate until nothing changes; each removes, all at once, the
    stroke pixels with 3..6 stroke neighbours, exactly one background-to-stroke transition
    around them (so removal keeps the stroke connected), and no stroke on the south-east
    (first) or north-west (second) side. Zhang and Suen allow 2 neighbours; Lü and Wang's
    lower bound of 3 keeps the ends of two-pixel-wide strokes, which at 8 x 8 would
    otherwise erode whole strokes away. The result is idempotent: thinning it again changes
    nothing.

    Arguments:
        binary: Tensor of shape ``(n, h, w)`` with values {0, 1}.

    Returns:
        int64 ``(n, h, w)`` with values {0, 1}, a subset of the input's stroke pixels.

    References:
        Zhang and Suen, "A fast parallel algorithm for thinning digital patterns",
        Communications of the ACM 27(3), 1984; Lü and Wang, "A comment on 'A fast parallel
        algorithm for thinning digital patterns'", Communications of the ACM 29(3), 1986.
    """
    b = binary.long().clone()
    while True:
        changed = False
        for first in (True, False):
            p = _neighbours(b)  # (8, n, h, w), P2..P9
            count = p.sum(0)
            transitions = ((p == 0) & (p.roll(-1, 0) == 1)).sum(0)  # 0 -> 1 around P2..P9, P2
            p2, _, p4, _, p6, _, p8, _ = p
            side = ((p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0) if first
                    else (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0))
            remove = (b == 1) & (count >= 3) & (count <= 6) & (transitions == 1) & side
            if remove.any():
                b = b.masked_fill(remove, 0)
                changed = True
        if not changed:
            return b


def _as_levels(x: Tensor, name: str = "x") -> Tensor:
    if not isinstance(x, Tensor):
        x = torch.as_tensor(np.asarray(x))
    if x.dim() != 4 or x.shape[1] != 1:
        raise ShapeError(f"Expected {name} of shape (n, 1, h, w), but found {tuple(x.shape)}.")
    x = x.detach().float()
    if not torch.isfinite(x).all():
        raise DataError(f"Expected finite values in {name}, but found NaN or Inf.")
    return x


def sketch(x: Tensor, *, threshold: float = SKETCH_THRESHOLD) -> Tensor:
    """The sketch of each image: thresholded, then thinned (:func:`thin`).

    Arguments:
        x: Images of shape ``(n, 1, h, w)`` (digits: levels 0..16).
        threshold: Pixels ``>= threshold`` are stroke.

    Returns:
        Float32 ``(n, 1, h, w)`` with values {0, 1}.

    Example:
        >>> from genlab.data import load_data
        >>> s = sketch(load_data("digits", split="test").x)
        >>> s.shape, sorted(s.unique().tolist())
        (torch.Size([297, 1, 8, 8]), [0.0, 1.0])
    """
    x = _as_levels(x)
    return thin((x[:, 0] >= threshold).long()).float()[:, None]  # (n, 1, h, w)


def check_sketch(s: Tensor, size: tuple[int, int] = (8, 8)) -> Tensor:
    """Validate a sketch tensor: ``(1, h, w)`` or ``(n, 1, h, w)`` with values {0, 1}.

    Returns:
        Float32 of shape ``(n, 1, h, w)``.

    Raises:
        ShapeError: another shape or size.
        DataError: values other than 0 and 1.
    """
    s = torch.as_tensor(s)
    expected = (1, *size)
    if s.dim() == 3:
        s = s[None]
    if s.dim() != 4 or tuple(s.shape[1:]) != expected:
        raise ShapeError(f"Expected a sketch of shape {expected} or (n, *{expected}), but "
                         f"found {tuple(s.shape)}.")
    s = s.float()
    if not ((s == 0) | (s == 1)).all():
        raise DataError(f"Expected a sketch with values 0 and 1, but found values in "
                        f"[{s.min().item():g}, {s.max().item():g}].")
    return s


def lowres(x: Tensor, factor: int = 2) -> Tensor:
    """Block averages of ``factor x factor`` pixels, repeated back to the image's size.

    Arguments:
        x: Images of shape ``(n, 1, h, w)``, ``h`` and ``w`` divisible by ``factor``.
        factor: Block side (2: 8 x 8 digits seen at 4 x 4).

    Returns:
        Float32 ``(n, 1, h, w)``: each block holds its mean.
    """
    x = _as_levels(x)
    factor = check_int("factor", factor)
    if x.shape[2] % factor or x.shape[3] % factor:
        raise ShapeError(f"Expected image sides divisible by {factor}, but found "
                         f"{tuple(x.shape[2:])}.")
    small = F.avg_pool2d(x, factor)  # (n, 1, h / factor, w / factor)
    return small.repeat_interleave(factor, 2).repeat_interleave(factor, 3)  # (n, 1, h, w)


def masks(index: Tensor, *, kind: str = "half", seed: int = 0,
          size: tuple[int, int] = (8, 8)) -> Tensor:
    """Inpainting masks, one per image index: 1 on known pixels, 0 on pixels to generate.

    Arguments:
        index: Image indices of shape ``(n,)``; the mask of an index depends only on it,
            ``kind``, ``seed`` and ``size``.
        kind: ``"half"`` (hide the top, bottom, left or right half, chosen uniformly) or
            ``"random"`` (hide each pixel with probability 1/2).
        seed: Seed of the mask stream.
        size: ``(h, w)``, both even for ``"half"``.

    Returns:
        Float32 ``(n, 1, h, w)`` with values {0, 1}.
    """
    check_choice("kind", kind, ("half", "random"))
    index = torch.as_tensor(index).reshape(-1).long()
    h, w = size
    out = torch.ones(len(index), 1, h, w)
    for row, i in enumerate(index.tolist()):
        key = (zlib.crc32(f"mask-{kind}".encode()), i)
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))
        if kind == "random":
            out[row, 0] = torch.from_numpy((rng.random((h, w)) >= 0.5).astype(np.float32))
        else:
            side = int(rng.integers(4))  # 0 top, 1 bottom, 2 left, 3 right hidden
            region = [slice(None), slice(None)]
            region[side // 2] = slice(0, (h, w)[side // 2] // 2) if side % 2 == 0 \
                else slice((h, w)[side // 2] // 2, None)
            out[row, 0][tuple(region)] = 0.0
    return out


@dataclass
class PairedDataset:
    """Images paired with conditions built from them.

    Attributes:
        x: Images, float32 ``(n, 1, 8, 8)`` holding levels 0..16.
        y: Labels, int64 ``(n,)``.
        conditions: The requested conditions: ``"label"`` int64 ``(n,)``; ``"sketch"``,
            ``"lowres"``, ``"mask"``, ``"masked"`` float32 ``(n, 1, 8, 8)`` (``"mask"`` brings
            ``"masked"`` = x * mask); ``"prompt"`` a list of n strings (variant 0).
        measures: :func:`~genlab.data.attributes.measure_attributes` of x, float64 ``(n,)``.
        categories: Category codes of x (:data:`~genlab.data.attributes.CATEGORIES`), int64.
        index: Each image's index in the whole digits data set, int64 ``(n,)``.
        held_out: Whether the image shows a held-out combination, bool ``(n,)``.
        split: The digits split.
        seed: Seed of prompts and masks.
        info: JSON-able description of how the conditions were made.
    """

    x: Tensor
    y: Tensor
    conditions: dict[str, Any]
    measures: dict[str, Tensor]
    categories: dict[str, Tensor]
    index: Tensor
    held_out: Tensor
    split: str
    seed: int
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.x.shape[0]

    def category_names(self, row: int) -> dict[str, str]:
        """``{"thickness": "thin", ...}`` of one image."""
        return {a: attrs.CATEGORIES[a][int(c[row])] for a, c in self.categories.items()}

    def prompts(self, variant: int = 0) -> list[str]:
        """One prompt per image; ``variant`` 0, 1, 2, ... gives different wordings.

        Images with a held-out combination always name its attribute.
        """
        check_int("variant", variant, ge=0)
        force = [[a for k, a, _ in attrs.HELD_OUT if k == int(self.y[i])] if self.held_out[i]
                 else [] for i in range(len(self))]
        names = [self.category_names(i) for i in range(len(self))]
        return prompts_for(self.y.tolist(), names, self.index.tolist(), seed=self.seed,
                           variant=variant, force=force)

    def subset(self, rows: Tensor) -> PairedDataset:
        """The selected rows (an index or bool tensor), conditions included."""
        rows = torch.as_tensor(rows)
        if rows.dtype == torch.bool:
            rows = rows.nonzero().reshape(-1)
        picked = rows.tolist()
        conditions = {k: [v[i] for i in picked] if isinstance(v, list) else v[rows]
                      for k, v in self.conditions.items()}
        return PairedDataset(
            x=self.x[rows], y=self.y[rows], conditions=conditions,
            measures={k: v[rows] for k, v in self.measures.items()},
            categories={k: v[rows] for k, v in self.categories.items()},
            index=self.index[rows], held_out=self.held_out[rows], split=self.split,
            seed=self.seed, info=dict(self.info))

    def to_dataset(self, conditions: tuple[str, ...] | str | None = None) -> Dataset:
        """The images as a :class:`~genlab.data.Dataset` (discrete, 17 levels).

        Arguments:
            conditions: None: ``y`` is the labels, for the unconditional and
                label-conditional families. Kinds held here (e.g. ``("sketch", "prompt")``):
                ``y`` is a :class:`~genlab.conditioning.Conditions` of them, prompts
                tokenized with :func:`~genlab.conditioning.prompt_tokenizer`.

        Raises:
            ConfigError: a kind that is unknown or was not made for this data set.
        """
        from genlab.conditioning import Conditions, canonical_kinds, prompt_tokenizer

        y: Any = self.y
        if conditions is not None:
            kinds = canonical_kinds(conditions)
            missing = [k for k in kinds if k not in self.conditions]
            if missing or not kinds:
                raise ConfigError(f"Expected conditions among those made, "
                                  f"{list(self.conditions)}, but found {list(kinds)}.")
            tensors = {k: v for k, v in self.conditions.items()
                       if k != "prompt" and (k in kinds or (k == "masked" and "mask" in kinds))}
            if "prompt" in kinds:
                tensors["prompt"], tensors["prompt_mask"] = \
                    prompt_tokenizer().encode(self.conditions["prompt"])
            y = Conditions(tensors)
        return Dataset(x=self.x, y=y, kind="discrete", num_levels=digits.NUM_LEVELS,
                       num_classes=digits.NUM_CLASSES if conditions is None or "label" in
                       y.kinds else None, name="digits", split=self.split,
                       info=dict(self.info))


def paired_digits(split: str = "train", conditions: tuple[str, ...] = CONDITIONS, *,
                  seed: int = 0, mask: str = "half", held_out: str | None = None
                  ) -> PairedDataset:
    """The digits of a split with conditions made from each image.

    Arguments:
        split: ``"train"``, ``"val"``, ``"test"`` or ``"all"`` (the digits split).
        conditions: Any of ``"label"``, ``"sketch"``, ``"prompt"``, ``"lowres"``, ``"mask"``.
        seed: Seed of prompts and masks (integer >= 0).
        mask: Mask kind, ``"half"`` or ``"random"`` (:func:`masks`).
        held_out: ``"drop"`` the images with a held-out combination, ``"keep"`` them
            (marked in ``held_out``) or keep ``"only"`` them. Default: drop for
            ``"train"``, keep otherwise, so no held-out combination is ever trained on.

    Returns:
        A :class:`PairedDataset`.

    Raises:
        ConfigError: unknown split, condition, mask kind or held-out rule; a negative seed.

    Example:
        >>> data = paired_digits("val", ("sketch", "prompt"), seed=0)
        >>> data.conditions["sketch"].shape, len(data.conditions["prompt"])
        (torch.Size([150, 1, 8, 8]), 150)
    """
    check_choice("split", split, digits.SPLIT_ROWS)
    seed = check_int("seed", seed, ge=0)
    conditions = tuple(conditions) if not isinstance(conditions, str) else (conditions,)
    for name in conditions:
        check_choice("condition", name, CONDITIONS)
    if len(set(conditions)) != len(conditions):
        raise ConfigError(f"Expected each condition once, but found {list(conditions)}.")
    check_choice("mask", mask, ("half", "random"))
    held_out = held_out or ("drop" if split == "train" else "keep")
    check_choice("held_out", held_out, ("drop", "keep", "only"))

    data = digits.load(split)
    rows = digits.SPLIT_ROWS[split]
    index = torch.arange(rows.start, rows.stop)
    measures = attrs.measure_attributes(data.x)
    categories = attrs.attribute_categories(measures, data.y)
    paired = PairedDataset(
        x=data.x, y=data.y, conditions={}, measures=measures, categories=categories,
        index=index, held_out=attrs.held_out_mask(categories, data.y), split=split, seed=seed,
        info={"source": "digits", "split": split, "seed": seed, "conditions": list(conditions),
              "mask": mask, "held_out": held_out,
              "held_out_combinations": [list(c) for c in attrs.HELD_OUT]})
    if held_out != "keep":
        paired = paired.subset(paired.held_out if held_out == "only" else ~paired.held_out)
    made: dict[str, Any] = {}
    for name in conditions:
        if name == "label":
            made["label"] = paired.y.clone()
        elif name == "sketch":
            made["sketch"] = sketch(paired.x)
        elif name == "lowres":
            made["lowres"] = lowres(paired.x)
        elif name == "mask":
            made["mask"] = masks(paired.index, kind=mask, seed=seed)
            made["masked"] = paired.x * made["mask"]
        else:
            made["prompt"] = paired.prompts(0)
    paired.conditions = made
    return paired
