"""Data-parallel training under ``torchrun`` with PyTorch's DistributedDataParallel (DDP).

The rule: N processes at global batch B give the same updates as one process at batch B
accumulating N micro-batches (``accumulate=N``), up to float rounding. Every process draws the
same global batch (same seed, same sampler), keeps its own contiguous slice (:func:`shard`),
and draws its noise from its shard's own random stream (:mod:`genlab.train.streams`); DDP
averages the gradients. With equal slices the average of slice means is the global mean.

How the objectives meet DDP. A model hands the trainer several objectives (a GAN: the
discriminator, then the generator), each updating only its own parameters, and an objective's
loss may run parts of the model that it does not update (the generator's loss runs the
discriminator). DDP reduces the gradients of the module it wraps, so each objective gets its
own wrapper, :class:`ObjectiveModule`, whose parameters are exactly the objective's and whose
``forward`` is the objective's loss. Gradients that reach other parameters (the
discriminator's, in the generator's step) are neither reduced nor used: the trainer zeroes
every gradient before each objective, and DDP's hooks on those parameters stay idle because
their own wrapper is not running a forward pass. A loss may call networks several times
(real and fake batches, a gradient penalty): DDP sees one forward per backward, the wrapper's.
An objective's loss must reach every parameter the objective lists (the contract suite
checks this for every registered model), so DDP needs no search for unused parameters; a family
that breaks the rule gets DDP's error at its second step. The wrappers hold no buffers: the
model's buffers (batch-norm statistics, counters) are each process's own, and process 0's are
saved.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from genlab.base import Objective
from genlab.errors import ConfigError


def setup(device: str = "cpu") -> tuple[int, int]:
    """Join the process group that ``torchrun`` describes in the environment, if any: NCCL
    for CUDA training, gloo for the CPU.

    Returns:
        ``(rank, world_size)``; ``(0, 1)`` outside distributed runs.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not dist.is_available():
        return 0, 1
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda and torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
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


class ObjectiveModule(nn.Module):
    """One objective as a module: its trainable parameters, and its loss as ``forward``.

    This is what DDP wraps (one per objective), so that DDP reduces the gradients of exactly
    the parameters this objective's optimizer updates. The parameters stay the model's own
    (shared, not copied).
    """

    def __init__(self, objective: Objective) -> None:
        super().__init__()
        self.params = nn.ParameterList([p for p in objective.parameters if p.requires_grad])
        self.loss = objective.loss

    def forward(self, x: Tensor, y: Tensor | None) -> tuple[Tensor, dict[str, float]]:
        return self.loss(x, y)


def wrap(objective: Objective, world: int, device: torch.device) -> nn.Module:
    """The module that computes ``objective``'s loss: DDP-wrapped when ``world > 1``."""
    module = ObjectiveModule(objective)
    if world == 1:
        return module
    return DistributedDataParallel(
        module, device_ids=[device.index] if device.type == "cuda" else None)


def sum_over_processes(values: list[float], world: int) -> list[float]:
    """Each value summed over processes, in float64 (one all-reduce; every process must pass
    as many values)."""
    if world == 1 or not values:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def mean_over_processes(values: dict[str, float], world: int) -> dict[str, float]:
    """Each value averaged over processes (one all-reduce; every process must pass the same
    keys in the same order)."""
    sums = sum_over_processes(list(values.values()), world)
    return dict(zip(values, (s / world for s in sums), strict=True))


def all_gather(obj: Any, world: int) -> list[Any]:
    """Every process's ``obj``, in rank order (``[obj]`` alone)."""
    if world == 1:
        return [obj]
    out: list[Any] = [None] * world
    dist.all_gather_object(out, obj)
    return out


def barrier(world: int) -> None:
    """Wait for every process (a no-op alone)."""
    if world > 1:
        dist.barrier()
