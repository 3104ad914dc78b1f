"""Random draws from a generator on any device, delivered on the device asked for.

PyTorch draws with a ``torch.Generator`` only on that generator's own device: a CPU generator
passed to ``torch.randn(..., device="cuda")`` raises. genlab's families take a ``generator=``
from the caller and a model may sit on any device, so every random draw of sampling and
training goes through these functions. Each has the signature of the torch function it is
named after and:

* draws with ``generator`` on the generator's device and moves the result to ``device``
  (or to the input's device, for :func:`multinomial` and :func:`bernoulli`), so a seeded CPU
  generator gives the same numbers whatever device the model is on;
* calls torch exactly as before when the devices already agree (or no generator is given), so
  seeded results on one device are the same bytes as a direct call.

Drawing on another device costs one copy of the draw (and, for :func:`multinomial` and
:func:`bernoulli`, one copy of the probabilities): small next to a network's forward pass.

Example:
    >>> import torch
    >>> from genlab import rand
    >>> g = torch.Generator().manual_seed(0)
    >>> x = rand.randn(2, 3, generator=g, device="meta")  # drawn on the CPU, then moved
    >>> x.device.type, tuple(x.shape)
    ('meta', (2, 3))
    >>> torch.equal(rand.randn(4, generator=torch.Generator().manual_seed(1)),
    ...             torch.randn(4, generator=torch.Generator().manual_seed(1)))
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = ["bernoulli", "multinomial", "rand", "randint", "randn", "randperm"]

Device = torch.device | str | int | None


def _resolved(device: torch.device) -> torch.device:
    # "cuda" without an index is the current CUDA device; the generator's device has one.
    if device.type == "cuda" and device.index is None and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return device


def same_device(a: torch.device, b: torch.device) -> bool:
    """Whether ``a`` and ``b`` name the same device (``cuda`` = the current CUDA device)."""
    return _resolved(a) == _resolved(b)


def _factory(fn: Callable[..., Tensor], args: tuple[Any, ...],
             generator: torch.Generator | None, device: Device, **kwargs: Any) -> Tensor:
    """``fn(*args, ...)`` drawn with ``generator`` on its device, returned on ``device``."""
    target = torch.get_default_device() if device is None else torch.device(device)
    if generator is None or same_device(generator.device, target):
        return fn(*args, generator=generator, device=target, **kwargs)
    return fn(*args, generator=generator, device=generator.device, **kwargs).to(target)


def randn(*size: Any, generator: torch.Generator | None = None, device: Device = None,
          dtype: torch.dtype | None = None) -> Tensor:
    """Standard normal draws of shape ``size``, as :func:`torch.randn`."""
    return _factory(torch.randn, size, generator, device, dtype=dtype)


def rand(*size: Any, generator: torch.Generator | None = None, device: Device = None,
         dtype: torch.dtype | None = None) -> Tensor:
    """Uniform draws on ``[0, 1)`` of shape ``size``, as :func:`torch.rand`."""
    return _factory(torch.rand, size, generator, device, dtype=dtype)


def randint(*args: Any, generator: torch.Generator | None = None, device: Device = None,
            dtype: torch.dtype | None = None) -> Tensor:
    """Integers drawn uniformly, as :func:`torch.randint` (``(high, size)`` or
    ``(low, high, size)``)."""
    kwargs = {} if dtype is None else {"dtype": dtype}
    return _factory(torch.randint, args, generator, device, **kwargs)


def randperm(n: int, *, generator: torch.Generator | None = None, device: Device = None,
             dtype: torch.dtype = torch.int64) -> Tensor:
    """A random permutation of ``0 .. n-1``, as :func:`torch.randperm`."""
    return _factory(torch.randperm, (n,), generator, device, dtype=dtype)


def _from_input(fn: Callable[..., Tensor], input: Tensor, args: tuple[Any, ...],
                generator: torch.Generator | None) -> Tensor:
    """``fn(input, *args)`` drawn with ``generator`` on its device, returned on
    ``input``'s."""
    if generator is None or same_device(generator.device, input.device):
        return fn(input, *args, generator=generator)
    return fn(input.to(generator.device), *args, generator=generator).to(input.device)


def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *,
                generator: torch.Generator | None = None) -> Tensor:
    """Indices drawn from the rows of ``input`` (weights), as :func:`torch.multinomial`."""
    return _from_input(torch.multinomial, input, (num_samples, replacement), generator)


def bernoulli(input: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """0/1 draws with probabilities ``input``, as :func:`torch.bernoulli`."""
    return _from_input(torch.bernoulli, input, (), generator)
