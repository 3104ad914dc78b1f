"""Training data: the check that a data set fits the model, and the batches drawn from it."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor

from genlab import rand
from genlab.base import GenerativeModel
from genlab.data.dataset import Dataset
from genlab.errors import DataError


class BatchSampler:
    """Random batches without replacement within an epoch; its state makes resume exact.

    Arguments:
        n: Number of samples in the data set.
        batch_size: Indices per batch (at most ``n``).
        seed: Seeds the sampler's own generator, so the data order does not depend on the
            global RNG that the model's training noise draws from.

    Example:
        >>> sampler = BatchSampler(10, batch_size=4, seed=0)
        >>> sampler.next().shape
        torch.Size([4])
    """

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n = n
        self.batch_size = min(batch_size, n)
        self.generator = torch.Generator().manual_seed(seed)
        self.order = rand.randperm(n, generator=self.generator)
        self.position = 0
        self.epoch = 0

    def next(self) -> Tensor:
        """The indices of the next batch, shape ``(batch_size,)``; a new epoch reshuffles
        (the remainder of an epoch that does not fill a batch is skipped)."""
        if self.position + self.batch_size > self.n:
            self.order = rand.randperm(self.n, generator=self.generator)
            self.position = 0
            self.epoch += 1
        index = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return index

    def state_dict(self) -> dict[str, Any]:
        """Generator state, epoch order and position: all a resume needs."""
        return {
            "generator": self.generator.get_state(),
            "order": self.order.clone(),
            "position": torch.tensor(self.position),
            "epoch": torch.tensor(self.epoch),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.generator.set_state(state["generator"])
        self.order = state["order"].clone()
        self.position = int(state["position"])
        self.epoch = int(state["epoch"])


def check_data(model: GenerativeModel, data: Dataset, what: str) -> None:
    """Raise DataError unless ``data`` fits ``model``: event shape, discrete levels, labels.

    Arguments:
        model: The model to be fitted.
        data: The data set.
        what: ``"training"`` or ``"validation"``, for the message.

    Raises:
        DataError: ``data`` is not a :class:`Dataset`, or its shape, levels or labels do not
            match the model. Discrete data for a continuous model only warn.
    """
    name = type(model).__name__
    if not isinstance(data, Dataset):
        raise DataError(
            f"Expected {what} data as a genlab Dataset, but found {type(data).__name__}."
        )
    if data.event_shape != model.event_shape:
        raise DataError(
            f"Expected {what} data of event shape {model.event_shape} for {name}, "
            f"but found {data.event_shape}."
        )
    if model.discrete and data.kind != "discrete":
        raise DataError(
            f"{name} was built for discrete data (num_levels={model.num_levels}) but the "
            f"{what} data are continuous."
        )
    if model.discrete and data.num_levels != model.num_levels:
        raise DataError(
            f"Expected {what} data with num_levels={model.num_levels}, "
            f"but found {data.num_levels}."
        )
    if not model.discrete and data.kind == "discrete":
        warnings.warn(
            f"{name} was built for continuous data (num_levels=None) but the {what} data are "
            "discrete; pass num_levels to get honest discrete likelihoods.",
            stacklevel=3,
        )
    if "label" in model.conditions and "label" not in data.conditions:
        raise DataError(f"{name} is conditional but the {what} data have no labels.")
    missing = [k for k in model.conditions if k not in data.conditions]
    if model.y_is_conditions and missing:
        raise DataError(f"Expected {what} data with conditions {model.conditions} for {name}, "
                        f"but found {data.conditions}.")
    if model.conditional and data.num_classes is not None \
            and data.num_classes > model.num_classes:
        raise DataError(
            f"Expected {what} labels in [0, {model.num_classes - 1}], "
            f"but the data have {data.num_classes} classes."
        )


def model_data(model: GenerativeModel, data: Dataset, what: str) -> Dataset:
    """``data`` checked (:func:`check_data`) in the form ``model`` reads ``y``: a label-only
    model gets the labels of a data set whose ``y`` is a Conditions."""
    check_data(model, data, what)
    return data if model.y_is_conditions else data.labels()
