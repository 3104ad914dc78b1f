"""RealNVP side by side with zuko, nflows and normflows, plus digits bits/dim.

Same architecture for every library: 8 affine coupling layers with alternating masks, each
conditioner an MLP with 2 hidden layers of 64 ReLU units, a standard Gaussian base, Adam at
lr 1e-3, batch 256, the same number of steps. The libraries train in lockstep: genlab.fit
drives its own RealNVP and, after each of its steps, a callback runs one step of every other
contender, all on one shared batch (the trainer draws its own), so a change in machine load
hits all of them alike. Step times
are medians, sampling times the best of several repeats.

Rows:
* ``genlab fit (cosine lr)``: RealNVP trained by ``genlab.fit`` with its defaults (Adam, peak
  lr 1e-3, cosine decay); its step time is the trainer's whole step.
* ``genlab (plain loop)``: the same model in the same loop as the peers (torch Adam, constant
  lr 1e-3); ``... fused Adam``: the same with torch's fused Adam kernel.
* ``genlab nsf``: not the shared architecture; genlab's spline flow for reference.
* ``zuko``, ``nflows``, ``normflows``: each library's RealNVP built as above.

Reports per data set: test NLL (nats), its excess over the true entropy where known
(8gaussians, checkerboard), median training-step time, time to sample 10k points, parameter
count, and ratios to the best / fastest peer. Then test bits/dim on digits for RealNVP and the
multi-scale flow, trained with genlab.fit.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_flows.py --steps 2000 \
        --out bench/results/flows.md
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

import genlab
from genlab import fit, load_data
from genlab.data.toy2d import entropy
from genlab.models.flows import NSF, Glow, RealNVP
from genlab.train.callbacks import Callback

TRANSFORMS, WIDTH, DEPTH, LR, BATCH = 8, 64, 2, 1e-3, 256
HIDDEN = (WIDTH,) * DEPTH  # the peers' list of hidden sizes
SAMPLE_REPEATS = 11


@dataclass
class Contender:
    """One library's flow behind three callables: loss, sampler, parameters."""

    name: str
    module: torch.nn.Module
    nll: Callable[[torch.Tensor], torch.Tensor]  # per-sample negative log-likelihood
    sample: Callable[[int], torch.Tensor]
    optimizer: torch.optim.Optimizer = field(init=False)
    step_times: list[float] = field(default_factory=list)
    sample_times: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.optimizer = torch.optim.Adam(self.module.parameters(), lr=LR)

    @property
    def params(self) -> int:
        return sum(p.numel() for p in self.module.parameters())


def make_genlab() -> Contender:
    model = RealNVP(event_shape=(2,), transforms=TRANSFORMS, width=WIDTH, depth=DEPTH)
    # The trainer's own objective (nats per dim) times D: the per-sample NLL it minimises.
    return Contender(
        "genlab (plain loop)",
        model,
        lambda x: -model._log_prob(x, None),
        lambda n: model.sample(n),
    )


def make_genlab_fused() -> Contender:
    c = make_genlab()
    c.name = "genlab (plain loop, fused Adam)"
    # The same model and update rule; torch's fused Adam kernel updates all tensors in one call.
    c.optimizer = torch.optim.Adam(c.module.parameters(), lr=LR, fused=True)
    return c


def make_genlab_nsf() -> Contender:
    # Not the shared architecture: genlab's stronger option, for reference (--libs genlab-nsf).
    model = NSF(event_shape=(2,), transforms=4, width=WIDTH, depth=DEPTH, bins=8)
    return Contender(
        "genlab nsf (4 spline couplings)",
        model,
        lambda x: -model._log_prob(x, None),
        lambda n: model.sample(n),
    )


def make_zuko() -> Contender:
    import zuko

    flow = zuko.flows.RealNVP(features=2, transforms=TRANSFORMS, hidden_features=HIDDEN)
    return Contender("zuko", flow, lambda x: -flow().log_prob(x), lambda n: flow().sample((n,)))


def make_nflows() -> Contender:
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow
    from nflows.nn.nets import MLP
    from nflows.transforms.base import CompositeTransform
    from nflows.transforms.coupling import AffineCouplingTransform

    class Net(torch.nn.Module):  # nflows passes a context its MLP does not take
        def __init__(self, i: int, o: int) -> None:
            super().__init__()
            self.mlp = MLP([i], [o], hidden_sizes=list(HIDDEN))

        def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
            return self.mlp(x)

    def net(i: int, o: int) -> torch.nn.Module:
        return Net(i, o)

    layers = [
        AffineCouplingTransform(torch.tensor([(j + i) % 2 for j in range(2)]), net)
        for i in range(TRANSFORMS)
    ]
    flow = Flow(CompositeTransform(layers), StandardNormal([2]))
    return Contender("nflows", flow, lambda x: -flow.log_prob(x), lambda n: flow.sample(n))


