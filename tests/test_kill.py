"""Training killed with SIGKILL at random moments, then resumed, ends with the bytes of a run
that was never interrupted.

Each kind of model (a flow, an autoregressive model, a GAN, diffusion) trains in a child
process that is killed with SIGKILL at random steps and random moments within them (drawn
from a seeded generator), mid-step or mid-checkpoint; a new child resumes the run each time,
and after the last kill one runs it to the end. The children fork from a server that has
imported genlab and trained each model once (``_kill_warm.py``), so a kill and a restart cost
milliseconds rather than an import.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import signal
import time
from pathlib import Path

import torch

from genlab import fit
from genlab.registry import create
from genlab.train.checkpoint import METRICS_FILE, TRAINER_STATE_FILE, WEIGHTS_FILE
from genlab.train.commit import PENDING, committed_path
from test_contract import make_data
from test_resume_all import no_gan_pictures

#: One model of each kind: (registry name, tiny configuration).
MODELS = [
    ("realnvp", {"event_shape": (2,), "transforms": 2, "width": 8, "depth": 1}),
    ("made", {"event_shape": (1, 8, 8), "num_levels": 17, "width": 16, "depth": 1}),
    ("gan", {"event_shape": (2,), "width": 8, "depth": 1, "latent_size": 3, "d_repeats": 2}),
    ("ddpm", {"event_shape": (2,), "num_timesteps": 20, "width": 16, "depth": 1}),
]
SETTINGS = dict(steps=24, batch_size=16, checkpoint_every=2, val_every=4, log_every=1,
                progress=False)
KILLS_PER_MODEL = 6


def train(name: str, config: dict, out: str) -> None:
    """The child: resume the run in ``out`` (or start it) and train to the end."""
    torch.set_num_threads(1)
    no_gan_pictures()
    data, val = make_data(config, seed=0), make_data(config, n=8, seed=1)
    fit(create(name, seed=0, **config), data, val_data=val, out=out, resume=True, **SETTINGS)


def _context(monkeypatch) -> mp.context.BaseContext:
    # The fork server is a new interpreter that imports its preload list before it applies
    # the parent's sys.path (Python 3.11), so the tests folder goes on its PYTHONPATH.
    here = str(Path(__file__).resolve().parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]))
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["test_kill", "_kill_warm"])
    return ctx


def _logged_step(run: Path) -> int:
    """The last step in the run's ``metrics.jsonl`` (0 before the first)."""
    try:
        lines = (run / METRICS_FILE).read_bytes().splitlines()
        return int(json.loads(lines[-1])["step"]) if lines else 0
    except (OSError, ValueError, KeyError):  # not there yet, or a line half written
        return 0


def _run(ctx, name, config, out, kill_at=None) -> bool:
    """Run the child; with ``kill_at=(step, seconds)``, SIGKILL it that long after it logs
    that step. True if it was killed."""
    child = ctx.Process(target=train, args=(name, config, str(out)))
    child.start()
    if kill_at is not None:
        while child.is_alive() and _logged_step(out) < kill_at[0]:
            time.sleep(0.002)
        time.sleep(kill_at[1])
    else:
        child.join()
    killed = child.is_alive()
    if killed:
        os.kill(child.pid, signal.SIGKILL)
        child.join()
    else:
        assert child.exitcode == 0, f"{name}: the child failed with exit code {child.exitcode}"
    return killed


def _step(run: Path) -> int:
    """The step of the run's last committed checkpoint (0 before the first)."""
    path = committed_path(run, TRAINER_STATE_FILE)
    return int(torch.load(path, weights_only=True)["step"]) if path.is_file() else 0


def test_sigkill_and_resume_give_the_uninterrupted_bytes(tmp_path, monkeypatch):
    ctx = _context(monkeypatch)
    _run(ctx, "realnvp", MODELS[0][1], tmp_path / "warm-up")  # starts the fork server
    rng = random.Random(0)
    kills, mid_commit, steps = 0, 0, []
    for name, config in MODELS:
        reference = tmp_path / f"{name}-whole"
        start = time.perf_counter()
        _run(ctx, name, config, reference)
        duration = time.perf_counter() - start
        run = tmp_path / f"{name}-killed"
        # Random steps, two apart at least (the log may hold one step past the checkpoint
        # until the resumed child trims it), and a random moment within each.
        targets = sorted(rng.sample(range(2, SETTINGS["steps"], 2), KILLS_PER_MODEL))
        for step in targets:
            jitter = rng.uniform(0, duration / SETTINGS["steps"])
            if _run(ctx, name, config, run, kill_at=(step, jitter)):
                kills += 1
                mid_commit += (run / PENDING).exists()
                steps.append(_step(run))
        _run(ctx, name, config, run)
        files = {p.name for p in reference.glob("*.safetensors")}
        assert files == {p.name for p in run.glob("*.safetensors")} and WEIGHTS_FILE in files
        for file in files:
            assert (reference / file).read_bytes() == (run / file).read_bytes(), (name, file)
    print(f"{kills} kills, {mid_commit} inside a checkpoint commit, after steps {steps}")
    assert kills >= 20
