"""Data-parallel training across processes (``torchrun``), with one rule: N processes at
global batch B give the same updates as one process at batch B, up to float rounding.

Every process draws the same global batch (same seed, same sampler) and keeps its own slice
of it; its loss is the mean over that slice, and the gradients are averaged across processes
before the optimizer step. With equal slices (B divisible by N) the average of slice means is
the global mean, so the update is the single-process update. Objectives that draw their own
noise (diffusion time steps, GAN latents) or use batch statistics (batch norm) see different
noise or statistics per process; their runs agree in distribution, not bit for bit.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import torch
import torch.distributed as dist
from torch import Tensor

from genlab.errors import ConfigError


def setup() -> tuple[int, int]:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    Returns:
        ``(rank, world_size)``; ``(0, 1)`` outside distributed runs.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not dist.is_available():
        return 0, 1
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


def device_for(device: str, rank: int = 0) -> torch.device:
    """This process's torch device for the ``device`` setting.

    ``"auto"`` is CUDA where there is one, else the CPU; in a distributed run ``"cuda"`` is
    this process's own GPU (``LOCAL_RANK``).

    Raises:
        ConfigError: CUDA was asked for but is not available.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and dist.is_initialized():
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', rank))}"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r} was asked for, but CUDA is not available.")
    return torch.device(device)


def shard(index: Tensor, rank: int, world: int) -> Tensor:
    """This process's contiguous slice of a global batch of indices."""
    if world == 1:
        return index
    if len(index) % world:
        raise ConfigError(
            f"Expected a batch size divisible by the {world} processes, but found {len(index)}."
        )
    size = len(index) // world
    return index[rank * size : (rank + 1) * size]


def average_gradients(params: Iterable[torch.nn.Parameter], world: int) -> None:
    """Replace each gradient by its mean over processes (one flat all-reduce)."""
    if world == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def mean_scalar(value: float, world: int) -> float:
    """Mean of a Python float over processes (for logging)."""
    if world == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.item() / world


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()