def make_normflows() -> Contender:
    import normflows as nf

    layers = []
    for _ in range(TRANSFORMS):
        layers.append(nf.flows.AffineCouplingBlock(nf.nets.MLP([1, *HIDDEN, 2], init_zeros=True)))
        layers.append(nf.flows.Permute(2, mode="swap"))
    flow = nf.NormalizingFlow(nf.distributions.DiagGaussian(2, trainable=False), layers)
    return Contender("normflows", flow, lambda x: -flow.log_prob(x), lambda n: flow.sample(n)[0])


MAKERS = {
    "genlab": make_genlab,
    "genlab-fused": make_genlab_fused,
    "genlab-nsf": make_genlab_nsf,
    "zuko": make_zuko,
    "nflows": make_nflows,
    "normflows": make_normflows,
}


class Lockstep(Callback):
    """Runs one step of every other contender after each step of ``genlab.fit``.

    genlab's step time is the time from the end of this callback to the next call (the
    trainer's own step: batch, loss, backward, clipping check, Adam, schedule, logging).
    """

    def __init__(self, contenders: list[Contender], train: torch.Tensor, seed: int) -> None:
        self.contenders, self.train, self.steps = contenders, train, 0
        self.order = np.random.default_rng(seed)
        self.fit_times: list[float] = []
        self.last = time.perf_counter()
        self.diverged: dict[str, int] = {}

    def on_train_start(self, trainer) -> None:
        self.last = time.perf_counter()

    def on_step_end(self, trainer, step: int, logs: dict) -> None:
        self.fit_times.append(time.perf_counter() - self.last)
        idx = torch.from_numpy(self.order.integers(0, len(self.train), BATCH))
        x = self.train[idx]
        for c in self.contenders:
            # A diverged contender keeps stepping (on NaNs, at the same cost), so that every
            # step time is measured over the same stretch of machine load.
            t0 = time.perf_counter()
            loss = c.nll(x).mean()
            c.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            c.optimizer.step()
            c.step_times.append(time.perf_counter() - t0)
            if not torch.isfinite(loss) and c.name not in self.diverged:
                self.diverged[c.name] = step
        self.steps = step
        self.last = time.perf_counter()


def run_toy(name: str, steps: int, libs: list[str], seed: int) -> dict[str, dict[str, float]]:
    data = load_data(name, split="train", seed=seed)
    test = load_data(name, split="test", seed=seed).x
    contenders = []
    for lib in libs:
        torch.manual_seed(seed)
        contenders.append(MAKERS[lib]())
    torch.manual_seed(seed)
    fitted = RealNVP(event_shape=(2,), transforms=TRANSFORMS, width=WIDTH, depth=DEPTH)
    lockstep = Lockstep(contenders, data.x, seed)
    t0 = time.perf_counter()
    # genlab's defaults: Adam, peak lr 1e-3, cosine decay; the trainer batches on its own.
    fit(
        fitted,
        data,
        steps=steps,
        batch_size=BATCH,
        lr=LR,
        seed=seed,
        progress=False,
        callbacks=[lockstep],
    )
    print(f"  {name}: {steps} lockstep steps in {time.perf_counter() - t0:.0f} s", flush=True)
    fit_row = Contender(
        "genlab fit (cosine lr)",
        fitted,
        lambda x: -fitted._log_prob(x, None),
        lambda n: fitted.sample(n),
    )
    fit_row.step_times = lockstep.fit_times
    everyone = [fit_row, *contenders]
    for c in everyone:
        c.module.eval()
    with torch.no_grad():
        for _ in range(SAMPLE_REPEATS):
            for c in everyone:
                t0 = time.perf_counter()
                c.sample(10_000)
                c.sample_times.append(time.perf_counter() - t0)
    h = entropy(name) if name != "moons" else None
    results = {}
    with torch.no_grad():
        for c in everyone:
            row = {
                "step_ms": 1e3 * statistics.median(c.step_times[10:]),
                "params": c.params,
                "diverged": lockstep.diverged.get(c.name),
            }
            if c.name in lockstep.diverged:
                row.update(
                    nll=float("nan"),
                    nll_se=float("nan"),
                    excess=float("nan"),
                    sample_ms=float("nan"),
                    nonfinite=len(test),
                )
            else:
                nll = torch.cat([c.nll(b) for b in test.split(1000)])
                finite = torch.isfinite(nll)
                kept = nll[finite]
                row.update(
                    nll=kept.mean().item(),
                    nll_se=kept.std().item() / math.sqrt(max(int(finite.sum()), 2)),
                    nonfinite=int((~finite).sum()),
                    excess=kept.mean().item() - h if h is not None else float("nan"),
                    sample_ms=1e3 * min(c.sample_times),
                )
            results[c.name] = row
    return results


