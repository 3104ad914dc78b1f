"""genlab: fit, sample, score and compare generative models, one interface for every family.

Example:
    >>> from genlab import load_data, create, fit
    >>> data = load_data("moons", n=1000)
    >>> model = fit(create("gmm", event_shape=data.event_shape, components=8), data)
    >>> model.sample(5).shape
    torch.Size([5, 2])
"""

__version__ = "0.1.0"

from genlab.base import GenerativeModel, Objective  # noqa: E402
from genlab.data import Dataset, load_data  # noqa: E402
from genlab.errors import (  # noqa: E402
    CheckpointError,
    ConfigError,
    DataError,
    GenlabError,
    IntractableLikelihood,
    NoRepresentation,
    NotFittedError,
    ShapeError,
    TrainingError,
    UnknownNameError,
)
from genlab.registry import available, create, register  # noqa: E402
from genlab.train import fit, load  # noqa: E402

__all__ = [
    "CheckpointError", "ConfigError", "DataError", "Dataset", "GenerativeModel", "GenlabError",
    "IntractableLikelihood", "NoRepresentation", "NotFittedError", "Objective", "ShapeError",
    "TrainingError", "UnknownNameError", "available", "create", "fit", "load", "load_data",
    "register",
]
