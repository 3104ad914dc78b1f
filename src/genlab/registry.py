"""Model registry: a name -> class map, so a model is rebuilt from ``config.json`` alone.

Families register with the :func:`register` class decorator; ``create(name, **config)`` builds
one. Registration happens when :mod:`genlab.models` is imported (``genlab`` does it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import torch

from genlab.allocations import build_model
from genlab.base import GenerativeModel
from genlab.checks import check_int, did_you_mean
from genlab.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    from genlab.data.dataset import Dataset

_REGISTRY: dict[str, type[GenerativeModel]] = {}

M = TypeVar("M", bound=type[GenerativeModel])


def register(name: str):
    """Class decorator: register a :class:`GenerativeModel` subclass under ``name``."""

    def decorate(cls: M) -> M:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"Model name {name!r} is already registered to {_REGISTRY[name]}.")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def available() -> list[str]:
    """Names of every registered model, sorted."""
    _ensure_loaded()
    return sorted(_REGISTRY)


def get(name: str) -> type[GenerativeModel]:
    """The class registered under ``name``; raises UnknownNameError with close matches."""
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownNameError(
            f"Unknown model {name!r}.{did_you_mean(name, _REGISTRY)} Known models: "
            f"{', '.join(sorted(_REGISTRY))}."
        ) from None


def create(name: str, *, data: Dataset | None = None, conditional: bool = False,
           seed: int | None = None, **config: Any) -> GenerativeModel:
    """Build the model registered under ``name`` from keyword arguments.

    Arguments:
        name: A registered model name (``genlab.available()``).
        data: Optional training data: fills ``event_shape``/``num_levels`` (and
            ``num_classes`` when ``conditional``) and the family's recipe for this kind of
            data (:mod:`genlab.recipes`); settings given in ``config`` win.
        conditional: With ``data``, build p(x | y) over the data's labels.
        seed: Seeds the random initial weights, so the same call gives the same model
            whatever ran before; the caller's global random stream is left as it was. None
            draws from the global stream.
        **config: Constructor settings.

    Example:
        >>> from genlab import create, load_data
        >>> model = create("histogram", event_shape=(2,), bins=8)
        >>> model.name
        'histogram'
        >>> create("pixelcnn", data=load_data("digits")).config["gated"]
        True
    """
    cls = get(name)
    if data is not None:
        from genlab.recipes import model_params

        config = {**data.model_kwargs(conditional=conditional), **model_params(cls, data),
                  **config}
    elif conditional:
        raise ConfigError("conditional=True needs data= (the labels to condition on).")
    # the base class checks every setting against its declaration; the sizes are checked
    # against free memory before anything is allocated
    if seed is None:
        return build_model(cls, config)
    seed = check_int("seed", seed, ge=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(cls, config)


def _ensure_loaded() -> None:
    import genlab.models  # noqa: F401  (registers every family)
