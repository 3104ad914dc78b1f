"""What the page may ask for, checked before any process starts.

Models and their settings come from the registry's declarations (``Model.settings()`` with
the family's defaults for 2-D points from its recipe), training settings from
:class:`~genlab.train.TrainConfig`. Points the user draws or uploads are checked for count,
shape and finite values; uploads also for size and type (CSV text or ``.npy``, read with
``allow_pickle=False``).
"""

from __future__ import annotations

import csv
import inspect
import io
import math
from functools import lru_cache
from typing import Any

import numpy as np

from genlab.errors import ConfigError, DataError

#: Training settings the playground offers (the rest keep the recipe's values).
TRAIN_FIELDS = ("steps", "batch_size", "lr", "seed")
#: Limits on user points: enough for 80/10/10 splits, few enough to stay interactive.
MIN_POINTS, MAX_POINTS = 50, 20000
#: Largest coordinate accepted (the page's view spans a few units).
MAX_ABS = 1e3
#: Largest upload, in bytes, and the types accepted.
MAX_UPLOAD = 1 << 20
UPLOAD_TYPES = ("text/csv", "text/plain", "application/octet-stream", "application/x-npy")


def _jsonable(value: Any) -> Any:
    if value is inspect.Parameter.empty:
        return None
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _describe(spec: Any, default: Any) -> dict[str, Any]:
    s = spec.setting
    return {"name": spec.name, "type": spec.type_name(), "default": _jsonable(default),
            "help": spec.help, "choices": None if s.choices is None else list(s.choices),
            "describe": spec.describe()}


@lru_cache(maxsize=1)
def catalogue() -> list[dict[str, Any]]:
    """Every model with a recipe for 2-D points: its settings and training defaults."""
    from genlab.data import load_data
    from genlab.recipes import recipe_for
    from genlab.registry import available, get
    from genlab.train import TrainConfig

    points = load_data("moons", n=200)
    train_specs = TrainConfig.settings()
    out = []
    for name in available():
        cls = get(name)
        recipe = recipe_for(cls, points)
        if name.startswith("_") or recipe is None:
            continue
        settings = [_describe(spec, recipe.params.get(key, spec.default))
                    for key, spec in cls.settings().items()]
        train = [_describe(train_specs[key], recipe.train.get(key, train_specs[key].default))
                 for key in TRAIN_FIELDS]
        out.append({"name": name, "settings": settings, "train": train,
                    "doc": _first_line(cls.__doc__)})
    return out


def _first_line(doc: str | None) -> str:
    """A docstring's summary as plain text (reST roles and backquotes dropped)."""
    line = (doc or "").strip().splitlines()[0] if (doc or "").strip() else ""
    for role in (":math:", ":class:", ":func:", ":meth:"):
        line = line.replace(role, "")
    return line.replace("`", "").replace("\\odot", "⊙")


def check_model(name: Any, params: Any, train: Any) -> tuple[str, dict, dict]:
    """The model name, its settings and training settings, each checked by its declaration.

    Raises:
        ConfigError: an unknown model or setting, or a value its declaration refuses.
    """
    models = {m["name"] for m in catalogue()}
    if name not in models:
        raise ConfigError(f"Expected one of {', '.join(sorted(models))}, but found {name!r}.")
    from genlab.registry import get
    from genlab.train import TrainConfig

    params = _mapping("params", params)
    train = _mapping("train", train)
    declared = get(name).settings()
    for key, value in params.items():
        if key not in declared:
            raise ConfigError(f"Expected a setting of {name} ({', '.join(declared)}), "
                              f"but found {key!r}.")
        if isinstance(value, list) and not isinstance(declared[key].default, list):
            value = params[key] = tuple(value)  # JSON has no tuples
        declared[key].check(value)
    train_specs = TrainConfig.settings()
    for key, value in train.items():
        if key not in TRAIN_FIELDS:
            raise ConfigError(f"Expected a training setting among {', '.join(TRAIN_FIELDS)}, "
                              f"but found {key!r}.")
        train_specs[key].check(value)
    return name, params, train


def _mapping(what: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"Expected {what} to be an object, but found {type(value).__name__}.")
    return dict(value)


def check_points(points: Any) -> np.ndarray:
    """Drawn points as a float32 array ``(n, 2)``.

    Raises:
        DataError: not a list of ``[x, y]`` pairs of finite numbers, too few or too many.
    """
    if not isinstance(points, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in p)
            for p in points):
        raise DataError("Expected points as a list of [x, y] number pairs, but found "
                        "something else.")
    return _checked(np.asarray(points, dtype=np.float64).reshape(-1, 2))


def _checked(x: np.ndarray) -> np.ndarray:
    if x.ndim != 2 or x.shape[1] != 2:
        raise DataError(f"Expected points of shape (n, 2), but found {x.shape}.")
    if not MIN_POINTS <= len(x) <= MAX_POINTS:
        raise DataError(f"Expected between {MIN_POINTS} and {MAX_POINTS} points, but found "
                        f"{len(x)}.")
    if not np.isfinite(x).all() or np.abs(x).max() > MAX_ABS:
        raise DataError(f"Expected finite coordinates within +-{MAX_ABS:g}, but found others.")
    return x.astype(np.float32)


def read_upload(body: bytes, content_type: str) -> np.ndarray:
    """Points from an uploaded ``.npy`` or CSV file (two numeric columns, optional header).

    Raises:
        DataError: too large, a type other than CSV or ``.npy``, or contents that are not
            ``(n, 2)`` finite numbers.
    """
    if len(body) > MAX_UPLOAD:
        raise DataError(f"Expected an upload of at most {MAX_UPLOAD} bytes, but found "
                        f"{len(body)}.")
    kind = content_type.split(";")[0].strip().lower()
    if kind not in UPLOAD_TYPES:
        raise DataError(f"Expected a CSV or .npy upload ({', '.join(UPLOAD_TYPES)}), but "
                        f"found {kind or 'no type'!r}.")
    if body.startswith(b"\x93NUMPY"):
        try:
            x = np.load(io.BytesIO(body), allow_pickle=False)
        except (ValueError, OSError) as err:
            raise DataError(f"Expected a readable .npy array, but found: {err}") from None
        if x.dtype.kind not in "fiu":
            raise DataError(f"Expected a numeric .npy array, but found dtype {x.dtype}.")
        return _checked(np.asarray(x, dtype=np.float64))
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError("Expected CSV text (UTF-8) or a .npy file, but found other "
                        "bytes.") from None
    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    if rows and not _numeric(rows[0]):
        rows = rows[1:]  # a header
    if not all(len(r) == 2 and _numeric(r) for r in rows):
        raise DataError("Expected two numeric columns per CSV row, but found other rows.")
    return _checked(np.array([[float(v) for v in r] for r in rows], dtype=np.float64)
                    .reshape(-1, 2))


def _numeric(row: list[str]) -> bool:
    try:
        [float(v) for v in row]
    except ValueError:
        return False
    return True


def check_bounds(bounds: Any) -> list[float]:
    """The page's view ``[x0, x1, y0, y1]`` with ``x0 < x1``, ``y0 < y1``."""
    ok = isinstance(bounds, list) and len(bounds) == 4 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        and abs(v) <= MAX_ABS for v in bounds)
    if not ok or not (bounds[0] < bounds[1] and bounds[2] < bounds[3]):
        raise ConfigError(f"Expected bounds [x0, x1, y0, y1] with x0 < x1 and y0 < y1, but "
                          f"found {bounds!r}.")
    return [float(v) for v in bounds]
