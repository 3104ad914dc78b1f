"""The :class:`Dataset` every loader returns and every model and metric consumes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from genlab.conditioning import Conditions
from genlab.errors import DataError, ShapeError

#: The splits every loader knows; ``"all"`` is the three together.
SPLITS = ("train", "val", "test", "all")


@dataclass
class Dataset:
    """Samples ``x`` (and optional labels ``y``) with what a model needs to know about them.

    Attributes:
        x: Float tensor of shape ``(n, *event_shape)``. For discrete data it holds integers in
            ``[0, num_levels)``.
        y: Int64 class labels of shape ``(n,)``, a :class:`~genlab.conditioning.Conditions`
            of n rows (sketches, prompts, ... and maybe labels), or None.
        kind: ``"continuous"`` or ``"discrete"``.
        num_levels: Number of discrete levels (17 for digits), None for continuous data.
        num_classes: Number of classes when ``y`` holds labels, else None.
        name: Data-set name (``"moons"``, ``"digits"``, a file path).
        split: ``"train"``, ``"val"``, ``"test"`` or ``"all"``.
        info: Extra JSON-able facts (standardisation statistics, mode centres, seed, ...).
    """

    x: Tensor
    y: Tensor | Conditions | None = None
    kind: Literal["continuous", "discrete"] = "continuous"
    num_levels: int | None = None
    num_classes: int | None = None
    name: str = "data"
    split: str = "all"
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.x, Tensor):
            raise DataError(f"Expected x to be a torch.Tensor, but found {type(self.x).__name__}.")
        if self.x.dim() < 2:
            raise ShapeError(
                f"Expected x of shape (n, *event_shape) with at least 2 dims, but found "
                f"{tuple(self.x.shape)}."
            )
        self.x = self.x.float()
        if not torch.isfinite(self.x).all():
            raise DataError(f"Data set {self.name!r} has NaN or Inf values.")
        if self.kind not in ("continuous", "discrete"):
            raise DataError(f"Expected kind 'continuous' or 'discrete', but found {self.kind!r}.")
        if self.kind == "discrete":
            if self.num_levels is None:
                raise DataError("Discrete data need num_levels.")
            x = self.x
            if (x != x.round()).any() or (x < 0).any() or (x >= self.num_levels).any():
                raise DataError(
                    f"Discrete data set {self.name!r} must hold integers in "
                    f"[0, {self.num_levels - 1}]."
                )
        if isinstance(self.y, Conditions):
            if self.y.n != self.x.shape[0]:
                raise ShapeError(f"Expected conditions of {self.x.shape[0]} rows, but found "
                                 f"{self.y.n}.")
            if "label" in self.y.kinds and self.num_classes is None:
                self.num_classes = int(self.y["label"].max().item()) + 1 if self.y.n else 0
        elif self.y is not None:
            if self.y.shape != (self.x.shape[0],):
                raise ShapeError(
                    f"Expected y of shape ({self.x.shape[0]},), but found {tuple(self.y.shape)}."
                )
            self.y = self.y.long()
            if self.num_classes is None:
                self.num_classes = int(self.y.max().item()) + 1 if len(self.y) else 0

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def event_shape(self) -> tuple[int, ...]:
        """Shape of one sample."""
        return tuple(self.x.shape[1:])

    @property
    def event_dim(self) -> int:
        """Number of scalar dimensions per sample."""
        return math.prod(self.event_shape)

    @property
    def conditions(self) -> tuple[str, ...]:
        """The condition kinds ``y`` holds: those of a Conditions, ``("label",)`` for labels,
        ``()`` without y."""
        if isinstance(self.y, Conditions):
            return self.y.kinds
        return ("label",) if self.y is not None else ()

    def labels(self) -> Dataset:
        """This data set with ``y`` the class labels alone (from a Conditions' ``"label"``),
        for label-only models."""
        if not isinstance(self.y, Conditions):
            return self
        y = self.y["label"] if "label" in self.y.kinds else None
        return Dataset(x=self.x, y=y, kind=self.kind, num_levels=self.num_levels,
                       num_classes=self.num_classes if y is not None else None,
                       name=self.name, split=self.split, info=dict(self.info))

    def model_kwargs(self, conditional: bool = False) -> dict[str, Any]:
        """Constructor arguments that describe this data to a model.

        A data set whose ``y`` is a :class:`~genlab.conditioning.Conditions` always gives
        its ``conditions`` (and ``num_classes`` when they hold labels); ``conditional``
        matters for plain labels only.

        Example:
            >>> from genlab import load_data, create
            >>> data = load_data("digits")
            >>> data.model_kwargs()
            {'event_shape': (1, 8, 8), 'num_levels': 17}
        """
        kwargs: dict[str, Any] = {"event_shape": self.event_shape}
        if self.kind == "discrete":
            kwargs["num_levels"] = self.num_levels
        if isinstance(self.y, Conditions):
            kwargs["conditions"] = self.y.kinds
            if "label" in self.y.kinds:
                kwargs["num_classes"] = self.num_classes
        elif conditional:
            if self.num_classes is None:
                raise DataError(f"Data set {self.name!r} has no labels to condition on.")
            kwargs["num_classes"] = self.num_classes
        return kwargs

    def describe(self) -> dict[str, Any]:
        """JSON-able description stored in a run's ``config.json``."""
        out = {
            "name": self.name,
            "split": self.split,
            "n": len(self),
            "kind": self.kind,
            "event_shape": list(self.event_shape),
            "num_levels": self.num_levels,
            "num_classes": self.num_classes,
            "info": self.info,
        }
        if isinstance(self.y, Conditions):
            out["conditions"] = list(self.conditions)
        return out

    def subset(self, index: Tensor | slice) -> Dataset:
        """A data set with the selected rows (same metadata)."""
        return Dataset(
            x=self.x[index],
            y=None if self.y is None else self.y[index],
            kind=self.kind,
            num_levels=self.num_levels,
            num_classes=self.num_classes,
            name=self.name,
            split=self.split,
            info=dict(self.info),
        )
