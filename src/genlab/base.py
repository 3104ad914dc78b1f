"""The one interface every genlab family speaks.

A generative model is a distribution you can fit, sample and, where the family allows, score:

* ``model.sample(n, y=None)`` draws ``n`` samples, shape ``(n, *event_shape)``;
* ``model.log_prob(x, y=None)`` returns one log-likelihood per sample, in nats, where the family
  has an exact one (histogram, Gaussian mixture, autoregressive, flow);
* ``model.log_prob_bound(x, y=None)`` returns a lower bound on it (diffusion);
* families with neither (GANs) raise :class:`~genlab.errors.IntractableLikelihood`.

Shapes follow ``torch.distributions``: batch dimensions first, then ``event_shape``.

Data conventions (one scale for every family):

* Continuous data are float tensors. ``log_prob`` is a log *density*.
* Discrete data (``num_levels`` set, e.g. 17 for digits) are float tensors holding integers in
  ``[0, num_levels)``. ``log_prob`` is then a log *probability mass* of those integers: exact for
  discrete families, and for continuous families the uniform-dequantization lower bound
  ``E_u[log p((x + u) / L)] - D log L`` (a one-sample estimate), so bits per dimension are
  comparable across families. ``sample`` always returns values in data space (integers for
  discrete data).

The public methods validate their input and call the private ones (``_log_prob``, ``_sample``)
that families implement. The constructor is the config: keyword-only arguments are recorded
automatically (see :attr:`GenerativeModel.config`) and saved as ``config.json``.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from genlab.conditioning import Conditions, canonical_kinds, check_conditions
from genlab.errors import (
    ConfigError,
    DataError,
    IntractableLikelihood,
    NoRepresentation,
    ShapeError,
)
from genlab.memory import check_sample_memory, sample_memory_errors
from genlab.recipes import Recipe
from genlab.settings import DATA_ARGUMENTS, SettingSpec, declared

if TYPE_CHECKING:
    from genlab.data.dataset import Dataset
    from genlab.train.callbacks import Callback

LossFn = Callable[[Tensor, "Tensor | None"], "tuple[Tensor, dict[str, float]]"]


@dataclass(frozen=True)
class ValidationMeasure:
    """What a family's ``validation_loss`` measures, as the trainer names it in the progress
    line, ``metrics.jsonl`` and the run summary.

    Attributes:
        key: ``metrics.jsonl`` key of the value in nats per dimension.
        bits_key: Key of the same value in bits per dimension.
        words: The unit in the run summary ("best val 1.78 bits/dim").
    """

    key: str = "val_nll"
    bits_key: str = "val_bpd"
    words: str = "bits/dim"


@dataclass
class Objective:
    """One loss the trainer minimises, with the parameters it updates.

    Likelihood models and diffusion return one objective; GANs return two (discriminator,
    then generator). The trainer runs the objectives in order each step, ``repeats`` times
    each, every repeat on a fresh batch, with one optimizer per objective.

    Attributes:
        name: Short name used in logs (``"nll"``, ``"discriminator"``, ``"generator"``).
        loss: ``loss(x, y) -> (scalar loss, logs)``; ``x`` has shape ``(b, *event_shape)``,
            ``y`` shape ``(b,)`` or None; ``logs`` maps names to floats for ``metrics.jsonl``.
        parameters: The parameters this objective's optimizer updates.
        lr: Learning rate; None uses the trainer's.
        betas: Adam betas; None uses the trainer's.
        repeats: Updates of this objective per training step (e.g. k discriminator steps).
    """

    name: str
    loss: LossFn
    parameters: Sequence[nn.Parameter]
    lr: float | None = None
    betas: tuple[float, float] | None = None
    repeats: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


def _check_data_arguments(config: dict[str, Any]) -> None:
    """``event_shape`` positive ints; ``num_classes`` >= 1 and ``num_levels`` >= 2 or None."""

    def size(value: Any, low: int) -> bool:  # an int a tensor dimension can hold; no bool
        return isinstance(value, numbers.Integral) and not isinstance(value, bool) \
            and low <= value < 2**31

    shape = config.get("event_shape", (1,))
    if not (isinstance(shape, (list, tuple)) and shape and all(size(s, 1) for s in shape)):
        raise ConfigError(
            f"Expected event_shape to be a sequence of positive ints, e.g. (2,), but found "
            f"{shape!r}."
        )
    for key, low in (("num_classes", 1), ("num_levels", 2)):
        value = config.get(key)
        if value is not None and not size(value, low):
            raise ConfigError(f"Expected {key} to be an int >= {low} or None, but found "
                              f"{value!r}.")


def _check_supported(cls: type, kinds: tuple[str, ...]) -> None:
    """Every kind in ``kinds`` is one the family declares in ``supported_conditions``."""
    unsupported = [k for k in kinds if k not in cls.supported_conditions]
    if unsupported:
        raise ConfigError(
            f"{cls.__name__} supports conditions {cls.supported_conditions}, but found "
            f"{', '.join(map(repr, unsupported))}."
        )


def _label_conditions(cls: type, conditions: Any, num_classes: Any) -> None:
    """Check ``conditions`` given to a label-only family: ``("label",)`` with
    ``num_classes``, or ``()``/None without; anything else names what the family takes."""
    kinds = canonical_kinds(conditions)
    _check_supported(cls, kinds)
    if conditions is not None and bool(kinds) != (num_classes is not None):
        raise ConfigError(f"Expected conditions ('label',) with num_classes and () without, "
                          f"but found conditions={kinds} and num_classes={num_classes!r}.")


def _resolve_conditions(cls: type, conditions: Sequence[str] | None,
                        num_classes: int | None, event_shape: tuple[int, ...]
                        ) -> tuple[str, ...]:
    """The model's condition kinds: ``conditions`` in canonical order, or ``("label",)`` when
    only ``num_classes`` is given."""
    if conditions is None:
        return ("label",) if num_classes is not None else ()
    kinds = canonical_kinds(conditions)
    _check_supported(cls, kinds)
    if ("label" in kinds) != (num_classes is not None):
        raise ConfigError(f"Expected num_classes exactly when 'label' is a condition, but "
                          f"found conditions={kinds} and num_classes={num_classes!r}.")
    if any(k not in ("label", "prompt") for k in kinds) and len(event_shape) != 3:
        raise ConfigError(f"Expected image data (C, H, W) for image conditions {kinds}, but "
                          f"found event_shape {event_shape}.")
    return kinds


def _jsonable(value: Any) -> Any:
    """Turn tuples and numpy scalars into plain JSON values (lists, ints, floats)."""
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


class GenerativeModel(nn.Module):
    """Base class of every genlab model.

    Subclasses set the capability flags, call ``super().__init__(event_shape=...,
    num_classes=..., num_levels=...)`` and implement ``_sample`` and, where defined,
    ``_log_prob`` or ``_log_prob_bound``. Likelihood models get a maximum-likelihood training
    objective for free; other families override :meth:`objectives`.

    Arguments:
        event_shape: Shape of one sample, e.g. ``(2,)`` for 2-D points, ``(1, 8, 8)`` for digits.
        num_classes: Number of class labels for a conditional model p(x | y); None for p(x).
        num_levels: Number of discrete levels for integer-valued data (17 for digits); None for
            continuous data.
    """

    name: ClassVar[str] = ""
    #: Tuned defaults per kind of data (``"points"``, ``"table"``, ``"images"``): what
    #: ``create(name, data=...)``, ``fit`` and ``genlab train`` use (:mod:`genlab.recipes`).
    recipes: ClassVar[dict[str, Recipe]] = {}
    #: ``log_prob`` is exact.
    has_exact_likelihood: ClassVar[bool] = True
    #: ``log_prob_bound`` gives a lower bound on the log-likelihood.
    has_likelihood_bound: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        signature = inspect.signature(init)
        cls._declared_init = init

        @functools.wraps(init)
        def recording_init(self: GenerativeModel, *args: Any, **kw: Any) -> None:
            # Validate against the declared settings and record the constructor arguments of
            # the outermost class only: that call is the config ``genlab.load`` rebuilds from.
            if "_config" not in self.__dict__:
                if "conditions" in kw and set(type(self).supported_conditions) <= {"label"}:
                    # a label-only family: conditions=("label",) is num_classes; not recorded
                    _label_conditions(type(self), kw.pop("conditions"), kw.get("num_classes"))
                try:
                    bound = signature.bind(self, *args, **kw)
                except TypeError as err:
                    unknown = [k for k in kw if k not in signature.parameters]
                    if unknown:
                        raise ConfigError(
                            f"{type(self).__name__} has no setting "
                            f"{', '.join(map(repr, unknown))}; its settings are: "
                            f"{', '.join(type(self).settings())}."
                        ) from None
                    raise ConfigError(f"{cls.__name__}: {err}.") from None
                bound.apply_defaults()
                config: dict[str, Any] = {}
                for key, value in bound.arguments.items():
                    if key == "self":
                        continue
                    if signature.parameters[key].kind is inspect.Parameter.VAR_KEYWORD:
                        config.update(value)  # settings passed on to a parent constructor
                    else:
                        config[key] = value
                _check_data_arguments(config)  # before a family's __init__ uses them
                if config.get("conditions") is not None:  # recorded in canonical order
                    config["conditions"] = canonical_kinds(config["conditions"])
                declared_settings = type(self).settings()
                for key, value in config.items():
                    if key in declared_settings:
                        declared_settings[key].check(value)
                    elif key not in DATA_ARGUMENTS:
                        raise ConfigError(
                            f"{type(self).__name__} has no setting {key!r}; its settings are: "
                            f"{', '.join(declared_settings)}."
                        )
                object.__setattr__(self, "_config", _jsonable(config))
            init(self, *args, **kw)

        cls.__init__ = recording_init  # type: ignore[method-assign]

    #: Condition kinds (:data:`~genlab.conditioning.CONDITION_KINDS`) the family can take.
    #: A family with more than ``("label",)`` takes a ``conditions`` constructor argument,
    #: passes it to this class, and receives :class:`~genlab.conditioning.Conditions` as y.
    supported_conditions: ClassVar[tuple[str, ...]] = ("label",)

    def __init__(
        self,
        *,
        event_shape: Sequence[int],
        num_classes: int | None = None,
        num_levels: int | None = None,
        conditions: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        try:
            shape = tuple(int(s) for s in event_shape)
        except (TypeError, ValueError):
            raise ConfigError(
                f"Expected event_shape to be a sequence of ints, but found {event_shape!r}."
            ) from None
        if not shape or any(s <= 0 for s in shape):
            raise ConfigError(
                f"Expected event_shape of positive sizes, e.g. (2,), but found {shape}."
            )
        if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
            raise ConfigError(f"Expected num_classes >= 1 or None, but found {num_classes!r}.")
        if num_levels is not None and (not isinstance(num_levels, int) or num_levels < 2):
            raise ConfigError(f"Expected num_levels >= 2 or None, but found {num_levels!r}.")
        self.event_shape: tuple[int, ...] = shape
        self.num_classes = num_classes
        self.num_levels = num_levels
        #: The kinds of condition y holds, canonical order; ``()`` for p(x).
        self.conditions: tuple[str, ...] = _resolve_conditions(
            type(self), conditions, num_classes, shape)

    # ------------------------------------------------------------------ declarations
    @classmethod
    def settings(cls) -> dict[str, SettingSpec]:
        """The constructor's declared settings (:mod:`genlab.settings`), data arguments
        (``event_shape``, ``num_classes``, ``num_levels``) left out."""
        out: dict[str, SettingSpec] = {}
        # A constructor that passes **kwargs on takes its parents' settings too.
        for klass in cls.__mro__:
            init = klass.__dict__.get("_declared_init")
            if init is None:
                continue
            for name, spec in declared(init, skip=DATA_ARGUMENTS).items():
                out.setdefault(name, spec)
            if not any(p.kind is inspect.Parameter.VAR_KEYWORD
                       for p in inspect.signature(init).parameters.values()):
                break
        return out

    @classmethod
    def sample_options(cls) -> dict[str, SettingSpec]:
        """The sampling options ``sample(..., **options)`` takes: the declared keyword
        arguments of the family's ``_sample`` (``temperature``, ``sampler``, ``steps``, ...)."""
        return declared(cls._sample, skip=("self", "n", "y", "generator"))

    @classmethod
    def encode_options(cls) -> dict[str, SettingSpec]:
        """The options ``encode(..., **options)`` takes: the declared keyword arguments of
        the family's ``_encode`` (e.g. diffusion's noise level ``t``)."""
        return declared(cls._encode, skip=("self", "x", "y"))

    # ------------------------------------------------------------------ config and state
    @property
    def config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-able; ``type(self)(**config)`` rebuilds the model."""
        return dict(self.__dict__.get("_config", {}))

    @property
    def conditional(self) -> bool:
        """Whether the model is p(x | y): over ``num_classes`` labels or other conditions."""
        return bool(self.conditions)

    @property
    def y_is_conditions(self) -> bool:
        """Whether y is a :class:`~genlab.conditioning.Conditions` (any condition besides a
        label); a label-only model takes labels ``(n,)`` as before."""
        return any(kind != "label" for kind in self.conditions)

    @property
    def optional_conditions(self) -> tuple[str, ...]:
        """Kinds the model can do without (trained with condition dropout): a y missing them
        marks them absent. None by default; families that drop conditions override it."""
        return ()

    @property
    def discrete(self) -> bool:
        """Whether the data are integers in ``[0, num_levels)``."""
        return self.num_levels is not None

    @property
    def event_dim(self) -> int:
        """Number of scalar dimensions D of one sample (product of ``event_shape``)."""
        return math.prod(self.event_shape)

    @property
    def device(self) -> torch.device:
        for tensor in self.parameters():
            return tensor.device
        for tensor in self.buffers():
            return tensor.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        for tensor in self.parameters():
            return tensor.dtype
        for tensor in self.buffers():
            if tensor.is_floating_point():
                return tensor.dtype
        return torch.get_default_dtype()

    # ------------------------------------------------------------------ validation
    def _check_x(self, x: Tensor | np.ndarray) -> tuple[Tensor, tuple[int, ...]]:
        """Validate ``x`` of shape ``(*batch, *event_shape)`` and flatten the batch dims.

        Returns:
            ``x`` as a float tensor of shape ``(n, *event_shape)`` on the model's device, and
            the batch shape to restore on the output.
        """
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(x)
        if not isinstance(x, Tensor):
            raise DataError(
                f"Expected x to be a torch.Tensor or numpy array, but found {type(x).__name__}."
            )
        if x.dtype == torch.bool or x.is_complex():
            raise DataError(f"Expected x of a real dtype (float or int), but found {x.dtype}.")
        k = len(self.event_shape)
        if x.dim() < k or tuple(x.shape[x.dim() - k :]) != self.event_shape:
            raise ShapeError(
                f"Expected x of shape (n, {', '.join(map(str, self.event_shape))}) for "
                f"{type(self).__name__}, but found {tuple(x.shape)}."
            )
        batch_shape = tuple(x.shape[: x.dim() - k])
        if x.numel() == 0:  # the families reshape to (n, -1), which an empty batch cannot do
            raise DataError(
                f"Expected at least one sample x for {type(self).__name__}, but found shape "
                f"{tuple(x.shape)}."
            )
        x = x.reshape(-1, *self.event_shape).to(device=self.device, dtype=self.dtype)
        if not torch.isfinite(x).all():
            raise DataError(f"Expected finite x for {type(self).__name__}, but found NaN or Inf.")
        if self.num_levels is not None:
            if (x != x.round()).any() or (x < 0).any() or (x >= self.num_levels).any():
                raise DataError(
                    f"Expected integer x in [0, {self.num_levels - 1}] for discrete data with "
                    f"num_levels={self.num_levels}, but found values in "
                    f"[{x.min().item():g}, {x.max().item():g}] or non-integers."
                )
        return x, batch_shape

    @staticmethod
    def _check_n(n: Any) -> int:
        """Validate a number of samples: a positive int (NumPy ints too)."""
        from genlab.checks import check_int

        return check_int("n", n, ge=1)

    def _check_y(self, y: Any, n: int) -> Tensor | Conditions | None:
        """Validate ``y`` for ``n`` samples: class labels, int64 ``(n,)``, or for a model with
        other conditions, :class:`~genlab.conditioning.Conditions` of n rows
        (:func:`~genlab.conditioning.check_conditions`)."""
        if self.y_is_conditions:
            return check_conditions(
                y, n, kinds=self.conditions, event_shape=self.event_shape,
                num_classes=self.num_classes, num_levels=self.num_levels,
                optional=self.optional_conditions, owner=type(self).__name__,
            ).to(self.device)
        if isinstance(y, Mapping) and self.num_classes is not None:
            extra = [k for k in y if k != "label"]
            if extra:
                raise DataError(f"Expected only a label for {type(self).__name__}, but found "
                                f"{', '.join(map(repr, extra))}.")
            y = y.get("label")
        if self.num_classes is None:
            if y is not None:
                raise DataError(
                    f"{type(self).__name__} is unconditional (num_classes=None) but y was given."
                )
            return None
        if y is None:
            raise DataError(
                f"{type(self).__name__} is conditional on {self.num_classes} classes: "
                "expected y (an int or a tensor of shape (n,)), but found None."
            )
        if isinstance(y, np.ndarray):
            y = torch.from_numpy(y)
        if isinstance(y, (int, np.integer)):
            y = torch.full((n,), int(y), dtype=torch.long)
        if not isinstance(y, Tensor):
            raise DataError(f"Expected y to be an int or tensor, but found {type(y).__name__}.")
        if y.is_floating_point() and (y != y.round()).any():
            raise DataError("Expected integer class labels y, but found fractional values.")
        y = y.reshape(-1).long().to(self.device)
        if y.numel() == 1 and n != 1:
            y = y.expand(n)
        if y.shape != (n,):
            raise ShapeError(f"Expected y of shape ({n},), but found {tuple(y.shape)}.")
        if (y < 0).any() or (y >= self.num_classes).any():
            raise DataError(
                f"Expected labels y in [0, {self.num_classes - 1}], but found values in "
                f"[{y.min().item()}, {y.max().item()}]."
            )
        return y

    def _check_options(self, method: str, declared_options: dict[str, SettingSpec],
                       options: dict[str, Any]) -> None:
        """Refuse options ``method`` does not declare; validate the given ones."""
        unknown = [k for k in options if k not in declared_options]
        if unknown:
            raise ConfigError(
                f"{type(self).__name__}.{method} does not take "
                f"{', '.join(map(repr, unknown))}; "
                f"it takes {', '.join(map(repr, declared_options)) or 'no options'}."
            )
        for name, value in options.items():
            declared_options[name].check(value)

    # ------------------------------------------------------------------ public interface
    def log_prob(self, x: Tensor | np.ndarray, y: Tensor | np.ndarray | int | None = None
                 ) -> Tensor:
        """Log-likelihood of each sample in nats (a log density, or a log mass for discrete data).

        Arguments:
            x: Data of shape ``(*batch, *event_shape)``.
            y: Class labels of shape ``batch`` (conditional models only); for a model with
                other conditions, a mapping of them for the flattened batch
                (:func:`~genlab.conditioning.check_conditions`).

        Returns:
            Tensor of shape ``batch``.

        Raises:
            ShapeError: ``x`` or ``y`` has the wrong shape.
            DataError: ``x`` has NaN/Inf or values outside the support; labels are missing.
            IntractableLikelihood: the family has no exact likelihood.
        """
        if not self.has_exact_likelihood:
            extra = " Use log_prob_bound for a lower bound." if self.has_likelihood_bound else ""
            raise IntractableLikelihood(
                f"{type(self).__name__} has no tractable likelihood.{extra}"
            )
        x, batch_shape = self._check_x(x)
        y = self._check_y(y, x.shape[0])
        return self._log_prob(x, y).reshape(batch_shape)

    def log_prob_bound(
        self, x: Tensor | np.ndarray, y: Tensor | np.ndarray | int | None = None
    ) -> Tensor:
        """A lower bound on the log-likelihood of each sample, in nats.

        Exact-likelihood families return the log-likelihood itself (the tightest bound).
        """
        if not self.has_likelihood_bound:
            return self.log_prob(x, y)
        x, batch_shape = self._check_x(x)
        y = self._check_y(y, x.shape[0])
        return self._log_prob_bound(x, y).reshape(batch_shape)

    def bits_per_dim(self, x: Tensor | np.ndarray, y: Tensor | np.ndarray | int | None = None
                     ) -> Tensor:
        """Negative log-likelihood (or its bound) per dimension in bits, one value per sample."""
        return -self.log_prob_bound(x, y) / (self.event_dim * math.log(2.0))

    def sample(
        self,
        n: int,
        y: Tensor | np.ndarray | int | None = None,
        *,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Tensor:
        """Draw ``n`` samples, shape ``(n, *event_shape)``, in data space.

        Arguments:
            n: Number of samples (positive int).
            y: Class labels, an int or a tensor of shape ``(n,)`` (conditional models only);
                for a model with other conditions, a mapping such as ``{"sketch": (1, 8, 8),
                "prompt": "a thin 3"}`` (:func:`~genlab.conditioning.check_conditions`).
            generator: Source of randomness; the same seeded generator gives the same samples.
            **options: Family-specific sampling options (``temperature``, ``sampler``,
                ``steps``, ``guidance``, ...); unknown ones raise ``ConfigError``.
        """
        n = self._check_n(n)
        check_sample_memory(self, n)  # before anything of size n is made (y too)
        y = self._check_y(y, n)
        self._check_options("sample", self.sample_options(), options)
        was_training = self.training
        if was_training:
            self.eval()
        try:
            with torch.no_grad(), sample_memory_errors(n):
                return self._sample(int(n), y, generator=generator, **options)
        finally:
            if was_training:
                self.train()

    def encode(self, x: Tensor | np.ndarray, y: Tensor | np.ndarray | int | None = None,
               **options: Any) -> Tensor:
        """A learned representation of each sample: features of shape ``(*batch, k)``.

        What the features are is the family's: a VAE's posterior mean, a flow's latent
        ``z = f^-1(x)``, an autoregressive model's hidden state, a GAN discriminator's
        penultimate layer, diffusion denoiser features at a chosen ``t``, an RBM's hidden
        probabilities. ``genlab probe`` fits a linear classifier on them.

        Arguments:
            x: Data of shape ``(*batch, *event_shape)``.
            y: Class labels, or a mapping of conditions (conditional models only).
            **options: The family's declared encoding options (:meth:`encode_options`).

        Raises:
            NoRepresentation: the family has no encoder (``has_encoder`` is False).
        """
        if not self.has_encoder:
            raise NoRepresentation(f"{type(self).__name__} has no learned representation.")
        self._check_options("encode", self.encode_options(), options)
        x, batch_shape = self._check_x(x)
        y = self._check_y(y, x.shape[0])
        was_training = self.training
        if was_training:
            self.eval()
        try:
            with torch.no_grad():
                features = self._encode(x, y, **options)  # (n, k)
        finally:
            if was_training:
                self.train()
        return features.reshape(*batch_shape, -1)

    def _encode(self, x: Tensor, y: Tensor | None) -> Tensor:
        """Features ``(n, k)`` of validated data ``x`` ``(n, *event_shape)``; families with
        ``has_encoder = True`` override it (declaring any options as keyword arguments)."""
        raise NoRepresentation(f"{type(self).__name__} has no learned representation.")

    def rsample(self, n: int, y: Tensor | np.ndarray | int | None = None, *,
                generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` reparameterised samples ``(n, *event_shape)``: differentiable in the
        parameters, as ``torch.distributions``' ``rsample``. Families with a
        reparameterisation (flows, the Gaussian families) override it.

        Raises:
            NotImplementedError: the family has none (its samples are discrete choices or
                come from a sampler without a gradient path).
        """
        raise NotImplementedError(
            f"{type(self).__name__} has no reparameterised sampler; use sample()."
        )

    # ------------------------------------------------------------------ for families
    def _log_prob(self, x: Tensor, y: Tensor | None) -> Tensor:
        raise IntractableLikelihood(f"{type(self).__name__} has no tractable likelihood.")

    def _log_prob_bound(self, x: Tensor, y: Tensor | None) -> Tensor:
        return self._log_prob(x, y)

    def _sample(self, n: int, y: Tensor | None, *, generator: torch.Generator | None) -> Tensor:
        raise NotImplementedError

    # ------------------------------------------------------------------ training hooks
    #: Whether ``genlab.fit`` fits this model in closed form (counting, EM) instead of by SGD.
    @property
    def closed_form(self) -> bool:
        return False

    def fit_closed_form(self, data: Dataset, *, val_data: Dataset | None = None
                        ) -> GenerativeModel:
        """Fit the model's state from data in closed form; returns ``self``."""
        raise NotImplementedError(f"{type(self).__name__} is trained by SGD, not in closed form.")

    def initialize(self, data: Dataset) -> None:
        """Data-dependent initialisation before the first training step (no-op by default).

        Called once by the trainer on a fresh run (not on resume). Use it for standardisation
        statistics, ActNorm, k-means++ centres; store the results in buffers so they are saved.
        """

    def training_loss(self, x: Tensor, y: Tensor | None) -> tuple[Tensor, dict[str, float]]:
        """Default objective: negative log-likelihood (or bound) in nats per dimension."""
        if self.has_exact_likelihood:
            lp = self._log_prob(x, y)
        elif self.has_likelihood_bound:
            lp = self._log_prob_bound(x, y)
        else:
            raise NotImplementedError(f"{type(self).__name__} must override objectives().")
        loss = -lp.mean() / self.event_dim
        return loss, {"nll": loss.item()}

    def objectives(self) -> list[Objective]:
        """The losses the trainer minimises, in order (one for likelihood models)."""
        return [Objective("nll", self.training_loss, list(self.parameters()))]

    def validation_loss(self, x: Tensor, y: Tensor | None) -> Tensor | None:
        """Per-sample validation loss in nats per dimension, or None if the family has none.

        The trainer averages it over the validation set for early stopping and reports it
        under the keys of :attr:`validation_measure` (``val_nll``, and ``val_bpd`` in bits,
        for the NLL or its bound).
        """
        if self.has_exact_likelihood:
            return -self._log_prob(x, y) / self.event_dim
        if self.has_likelihood_bound:
            return -self._log_prob_bound(x, y) / self.event_dim
        return None

    def callbacks(self) -> list[Callback]:
        """Family-specific training callbacks (e.g. GAN diagnostics); none by default."""
        return []

    # ------------------------------------------------------------------ capabilities
    #: ``autoregress(n, y, step)`` gives exact conditionals p(x_d | x_<d, y) in one fixed
    #: order, and ``conditional_probs(params)`` their probability tables: with discrete data
    #: (``num_levels`` set) that is what an entropy coder needs (``genlab compress``).
    has_ordered_conditionals: ClassVar[bool] = False
    #: ``encode(x)`` gives a learned representation (``_encode``): ``genlab probe``.
    has_encoder: ClassVar[bool] = False
    #: What :meth:`validation_loss` is, by name: the NLL per dimension (or its bound) unless
    #: the family declares another measure (an RBM's pseudo-likelihood).
    validation_measure: ClassVar[ValidationMeasure] = ValidationMeasure()

    @classmethod
    def figures(cls) -> dict[str, str]:
        """Pictures this family draws of a trained run, name -> one line of description
        (``genlab plot RUN --kind NAME``). Every model also gets the generic ones of
        :mod:`genlab.viz` (samples, density for 2-D data, training curves)."""
        return {}

    def plot(self, kind: str, run_dir: Path, out: Path) -> list[Path]:
        """Draw the family picture ``kind`` (one of :meth:`figures`) of the run in
        ``run_dir`` into ``out`` (a PNG path; a family may write several beside it);
        returns the paths written."""
        raise ConfigError(
            f"{type(self).__name__} draws no {kind!r}; it draws "
            f"{', '.join(map(repr, self.figures())) or 'no family pictures'}."
        )

    def extra_repr(self) -> str:
        parts = [f"event_shape={self.event_shape}"]
        if self.num_classes is not None:
            parts.append(f"num_classes={self.num_classes}")
        if self.num_levels is not None:
            parts.append(f"num_levels={self.num_levels}")
        if self.y_is_conditions:
            parts.append(f"conditions={self.conditions}")
        return ", ".join(parts)
