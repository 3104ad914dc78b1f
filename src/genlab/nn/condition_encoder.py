"""Conditions as network inputs: image maps plus one vector, for the conditional families.

A condition ``y`` for p(x | y) is a mapping of named tensors (or a plain label tensor):

* image conditions of the image's own size -- ``"sketch"`` ``(n, 1, h, w)`` in {0, 1},
  ``"lowres"`` ``(n, 1, h, w)`` in levels, ``"mask"`` (1 = known pixel) with ``"masked"``
  (the image times the mask) -- are stacked into **maps** ``(n, C, h, w)``; level-valued
  ones are divided by ``num_levels - 1`` so every map lies in [0, 1];
* ``"label"`` ``(n,)`` through an embedding and ``"prompt"`` ``(n, L)`` token ids (with
  ``"prompt_mask"`` ``(n, L)``) through a small :class:`~genlab.nn.text.TextEncoder`'s pooled
  vector are summed into one **vector** ``(n, d)``.

An image network reads the maps as extra input channels (pix2pix's U-Net and PatchGAN, the
flow's coupling nets) or as 1 x 1 conditioning maps in every layer (the conditional
PixelCNN), and the vector as a per-channel bias or FiLM scale and shift. A condition left out
of ``y`` (dropped) contributes zero maps and nothing to the vector.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from genlab.errors import ConfigError, DataError, ShapeError
from genlab.nn.text import TextEncoder, Tokenizer
from genlab.settings import Annotated, Setting

__all__ = ["IMAGE_KEYS", "KNOWN_CONDITIONS", "ConditionEncoder", "ConditionFeatures",
           "ConditionMaps", "ConditionSize", "condition_names", "conditions_argument"]

#: The tensors each image condition brings, and whether they hold pixel levels.
IMAGE_KEYS: dict[str, tuple[tuple[str, bool], ...]] = {
    "sketch": (("sketch", False),),
    "lowres": (("lowres", True),),
    "mask": (("mask", False), ("masked", True)),
}
#: Every condition name an encoder takes.
KNOWN_CONDITIONS = ("label", "sketch", "lowres", "mask", "prompt")

ConditionSize = Annotated[int, Setting(
    "size of the condition vector (label embedding, text encoder width)", ge=1)]


def condition_names(conditions: Sequence[str] | None, num_classes: int | None,
                    family: str) -> tuple[str, ...]:
    """The conditions a model reads: ``conditions``, or ``("label",)`` for a label-only one.

    Raises:
        ConfigError: neither conditions nor labels (these families are conditional only).
    """
    if conditions:
        names = tuple(conditions)
    elif num_classes is not None:
        names = ("label",)
    else:
        raise ConfigError(f"Expected conditions (any of {', '.join(KNOWN_CONDITIONS)}) or "
                          f"num_classes for {family}, but found neither.")
    return names


def conditions_argument(conditions: Sequence[str] | None) -> dict[str, Any]:
    """``conditions`` for the base class, where it takes them."""
    from genlab.base import GenerativeModel

    takes = "conditions" in inspect.signature(GenerativeModel.__init__).parameters
    return {"conditions": conditions} if takes and conditions is not None else {}


def attention_heads(size: int) -> int:
    """The most heads of 4, 2, 1 that divide ``size`` (the text encoder's width)."""
    return next(h for h in (4, 2, 1) if size % h == 0)


class ConditionFeatures(NamedTuple):
    """What :class:`ConditionEncoder` returns.

    Attributes:
        maps: Image conditions ``(n, C, h, w)`` in [0, 1], or None without any.
        vector: Label embedding plus pooled text ``(n, d)``, or None without either.
    """

    maps: Tensor | None
    vector: Tensor | None

    def index(self, rows: Tensor) -> ConditionFeatures:
        """The rows ``rows`` of both parts (the same condition for repeated samples)."""
        return ConditionFeatures(None if self.maps is None else self.maps[rows],
                                 None if self.vector is None else self.vector[rows])


class ConditionEncoder(nn.Module):
    """Turn a condition mapping into :class:`ConditionFeatures`.

    Arguments:
        conditions: Condition names, any of :data:`KNOWN_CONDITIONS`.
        size: Size d of the vector (label embedding and text encoder width).
        num_classes: Labels, needed with ``"label"``.
        num_levels: Pixel levels of level-valued maps (``lowres``, ``masked``); None keeps
            them as given.
        image_size: ``(h, w)`` of the maps, so that a ``y`` with every image condition
            dropped still gives (zero) maps.

    Example:
        >>> import torch
        >>> enc = ConditionEncoder(("sketch", "label"), size=8, num_classes=10, num_levels=17)
        >>> out = enc({"sketch": torch.zeros(2, 1, 8, 8), "label": torch.tensor([3, 4])})
        >>> out.maps.shape, out.vector.shape
        (torch.Size([2, 1, 8, 8]), torch.Size([2, 8]))
    """

    def __init__(self, conditions: Sequence[str], *, size: int, num_classes: int | None = None,
                 num_levels: int | None = None, image_size: tuple[int, int] = (8, 8)) -> None:
        super().__init__()
        unknown = [c for c in conditions if c not in KNOWN_CONDITIONS]
        if unknown:
            raise ConfigError(f"Expected conditions among {', '.join(KNOWN_CONDITIONS)}, but "
                              f"found {', '.join(map(repr, unknown))}.")
        if "label" in conditions and num_classes is None:
            raise ConfigError("Expected num_classes with the 'label' condition, but found None.")
        self.conditions = tuple(conditions)
        self.keys = [key for name in IMAGE_KEYS if name in conditions
                     for key in IMAGE_KEYS[name]]  # [(tensor name, holds levels)]
        self.map_channels = len(self.keys)
        self.level_scale = 1.0 if num_levels is None else float(num_levels - 1)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.label = nn.Embedding(num_classes, size) if "label" in conditions else None
        self.text = (TextEncoder(Tokenizer(), dim=size, depth=1, heads=attention_heads(size))
                     if "prompt" in conditions else None)
        self.vector_size = size if self.label is not None or self.text is not None else 0

    def forward(self, y: Mapping[str, Any] | Tensor | None, n: int | None = None
                ) -> ConditionFeatures:
        """Encode ``y`` (a mapping, or a label tensor ``(n,)`` when ``"label"`` is the only
        vector condition); ``n`` is the batch size when ``y`` may be empty."""
        if isinstance(y, Tensor):
            y = {"label": y}
        y = {} if y is None else y
        maps = self._maps(y, n) if self.map_channels else None
        return ConditionFeatures(maps, self._vector(y, n) if self.vector_size else None)

    def _batch(self, y: Mapping[str, Any], n: int | None) -> int:
        for value in y.values():
            if isinstance(value, Tensor):
                return value.shape[0]
        if n is None:
            raise DataError("Expected at least one condition tensor or a batch size, but "
                            "found neither.")
        return n

    def _device(self) -> tuple[torch.device, torch.dtype]:
        p = next(self.parameters(), None)
        return (p.device, p.dtype) if p is not None else (torch.device("cpu"), torch.float32)

    def _maps(self, y: Mapping[str, Any], n: int | None) -> Tensor:
        b, (device, dtype) = self._batch(y, n), self._device()
        planes = []
        for key, levels in self.keys:
            value = y.get(key)
            if value is None:  # a dropped condition: nothing known
                planes.append(None)
                continue
            value = torch.as_tensor(value).to(device=device, dtype=dtype)
            if value.shape != (b, 1, *self.image_size):
                raise ShapeError(f"Expected condition {key!r} of shape {(b, 1, *self.image_size)}"
                                 f", but found {tuple(value.shape)}.")
            planes.append(value / self.level_scale if levels else value)
        zeros = torch.zeros(b, 1, *self.image_size, device=device, dtype=dtype)
        return torch.cat([zeros if p is None else p for p in planes], dim=1)  # (n, C, h, w)

    def _vector(self, y: Mapping[str, Any], n: int | None) -> Tensor:
        b, (device, dtype) = self._batch(y, n), self._device()
        vector = torch.zeros(b, self.vector_size, device=device, dtype=dtype)
        if self.label is not None and y.get("label") is not None:
            vector = vector + self.label(torch.as_tensor(y["label"]).to(device).long())
        if self.text is not None and y.get("prompt") is not None:
            ids = torch.as_tensor(y["prompt"]).to(device).long()
            mask = y.get("prompt_mask")
            mask = ids != 0 if mask is None else torch.as_tensor(mask).to(device).bool()
            words = mask.any(1)  # rows whose prompt was dropped (no words) add nothing
            if words.any():
                # Columns after the longest prompt are padding that attention and pooling
                # ignore: dropping them changes nothing but the cost.
                length = int(mask.any(0).nonzero().max()) + 1
                ids, mask = ids[words, :length], mask[words, :length]
                pooled = self.text(ids, mask).pooled  # (m, d)
                vector = vector.index_add(0, words.nonzero().reshape(-1), pooled)
        return vector


class ConditionMaps(nn.Module):
    """``m(y)``: features ``(n, F, h, w)`` of the image conditions ``(n, C, h, w)`` that a
    likelihood model's every layer reads.

    Two 3 x 3 convolutions give local features (where the sketch's strokes are, near each
    pixel); a linear map of the whole flattened condition, added at every pixel, gives each
    position a view of all of it -- the condition is given, not generated, so nothing needs
    to be hidden from any pixel.

    Arguments:
        in_channels: C.
        width: F.
        image_size: ``(h, w)``.
    """

    def __init__(self, in_channels: int, width: int, image_size: tuple[int, int]) -> None:
        super().__init__()
        self.local = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ELU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ELU(),
        )
        self.whole = nn.Linear(in_channels * image_size[0] * image_size[1], width)

    def forward(self, maps: Tensor) -> Tensor:
        return self.local(maps) + self.whole(maps.flatten(1))[:, :, None, None]
