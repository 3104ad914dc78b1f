"""User data from files: a ``.npy`` array, a numeric ``.csv`` table, or a folder of PNG images.

What each source becomes:

* ``.npy``: shape (n, *event_shape) (a 1-D array is read as (n, 1)). Float arrays are
  continuous; integer or boolean arrays are discrete with ``num_levels = max + 1`` (at least
  2) unless ``num_levels`` is given. Loaded with ``allow_pickle=False``: a file cannot run code.
* ``.csv``: comma separated numbers, one sample per row, shape (n, d). The first row is a
  header when one of its feature cells (the cells outside the label column) is not a number,
  or when it holds the name given as ``label_column``. ``label_column`` (an index, or a
  header name) becomes the labels ``y``: integers >= 0 are used as they are, anything else is
  mapped to 0..C-1 in sorted order (``info["classes"]``). Continuous unless ``num_levels`` is
  given.
* folder: every ``*.png`` in it, read in sorted order, as (n, c, h, w) integers 0..255,
  ``num_levels = 256``; c = 1 when every image is grayscale, else 3 (grayscale images are
  repeated over the channels, alpha is dropped). When the PNGs sit in subfolders instead, each
  subfolder is a class (labels follow the sorted folder names, ``info["classes"]``).

Splits: a permutation drawn from ``numpy.random.default_rng(seed)`` orders the rows; the first
80% are train, the next 10% val, the last 10% test (val = test = floor(n / 10) rows, train the
rest); ``"all"`` keeps every row in file order.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from genlab.checks import check_choice, check_int
from genlab.data.dataset import SPLITS, Dataset
from genlab.errors import ConfigError, DataError

__all__ = ["SUFFIXES", "load", "split_indices"]

SUFFIXES = (".npy", ".csv")

# (x array, y array or None, kind, num_levels, extra info)
_Read = tuple[np.ndarray, "np.ndarray | None", str, "int | None", dict]


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _check_finite(x: np.ndarray, path: Path) -> None:
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"Expected finite values in {path}, but found NaN or Inf in {int(bad.sum())} "
            f"row(s), first at row {row}."
        )


def _discrete_levels(x: np.ndarray, num_levels: int | None, path: Path) -> int:
    """Check integer data in [0, num_levels) and return num_levels (max + 1 when None)."""
    if x.size and (x != np.round(x)).any():
        raise DataError(
            f"Expected integer values for discrete data in {path}, but found fractions."
        )
    low, high = (int(x.min()), int(x.max())) if x.size else (0, 0)
    if low < 0:
        raise DataError(f"Expected discrete values >= 0 in {path}, but found {low}.")
    if num_levels is None:
        return max(high + 1, 2)
    if high >= num_levels:
        raise DataError(
            f"Expected values in [0, {num_levels - 1}] for num_levels={num_levels} in {path}, "
            f"but found {high}."
        )
    return num_levels


def _read_npy(path: Path, num_levels: int | None) -> _Read:
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise DataError(f"Cannot read {path} as a .npy array: {_one_line(error)}") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        found = getattr(array, "dtype", type(array).__name__)
        raise DataError(f"Expected a numeric array in {path}, but found dtype {found}.")
    if array.ndim == 0 or len(array) == 0:
        raise DataError(f"Expected at least one sample in {path}, but found shape {array.shape}.")
    if array.ndim == 1:
        array = array[:, None]  # (n, 1): one scalar per sample
    if array.dtype.kind == "f":
        _check_finite(array, path)
        if num_levels is None:
            return array.astype(np.float32), None, "continuous", None, {}
    array = array.astype(np.float64)
    levels = _discrete_levels(array, num_levels, path)
    return array.astype(np.float32), None, "discrete", levels, {}


def _parse_float(cell: str, path: Path, line: int, column: int) -> float:
    try:
        return float(cell)
    except ValueError:
        raise DataError(
            f"Expected a number in {path} line {line} column {column}, but found {cell!r}."
        ) from None


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _is_header(first: list[str], label_column: int | str | None) -> bool:
    """A first row is a header when it names the label column or a feature cell is no number."""
    if isinstance(label_column, str):
        return label_column in first or not all(_is_number(cell) for cell in first)
    skip = None
    if isinstance(label_column, int) and -len(first) <= label_column < len(first):
        skip = label_column % len(first)
    return not all(_is_number(cell) for j, cell in enumerate(first) if j != skip)


def _label_index(label_column: int | str, header: list[str] | None, width: int, path) -> int:
    if isinstance(label_column, str):
        if header is None:
            raise ConfigError(
                f"Expected label_column as a column index for {path} (it has no header), "
                f"but found {label_column!r}."
            )
        if label_column not in header:
            raise ConfigError(
                f"Expected label_column to be one of {header} in {path}, but found "
                f"{label_column!r}."
            )
        return header.index(label_column)
    if isinstance(label_column, bool) or not isinstance(label_column, int):
        raise ConfigError(
            f"Expected label_column as an int or a header name, but found {label_column!r}."
        )
    if not -width <= label_column < width:
        raise ConfigError(
            f"Expected label_column in [{-width}, {width - 1}] for {path} with {width} "
            f"columns, but found {label_column}."
        )
    return label_column % width


def _labels(cells: list[str]) -> tuple[np.ndarray, dict]:
    """Integer labels from label cells: non-negative integers as is, else sorted categories."""
    if all(_is_number(c) for c in cells):
        values = np.array([float(c) for c in cells])
        if (values == np.round(values)).all() and (values >= 0).all():
            return values.astype(np.int64), {}
    classes = sorted(set(cells))
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[c] for c in cells], dtype=np.int64), {"classes": classes}


def _read_csv(path: Path, label_column: int | str | None, num_levels: int | None) -> _Read:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = [
                (line, [cell.strip() for cell in row])
                for line, row in enumerate(csv.reader(handle), start=1)
                if any(cell.strip() for cell in row)
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"Cannot read {path} as CSV: {_one_line(error)}") from None
    header = None
    if rows and _is_header(rows[0][1], label_column):
        header = rows.pop(0)[1]
    if not rows:
        raise DataError(f"Expected at least one data row in {path}, but found none.")
    width = len(header) if header is not None else len(rows[0][1])
    for line, row in rows:
        if len(row) != width:
            raise DataError(
                f"Expected {width} columns on every row of {path}, but found {len(row)} on "
                f"line {line}."
            )
    y, info = None, {}
    label = None if label_column is None else _label_index(label_column, header, width, path)
    if label is not None:
        y, info = _labels([row[label] for _, row in rows])
    features = [j for j in range(width) if j != label]
    if not features:
        raise DataError(f"Expected at least one feature column in {path}, but found none.")
    x = np.array(
        [[_parse_float(row[j], path, line, j) for j in features] for line, row in rows],
        dtype=np.float64,
    )  # (n, d)
    _check_finite(x, path)
    if header is not None:
        info["columns"] = [header[j] for j in features]
    if num_levels is None:
        return x.astype(np.float32), y, "continuous", None, info
    levels = _discrete_levels(x, num_levels, path)
    return x.astype(np.float32), y, "discrete", levels, info


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    # DecompressionBombError: a header claiming more than twice PIL's MAX_IMAGE_PIXELS;
    # SyntaxError, EOFError: PIL's words for a damaged or truncated file.
    unreadable = (OSError, UnidentifiedImageError, ValueError, SyntaxError, EOFError,
                  Image.DecompressionBombError)
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode in ("1", "L", "LA"):
                return np.asarray(image.convert("L"), dtype=np.uint8)[:, :, None]  # (h, w, 1)
            if mode in ("RGB", "RGBA", "P", "PA"):
                return np.asarray(image.convert("RGB"), dtype=np.uint8)  # (h, w, 3)
    except unreadable as error:
        raise DataError(f"Cannot read image {path}: {_one_line(error)}") from None
    raise DataError(f"Expected an 8-bit grayscale or RGB PNG in {path}, but found mode {mode}.")


def _read_png_folder(folder: Path) -> _Read:
    def pngs(directory: Path) -> list[Path]:
        return sorted(p for p in directory.iterdir() if p.suffix.lower() == ".png" and p.is_file())

    files = pngs(folder)
    class_dirs = sorted(
        d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".") and pngs(d)
    )
    if files and class_dirs:
        raise DataError(
            f"Expected either PNG files or class subfolders of PNGs in {folder}, but found both."
        )
    labels: list[int] = []
    if class_dirs:
        for k, directory in enumerate(class_dirs):
            found = pngs(directory)
            files += found
            labels += [k] * len(found)
    if not files:
        raise DataError(f"Expected PNG images in folder {folder}, but found none.")
    images = [_read_png(p) for p in files]
    sizes = {img.shape[:2] for img in images}
    if len(sizes) > 1:
        first = images[0].shape[:2]
        other = next(i for i, img in enumerate(images) if img.shape[:2] != first)
        raise DataError(
            f"Expected every image in {folder} to have one size, but found {first[0]}x"
            f"{first[1]} ({files[0].name}) and {images[other].shape[0]}x"
            f"{images[other].shape[1]} ({files[other].name})."
        )
    channels = max(img.shape[2] for img in images)
    images = [np.repeat(img, channels // img.shape[2], axis=2) for img in images]
    x = np.stack(images).transpose(0, 3, 1, 2).astype(np.float32)  # (n, c, h, w)
    info: dict = {}
    y = None
    if class_dirs:
        y = np.array(labels, dtype=np.int64)
        info["classes"] = [d.name for d in class_dirs]
    return x, y, "discrete", 256, info


def split_indices(num_rows: int, split: str, seed: int) -> np.ndarray:
    """Row indices of ``split`` for a file of ``num_rows`` rows (see the module docstring)."""
    if split == "all":
        return np.arange(num_rows)
    order = np.random.default_rng(seed).permutation(num_rows)
    num_val = num_test = num_rows // 10
    num_train = num_rows - num_val - num_test
    bounds = {
        "train": (0, num_train),
        "val": (num_train, num_train + num_val),
        "test": (num_train + num_val, num_rows),
    }
    start, stop = bounds[split]
    return order[start:stop]


def load(
    path: str | Path,
    split: str = "train",
    *,
    seed: int = 0,
    label_column: int | str | None = None,
    num_levels: int | None = None,
) -> Dataset:
    """Read a user data file (or PNG folder) and return one split of it.

    Arguments:
        path: A ``.npy`` file, a ``.csv`` file, or a folder of ``.png`` images.
        split: ``"train"`` (80%), ``"val"`` (10%), ``"test"`` (10%) or ``"all"``.
        seed: Seed of the permutation that assigns rows to splits.
        label_column: CSV only: index or header name of the column holding labels.
        num_levels: Treat the values as discrete integers in ``[0, num_levels)`` (.npy, .csv).

    Returns:
        A :class:`Dataset` named by the path, with ``info["source"]`` and ``info["format"]``.

    Raises:
        DataError: missing or unreadable file, unsupported extension, NaN/Inf values,
            images of different sizes, values outside ``[0, num_levels)``, empty split.
        ConfigError: bad split, label_column or num_levels.
    """
    path = Path(path)
    check_choice("split", split, SPLITS)
    num_levels = check_int("num_levels", num_levels, ge=2, allow_none=True)
    if not path.exists():
        raise DataError(f"Expected an existing data file or folder, but found no {path}.")
    if path.is_dir():
        if label_column is not None or num_levels not in (None, 256):
            raise ConfigError(
                "Expected no label_column and num_levels None or 256 for a PNG folder "
                "(labels come from class subfolders), but found other values."
            )
        x, y, kind, levels, info = _read_png_folder(path)
        info["format"] = "png"
    elif path.suffix.lower() not in SUFFIXES:
        raise DataError(
            f"Expected a .npy or .csv file or a folder of .png images, but found {path.name!r}."
        )
    else:
        if label_column is not None and path.suffix.lower() != ".csv":
            raise ConfigError("Expected label_column only with a .csv file, but found a .npy.")
        if path.suffix.lower() == ".npy":
            x, y, kind, levels, info = _read_npy(path, num_levels)
        else:
            x, y, kind, levels, info = _read_csv(path, label_column, num_levels)
        info["format"] = path.suffix.lower()[1:]
    rows = split_indices(len(x), split, seed)
    if len(rows) == 0:
        raise DataError(
            f"Expected a non-empty {split!r} split of {path}, but its {len(x)} rows give none "
            f"(val = test = floor(n / 10)); use split='all' or more data."
        )
    info.update(source=str(path), seed=seed, num_rows=len(x))
    if label_column is not None:
        info["label_column"] = label_column  # so a run can reload the same data
    num_classes = None if y is None else int(y.max()) + 1
    if "classes" in info:
        num_classes = len(info["classes"])
    return Dataset(
        x=torch.from_numpy(np.ascontiguousarray(x[rows])),
        y=None if y is None else torch.from_numpy(y[rows]),
        kind=kind,  # type: ignore[arg-type]
        num_levels=levels,
        num_classes=num_classes,
        name=str(path),
        split=split,
        info=info,
    )
