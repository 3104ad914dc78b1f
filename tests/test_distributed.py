"""Data-parallel training under real ``torchrun`` (gloo, CPU): 2 processes at global batch B
give the weights of 1 process at batch B cut into the same 2 shards (``accumulate=2``).

One ``torchrun --nproc_per_node=2`` launch runs this file as its worker script and trains one
model of each kind in turn: a likelihood model (RealNVP), a GAN (two objectives, two DDP
wrappers, alternating updates, an R1 penalty that differentiates through a gradient) and
diffusion with EMA (noise drawn per shard). It also
interrupts a diffusion run and resumes it on both processes: the shard streams come back from
the checkpoint and the resumed run ends bit for bit where the uninterrupted one does. And it
validates sharded: each process scores its own block of 7 validation batches (3 and 4, the
last one short), for a flow on discrete data (its dequantization noise drawn per batch) and
diffusion (a bound), directly and inside a training run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch.distributed.run import main as torchrun

from genlab import Dataset, create, fit
from genlab.train import Callback
from genlab.train.validation import validation_nll

HERE = Path(__file__).resolve().parent
#: (registry name, constructor settings, training settings): one model of each kind.
MODELS = {
    "likelihood": ("realnvp", {"event_shape": (2,), "transforms": 2, "width": 8, "depth": 1},
                   {}),
    "gan": ("gan", {"event_shape": (2,), "width": 8, "depth": 1, "latent_size": 3,
                    "d_repeats": 2, "r1_weight": 1.0}, {}),
    "diffusion": ("ddpm", {"event_shape": (2,), "num_timesteps": 20, "width": 16, "depth": 1},
                  {"ema_decay": 0.9}),
}
COMMON = dict(steps=6, batch_size=32, lr=1e-2, clip_grad=1.0, keep="last", progress=False)


def _data() -> Dataset:
    g = torch.Generator().manual_seed(0)
    return Dataset(x=torch.randn(256, 2, generator=g) * torch.tensor([2.0, 0.5]) + 1.0,
                   name="toy")


def _train(kind: str, **settings) -> dict[str, torch.Tensor]:
    name, params, train = MODELS[kind]
    model = create(name, seed=1, **params)
    fit(model, _data(), **COMMON, **train, **settings)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _val_data(num_levels: int | None = None, rows: slice = slice(None)) -> Dataset:
    """101 samples (7 batches of 16, the last one of 5); integers in [0, 5) when discrete."""
    g = torch.Generator().manual_seed(2)
    if num_levels is None:
        return Dataset(x=torch.randn(101, 2, generator=g)[rows], name="toy-val")
    return Dataset(x=torch.randint(0, num_levels, (101, 2), generator=g)[rows].float(),
                   name="toy-val", kind="discrete", num_levels=num_levels)


#: A flow on discrete data: its validation dequantizes with uniform noise.
DISCRETE_FLOW = {"event_shape": (2,), "num_levels": 5, "transforms": 2, "width": 8, "depth": 1}


def _validations(rank: int, world: int, rows: slice = slice(None)) -> dict[str, float]:
    """Validation NLL of an initial discrete flow and diffusion model (bounds with noise),
    shared among ``world`` processes."""
    models = {"flow": (create("realnvp", seed=1, **DISCRETE_FLOW), _val_data(5, rows)),
              "diffusion": (create("ddpm", seed=1, **MODELS["diffusion"][1]),
                            _val_data(None, rows))}
    return {kind: validation_nll(model.eval(), data, batch_size=16,
                                 device=torch.device("cpu"), rank=rank, world=world)
            for kind, (model, data) in models.items()}


class _Vals(Callback):
    def __init__(self):
        self.values = []

    def on_validation_end(self, trainer, step, logs):
        self.values.append(logs["val_nll"])


def _validated_run(**settings) -> list[float]:
    """The validation NLLs of a short diffusion run (every 2 steps)."""
    name, params, train = MODELS["diffusion"]
    vals = _Vals()
    fit(create(name, seed=1, **params), _data(), val_data=_val_data(), val_every=2,
        val_batch_size=16, callbacks=[vals], **COMMON, **train, **settings)
    return vals.values


class _Stop(Callback):
    def on_step_end(self, trainer, step, logs):
        if step == 3:
            raise KeyboardInterrupt


def _worker(out: Path) -> None:
    """What each ``torchrun`` process runs; process 0 saves what the test compares."""
    torch.set_num_threads(1)
    results = {kind: _train(kind) for kind in MODELS}
    name, params, train = MODELS["diffusion"]
    folder = out.parent / "resumed"
    try:
        fit(create(name, seed=1, **params), _data(), out=folder, callbacks=[_Stop()],
            **COMMON, **train)
    except KeyboardInterrupt:
        pass
    model = fit(create(name, seed=1, **params), _data(), out=folder, resume=True,
                **COMMON, **train)
    results["resumed"] = model.state_dict()
    results["validation"] = _validations(dist.get_rank(), dist.get_world_size())
    results["validated run"] = _validated_run()
    if dist.get_rank() == 0:
        torch.save(results, out)
    dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not built in")
def test_torchrun_two_processes_match_one(tmp_path, monkeypatch):
    out = tmp_path / "ddp.pt"
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    monkeypatch.setenv("PYTHONPATH", path)
    # torchrun's own entry point, run in this process (its launcher then starts the two
    # workers as processes of their own, with the rendezvous of a real launch).
    torchrun(["--standalone", "--nproc_per_node=2", "--max_restarts=0",
              str(Path(__file__).resolve()), str(out)])
    ddp = torch.load(out, weights_only=True)
    for kind in MODELS:
        single = _train(kind, accumulate=2)
        assert ddp[kind].keys() == single.keys()
        for key, value in single.items():
            # The same sums in another order: float32 rounding, a few ulps per step; Adam's
            # normalised steps keep it at that scale over 6 steps.
            assert torch.allclose(ddp[kind][key], value, rtol=1e-4, atol=1e-5), (kind, key)
        # The runs moved: equal weights are not equal initial weights.
        init = create(MODELS[kind][0], seed=1, **MODELS[kind][1]).state_dict()
        assert any(not torch.equal(init[k], v) for k, v in single.items() if k in init)
    # Interrupted at step 3 and resumed on both processes: bit for bit the uninterrupted run.
    for key, value in ddp["diffusion"].items():
        assert torch.equal(ddp["resumed"][key], value), key
    # Validation shared among processes: the same batches, summed in float64 in another order.
    single = _validations(rank=0, world=1)
    blocks = _validations(0, 1, slice(0, 48)), _validations(0, 1, slice(48, None))
    for kind, value in single.items():
        assert ddp["validation"][kind] == pytest.approx(value, rel=1e-12, abs=0), kind
        # the blocks (48 and 53 samples) are weighed by their sizes, not averaged
        unweighted = (blocks[0][kind] + blocks[1][kind]) / 2
        assert abs(unweighted - value) > 1e-6 * abs(value), kind
    # inside training: the run of one process with the same shards validates the same
    one = _validated_run(accumulate=2)
    assert len(one) == 3
    assert ddp["validated run"] == pytest.approx(one, rel=1e-5)


def test_one_process_accumulating_equals_one_big_batch():
    """Without noise in the objective, cutting a batch into micro-batches changes nothing but
    float rounding."""
    whole = _train("likelihood")
    cut = _train("likelihood", accumulate=4)
    for key, value in whole.items():
        assert torch.allclose(cut[key], value, rtol=1e-4, atol=1e-5), key


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
