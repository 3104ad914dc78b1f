"""Data-parallel training: 2 processes at global batch B equal 1 process at batch B."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from _toy_models import DiagGaussian
from genlab import Dataset, fit


def _data():
    g = torch.Generator().manual_seed(0)
    return Dataset(x=torch.randn(256, 2, generator=g) * 2 + 1, name="toy")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    try:
        model = fit(DiagGaussian(), _data(), steps=15, batch_size=64, lr=0.05, clip_grad=1.0,
                    progress=False)
        if rank == 0:
            torch.save({"loc": model.loc.detach(), "log_scale": model.log_scale.detach()}, out)
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not built in")
def test_two_processes_match_one(tmp_path):
    out = str(tmp_path / "ddp.pt")
    mp.spawn(_worker, args=(2, _free_port(), out), nprocs=2, join=True)
    ddp = torch.load(out, weights_only=True)
    single = fit(DiagGaussian(), _data(), steps=15, batch_size=64, lr=0.05, clip_grad=1.0,
                 progress=False)
    # Same updates up to float32 rounding of a sum split in two halves (a few ulps per step).
    assert torch.allclose(ddp["loc"], single.loc.detach(), atol=1e-5)
    assert torch.allclose(ddp["log_scale"], single.log_scale.detach(), atol=1e-5)
