"""Memory: how much a request needs, compared with what the device has, before torch allocates.

A huge but well-typed size (``model.sample(10**12)``, ``create("realnvp", width=2**40)``) is a
valid request for more memory than the machine has. Left to torch, it either fails with the
allocator's ``RuntimeError`` or, on a system that overcommits memory, succeeds on paper and
then exhausts the machine while the tensors are written. genlab checks first:

* :func:`check_fits` compares a request's size with the free memory of its device
  (:func:`check_sample_memory`: the samples' own size);
* :func:`out_of_memory_as` turns an allocator failure that still happens (activations while
  sampling, say) into a :class:`~genlab.errors.ResourceError` at the API boundary.

Building a model is checked by :mod:`genlab.allocations`.

Example:
    >>> format_bytes(3 * 2**40)
    '3.0 TiB'
    >>> from genlab.errors import ResourceError
    >>> try:
    ...     check_fits(2**80, "cpu", "a yottabyte", "ask for less")
    ... except ResourceError as err:
    ...     print(str(err).split(", but ")[1])
    found 1.0 YiB needed; ask for less.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING

import torch

from genlab.errors import ResourceError

if TYPE_CHECKING:
    from genlab.base import GenerativeModel

__all__ = ["OUT_OF_MEMORY", "check_fits", "check_sample_memory", "format_bytes", "free_bytes",
           "is_out_of_memory", "out_of_memory_as", "sample_memory_errors"]

# How torch words a failed allocation: CUDA ("CUDA out of memory"), CPU ("DefaultCPUAllocator:
# can't allocate memory ... Error code 12 (Cannot allocate memory)").
OUT_OF_MEMORY = ("out of memory", "can't allocate memory", "cannot allocate memory")


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is a failed allocation (``MemoryError`` or torch's allocator error)."""
    return isinstance(err, MemoryError) or (
        isinstance(err, RuntimeError) and any(w in str(err).lower() for w in OUT_OF_MEMORY))


def format_bytes(n: int | float) -> str:
    """``n`` bytes in binary units: ``"512 B"``, ``"3.0 KiB"``, ``"16.0 TiB"``."""
    if n < 1024:
        return f"{int(n)} B"
    units = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
    power = min(int(math.log(n, 1024)), len(units))
    return f"{n / 1024**power:.1f} {units[power - 1]}"


def free_bytes(device: torch.device | str) -> int | None:
    """Memory that ``device`` can still give: CUDA's free memory, the system's available
    memory for the CPU; None where it is not known (``meta``, other systems)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    try:  # Linux: what can be allocated without swapping, page cache included
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_fits(nbytes: int, device: torch.device | str, what: str, hint: str) -> None:
    """Raise ResourceError when ``nbytes`` exceed the free memory of ``device``.

    Raises:
        ResourceError: "Expected WHAT to fit in the N of free memory on DEVICE, but found it
            needs M; HINT."
    """
    free = free_bytes(device)
    if free is not None and nbytes > free:
        raise ResourceError(
            f"Expected {what} to fit in the {format_bytes(free)} of free memory on "
            f"{torch.device(device)}, but found {format_bytes(nbytes)} needed; {hint}."
        )


@contextmanager
def out_of_memory_as(what: str, hint: str) -> Iterator[None]:
    """Inside the block, a failed allocation raises ResourceError (one line, with ``hint``)."""
    try:
        yield
    except (MemoryError, RuntimeError) as err:
        if isinstance(err, ResourceError) or not is_out_of_memory(err):
            raise
        reason = " ".join(str(err).split())[:160] or type(err).__name__
        raise ResourceError(
            f"Expected {what} to fit in memory, but found the allocator refusing ({reason}); "
            f"{hint}."
        ) from None


SAMPLES_HINT = "draw fewer samples at a time (lower n)"


def check_sample_memory(model: GenerativeModel, n: int) -> None:
    """Refuse ``n`` samples whose output alone, ``(n, *event_shape)``, exceeds the free memory
    of the model's device (sampling needs more: its networks' activations).

    Raises:
        ResourceError: they do not fit.
    """
    nbytes = n * model.event_dim * model.dtype.itemsize
    check_fits(nbytes, model.device, f"{n} samples of shape {tuple(model.event_shape)}",
               SAMPLES_HINT)


def sample_memory_errors(n: int) -> AbstractContextManager[None]:
    """Inside the block, a failed allocation while drawing ``n`` samples is a ResourceError."""
    return out_of_memory_as(f"{n} samples", SAMPLES_HINT)
