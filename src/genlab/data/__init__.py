"""Data: toy 2-D sets, scikit-learn digits, user files. See :func:`load_data`.

Every loader returns a :class:`Dataset` (x, optional labels y, kind, num_levels, num_classes,
event_shape, info). Definitions and split rules are in docs/data.md.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np
import torch

from genlab.checks import check_choice, check_int, did_you_mean
from genlab.data import digits, files, toy2d
from genlab.data.dataset import SPLITS, Dataset
from genlab.errors import ConfigError, UnknownNameError

__all__ = ["Dataset", "available_datasets", "load_data"]

def available_datasets() -> list[str]:
    """Names :func:`load_data` accepts besides file paths: the toy 2-D sets and ``digits``."""
    return [*toy2d.TOY_NAMES, "digits"]


def _looks_like_path(name: str) -> bool:
    return os.sep in name or "/" in name or Path(name).suffix != "" or Path(name).exists()


def _subsample(data: Dataset, n: int, seed: int) -> Dataset:
    """``n`` rows of ``data`` chosen without replacement by a seeded stream, in their order."""
    if n > len(data):
        raise ConfigError(
            f"Expected n <= {len(data)} for split {data.split!r} of {data.name!r}, but found {n}."
        )
    if n == len(data):
        return data
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(zlib.crc32(b"n"),)))
    rows = np.sort(rng.choice(len(data), size=n, replace=False))
    subset = data.subset(torch.from_numpy(rows))
    subset.info["subsample"] = {"n": n, "of": len(data)}
    return subset


def load_data(
    name_or_path: str | os.PathLike,
    split: str = "train",
    *,
    n: int | None = None,
    seed: int = 0,
    label_column: int | str | None = None,
    num_levels: int | None = None,
) -> Dataset:
    """Load a named data set or a user file, one split at a time.

    Names (:func:`available_datasets`): moons, circles, 8gaussians, 25gaussians, ring8,
    checkerboard, spirals, pinwheel, rings (generated from ``seed``), and digits
    (scikit-learn's bundled 8 x 8 images). Anything else that looks like a path (has a
    suffix or a slash, or exists) is read as a ``.npy``, ``.csv`` or PNG folder
    (:mod:`genlab.data.files`). A built-in name wins over a folder of the same name; write
    ``./digits`` for the folder.

    Split rules:
        * toy sets: 20,000 train / 5,000 val / 5,000 test drawn from independent streams
          derived from ``seed``; ``n`` is the number of points drawn. ``"all"`` is the three
          default splits concatenated.
        * digits: test = last 297 images, val = the 150 before, train = the first 1350;
          ``"all"`` = 1797.
        * files: a permutation seeded by ``seed``, 80 / 10 / 10; ``"all"`` = every row.
        For digits, files and ``"all"``, ``n`` (at most the split's size) keeps a seeded
        random subset of the split, in the split's order.

    Arguments:
        name_or_path: A data-set name or a file/folder path.
        split: ``"train"``, ``"val"``, ``"test"`` or ``"all"``.
        n: Number of samples (see above); None for the default size.
        seed: Seed for generation, file splits and subsets (integer >= 0).
        label_column: CSV files only: index or header name of the label column.
        num_levels: Files only: treat the values as integers in ``[0, num_levels)``.

    Returns:
        The :class:`Dataset`.

    Raises:
        UnknownNameError: an unknown name (with close matches).
        ConfigError: a bad split, ``n``, ``seed``, or file options given for a named set.
        DataError: a missing, unreadable or invalid file (NaN values, ragged images, ...).

    Example:
        >>> from genlab.data import load_data
        >>> train = load_data("8gaussians", n=1000)
        >>> train.x.shape, train.num_classes, round(train.info["std"], 4)
        (torch.Size([1000, 2]), 8, 0.3536)
        >>> load_data("digits", split="test").x.shape
        torch.Size([297, 1, 8, 8])
    """
    check_choice("split", split, SPLITS)
    n = check_int("n", n, allow_none=True)
    seed = check_int("seed", seed, ge=0)

    is_path = isinstance(name_or_path, os.PathLike)
    name = os.fspath(name_or_path) if is_path else name_or_path
    if not isinstance(name, str):
        raise ConfigError(
            f"Expected a data-set name or path, but found {type(name_or_path).__name__}."
        )
    key = name.strip().lower()
    if not is_path and key in available_datasets():
        if label_column is not None or num_levels is not None:
            raise ConfigError(
                f"Expected label_column and num_levels only for files, but found them with "
                f"the built-in data set {key!r}."
            )
        if key == "digits":
            data = digits.load(split)
        elif split != "all":
            return toy2d.load(key, split, n=n, seed=seed)
        else:
            data = toy2d.load(key, "all", seed=seed)
    elif is_path or _looks_like_path(name):
        data = files.load(name, split, seed=seed, label_column=label_column, num_levels=num_levels)
    else:
        raise UnknownNameError(
            f"Unknown data set {name!r}.{did_you_mean(key, available_datasets())} "
            f"Known: {', '.join(available_datasets())}, "
            f"or a .npy/.csv file or folder of .png images."
        )
    return data if n is None else _subsample(data, n, seed)
