"""Autoregressive models on digits: test bits per pixel against simpler families, and
transformer sampling speed with and without the key/value cache.

Every model is built by ``create(name, data=train)`` and trained by ``fit(model, train,
val_data=val)`` with nothing else set: the family's recipe for images (``genlab.recipes``),
which is exactly what ``genlab train NAME --data digits`` does. It trains on the 1350 training
digits, keeps the weights with the best NLL on the 150 validation digits, and is scored on the
297 test digits (17 levels, 64 pixels). Autoregressive
models give exact log-masses; the Gaussian mixture and the flow give the uniform-dequantization
bound (averaged over several noise draws); the histogram is the per-pixel independent table.
An "order ensemble" mixes K MADEs with different random orders:
``p(x) = (1/K) sum_k p_k(x)``, still exact but not autoregressive in one order (so not used
by the coder); ``ar_mixture`` mixes the four trained models, which share the raster order.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_autoregressive.py --scale 1 --ensemble 3 \\
        --runs runs/bench-ar --out bench/results/autoregressive.md

``--runs`` keeps each trained model's run folder (``bench/bench_compress.py`` reuses them).
The default ``--scale 0.5 --ensemble 2`` fits ~10 minutes on two free cores; the recorded
results used ``--scale 1 --ensemble 3`` (about 40 minutes on the loaded development box).
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from pathlib import Path

import torch

import genlab  # noqa: F401  (registers every family)
from genlab.data import load_data
from genlab.models.autoregressive import AutoregressiveMixture
from genlab.recipes import train_settings
from genlab.registry import available, create
from genlab.train import fit
from genlab.train.checkpoint import save_model

LN2 = math.log(2.0)

MODELS = ("made", "pixelcnn", "rnn", "transformer")
BASELINES = ("histogram", "gmm", "glow", "maf")


def test_bits(model, test, draws: int = 1) -> float:
    """Mean test bits per pixel; bounds of dequantized models averaged over ``draws``."""
    model.eval()
    torch.manual_seed(1234)
    with torch.no_grad():
        values = [model.bits_per_dim(test.x).mean().item() for _ in range(draws)]
    return sum(values) / len(values)


def train(name, train_data, val_data, *, scale=1.0, seed=0, **params):
    """The user's path: the family's recipe, steps times ``scale`` (1 reproduces the CLI)."""
    model = create(name, data=train_data, **params)
    settings = train_settings(model, train_data, has_val=True)
    start = time.perf_counter()
    if model.closed_form:
        fit(model, train_data, val_data=val_data)
    else:
        steps = max(1, int(settings.get("steps", 1000) * scale))
        fit(model, train_data, val_data=val_data, steps=steps, progress=False, seed=seed)
    return model.eval(), time.perf_counter() - start


def ensemble_bits(models, test) -> float:
    """-log2 of the equal mixture (1/K) sum_k p_k(x), per pixel."""
    with torch.no_grad():
        lp = torch.stack([m.log_prob(test.x) for m in models])  # (K, n)
        mix = torch.logsumexp(lp, 0) - math.log(len(models))
    return (-mix.mean() / (64 * LN2)).item()


def sampling_speed(model, n: int, repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` seconds to draw n samples with and without the cache."""
    out = {}
    for use_cache in (True, False):
        times = []
        for r in range(repeats):
            g = torch.Generator().manual_seed(r)
            start = time.perf_counter()
            model.sample(n, generator=g, use_cache=use_cache)
            times.append(time.perf_counter() - start)
        out["cached" if use_cache else "uncached"] = min(times)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.5, help="multiply training steps")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--baselines", default=",".join(BASELINES))
    parser.add_argument("--ensemble", type=int, default=2, help="MADEs with random orders")
    parser.add_argument("--speed-n", type=int, default=256)
    parser.add_argument("--runs", type=Path, default=None, help="save run folders here")
    parser.add_argument("--out", type=Path, default=None, help="write a markdown report")
    args = parser.parse_args()

    train_data, val_data, test = (load_data("digits", split=s) for s in ("train", "val", "test"))
    rows: list[tuple[str, str, float, float]] = []  # (model, kind, bits/pixel, seconds)
    trained = {}
    for name in [m for m in args.models.split(",") if m]:
        model, seconds = train(name, train_data, val_data, scale=args.scale)
        trained[name] = model
        rows.append((name, "exact", test_bits(model, test), seconds))
        print(f"{name:12s} {rows[-1][2]:.3f} bits/pixel  ({seconds:.0f} s)", flush=True)
        if args.runs is not None:
            save_model(model, args.runs / name, data=train_data.describe())
    if args.ensemble > 1:
        members, seconds = [], 0.0
        for k in range(args.ensemble):
            member, s = train("made", train_data, val_data, scale=args.scale, seed=k,
                              order="random", order_seed=k)
            members.append(member)
            seconds += s
        rows.append((f"made, {args.ensemble} random orders (mixture)", "exact",
                     ensemble_bits(members, test), seconds))
        print(f"{rows[-1][0]}: {rows[-1][2]:.3f}", flush=True)
    if len(trained) > 1:
        # The trained models share the raster order, so their equal mixture is itself an
        # autoregressive model (posterior-weighted conditionals) that the coder can use.
        mixture = AutoregressiveMixture.from_models(list(trained.values())).eval()
        mixture.fit_weights(val_data.x)  # EM for the weights on the validation split
        rows.append((f"ar_mixture of the {len(trained)} models above (EM weights)", "exact",
                     test_bits(mixture, test), sum(r[3] for r in rows if r[0] in trained)))
        print(f"{rows[-1][0]}: {rows[-1][2]:.3f}", flush=True)
        if args.runs is not None:
            save_model(mixture, args.runs / "ar_mixture", data=train_data.describe())
    for name in [b for b in args.baselines.split(",") if b]:
        if name not in available():
            rows.append((name, "not registered", float("nan"), 0.0))
            continue
        # each family's own recipe for images, the same early stopping and best weights
        model, seconds = train(name, train_data, val_data, scale=min(1.0, args.scale))
        kind = "exact" if model.discrete and model.has_exact_likelihood and name == "histogram" \
            else "dequantization bound"
        rows.append((name, kind, test_bits(model, test, draws=8), seconds))
        print(f"{name:12s} {rows[-1][2]:.3f} bits/pixel  ({seconds:.0f} s)", flush=True)

    speed = {}
    if "transformer" in trained:
        model = trained["transformer"]
        speed = sampling_speed(model, args.speed_n, repeats=2)
        ratio = speed["uncached"] / speed["cached"]
        print(f"transformer sampling {args.speed_n} x 64 px: cached {speed['cached']:.2f} s, "
              f"uncached {speed['uncached']:.2f} s, ratio {ratio:.1f}",
              flush=True)
    throughput = {}
    for name, model in trained.items():
        start = time.perf_counter()
        model.sample(args.speed_n, generator=torch.Generator().manual_seed(0))
        throughput[name] = args.speed_n * 64 / (time.perf_counter() - start)

    if args.out is not None:
        write_report(args, rows, speed, throughput)