def run_digits(steps: int, seed: int) -> dict[str, dict[str, float]]:
    train = load_data("digits", split="train")
    val = load_data("digits", split="val")
    test = load_data("digits", split="test")
    out = {}
    for label, make in (
        (
            "realnvp (6 couplings)",
            lambda: RealNVP(
                event_shape=(1, 8, 8), num_levels=17, transforms=6, width=32, depth=2
            ),
        ),
        (
            "glow (2 scales x 4 transforms)",
            lambda: Glow(
                event_shape=(1, 8, 8), num_levels=17, scales=2, transforms=4, width=32, depth=2
            ),
        ),
    ):
        torch.manual_seed(seed)
        model = make()
        t0 = time.perf_counter()
        fit(
            model,
            train,
            val_data=val,
            steps=steps,
            batch_size=64,
            lr=1e-3,
            seed=seed,
            progress=False,
        )
        seconds = time.perf_counter() - t0
        model.eval()
        # Average the one-sample dequantization bound over 8 noise draws (training mode draws
        # fresh noise; no ActNorm re-initialises since the flag is set).
        model.train()
        with torch.no_grad():
            bpd = torch.stack([-model._log_prob(test.x, None) for _ in range(8)]).mean()
        model.eval()
        bpd = bpd.item() / (64 * math.log(2))
        out[label] = {
            "bpd": bpd,
            "seconds": seconds,
            "params": sum(p.numel() for p in model.parameters()),
        }
        print(f"  digits {label}: {bpd:.3f} bits/dim in {seconds:.0f} s", flush=True)
    return out


def report(toy: dict, digits: dict, args: argparse.Namespace, command: str) -> str:
    lines = [
        "# Flows benchmark",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s), genlab {genlab.__version__}. "
        f"Steps: {args.steps} per library (lockstep), batch {BATCH}, Adam lr {LR}, "
        f"{TRANSFORMS} affine couplings, MLP width {WIDTH}, depth {DEPTH}, seed {args.seed}.",
        "",
    ]
    for name, res in toy.items():
        ours = {k: v for k, v in res.items() if k.startswith("genlab")}
        peers = {k: v for k, v in res.items() if not k.startswith("genlab")}
        lines += [
            f"## {name}",
            "",
            "| library | test NLL (nats) | excess over entropy | step (ms) | "
            "sample 10k (ms) | params |",
            "|---|---|---|---|---|---|",
        ]
        for lib, r in res.items():
            if r["diverged"] is not None:
                lines.append(
                    f"| {lib} | diverged (NaN loss at step {r['diverged']}) | - | "
                    f"{r['step_ms']:.2f} | - | {r['params']} |"
                )
                continue
            bad = f" ({r['nonfinite']} non-finite dropped)" if r["nonfinite"] else ""
            lines.append(
                f"| {lib} | {r['nll']:.4f} ± {r['nll_se']:.4f}{bad} | {r['excess']:.4f} | "
                f"{r['step_ms']:.2f} | {r['sample_ms']:.1f} | {r['params']} |"
            )
        ok = {k: v for k, v in peers.items() if v["diverged"] is None}
        if ok:
            fastest_step = min(v["step_ms"] for v in peers.values())
            fastest_sample = min(v["sample_ms"] for v in peers.values())
            lines.append("")
            for lib, g in ours.items():
                if not math.isnan(g["excess"]):
                    best = min(v["excess"] for v in ok.values())
                    lines.append(
                        f"- {lib}: excess NLL / best peer's = {g['excess'] / best:.2f} "
                        "(target <= 0.5)"
                    )
                else:
                    best = min(v["nll"] for v in ok.values())
                    lines.append(f"- {lib}: test NLL - best peer's = {g['nll'] - best:+.4f} nats")
                lines.append(
                    f"- {lib}: step time / fastest peer's = "
                    f"{g['step_ms'] / fastest_step:.2f}, sampling time / fastest "
                    f"peer's = {g['sample_ms'] / fastest_sample:.2f} (targets <= 0.8)"
                )
        lines.append("")
    if digits:
        lines += [
            "## digits (test split, 297 images)",
            "",
            "| model | test bits/dim (dequantization bound) | train time (s) | params |",
            "|---|---|---|---|",
        ]
        for label, r in digits.items():
            lines.append(f"| {label} | {r['bpd']:.3f} | {r['seconds']:.0f} | {r['params']} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--datasets", default="moons,8gaussians,checkerboard")
    parser.add_argument("--libs", default="genlab,genlab-fused,genlab-nsf,zuko,nflows,normflows")
    parser.add_argument("--digits-steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="write the markdown report here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    command = "OMP_NUM_THREADS=1 .venv/bin/python bench/bench_flows.py " + " ".join(sys.argv[1:])
    libs = args.libs.split(",")
    toy = {}
    for name in args.datasets.split(","):
        if name:
            toy[name] = run_toy(name, args.steps, libs, args.seed)
    digits = run_digits(args.digits_steps, args.seed) if args.digits_steps > 0 else {}
    text = report(toy, digits, args, command)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
