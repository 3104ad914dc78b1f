"""Condition kinds and :class:`Conditions`, the validated tensors of a batch of conditions
(see :mod:`genlab.conditioning`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from genlab.checks import did_you_mean
from genlab.errors import ConfigError, DataError, ShapeError

__all__ = ["CONDITION_KINDS", "IMAGE_KINDS", "KEYS", "Conditions", "canonical_kinds",
           "prompt_tokenizer"]

#: Every kind of condition, in the canonical order (config, channels, messages).
CONDITION_KINDS = ("label", "sketch", "lowres", "mask", "prompt")
#: Kinds that are images of the data's height and width (concatenable as channels).
IMAGE_KINDS = ("sketch", "lowres", "mask")
#: The tensors each kind is held as.
KEYS: dict[str, tuple[str, ...]] = {
    "label": ("label",), "sketch": ("sketch",), "lowres": ("lowres",),
    "mask": ("mask", "masked"), "prompt": ("prompt", "prompt_mask"),
}
KIND_OF = {key: kind for kind, keys in KEYS.items() for key in keys}


def canonical_kinds(kinds: str | Sequence[str] | None) -> tuple[str, ...]:
    """Condition kinds checked and put in the canonical order of :data:`CONDITION_KINDS`.

    Arguments:
        kinds: A sequence of kinds, or one string with kinds separated by commas
            (``"sketch,prompt"``); None or empty gives ``()``.

    Raises:
        ConfigError: an unknown or repeated kind.

    Example:
        >>> canonical_kinds("prompt,sketch")
        ('sketch', 'prompt')
    """
    if kinds is None:
        return ()
    if isinstance(kinds, str):
        kinds = [k.strip() for k in kinds.split(",") if k.strip()]
    if not isinstance(kinds, Sequence) or not all(isinstance(k, str) for k in kinds):
        raise ConfigError(f"Expected condition kinds as a sequence of names, but found "
                          f"{kinds!r}.")
    for kind in kinds:
        if kind not in CONDITION_KINDS:
            raise ConfigError(f"Expected conditions among {', '.join(CONDITION_KINDS)}, but "
                              f"found {kind!r}.{did_you_mean(kind, CONDITION_KINDS)}")
    if len(set(kinds)) != len(kinds):
        raise ConfigError(f"Expected each condition once, but found {list(kinds)}.")
    return tuple(k for k in CONDITION_KINDS if k in kinds)


def prompt_tokenizer() -> Any:
    """The fixed tokenizer every model reads prompts with (:class:`~genlab.nn.text.Tokenizer`
    with its default vocabulary and ``max_length``)."""
    global _TOKENIZER
    if _TOKENIZER is None:
        from genlab.nn.text import Tokenizer

        _TOKENIZER = Tokenizer()
    return _TOKENIZER


_TOKENIZER = None


class Conditions(Mapping[str, Tensor]):
    """Validated condition tensors with a leading batch dimension n.

    ``conditions["sketch"]`` is a tensor; ``conditions[rows]`` (an index tensor, a bool
    tensor or a slice) is a :class:`Conditions` of those rows, so a data set's
    ``data.y[index].to(device)`` works as it does with labels. ``len()`` counts keys, as for
    any mapping; :attr:`n` counts rows.

    Arguments:
        tensors: Every key of each kind held (:data:`KEYS`): e.g. ``{"sketch": (n, 1, H, W),
            "prompt": (n, L), "prompt_mask": (n, L)}``.
        present: Optional bool ``(n,)`` per kind, False on rows where that condition is
            absent (their values are zeroed).

    Raises:
        ConfigError: an unknown key, or a kind with a key missing.
        ShapeError: tensors with different n, or a wrong number of dimensions.
        DataError: wrong dtype, non-finite values, a sketch or mask outside {0, 1}.

    Example:
        >>> c = Conditions({"label": torch.tensor([3, 5]), "sketch": torch.zeros(2, 1, 8, 8)})
        >>> c.n, c.kinds, c[torch.tensor([1])]["label"].tolist()
        (2, ('label', 'sketch'), [5])
    """

    def __init__(self, tensors: Mapping[str, Tensor],
                 present: Mapping[str, Tensor] | None = None) -> None:
        unknown = [k for k in tensors if k not in KIND_OF]
        if unknown:
            raise ConfigError(f"Expected condition keys among {', '.join(KIND_OF)}, but "
                              f"found {', '.join(map(repr, unknown))}.")
        kinds = canonical_kinds([k for k in CONDITION_KINDS
                                 if any(key in tensors for key in KEYS[k])])
        for kind in kinds:
            missing = [key for key in KEYS[kind] if key not in tensors]
            if missing:
                raise ConfigError(f"Expected {' and '.join(KEYS[kind])} together for the "
                                  f"{kind} condition, but found no {', '.join(missing)}.")
        data = {key: tensors[key] for kind in kinds for key in KEYS[kind]}
        _check_structure(data)
        n = next(iter(data.values())).shape[0] if data else 0
        marks: dict[str, Tensor] = {}
        for kind, rows in (present or {}).items():
            if kind not in kinds:
                raise ConfigError(f"Expected presence marks of held conditions {kinds}, but "
                                  f"found {kind!r}.")
            rows = torch.as_tensor(rows, dtype=torch.bool, device=data[KEYS[kind][0]].device)
            if rows.shape != (n,):
                raise ShapeError(f"Expected presence of {kind} of shape ({n},), but found "
                                 f"{tuple(rows.shape)}.")
            if not rows.all():
                marks[kind] = rows
                for key in KEYS[kind]:
                    data[key] = _zero_rows(data[key], rows)
        self._data, self._present, self._n = data, marks, n

    @classmethod
    def _trusted(cls, data: dict[str, Tensor], present: dict[str, Tensor], n: int
                 ) -> Conditions:
        """Build from tensors already checked (rows of a checked Conditions)."""
        out = cls.__new__(cls)
        out._data, out._present, out._n = data, present, n
        return out

    # ---------------------------------------------------------------- mapping
    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return self._data[key]
        return self.index(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        """Same keys, equal tensors and the same absent rows (``torch.equal``)."""
        if not isinstance(other, Conditions):
            return NotImplemented
        return self.kinds == other.kinds and \
            all(torch.equal(v, other._data[k]) for k, v in self._data.items()) and \
            all(torch.equal(self.present(k), other.present(k)) for k in self.kinds)

    __hash__ = None  # type: ignore[assignment]  (mutable contents, as a dict)

    def __repr__(self) -> str:
        parts = [f"{k}={tuple(v.shape)}" for k, v in self._data.items()]
        absent = [f"{k} absent on {int((~v).sum())}" for k, v in self._present.items()]
        return f"Conditions(n={self._n}, {', '.join(parts + absent)})"

    @property
    def n(self) -> int:
        """Number of rows."""
        return self._n

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds held, in canonical order (absent rows included)."""
        return tuple(k for k in CONDITION_KINDS if KEYS[k][0] in self._data)

    @property
    def device(self) -> torch.device:
        return next(iter(self._data.values())).device

    def present(self, kind: str) -> Tensor:
        """Bool ``(n,)``: True on rows where ``kind`` is given, False where it is absent."""
        if kind not in self.kinds:
            raise DataError(f"Expected one of the held conditions {self.kinds}, but found "
                            f"{kind!r}.")
        rows = self._present.get(kind)
        return torch.ones(self._n, dtype=torch.bool, device=self.device) if rows is None \
            else rows

    def is_absent(self, kind: str) -> bool:
        """Whether ``kind`` is absent on every row (or not held at all)."""
        return kind not in self.kinds or (kind in self._present and
                                          not bool(self._present[kind].any()))

    # ---------------------------------------------------------------- rows and devices
    def index(self, rows: Tensor | slice | np.ndarray | Sequence[int]) -> Conditions:
        """The selected rows: an int64 index tensor, a bool tensor of shape ``(n,)`` or a
        slice."""
        if not isinstance(rows, slice):
            rows = torch.as_tensor(rows)
            if rows.dtype == torch.bool:
                rows = rows.nonzero().reshape(-1)
            rows = rows.to(self.device)
        data = {k: v[rows] for k, v in self._data.items()}
        n = next(iter(data.values())).shape[0] if data else 0
        return Conditions._trusted(data, {k: v[rows] for k, v in self._present.items()}, n)

    def to(self, device: torch.device | str) -> Conditions:
        """The same conditions on ``device``."""
        return Conditions._trusted({k: v.to(device) for k, v in self._data.items()},
                                   {k: v.to(device) for k, v in self._present.items()},
                                   self._n)

    def chunk(self, chunks: int) -> list[Conditions]:
        """Split the rows into ``chunks`` consecutive parts, as ``Tensor.chunk``."""
        size = max(-(-self._n // chunks), 1)
        return [self.index(slice(i, i + size)) for i in range(0, self._n, size)] or [self]

    @staticmethod
    def cat(parts: Sequence[Conditions]) -> Conditions:
        """Rows of several :class:`Conditions` of the same kinds, one after the other."""
        kinds = {p.kinds for p in parts}
        if len(kinds) != 1:
            raise DataError(f"Expected conditions of the same kinds, but found {kinds}.")
        data = {k: torch.cat([p._data[k] for p in parts]) for k in parts[0]._data}
        marked = set().union(*(p._present for p in parts))
        present = {k: torch.cat([p.present(k) for p in parts]) for k in marked}
        return Conditions._trusted(data, present, sum(p.n for p in parts))

    # ---------------------------------------------------------------- absence
    def drop(self, kinds: str | Sequence[str], rows: Tensor | None = None) -> Conditions:
        """Mark ``kinds`` absent on ``rows`` (bool ``(n,)``; None: every row).

        Absent rows are zeroed, so a family that reads :meth:`present` can put its own
        "no condition" input there (a null class, a learned null text vector, zero image
        channels with a presence channel of 0).
        """
        kinds = canonical_kinds([kinds] if isinstance(kinds, str) else list(kinds))
        unknown = [k for k in kinds if k not in self.kinds]
        if unknown:
            raise DataError(f"Expected held conditions {self.kinds}, but found {unknown}.")
        drop = torch.ones(self._n, dtype=torch.bool, device=self.device) if rows is None \
            else torch.as_tensor(rows, dtype=torch.bool, device=self.device)
        data, present = dict(self._data), dict(self._present)
        for kind in kinds:
            keep = self.present(kind) & ~drop
            present[kind] = keep
            for key in KEYS[kind]:
                data[key] = _zero_rows(data[key], keep)
        return Conditions._trusted(data, present, self._n)

    def dropout(self, rates: Mapping[str, float], generator: torch.Generator | None = None
                ) -> Conditions:
        """Drop each kind independently on each row with probability ``rates[kind]``
        (condition dropout), drawing one uniform number per row and kind, in canonical order.
        """
        out = self
        for kind in self.kinds:
            rate = float(rates.get(kind, 0.0))
            if rate > 0:
                u = torch.rand(self._n, generator=generator, device=self.device)
                out = out.drop(kind, u < rate)
        return out

    # ---------------------------------------------------------------- for networks
    def image_channels(self, order: Sequence[str] | None = None, *, presence: bool = False
                       ) -> Tensor:
        """The image conditions concatenated as channels ``(n, k, H, W)``.

        Arguments:
            order: Image kinds in the order wanted (default: those held, canonical order);
                ``mask`` gives two groups, ``mask`` then ``masked``.
            presence: Append one channel per kind, 1 where it is present and 0 where absent,
                so an absent condition differs from a blank one.
        """
        order = [k for k in IMAGE_KINDS if k in self.kinds] if order is None else list(order)
        missing = [k for k in order if k not in IMAGE_KINDS or k not in self.kinds]
        if missing:
            raise DataError(f"Expected held image conditions "
                            f"{[k for k in self.kinds if k in IMAGE_KINDS]}, but found "
                            f"{missing}.")
        parts = [self._data[key].float() for kind in order for key in KEYS[kind]]
        if presence:
            like = parts[0][:, :1] if parts else None
            parts += [torch.ones_like(like) * self.present(k)[:, None, None, None].float()
                      for k in order]
        if not parts:
            raise DataError("Expected at least one image condition, but found none.")
        return torch.cat(parts, dim=1)


def _zero_rows(t: Tensor, keep: Tensor) -> Tensor:
    """``t`` with the rows where ``keep`` is False set to zero (False for bool)."""
    shape = (-1,) + (1,) * (t.dim() - 1)
    return torch.where(keep.reshape(shape), t, torch.zeros((), dtype=t.dtype, device=t.device))


def _check_structure(data: Mapping[str, Tensor]) -> None:
    """Dtypes, ranks, a common n, finiteness and {0, 1} values of held tensors."""
    ranks = {"label": 1, "prompt": 2, "prompt_mask": 2}
    n = None
    for key, t in data.items():
        if not isinstance(t, Tensor):
            raise DataError(f"Expected condition {key} as a tensor, but found "
                            f"{type(t).__name__}.")
        rank = ranks.get(key, 4)
        if t.dim() != rank:
            raise ShapeError(f"Expected condition {key} with {rank} dimensions (n first), but "
                             f"found shape {tuple(t.shape)}.")
        if n is not None and t.shape[0] != n:
            raise ShapeError(f"Expected every condition to have n={n} rows, but found "
                             f"{key} with {t.shape[0]}.")
        n = t.shape[0]
        if key in ("label", "prompt"):
            if t.dtype != torch.long:
                raise DataError(f"Expected int64 {key}, but found {t.dtype}.")
        elif key == "prompt_mask":
            if t.dtype != torch.bool:
                raise DataError(f"Expected bool prompt_mask, but found {t.dtype}.")
        else:
            if not t.is_floating_point():
                raise DataError(f"Expected float condition {key}, but found {t.dtype}.")
            if not torch.isfinite(t).all():
                raise DataError(f"Expected finite {key}, but found NaN or Inf.")
            if key in ("sketch", "mask") and not ((t == 0) | (t == 1)).all():
                raise DataError(f"Expected {key} values 0 and 1, but found values in "
                                f"[{t.min().item():g}, {t.max().item():g}].")
    if "prompt" in data and data["prompt"].shape != data["prompt_mask"].shape:
        raise ShapeError(f"Expected prompt and prompt_mask of one shape, but found "
                         f"{tuple(data['prompt'].shape)} and "
                         f"{tuple(data['prompt_mask'].shape)}.")
    if "mask" in data and data["masked"].shape[2:] != data["mask"].shape[2:]:
        raise ShapeError(f"Expected mask and masked of one size, but found "
                         f"{tuple(data['mask'].shape)} and {tuple(data['masked'].shape)}.")
