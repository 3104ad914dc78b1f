"""User input ``y`` -> validated :class:`~genlab.conditioning.Conditions` for a model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from genlab.checks import did_you_mean
from genlab.conditioning.conditions import KEYS, KIND_OF, Conditions, prompt_tokenizer
from genlab.errors import DataError, ShapeError

__all__ = ["check_conditions", "random_conditions"]

def check_conditions(y: Any, n: int, *, kinds: Sequence[str], event_shape: Sequence[int],
                     num_classes: int | None = None, num_levels: int | None = None,
                     optional: Sequence[str] = (), owner: str = "the model") -> Conditions:
    """What a user passes as ``y``, checked and made into :class:`Conditions` of ``n`` rows.

    Arguments:
        y: A :class:`Conditions` or a mapping from keys (:data:`KEYS`) to values: a label as
            an int or ``(n,)``; an image condition as ``(H, W)``, ``(1, H, W)`` or ``(n, 1, H,
            W)``; ``masked`` as ``(C, H, W)`` or ``(n, C, H, W)`` (multiplied by ``mask``
            here, so the whole image may be given); a prompt as a string, n strings, or ids
            ``(n, L)`` with ``prompt_mask``. One row is broadcast to n.
        n: Rows wanted.
        kinds: The kinds the model takes.
        event_shape: The model's ``(C, H, W)``.
        num_classes, num_levels: Ranges of labels and of ``lowres``/``masked`` values.
        optional: Kinds the model was trained to do without (condition dropout): a missing
            one is marked absent instead of refused.
        owner: The model's name, for messages.

    Raises:
        DataError: extra or missing conditions, values out of range, bad prompts.
        ShapeError: wrong shapes or numbers of rows.
    """
    kinds = tuple(kinds)
    if y is None:
        y = {}
    if not isinstance(y, Mapping):
        raise DataError(f"Expected y as a mapping of conditions {list(kinds)} for {owner}, "
                        f"but found {type(y).__name__}.")
    if isinstance(y, Conditions):
        given = {k: y[k] for k in y}
        marks = {k: y.present(k) for k in y.kinds}
    else:
        given, marks = dict(y), {}
    unknown = [k for k in given if k not in KIND_OF]
    extra = [k for k in given if k in KIND_OF and KIND_OF[k] not in kinds]
    if unknown or extra:
        raise DataError(f"Expected conditions {list(kinds)} for {owner}, but found "
                        f"{'unknown' if unknown else 'extra'} "
                        f"{', '.join(map(repr, unknown or extra))}."
                        f"{did_you_mean(unknown[0], KIND_OF) if unknown else ''}")
    data: dict[str, Tensor] = {}
    for kind in kinds:
        if KEYS[kind][0] not in given:
            if kind not in optional:
                raise DataError(f"Expected the {kind} condition for {owner}, but found none; "
                                f"it was trained without dropping {kind}, so it needs one.")
            data.update(_placeholder(kind, n, event_shape))
            marks[kind] = torch.zeros(n, dtype=torch.bool)
            continue
        data.update(_read(kind, given, n, event_shape, num_classes, num_levels,
                          marks.get(kind)))
    marks = {k: _rows(torch.as_tensor(v, dtype=torch.bool).reshape(-1), n, f"{k} presence")
             for k, v in marks.items()}
    return Conditions(data, marks)


def _rows(t: Tensor, n: int, key: str) -> Tensor:
    """``t`` with n rows: itself, or its single row repeated."""
    if t.shape[0] == n:
        return t
    if t.shape[0] == 1:
        return t.expand(n, *t.shape[1:]).contiguous()
    raise ShapeError(f"Expected {key} for 1 or {n} rows, but found {t.shape[0]}.")


def _tensor(value: Any, key: str) -> Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        value = torch.tensor(value)
    if not isinstance(value, Tensor):
        raise DataError(f"Expected {key} as a tensor or array, but found "
                        f"{type(value).__name__}.")
    if value.dtype == torch.bool or value.is_complex():
        raise DataError(f"Expected real numbers in {key}, but found {value.dtype}.")
    if value.is_floating_point() and not torch.isfinite(value).all():
        raise DataError(f"Expected finite {key}, but found NaN or Inf.")
    return value.detach().cpu()


def _image(value: Any, key: str, channels: int, size: tuple[int, int], n: int) -> Tensor:
    t = _tensor(value, key).float()
    if t.dim() == 2 and channels == 1:
        t = t[None]
    if t.dim() == 3:
        t = t[None]
    if t.dim() != 4 or tuple(t.shape[1:]) != (channels, *size):
        raise ShapeError(f"Expected {key} of shape {(channels, *size)} or (n, {channels}, "
                         f"{size[0]}, {size[1]}), but found {tuple(t.shape)}.")
    return _rows(t, n, key)


def _in_range(t: Tensor, key: str, high: float | None) -> None:
    if (t < 0).any() or (high is not None and (t > high).any()):
        raise DataError(f"Expected {key} values in [0, {high if high is not None else 'inf'}"
                        f"], but found values in [{t.min().item():g}, {t.max().item():g}].")


def _read(kind: str, given: dict[str, Any], n: int, event_shape: Sequence[int],
          num_classes: int | None, num_levels: int | None, present: Tensor | None
          ) -> dict[str, Tensor]:
    """The checked tensors of one given kind (``present``: rows where a Conditions holds
    it, None for all)."""
    if kind == "label":
        t = _tensor(given["label"], "label").reshape(-1)
        if t.is_floating_point() and (t != t.round()).any():
            raise DataError("Expected integer class labels, but found fractional values.")
        t = _rows(t.long(), n, "label")
        _in_range(t, "label", None if num_classes is None else num_classes - 1)
        return {"label": t}
    if kind == "prompt":
        return _read_prompt(given, n, present)
    if len(event_shape) != 3:
        raise DataError(f"Expected image data (C, H, W) for a {kind} condition, but found "
                        f"event shape {tuple(event_shape)}.")
    c, size = int(event_shape[0]), (int(event_shape[1]), int(event_shape[2]))
    top = None if num_levels is None else num_levels - 1
    if kind in ("sketch", "mask"):
        t = _image(given[kind], kind, 1, size, n)
        if not ((t == 0) | (t == 1)).all():
            raise DataError(f"Expected a {kind} with values 0 and 1, but found values in "
                            f"[{t.min().item():g}, {t.max().item():g}].")
        if kind == "sketch":
            return {"sketch": t}
        if "masked" not in given:
            raise DataError("Expected the known image 'masked' with the mask, but found none.")
        masked = _image(given["masked"], "masked", c, size, n)
        _in_range(masked, "masked", top)
        return {"mask": t, "masked": masked * t}
    t = _image(given["lowres"], "lowres", 1, size, n)
    _in_range(t, "lowres", top)
    return {"lowres": t}


def _read_prompt(given: dict[str, Any], n: int, present: Tensor | None) -> dict[str, Tensor]:
    value = given["prompt"]
    if isinstance(value, str) or (isinstance(value, Sequence) and not isinstance(value, Tensor)
                                  and value and all(isinstance(v, str) for v in value)):
        ids, mask = prompt_tokenizer().encode(value)  # DataError for unknown words etc.
    else:
        ids = _tensor(value, "prompt")
        if ids.is_floating_point() or ids.dim() != 2:
            raise DataError(f"Expected a prompt as text or int64 ids (n, L), but found "
                            f"{tuple(ids.shape)} {ids.dtype}.")
        vocab = prompt_tokenizer().vocab_size
        _in_range(ids, "prompt ids", vocab - 1)
        mask = torch.as_tensor(given.get("prompt_mask", ids != 0)).bool()
        ids = ids.long()
    if not (mask.any(1) | (False if present is None else ~present.cpu())).all():
        raise DataError("Expected at least one word in every prompt, but found an empty one.")
    return {"prompt": _rows(ids, n, "prompt"), "prompt_mask": _rows(mask, n, "prompt_mask")}


def _placeholder(kind: str, n: int, event_shape: Sequence[int]) -> dict[str, Tensor]:
    """Zeros standing for an absent condition."""
    if kind == "label":
        return {"label": torch.zeros(n, dtype=torch.long)}
    if kind == "prompt":
        length = prompt_tokenizer().max_length
        return {"prompt": torch.zeros(n, length, dtype=torch.long),
                "prompt_mask": torch.zeros(n, length, dtype=torch.bool)}
    c, h, w = (int(s) for s in event_shape)
    image = {key: torch.zeros(n, c if key == "masked" else 1, h, w) for key in KEYS[kind]}
    return image


def random_conditions(kinds: Sequence[str], n: int, *, event_shape: Sequence[int],
                      num_classes: int | None = None, num_levels: int | None = None,
                      generator: torch.Generator | None = None) -> Conditions:
    """Random but valid conditions of ``kinds`` for ``n`` rows: for tests and smoke runs.

    Labels uniform in ``[0, num_classes)``; sketches and masks Bernoulli(1/2) pixels; lowres
    and masked images uniform levels (``[0, num_levels)``, or [0, 1) for continuous data);
    prompts of 1 to 6 words drawn uniformly from the prompt vocabulary.
    """
    data: dict[str, Tensor] = {}
    shape = tuple(int(s) for s in event_shape)
    for kind in kinds:
        if kind == "label":
            data["label"] = torch.randint(num_classes or 1, (n,), generator=generator)
        elif kind == "prompt":
            tok = prompt_tokenizer()
            ids = torch.randint(2, tok.vocab_size, (n, tok.max_length), generator=generator)
            length = torch.randint(1, 7, (n, 1), generator=generator)
            mask = torch.arange(tok.max_length)[None] < length
            data["prompt"], data["prompt_mask"] = ids * mask, mask
        else:
            size = (n, 1, *shape[1:])
            levels = (lambda s: torch.randint(num_levels, s, generator=generator).float()) \
                if num_levels else (lambda s: torch.rand(s, generator=generator))
            if kind == "lowres":
                data["lowres"] = levels(size)
                continue
            binary = (torch.rand(size, generator=generator) < 0.5).float()
            data[kind] = binary
            if kind == "mask":
                data["masked"] = levels((n, *shape)) * binary
    return Conditions(data)
