"""Flows side by side with zuko, nflows and normflows on 2-D data, plus digits bits/dim.

Like for like: RealNVP vs RealNVP, NSF vs NSF, MAF vs MAF, each built in every library with
the same layers, conditioner sizes and bins (:mod:`_flow_peers`), Adam at a constant lr 1e-3,
batch 256, the same steps, the same batches and the same seed. genlab trains THROUGH
``genlab.fit`` (``schedule="constant"``); after each of its steps a callback runs one step of
every peer's plain loop on the very batch the trainer drew (a copy of its sampler), so machine
load hits all of them alike. genlab's step time is the trainer's whole step (batch, loss,
backward, gradient norm, Adam, schedule, logging), from the end of one callback to the next.

What a user gets: genlab's NSF recipe through ``fit`` (validation, early stopping, cosine lr)
against zuko's and nflows' README flows and optimizers, at equal wall time: after each genlab
step every peer steps until its own training time catches up with genlab's.

Excess NLL: test NLL minus the true density's entropy, per point (the 2-D sets' densities are
known, genlab.data.toy2d_density), with its standard error over the test points. genlab's best
flow is picked by validation NLL among its rows and a few stronger settings.

    OMP_NUM_THREADS=1 python bench/bench_flows.py [--quick]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
import torch

from _flow_peers import (
    ARCHS,
    Contender,
    genlab_flow,
    peer_flows,
    peer_versions,
    plain_loop_genlab,
    user_contenders,
    wrap_genlab,
)
from _report import Report, common_arguments
from genlab import create, fit, load_data
from genlab.data.toy2d_density import log_density
from genlab.models.flows import Glow, RealNVP
from genlab.train.callbacks import Callback
from genlab.train.sampler import BatchSampler

LR, BATCH = 1e-3, 256
# Points drawn in the sampling-time column and repeats (the best is kept); --quick shrinks them.
SAMPLING = {"n": 10_000, "repeats": 3}
TIMED_STEPS = 200  # steps of the timing-only 'genlab model, plain loop' row
DATASETS = ("8gaussians", "checkerboard")
# Stronger genlab settings at equal steps, tried against the validation split (never test).
CANDIDATES = {
    "nsf 16 bins, cosine lr": ("nsf", {"bins": 16}, {"schedule": "cosine"}),
    "nsf 32 bins, cosine lr": ("nsf", {"bins": 32}, {"schedule": "cosine"}),
}


class Lockstep(Callback):
    """After each step of ``genlab.fit``, one step of every peer on the trainer's own batch.

    With ``equal_time`` each peer instead steps (on fresh batches of its own) until its
    training time reaches genlab's, counted through ``fit`` (validation included).
    """

    def __init__(self, peers: list[Contender], x: torch.Tensor, seed: int, *,
                 equal_time: bool = False) -> None:
        self.peers, self.x, self.equal_time = peers, x, equal_time
        self.sampler = BatchSampler(len(x), BATCH, seed + 1)  # the trainer's stream
        self.rng = np.random.default_rng(seed)
        self.fit_times: list[float] = []
        self.last = time.perf_counter()

    def on_train_start(self, trainer) -> None:
        self.last = time.perf_counter()

    def on_step_end(self, trainer, step: int, logs: dict) -> None:
        self.fit_times.append(time.perf_counter() - self.last)
        batch = self.x[self.sampler.next()]
        for c in self.peers:
            if not self.equal_time:
                c.step(batch)
                continue
            while sum(c.step_times) < sum(self.fit_times):
                c.step(self.x[torch.from_numpy(self.rng.integers(0, len(self.x), c.batch))])
        self.last = time.perf_counter()


def evaluate(c: Contender, name: str, test: torch.Tensor, val: torch.Tensor) -> dict:
    """Test excess NLL (mean, SE), validation NLL and time to draw SAMPLING['n'] points."""
    c.module.eval()
    row = {"library": c.library, "params": c.params, "diverged": c.diverged,
           "step_ms": 1e3 * statistics.median(c.step_times[10:] or c.step_times),
           "steps": c.steps}
    if c.max_steps is not None:  # timed only, not trained to the end
        return dict(row, excess=None, excess_se=None, val_nll=None, sample_ms=None)
    with torch.no_grad():
        nll = torch.cat([c.nll(b) for b in test.split(1000)])
        excess = nll + log_density(name, test)  # -log q(x) + log p(x), per point
        val_nll = torch.cat([c.nll(b) for b in val.split(1000)]).mean().item()
        times = []
        for _ in range(SAMPLING["repeats"]):
            t0 = time.perf_counter()
            c.sample(SAMPLING["n"])
            times.append(time.perf_counter() - t0)
    finite = torch.isfinite(excess)
    kept = excess[finite]
    row.update(excess=kept.mean().item() if finite.any() else math.nan,
               excess_se=kept.std().item() / math.sqrt(max(int(finite.sum()), 2)),
               nonfinite=int((~finite).sum()), val_nll=val_nll, sample_ms=1e3 * min(times))
    return row


def train_genlab(model, data, peers, seed, *, equal_time=False, **settings) -> Contender:
    lock = Lockstep(peers, data.x, seed, equal_time=equal_time)
    fit(model, data, seed=seed, progress=False, callbacks=[lock], **settings)
    c = wrap_genlab(model)
    c.step_times, c.steps = lock.fit_times, len(lock.fit_times)
    return c


def overhead_text(name: str, rows: list[dict]) -> str:
    """The trainer's own cost per step: fit's step minus the same model's in a plain loop,
    both over the first steps (the plain-loop row is timed over those only)."""
    parts = []
    for arch in ARCHS:
        g = next(r for r in rows if r["flow"] == arch and r["library"] == "genlab")
        p = next(r for r in rows if r["flow"] == arch and r["library"].endswith("plain loop"))
        parts.append(f"{arch} {g['first_ms']:.2f} ms through fit vs {p['step_ms']:.2f} ms in "
                     f"the plain loop ({g['first_ms'] - p['step_ms']:+.2f} ms)")
    return (f"{name}, median step over steps 10 to {TIMED_STEPS} with the same fused Adam: "
            + "; ".join(parts) + ".")


def like_for_like(name: str, arch: str, steps: int, seed: int) -> list[dict]:
    data = load_data(name, split="train", seed=seed)
    test, val = (load_data(name, split=s, seed=seed).x for s in ("test", "val"))
    peers = [*peer_flows(arch, seed), plain_loop_genlab(arch, seed, min(TIMED_STEPS, steps))]
    torch.manual_seed(seed)
    model = genlab_flow(arch)
    ours = train_genlab(model, data, peers, seed, steps=steps, batch_size=BATCH, lr=LR,
                        schedule="constant")
    rows = [dict(evaluate(c, name, test, val), flow=arch) for c in (ours, *peers)]
    rows[0]["first_ms"] = 1e3 * statistics.median(ours.step_times[10:TIMED_STEPS])
    for r in rows:
        print(f"  {name} {arch} {r['library']}: excess {r['excess'] or math.nan:.4f}, "
              f"step {r['step_ms']:.1f} ms", flush=True)
    return rows


def candidate(name: str, label: str, steps: int, seed: int) -> dict:
    arch, params, train = CANDIDATES[label]
    data = load_data(name, split="train", seed=seed)
    test, val = (load_data(name, split=s, seed=seed).x for s in ("test", "val"))
    torch.manual_seed(seed)
    ours = train_genlab(genlab_flow(arch, **params), data, [], seed, steps=steps,
                        batch_size=BATCH, lr=LR, **train)
    return dict(evaluate(ours, name, test, val), flow=label)


def user_run(name: str, seed: int, steps: int) -> list[dict]:
    data = load_data(name, split="train", seed=seed)
    val_data = load_data(name, split="val", seed=seed)
    test = load_data(name, split="test", seed=seed).x
    torch.manual_seed(seed)
    peers = user_contenders()
    model = create("nsf", data=data, seed=seed)
    ours = train_genlab(model, data, peers, seed, equal_time=True, val_data=val_data,
                        steps=steps)
    labels = ["genlab nsf recipe", "zuko README NSF", "nflows README MAF"]
    return [dict(evaluate(c, name, test, val_data.x), flow=f)
            for c, f in zip((ours, *peers), labels, strict=True)]


def digits_bits(report: Report, steps: int, seed: int) -> None:
    train, val, test = (load_data("digits", split=s) for s in ("train", "val", "test"))
    rows = []
    for label, make in (
        ("realnvp", lambda: RealNVP(event_shape=(1, 8, 8), num_levels=17, transforms=6,
                                    width=32, depth=2)),
        ("glow", lambda: Glow(event_shape=(1, 8, 8), num_levels=17, scales=2, transforms=4,
                              width=32, depth=2)),
    ):
        torch.manual_seed(seed)
        model = make()
        t0 = time.perf_counter()
        fit(model, train, val_data=val, steps=steps, batch_size=64, lr=1e-3, seed=seed,
            progress=False)
        seconds = time.perf_counter() - t0
        # The dequantization bound per image, averaged over 8 noise draws (training mode
        # draws fresh noise; nothing re-initialises).
        model.train()
        with torch.no_grad():
            per_image = torch.stack([-model._log_prob(test.x, None) for _ in range(8)]).mean(0)
        model.eval()
        scale = 64 * math.log(2)
        bpd, se = per_image.mean().item() / scale, per_image.std().item() / scale / math.sqrt(
            len(per_image))
        report.bits(label, bpd, kind="bound", error=se,
                    note=f"{steps} steps of fit, batch 64, cosine lr from 1e-3; ± is the "
                    "standard error over the 297 test images")
        rows.append([label, bpd, se, seconds, sum(p.numel() for p in model.parameters())])
        print(f"  digits {label}: {bpd:.3f} bits/dim in {seconds:.0f} s", flush=True)
    report.table("digits test bits/dim (dequantization bound)",
                 ["model", "bits/dim", "± SE", "train time (s)", "params"], rows,
                 kind="result", formats=[None, ".3f", ".3f", ".0f", None])


COLUMNS = ["flow", "library", "params", "test excess NLL (nats)", "± SE", "val NLL",
           "step (ms)", "step / fastest peer's", "sampling (ms)", "diverged at step"]
FORMATS = [None, None, None, ".4f", ".4f", ".4f", ".2f", ".2f", ".1f", None]
PEER_NAMES = ("zuko", "nflows", "normflows")


def table_rows(rows: list[dict]) -> list[list]:
    out = []
    for r in rows:
        peers = [p["step_ms"] for p in rows if p["flow"] == r["flow"]
                 and p["library"] in PEER_NAMES]
        ratio = r["step_ms"] / min(peers) if peers else None
        excess = None if r["diverged"] else r["excess"]
        out.append([r["flow"], r["library"], r["params"], excess,
                    None if r["diverged"] else r["excess_se"], r["val_nll"], r["step_ms"],
                    ratio, r["sample_ms"], r["diverged"]])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.add_argument("--steps", type=int, default=None, help="default 400, quick 40")
    parser.add_argument("--digits-steps", type=int, default=None, help="default 300, quick 30")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    # Full sizes fit the CPU budget of a shared 2-core machine (a few minutes of one core).
    steps = args.steps or (40 if args.quick else 400)
    digits_steps = args.digits_steps or (30 if args.quick else 300)
    if args.quick:
        SAMPLING.update(n=2000, repeats=1)
    report = Report("flows", "Flows: genlab vs zuko, nflows and normflows", quick=args.quick,
                    versions=peer_versions(), description=__doc__.split("\n\n")[1])
    best: dict[str, tuple[dict, dict]] = {}
    fit_ratios: dict[str, list[str]] = {arch: [] for arch in ARCHS}
    for name in DATASETS:
        rows = [r for arch in ARCHS for r in like_for_like(name, arch, steps, args.seed)]
        report.table(
            f"{name}, {steps} steps", COLUMNS, table_rows(rows), kind="like-for-like",
            formats=FORMATS,
            note=f"Per flow, the same layers and conditioner sizes in every library (realnvp: "
            f"{ARCHS['realnvp']}; nsf: {ARCHS['nsf']}; maf: {ARCHS['maf']}); Adam, constant "
            f"lr {LR}, batch {BATCH}, the trainer's batches, seed {args.seed}. genlab trains "
            "through fit (fused Adam, as fit builds it); the peers in a plain loop with "
            "torch.optim.Adam as their documentation shows it (torch's default "
            "implementation). 'genlab model, plain loop' is genlab's flow in that loop with "
            "fit's fused Adam: the difference to the genlab row is the trainer's own cost. "
            "zuko's NSF and MAF are autoregressive (in 2-D: the first coordinate goes through "
            "an unconditional spline, the second through one conditioned on the first); "
            "genlab's and nflows' NSF are couplings. normflows offers splines and MAF only "
            "with residual conditioners, so it appears for RealNVP only. Sampling: the best of "
            f"{SAMPLING['repeats']} draws of {SAMPLING['n']} points.")
        report.text(overhead_text(name, rows))
        for label in CANDIDATES:
            rows.append(candidate(name, label, steps, args.seed))
        ours = [r for r in rows if r["library"] == "genlab" and not r["diverged"]]
        report.table(f"{name}: genlab settings tried, {steps} steps",
                     COLUMNS, table_rows([r for r in rows if r["library"] == "genlab"]),
                     kind="result", formats=FORMATS,
                     note="Every genlab flow of the table above, and stronger settings, all "
                     "trained through fit with the same steps and batches; the best one is "
                     "chosen by validation NLL.")
        theirs = [r for r in rows if r["library"] in PEER_NAMES and not r["diverged"]]
        best[name] = (min(ours, key=lambda r: r["val_nll"]),
                      min(theirs, key=lambda r: r["excess"]))
        for arch in ARCHS:
            g = next(r for r in rows if r["flow"] == arch and r["library"] == "genlab")
            fastest = min(r["step_ms"] for r in theirs if r["flow"] == arch)
            fit_ratios[arch].append(f"{name} {g['step_ms'] / fastest:.2f}x")
    report.table(
        f"best flow against best flow, {steps} steps",
        ["data", "genlab's best (by val NLL)", "its excess", "± SE", "best peer flow",
         "its excess", "± SE", "ratio"],
        [[name, f"{g['flow']}", g["excess"], g["excess_se"], f"{p['library']} {p['flow']}",
          p["excess"], p["excess_se"], g["excess"] / p["excess"]]
         for name, (g, p) in best.items()],
        kind="user", formats=[None, None, ".4f", ".4f", None, ".4f", ".4f", ".2f"],
        note="Equal steps and batches; each side's best: genlab's flow of lowest validation "
        "NLL, the peers' flow of lowest TEST excess (the hardest comparison for genlab).")
    ratios = {name: g["excess"] / p["excess"] for name, (g, p) in best.items()}
    report.target("genlab's best 2-D flow: excess NLL <= 0.5x the best peer's best flow, "
                  "equal steps (8gaussians, checkerboard)",
                  ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()),
                  all(v <= 0.5 for v in ratios.values()),
                  details="table 'best flow against best flow'")
    for arch, text in fit_ratios.items():
        values = [float(t.split()[-1][:-1]) for t in text]
        report.target(f"{arch}: training step through fit <= 0.8x the fastest peer's",
                      ", ".join(text), all(v <= 0.8 for v in values),
                      details="like-for-like tables, column 'step / fastest peer's'")
    for name in DATASETS:
        rows = user_run(name, args.seed, steps)
        report.table(
            f"{name}, equal wall time", ["flow", "params", "steps", "test excess NLL (nats)",
                                         "± SE", "step (ms)", "sampling (ms)"],
            [[r["flow"], r["params"], r["steps"], r["excess"], r["excess_se"], r["step_ms"],
              r["sample_ms"]] for r in rows], kind="user",
            formats=[None, None, None, ".4f", ".4f", ".2f", ".1f"],
            note="genlab: create('nsf', data=train) and fit(model, train, val_data=val) with "
            f"the recipe (4 spline couplings, cosine lr, validation, early stopping, best "
            f"weights) with the budget of {steps} steps instead of its 2000. zuko: its "
            "README's NSF (3 transforms, 3 x 128 hidden) and "
            "nflows: its README's MAF (5 layers, 4 hidden features), each with Adam at lr 1e-3 "
            "and batch 256, stepping until its training time equals genlab's whole fit "
            "(validation included), interleaved step by step.")
    digits_bits(report, digits_steps, args.seed)
    report.write(args.out)


if __name__ == "__main__":
    main()
