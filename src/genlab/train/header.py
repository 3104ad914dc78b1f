"""A run's ``config.json`` checked against its weights file before the model is allocated.

``load`` rebuilds a model from ``config.json`` and then reads its weights. A config edited by
hand (or copied from another run) may describe a model much larger than the weights: building
it first would allocate that model. The weights file's header (tensor names and shapes, read
without reading the tensors) is compared with the model the config describes while it is being
built (:func:`genlab.allocations.build_model`): before anything large is allocated, the first
tensor that differs is named.

Buffers whose shape depends on the data a model was fitted to (a histogram's table, say) may
differ in shape from a freshly built model's; only their names are compared, and the memory the
config asks for is compared with the size of the weights file.
"""

from __future__ import annotations

from pathlib import Path

from safetensors import SafetensorError, safe_open

from genlab.base import GenerativeModel
from genlab.errors import CheckpointError
from genlab.memory import format_bytes

#: A model may ask for this many times its weights file's size (buffers that are not saved,
#: temporaries) plus ``SLACK`` bytes while it is built; more means the config does not match.
ALLOWANCE = 4
SLACK = 64 * 2**20


def read_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in a safetensors file, from its header alone.

    Raises:
        CheckpointError: the file is missing, or its header is corrupt or truncated.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Expected weights at {str(path)!r}, but found none.")
    try:
        with safe_open(str(path), framework="pt") as f:
            return {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path} is corrupt or truncated: {err}") from None


def first_difference(model: GenerativeModel, shapes: dict[str, tuple[int, ...]],
                     *, buffers_too: bool = False) -> str | None:
    """The first tensor (in the model's order) that differs between ``model`` and a file's
    ``shapes``, in words; None when names and parameter shapes agree.

    Arguments:
        buffers_too: Compare the shapes of buffers as well.
    """
    params = {name for name, _ in model.named_parameters()}
    state = model.state_dict()
    for name, tensor in state.items():
        if name not in shapes:
            return f"tensor {name!r} missing from the file"
        if (name in params or buffers_too) and tuple(tensor.shape) != shapes[name]:
            return (f"tensor {name!r} of shape {tuple(tensor.shape)} where the file holds "
                    f"{shapes[name]}")
    extra = [name for name in shapes if name not in state]
    return f"tensor {extra[0]!r} in the file but not in the model" if extra else None


class ConfigCheck:
    """The model a run's ``config.json`` describes, checked against its weights file's header
    (an :class:`~genlab.allocations.Expectation` for :func:`~genlab.allocations.build_model`).

    Arguments:
        shapes: Name -> shape of the tensors in the weights file (:func:`read_shapes`).
        weights: The weights file.
        config: The config file (named in the errors).
    """

    def __init__(self, shapes: dict[str, tuple[int, ...]], weights: Path, config: Path) -> None:
        self.shapes, self.weights, self.config = shapes, weights, config
        self.size = weights.stat().st_size
        self.allowance = ALLOWANCE * self.size + SLACK
        # tensors a constructor may make (buffers that are not saved, temporaries)
        self.max_tensors = ALLOWANCE * len(shapes) + 1024

    def _error(self, found: str) -> CheckpointError:
        return CheckpointError(
            f"Expected {self.config} to describe the tensors of {self.weights}, but found "
            f"{found}; restore the run's config.json (was it edited, or copied from another "
            "run?)."
        )

    def check(self, model: GenerativeModel | None, nbytes: int) -> None:
        """Raise CheckpointError, naming the first tensor that differs, when the model does not
        match the file's header, or when it asks for far more memory than the file holds."""
        found = None if model is None else first_difference(model, self.shapes)
        if found is None and nbytes > self.allowance:
            differs = None if model is None else first_difference(model, self.shapes,
                                                                  buffers_too=True)
            found = (f"{differs or 'a model'} asking for {format_bytes(nbytes)}, over "
                     f"{ALLOWANCE} x the {format_bytes(self.size)} file")
        if found is not None:
            raise self._error(found)

    def too_many(self, count: int, nbytes: int) -> CheckpointError:
        """The error for a config whose model makes far more tensors than the file holds."""
        return self._error(f"a model making more than {count - 1} tensors "
                           f"({format_bytes(nbytes)} so far) where the file holds "
                           f"{len(self.shapes)}")