def write_report(args, rows, speed, throughput) -> None:
    hist = next((r[2] for r in rows if r[0] == "histogram"), float("nan"))
    lines = [
        "## Digits test bits per pixel (297 images x 64 pixels, 17 levels)",
        "",
        f"Command: `OMP_NUM_THREADS=1 .venv/bin/python bench/bench_autoregressive.py "
        f"--scale {args.scale} --ensemble {args.ensemble}"
        f"{'' if args.models == ','.join(MODELS) else ' --models ' + args.models}"
        f"{'' if args.baselines == ','.join(BASELINES) else ' --baselines ' + args.baselines}"
        f"{' --runs ' + str(args.runs) if args.runs else ''} --out {args.out}`  ",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} torch thread(s), "
        f"torch {torch.__version__}, shared CPU.",
        "",
        "| model | likelihood | test bits/pixel | vs histogram | train time (s) |",
        "|---|---|---|---|---|",
    ]
    for name, kind, bits, seconds in rows:
        ratio = f"{bits / hist:.3f}" if hist == hist and bits == bits else "n/a"
        value = f"{bits:.3f}" if bits == bits else "n/a"
        lines.append(f"| {name} | {kind} | {value} | {ratio} | {seconds:.0f} |")
    if speed:
        ratio = speed["uncached"] / speed["cached"]
        n = args.speed_n
        lines += [
            "",
            f"## Transformer sampling, {n} images x 64 pixels (best of 2)",
            "",
            "| | seconds | pixels/second |",
            "|---|---|---|",
            f"| with key/value cache | {speed['cached']:.3f} | {n * 64 / speed['cached']:,.0f} |",
            f"| without (re-run prefix) | {speed['uncached']:.3f} | "
            f"{n * 64 / speed['uncached']:,.0f} |",
            f"| speed-up | {ratio:.1f}x (target >= 5x) | |",
        ]
    if throughput:
        lines += ["", f"Sampling throughput ({args.speed_n} images):", "",
                  "| model | pixels/second |", "|---|---|"]
        lines += [f"| {k} | {v:,.0f} |" for k, v in throughput.items()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines) + "\n"
    marker = "<!-- bench_autoregressive -->"
    old = args.out.read_text() if args.out.exists() else ""
    head, _, rest = old.partition(marker)
    tail = rest.partition("<!-- /bench_autoregressive -->")[2] if rest else ""
    head = head if not head or head.endswith("\n") else head + "\n"
    tail = tail if tail.startswith("\n") else "\n" + tail
    args.out.write_text(f"{head}{marker}\n{text}<!-- /bench_autoregressive -->{tail}")


if __name__ == "__main__":
    main()
