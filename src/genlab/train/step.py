"""One optimizer update of one objective: its micro-batches, mixed precision, and the numbers
that every process agrees on (the loss and gradient norm that the NaN guard checks).

The process's slice of the batch is cut into ``accumulate`` micro-batches; each runs its
forward pass in its shard's random stream (:mod:`genlab.train.streams`) and adds ``1 /
accumulate`` of its gradient. Under DDP only the last micro-batch all-reduces (``no_sync``
before it), so the averaged gradient is the same, whatever mix of processes and accumulation
makes up the batch. The loss and the family's logs are averaged over micro-batches and then
over processes; the gradient norm is taken after the all-reduce, so it is the same everywhere
and every process takes the same decision when it is not finite.
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from genlab.train import distributed
from genlab.train.streams import ShardStreams


@dataclass
class Update:
    """What one objective update computed (identical on every process).

    Attributes:
        loss: Mean loss over the whole batch.
        logs: The objective's logs, averaged the same way.
        grad_norm: Global gradient norm before clipping.
    """

    loss: float
    logs: dict[str, float]
    grad_norm: float

    @property
    def finite(self) -> bool:
        return math.isfinite(self.loss) and math.isfinite(self.grad_norm)


def autocast(device: torch.device, precision: str) -> AbstractContextManager[object]:
    """The forward pass's precision: bf16 autocast (CPU or CUDA) or plain fp32."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


def compute_update(
    module: nn.Module,
    params: list[nn.Parameter],
    x: Tensor,
    y: Tensor | None,
    *,
    accumulate: int,
    streams: ShardStreams,
    precision: str,
    clip_grad: float | None,
    world: int,
) -> Update:
    """Forward and backward over ``x`` ``(b, *event_shape)`` (this process's slice), leaving
    the averaged, clipped gradient in ``params``; the caller steps the optimizer.

    Arguments:
        module: The objective's module (:func:`distributed.wrap`).
        params: The objective's trainable parameters.
        x: This process's slice of the batch; ``b`` divisible by ``accumulate``.
        y: Its labels ``(b,)`` or None.
        accumulate: Micro-batches.
        streams: This process's shard streams.
        precision: ``"fp32"`` or ``"bf16"``.
        clip_grad: Global norm to clip to, or None.
        world: Number of processes.
    """
    xs = x.chunk(accumulate)
    ys = [None] * accumulate if y is None else y.chunk(accumulate)
    device = x.device
    total = torch.zeros((), dtype=torch.float64, device=device)
    sums: dict[str, float] = {}
    for a in range(accumulate):
        last = a == accumulate - 1
        sync = module.no_sync() if world > 1 and not last else nullcontext()
        with sync:
            with streams.use(a), autocast(device, precision):
                loss, extra = module(xs[a], ys[a])
            loss = loss.float()
            (loss / accumulate).backward()
        total += loss.detach().double()
        for key, value in extra.items():
            sums[key] = sums.get(key, 0.0) + float(value)
    values = {"loss": total.item() / accumulate, **{k: v / accumulate for k, v in sums.items()}}
    values = distributed.mean_over_processes(values, world)
    if clip_grad is None:  # the norm alone: scaling every gradient by 1 would cost a pass
        grads = [p.grad for p in params if p.grad is not None]
        norm = torch.nn.utils.get_total_norm(grads, foreach=True)
    else:
        norm = torch.nn.utils.clip_grad_norm_(params, clip_grad, foreach=True)
    loss_value = values.pop("loss")
    return Update(loss=loss_value, logs=values, grad_norm=norm.item())
