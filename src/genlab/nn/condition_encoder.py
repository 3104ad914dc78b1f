"""Conditions as network inputs: image maps plus one vector, for the conditional families.

A condition ``y`` for p(x | y) is a mapping of named tensors (or a plain label tensor):

* image conditions of the image's own size -- ``"sketch"`` ``(n, 1, h, w)`` in {0, 1},
  ``"lowres"`` ``(n, 1, h, w)`` in levels, ``"mask"`` (1 = known pixel) with ``"masked"``
  ``(n, c, h, w)`` (the image times the mask) -- are stacked into **maps**; level-valued
  ones are divided by ``num_levels - 1`` so every map lies in [0, 1];
* ``"label"`` ``(n,)`` through an embedding and ``"prompt"`` ``(n, L)`` token ids (with
  ``"prompt_mask"`` ``(n, L)``) through a small :class:`~genlab.nn.text.TextEncoder`'s pooled
  vector are summed into one **vector** ``(n, d)``.

An image network reads the maps as extra input channels (pix2pix's U-Net and PatchGAN, the
flow's coupling nets) or as 1 x 1 conditioning maps in every layer (the conditional
PixelCNN), and the vector as a per-channel bias or FiLM scale and shift. An absent condition
(zero rows of a :class:`~genlab.conditioning.Conditions`, an all-False ``prompt_mask``)
contributes zero maps and nothing to the vector.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from genlab.conditioning import (
    IMAGE_KINDS,
    KEYS,
    canonical_kinds,
    prompt_tokenizer,
)
from genlab.errors import ConfigError, DataError, ShapeError
from genlab.nn.text import TextEncoder
from genlab.settings import Annotated, Setting

__all__ = ["ConditionEncoder", "ConditionFeatures", "ConditionMaps", "ConditionSize",
           "model_conditions"]

#: Keys of the level-valued image conditions (divided by ``num_levels - 1``).
LEVEL_KEYS = ("lowres", "masked")

ConditionSize = Annotated[int, Setting(
    "size of the condition vector (label embedding, text encoder width)", ge=1)]


def model_conditions(conditions: Sequence[str] | None, num_classes: int | None
                     ) -> tuple[str, ...]:
    """The condition kinds a family reads, in canonical order: ``conditions``, or
    ``("label",)`` when only ``num_classes`` is given, or ``()`` for p(x).

    Raises:
        ConfigError: an unknown or repeated kind.
    """
    kinds = canonical_kinds(conditions)
    return ("label",) if not kinds and num_classes is not None else kinds


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


class ConditionEncoder(nn.Module):
    """Turn conditions ``y`` into :class:`ConditionFeatures`.

    Arguments:
        conditions: Condition kinds, any of :data:`~genlab.conditioning.CONDITION_KINDS`.
        size: Size d of the vector (label embedding and text encoder width).
        event_shape: ``(c, h, w)`` of the images: the size of the maps (``masked`` has c
            channels, the other image conditions one).
        num_classes: Labels, needed with ``"label"``.
        num_levels: Pixel levels of level-valued maps (``lowres``, ``masked``); None keeps
            them as given.

    Example:
        >>> import torch
        >>> enc = ConditionEncoder(("label", "sketch"), size=8, event_shape=(1, 8, 8),
        ...                        num_classes=10, num_levels=17)
        >>> out = enc({"sketch": torch.zeros(2, 1, 8, 8), "label": torch.tensor([3, 4])})
        >>> out.maps.shape, out.vector.shape
        (torch.Size([2, 1, 8, 8]), torch.Size([2, 8]))
    """

    def __init__(self, conditions: Sequence[str], *, size: int, event_shape: Sequence[int],
                 num_classes: int | None = None, num_levels: int | None = None) -> None:
        super().__init__()
        kinds = canonical_kinds(conditions)
        if "label" in kinds and num_classes is None:
            raise ConfigError("Expected num_classes with the 'label' condition, but found None.")
        c, h, w = (int(s) for s in event_shape)
        self.image_size = (h, w)
        # (key, channels) of each image condition's tensors, in canonical order
        self.keys = [(key, c if key == "masked" else 1) for kind in IMAGE_KINDS
                     if kind in kinds for key in KEYS[kind]]
        self.map_channels = sum(k for _, k in self.keys)
        self.level_scale = 1.0 if num_levels is None else float(num_levels - 1)
        self.label = nn.Embedding(num_classes, size) if "label" in kinds else None
        self.text = (TextEncoder(prompt_tokenizer(), dim=size, depth=1,
                                 heads=attention_heads(size)) if "prompt" in kinds else None)
        self.vector_size = size if self.label is not None or self.text is not None else 0

    def forward(self, y: Mapping[str, Any] | Tensor | None, n: int | None = None
                ) -> ConditionFeatures:
        """Encode ``y``: a :class:`~genlab.conditioning.Conditions` (or any mapping of its
        keys; a missing key counts as absent), or labels ``(n,)``; ``n`` is the batch size
        when ``y`` holds no tensor."""
        if isinstance(y, Tensor):
            y = {"label": y}
        y = {} if y is None else y
        b = next((v.shape[0] for v in y.values() if isinstance(v, Tensor)), n)
        if b is None:
            raise DataError("Expected a condition tensor or a batch size, but found neither.")
        maps = self._maps(y, b) if self.map_channels else None
        return ConditionFeatures(maps, self._vector(y, b) if self.vector_size else None)

    def _device(self) -> tuple[torch.device, torch.dtype]:
        p = next(self.parameters(), None)
        return (p.device, p.dtype) if p is not None else (torch.device("cpu"), torch.float32)

    def _maps(self, y: Mapping[str, Any], b: int) -> Tensor:
        device, dtype = self._device()
        planes = []
        for key, channels in self.keys:
            shape = (b, channels, *self.image_size)
            value = y.get(key)
            if value is None:  # absent: zeros, as Conditions holds absent rows
                planes.append(torch.zeros(shape, device=device, dtype=dtype))
                continue
            value = torch.as_tensor(value).to(device=device, dtype=dtype)
            if value.shape != shape:
                raise ShapeError(f"Expected condition {key!r} of shape {shape}, but found "
                                 f"{tuple(value.shape)}.")
            planes.append(value / self.level_scale if key in LEVEL_KEYS else value)
        return torch.cat(planes, dim=1)  # (n, C, h, w)

    def _vector(self, y: Mapping[str, Any], b: int) -> Tensor:
        device, dtype = self._device()
        vector = torch.zeros(b, self.vector_size, device=device, dtype=dtype)
        if self.label is not None and y.get("label") is not None:
            vector = vector + self.label(torch.as_tensor(y["label"]).to(device).long())
        if self.text is not None and y.get("prompt") is not None:
            ids = torch.as_tensor(y["prompt"]).to(device).long()
            mask = y.get("prompt_mask")
            mask = ids != 0 if mask is None else torch.as_tensor(mask).to(device).bool()
            words = mask.any(1)  # rows whose prompt is absent (no words) add nothing
            if words.any():
                # Columns after the longest prompt are padding that attention and pooling
                # ignore: dropping them changes nothing but the cost.
                length = int(mask.any(0).nonzero().max()) + 1
                pooled = self.text(ids[words, :length], mask[words, :length]).pooled  # (m, d)
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
