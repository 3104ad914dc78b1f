"""Building a model within memory: its size is counted before its tensors are allocated.

A model's parameters and buffers are tensors made from sizes (``torch.empty``, ``zeros``,
``randn``, ...) in its constructor. :class:`AllocationBudget` watches a block of code and adds
up the bytes of each such tensor *before* it is made; it can refuse the one that passes a
limit, or make it on PyTorch's ``meta`` device (shape and dtype, no memory) instead.

:func:`build_model` builds a model twice: first a trial in which every large tensor is made
on ``meta`` (so a request for terabytes costs nothing and is refused with its size), then, if
the trial's total fits in free memory, the real model. The trial is also where a run folder's
``config.json`` is compared with its weights file before anything is allocated
(:func:`genlab.train.checkpoint.load`). The trial draws from a forked random stream, so the
real model's initial weights are what a single build would give. Small models (the common
case) skip the trial: they are built once, and checked as they are built.

Example:
    >>> import torch
    >>> from genlab.errors import ResourceError
    >>> def refuse(needed: int) -> Exception:
    ...     return ResourceError(f"Expected at most 1 KiB, but found {format_bytes(needed)}.")
    >>> with AllocationBudget(1024, refuse) as budget:
    ...     small = torch.zeros(16)
    >>> budget.used
    64
    >>> try:
    ...     with AllocationBudget(1024, refuse):
    ...         big = torch.empty(2**40, 2)  # refused before torch allocates it
    ... except ResourceError as err:
    ...     print(err)
    Expected at most 1 KiB, but found 8.0 TiB.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch.overrides import TorchFunctionMode

from genlab.errors import GenlabError, ResourceError
from genlab.memory import format_bytes, free_bytes, out_of_memory_as

if TYPE_CHECKING:
    from genlab.base import GenerativeModel

__all__ = ["AllocationBudget", "Expectation", "build_model", "trial_build"]

#: In a trial build, a tensor of this size or more is made on ``meta`` ...
TRIAL_META_FROM = 16 * 2**20
#: ... and so is every tensor once the trial holds this much real memory.
TRIAL_REAL_UP_TO = 64 * 2**20


class Expectation(Protocol):
    """What a caller knows of a model before it is built (``load``: its weights' header)."""

    #: Tensors the constructor may make before it is stopped (``too_many``).
    max_tensors: int

    def check(self, model: GenerativeModel | None, nbytes: int) -> None:
        """Raise when ``model`` (None: its constructor could not run on shapes alone), whose
        tensors take ``nbytes``, is not the one expected; called before it is allocated."""

    def too_many(self, count: int, nbytes: int) -> Exception:
        """The error for a constructor that makes more than ``max_tensors`` tensors."""


class AllocationBudget(TorchFunctionMode):
    """Count the bytes of tensors made from sizes inside the block; refuse the one that would
    take the total past ``limit``.

    Counted: ``torch.empty``, ``zeros``, ``ones``, ``full``, ``rand``, ``randn``, ``randint``,
    ``randperm``, ``arange``, ``linspace``, ``logspace``, ``eye`` and ``Tensor.new_empty``,
    ``new_zeros``, ``new_ones``, ``new_full``. Results of operations on existing tensors are
    not counted, and neither are frees: the total bounds what the block keeps from above.

    Arguments:
        limit: Bytes the block may ask for (``math.inf``: count only).
        refuse: Builds the exception raised for the tensor that passes ``limit``, from the
            total bytes asked for with it.
        large_from: A tensor of this many bytes or more is refused (whatever the total).
        meta_from: A tensor of this many bytes or more is made on ``meta`` (shape only).
        real_up_to: Once this many bytes were really allocated, every further tensor is made
            on ``meta``.
        expect: Stops the block, with ``expect.too_many``, at its ``max_tensors + 1``-th
            tensor.

    Attributes:
        used: Bytes asked for so far (real and ``meta`` tensors).
        real: Bytes really allocated so far.
        count: Tensors made so far.
    """

    def __init__(self, limit: float, refuse: Callable[[int], Exception], *,
                 large_from: float = math.inf, meta_from: float = math.inf,
                 real_up_to: float = math.inf, expect: Expectation | None = None) -> None:
        super().__init__()
        self.limit, self.refuse, self.large_from = limit, refuse, large_from
        self.meta_from, self.real_up_to, self.expect = meta_from, real_up_to, expect
        self.used = self.real = self.count = 0

    def __torch_function__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        nbytes = _requested(func, args, kwargs) if func in _COUNTED else None
        if nbytes is None:
            return func(*args, **kwargs)
        if self.used + nbytes > self.limit or nbytes >= self.large_from:
            raise self.refuse(self.used + nbytes)
        self.used += nbytes
        self.count += 1
        if self.expect is not None and self.count > self.expect.max_tensors:
            raise self.expect.too_many(self.count, self.used)
        if nbytes >= self.meta_from or self.real + nbytes > self.real_up_to:
            return _on_meta(func, args, kwargs)
        self.real += nbytes
        return func(*args, **kwargs)


def trial_build(cls: type[GenerativeModel], config: dict[str, Any],
                budget: AllocationBudget) -> GenerativeModel | None:
    """``cls(**config)`` with its large tensors on ``meta``, inside ``budget``.

    The trial draws from a forked random stream and shows no warnings (the real build does).

    Returns:
        The trial model (for its shapes only), or None when the constructor cannot run on
        tensors without values (it reads a large tensor's values); ``budget.used`` holds the
        bytes asked for up to that point.

    Raises:
        GenlabError: the settings are invalid, or ``budget`` refused a tensor.
    """
    device = torch.get_default_device()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with budget:
                return cls(**config)
        except GenlabError:
            raise
        except Exception:  # noqa: BLE001 - the real build reports the constructor's errors
            return None


class _Large(Exception):
    """A first build met a large tensor: the model is built again after a trial."""


def _rng_devices() -> list[torch.device]:
    device = torch.get_default_device()
    return [device] if device.type == "cuda" else []


def build_model(cls: type[GenerativeModel], config: dict[str, Any], *,
                expect: Expectation | None = None) -> GenerativeModel:
    """``cls(**config)``, built only once its tensors are known to fit in free memory.

    A model whose tensors are small (each under 16 MiB, 64 MiB in all) is built at once. When
    the constructor asks for more, that build stops before the large tensor, the random stream
    is put back, a trial build (:func:`trial_build`) counts every tensor without allocating the
    large ones, and the model is built for real if they fit.

    Arguments:
        cls: A model class.
        config: Its settings.
        expect: What the model should be; its ``check`` runs before anything large is
            allocated, on a model of the right shapes (the model itself when it is small, else
            the trial's, whose size is then not limited to free memory so that the check sees
            the whole model).

    Raises:
        ResourceError: the model's tensors do not fit in the free memory of the default
            device (refused before anything large is allocated), or the allocator failed.
    """
    device = torch.get_default_device()
    free = free_bytes(device)
    limit = math.inf if free is None else free
    hint = _size_hint(cls, config)

    def refuse(needed: int) -> ResourceError:
        return ResourceError(
            f"Expected the tensors of {cls.__name__} to fit in the {format_bytes(free or 0)} "
            f"of free memory on {device}, but found {format_bytes(needed)} asked for while "
            f"building it; {hint}."
        )

    what = f"the tensors of {cls.__name__}"
    streams = [torch.get_rng_state()] + [torch.cuda.get_rng_state(d) for d in _rng_devices()]
    small = AllocationBudget(TRIAL_REAL_UP_TO, _Large, large_from=TRIAL_META_FROM,
                             expect=expect)
    try:
        with out_of_memory_as(what, hint), small:
            model = cls(**config)
        if expect is not None:
            expect.check(model, small.used)
        return model
    except _Large:
        pass
    torch.set_rng_state(streams[0])
    for d, state in zip(_rng_devices(), streams[1:], strict=True):
        torch.cuda.set_rng_state(state, d)
    trial = AllocationBudget(limit if expect is None else math.inf, refuse,
                             meta_from=TRIAL_META_FROM, real_up_to=TRIAL_REAL_UP_TO,
                             expect=expect)
    model = trial_build(cls, config, trial)
    if expect is not None:
        expect.check(model, trial.used)
    del model
    if trial.used > limit:  # a model as expected, but larger than free memory
        raise refuse(trial.used)
    with out_of_memory_as(what, hint), AllocationBudget(limit, refuse):
        return cls(**config)


def _size_hint(cls: type, config: dict[str, Any]) -> str:
    """Which settings to lower: the largest integers given."""
    sizes = sorted(((v, k) for k, v in config.items()
                    if isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 1),
                   reverse=True)[:2]
    given = ", ".join(f"{k}={v}" for v, k in sizes)
    name = getattr(cls, "name", None) or cls.__name__
    return f"lower its sizes ({given + '; ' if given else ''}see `genlab list {name}`)"


# ------------------------------------------------------------------ tensors made from sizes
_FROM_SIZE = {torch.empty, torch.zeros, torch.ones, torch.rand, torch.randn}
_NEW = {torch.Tensor.new_empty, torch.Tensor.new_zeros, torch.Tensor.new_ones,
        torch.Tensor.new_full}
_COUNTED = frozenset({*_FROM_SIZE, *_NEW, torch.full, torch.randint, torch.randperm,
                      torch.arange, torch.linspace, torch.logspace, torch.eye})


def _numel(size: Any) -> int | None:
    """Elements of a tensor of ``size`` (ints, or one sequence of ints); None if not sizes."""
    if len(size) == 1 and isinstance(size[0], Sequence):
        size = size[0]
    if not all(isinstance(s, numbers.Integral) for s in size):
        return None
    return math.prod(max(int(s), 0) for s in size)


def _size_arg(args: tuple, kwargs: dict[str, Any]) -> tuple:
    # torch.randint(high, size) / (low, high, size): the size is the last positional
    return (args[-1] if args and isinstance(args[-1], Sequence) else kwargs.get("size", ()),)


def _arange_numel(args: tuple, kwargs: dict[str, Any]) -> int | None:
    bounds = [*args, *(kwargs[k] for k in ("start", "end", "step") if k in kwargs)]
    if not 1 <= len(bounds) <= 3 or not all(isinstance(b, numbers.Real) for b in bounds):
        return None
    start, end, step = ([0, *bounds, 1] if len(bounds) == 1 else [*bounds, 1])[:3]
    return max(math.ceil((end - start) / step), 0) if step else None


def _requested(func: Any, args: tuple, kwargs: dict[str, Any]) -> int | None:
    """Bytes that ``func(*args, **kwargs)`` will allocate when it makes a tensor from a size;
    None for every other call (and for tensors made on ``meta``)."""
    device = kwargs.get("device")
    if device is not None and torch.device(device).type == "meta":
        return None
    dtype = kwargs.get("dtype")
    if func in _FROM_SIZE:
        numel = _numel(args or (kwargs.get("size", ()),))
    elif func is torch.full:
        numel = _numel((args[0] if args else kwargs.get("size", ()),))
    elif func is torch.randint or func is torch.randperm:
        numel = _numel(_size_arg(args, kwargs) if func is torch.randint else args[:1])
        dtype = dtype or torch.int64
    elif func is torch.arange:
        numel = _arange_numel(args, kwargs)
        if all(isinstance(a, numbers.Integral) for a in args):
            dtype = dtype or torch.int64
    elif func is torch.linspace or func is torch.logspace:
        numel = _numel(args[2:3] or (kwargs.get("steps", 0),))
    elif func is torch.eye:
        sizes = [*args[:2], *(kwargs[k] for k in ("n", "m") if k in kwargs)]
        numel = _numel((sizes * 2)[:2]) if sizes else None
    elif func in _NEW:
        numel = _numel((args[1],)) if len(args) > 1 else None
        dtype = dtype or args[0].dtype
    else:
        return None
    return None if numel is None else numel * (dtype or torch.get_default_dtype()).itemsize


def _on_meta(func: Any, args: tuple, kwargs: dict[str, Any]) -> torch.Tensor:
    """The tensor ``func(*args, **kwargs)`` would make, on ``meta``: shape and dtype only.
    Random draws become ``empty`` (their values would be dropped, and torch's meta kernels
    for them take seconds to load)."""
    if func in _NEW:
        return func(args[0].to("meta"), *args[1:], **kwargs)
    grad = kwargs.get("requires_grad", False)
    if func is torch.rand or func is torch.randn:
        return torch.empty(*(args or (kwargs["size"],)), dtype=kwargs.get("dtype"),
                           device="meta", requires_grad=grad)
    if func is torch.randint or func is torch.randperm:
        size = _size_arg(args, kwargs)[0] if func is torch.randint else args[0]
        return torch.empty(size, dtype=kwargs.get("dtype") or torch.int64, device="meta")
    return func(*args, **{**kwargs, "device": "meta"})
