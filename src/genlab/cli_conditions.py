"""Conditions on the command line: ``genlab train ... --condition sketch,prompt`` and
``genlab sample RUN --sketch drawing.png --prompt "a thin 3" --label 3 --mask half --image
digit.png --guidance sketch=2,prompt=3``.

Training with conditions builds the paired digits (:func:`~genlab.data.conditions.
paired_digits`) with the asked kinds; sampling turns each flag into the condition of the same
name, checked by the model (:func:`~genlab.conditioning.check_conditions`): a flag for a
condition the run was not trained with, a blank or unreadable drawing, a sketch array of the
wrong size, an empty or over-long prompt or unknown words all fail with one line.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genlab.errors import ConfigError, DataError

if TYPE_CHECKING:  # the command line imports torch only when a command runs
    import numpy as np
    from torch import Tensor

    from genlab.base import GenerativeModel
    from genlab.data.dataset import Dataset

#: ``--mask`` words: the half of the image that is hidden (to be generated).
MASK_HALVES = ("top", "bottom", "left", "right")
#: The flags of ``genlab sample`` that give conditions, by condition kind.
SAMPLE_FLAGS = {"label": "--label", "sketch": "--sketch", "lowres": "--lowres",
                "mask": "--mask", "prompt": "--prompt"}


def add_train_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--condition", metavar="KINDS",
                        help="condition on these, comma-separated: label, sketch, lowres, mask, "
                             "prompt (paired digits; e.g. sketch,prompt)")


def add_sample_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("conditions (runs trained with --condition)")
    group.add_argument("--label", type=int, help="class label")
    group.add_argument("--sketch", metavar="PATH",
                       help="a drawing (PNG, JPEG, any size, dark on light or light on dark) "
                            "or a .npy sketch of 0/1")
    group.add_argument("--prompt", help="a short text prompt, e.g. 'a thin 3 leaning left'")
    group.add_argument("--lowres", metavar="PATH",
                       help="a low-resolution image (.npy of levels, or an image file)")
    group.add_argument("--mask", metavar="HALF|PATH",
                       help="pixels to keep from --image: 'half' (or top, bottom, left, "
                            "right: the hidden half; 'half' hides the bottom) or a mask file "
                            "(1 or white = known)")
    group.add_argument("--image", metavar="PATH",
                       help="the image whose --mask pixels are known (.npy or image file)")


def training_data(data: str, kinds: str, split: str, seed: int) -> Dataset:
    """The paired digits of ``split`` with conditions ``kinds`` (``"sketch,prompt"``).

    Raises:
        ConfigError: data other than digits, unknown kinds.
    """
    from genlab.conditioning import canonical_kinds
    from genlab.data.conditions import paired_digits

    conditions = canonical_kinds(kinds)
    if not conditions:
        raise ConfigError(f"Expected --condition with kinds such as sketch,prompt, but found "
                          f"{kinds!r}.")
    if data != "digits":
        raise ConfigError(f"Expected --data digits with --condition (conditions are made from "
                          f"the digits), but found {data!r}.")
    return paired_digits(split, conditions, seed=seed).to_dataset(conditions)


def sample_conditions(model: GenerativeModel, args: argparse.Namespace) -> Any:
    """``y`` for ``model.sample`` from the condition flags (and the older ``--y`` label).

    Raises:
        ConfigError: a flag for a condition the run was not trained with; ``--image`` without
            ``--mask`` or the reverse.
        DataError, ShapeError: unreadable, blank or ill-shaped files.
    """
    given = {kind: getattr(args, kind.replace("-", "_"), None) for kind in SAMPLE_FLAGS}
    legacy = getattr(args, "y", None)  # --y: the label, checked by the model as before
    if legacy is not None and given["label"] is not None:
        raise ConfigError("Expected one of --label and --y, but found both.")
    flags = [SAMPLE_FLAGS[k] for k, v in given.items() if v is not None]
    unknown = [SAMPLE_FLAGS[k] for k, v in given.items()
               if v is not None and k not in model.conditions]
    if unknown:
        trained = ", ".join(model.conditions) or "no conditions"
        raise ConfigError(f"Expected flags of the conditions the run was trained with "
                          f"({trained}), but found {', '.join(unknown)}.")
    if (given["mask"] is None) != (args.image is None):
        raise ConfigError(f"Expected --mask and --image together, but found only "
                          f"{'--mask' if args.image is None else '--image'}.")
    if legacy is not None:
        given["label"] = legacy
        flags.append("--y")
    if not model.y_is_conditions:
        return given["label"]
    if not flags and model.conditions and not model.optional_conditions:
        raise ConfigError(f"Expected the conditions the run was trained with: "
                          f"{', '.join(SAMPLE_FLAGS[k] for k in model.conditions)}.")
    levels = model.num_levels
    shape = tuple(model.event_shape)  # (C, H, W) where an image condition is held
    y: dict[str, Any] = {}
    if given["label"] is not None:
        y["label"] = given["label"]
    if given["prompt"] is not None:
        y["prompt"] = given["prompt"]
    if given["sketch"] is not None:
        y["sketch"] = _sketch(Path(given["sketch"]), shape[1:])
    if given["lowres"] is not None:
        from genlab.data.conditions import lowres

        y["lowres"] = lowres(_image(Path(given["lowres"]), shape, levels)[None])[0]
    if given["mask"] is not None:
        y["mask"] = _mask(given["mask"], shape[1:])
        y["masked"] = _image(Path(args.image), shape, levels)
    return y


def _sketch(path: Path, size: tuple[int, int]) -> Tensor:
    import torch

    from genlab.data.conditions import check_sketch
    from genlab.data.drawings import load_drawing

    if path.suffix == ".npy":
        return check_sketch(torch.from_numpy(_npy(path)), size)[0]
    return load_drawing(path, size)


def _npy(path: Path) -> np.ndarray:
    import numpy as np

    if not path.is_file():
        raise DataError(f"Expected a file, but found nothing at {str(path)!r}.")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise DataError(f"Expected a .npy array in {str(path)!r}, but found unreadable data "
                        f"({err}).") from None
    if not np.issubdtype(array.dtype, np.number):
        raise DataError(f"Expected numbers in {str(path)!r}, but found {array.dtype}.")
    return array.astype(np.float32)


def _image(path: Path, shape: tuple[int, int, int], levels: int | None) -> Tensor:
    """An image in data units: a .npy of shape ``shape`` (or ``(h, w)``) as is, or an
    image file's ink (:func:`~genlab.data.drawings.drawing_ink`) averaged onto the grid and
    scaled to the levels."""
    import numpy as np
    import torch

    if path.suffix == ".npy":
        return _shaped(torch.from_numpy(_npy(path)), shape, path)
    from genlab.data.drawings import _box_resize, drawing_ink

    if shape[0] != 1:
        raise ConfigError(f"Expected a .npy array for {shape[0]}-channel images, but found "
                          f"{path.name!r}.")
    ink = _box_resize(drawing_ink(path), shape[1:])
    ink = ink / max(ink.max(), 1e-12)
    top = (levels - 1) if levels else 1.0
    values = np.round(ink * top) if levels else ink
    return torch.from_numpy(values.astype(np.float32))[None]


def _shaped(t: Tensor, shape: tuple[int, ...], path: Path) -> Tensor:
    """``t`` as one image of ``shape`` (``(H, W)`` is taken for one channel)."""
    from genlab.errors import ShapeError

    if tuple(t.shape) == tuple(shape[1:]) and shape[0] == 1:
        t = t[None]
    if tuple(t.shape) not in (tuple(shape), (1, *shape)):
        raise ShapeError(f"Expected an array of shape {tuple(shape)} in {path.name!r}, but "
                         f"found {tuple(t.shape)}.")
    return t.reshape(shape)


def _mask(value: str, size: tuple[int, int]) -> Tensor:
    import numpy as np
    import torch

    h, w = size
    word = "bottom" if value == "half" else value
    if word in MASK_HALVES:
        mask = torch.ones(1, h, w)
        hidden = {"top": (slice(0, h // 2), slice(None)),
                  "bottom": (slice(h // 2, None), slice(None)),
                  "left": (slice(None), slice(0, w // 2)),
                  "right": (slice(None), slice(w // 2, None))}[word]
        mask[0][hidden] = 0.0
        return mask
    path = Path(value)
    if not path.suffix:
        raise ConfigError(f"Expected --mask half, {', '.join(MASK_HALVES)} or a file, but "
                          f"found {value!r}.")
    if path.suffix == ".npy":
        return _shaped(torch.from_numpy(_npy(path)), (1, h, w), path)
    from genlab.data.drawings import _box_resize, _read_grey

    if not path.is_file():
        raise DataError(f"Expected a mask file, but found no file at {value!r}.")
    grey = _box_resize(_read_grey(path), size)
    return torch.from_numpy((grey >= 128).astype(np.float32))[None]  # white = known
