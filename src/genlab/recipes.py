"""Each family's tuned defaults, per kind of data: what ``genlab train`` gives with no flags.

A family declares ``recipes = {"points": Recipe(...), "images": Recipe(...), ...}`` on its
class. The data kind of a :class:`~genlab.data.Dataset` is

* ``"points"``: continuous vectors of 2 dimensions (the toy 2-D sets);
* ``"table"``: any other vectors (user tables, ``.csv``/``.npy`` of shape ``(n, d)``);
* ``"images"``: ``(c, h, w)`` arrays (digits and user PNG folders).

``create(name, data=data)`` builds the model with its recipe's ``params`` and
``fit(model, data)`` trains it with its recipe's ``train`` settings; anything the caller
passes wins. The command line, ``genlab compare`` and the benchmarks all go through these two
calls, so what a user trains with no extra flags is what ``bench/RESULTS.md`` reports.
A family without a ``"table"`` recipe uses its ``"points"`` one for tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genlab.base import GenerativeModel
    from genlab.data.dataset import Dataset

DATA_KINDS = ("points", "table", "images")


@dataclass(frozen=True)
class Recipe:
    """Defaults of one family for one kind of data.

    Attributes:
        params: Constructor settings (architecture, regularisation).
        train: :class:`~genlab.train.TrainConfig` fields (steps, batch size, lr, patience,
            keep, EMA, ...).
        quick: Overrides of ``train`` for ``genlab demo``'s short first look (fewer steps).
        quick_params: Overrides of ``params`` for that first look (a smaller network).
        showcase: ``genlab demo`` shows this model for its family on this kind of data (one
            model per family and data kind; ``genlab demo --full`` shows every model).
        note: Where the numbers come from (which benchmark, what was tried on the
            validation split).
    """

    params: Mapping[str, Any] = field(default_factory=dict)
    train: Mapping[str, Any] = field(default_factory=dict)
    quick: Mapping[str, Any] = field(default_factory=dict)
    quick_params: Mapping[str, Any] = field(default_factory=dict)
    showcase: bool = False
    note: str = ""


def data_kind(data: Dataset) -> str:
    """``"points"``, ``"table"`` or ``"images"`` (see the module docstring)."""
    shape = data.event_shape
    if len(shape) == 3:
        return "images"
    if shape == (2,) and data.kind == "continuous":
        return "points"
    return "table"


def recipe_for(model: GenerativeModel | type[GenerativeModel], data: Dataset | str
               ) -> Recipe | None:
    """The family's recipe for ``data`` (a data set or a data kind); None when it has none."""
    recipes: Mapping[str, Recipe] = getattr(model, "recipes", None) or {}
    kind = data if isinstance(data, str) else data_kind(data)
    if kind not in recipes and kind == "table":
        kind = "points"
    return recipes.get(kind)


def model_params(model: type[GenerativeModel], data: Dataset) -> dict[str, Any]:
    """The recipe's constructor settings for ``data`` (none without a recipe)."""
    return dict((recipe_for(model, data) or Recipe()).params)


def train_settings(model: GenerativeModel, data: Dataset, *, has_val: bool,
                   quick: bool = False, **given: Any) -> dict[str, Any]:
    """The recipe's training settings for ``data``, overridden by ``given``.

    Early stopping needs validation data: without it the recipe's ``patience`` is dropped
    (a ``patience`` the caller gives is kept, and the trainer says what is missing).
    """
    recipe = recipe_for(model, data) or Recipe()
    settings = dict(recipe.train)
    if quick:
        settings.update(recipe.quick)
    if not has_val:
        settings.pop("patience", None)
    settings.update(given)
    return settings
