"""Histogram fit + log_prob of 1M 2-D points: genlab vs numpy.histogramdd plus a bin lookup.

Both sides get the same points (moons, float32 values; numpy gets them as float64, the dtype
a numpy user would have), the same bins and the same range. numpy's side is what a user would
write without genlab: ``np.histogramdd`` for the counts, then ``np.searchsorted`` per
dimension and a table lookup for ``log(p_i / vol_i)``. The two are run alternately, repeats
times, and medians reported; the script checks that both give the same counts and log
densities before timing.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_histogram.py \
        --out bench/results/histogram_gmm.md
"""

from __future__ import annotations

import argparse
import platform
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from genlab import load_data
from genlab.models.histogram import Histogram


def update_results(path: str | Path, section: str, text: str) -> None:
    """Replace (or append) the block between ``<!-- section -->`` markers in ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.read_text() if path.exists() else "# Histogram and Gaussian-mixture benchmarks\n"
    block = f"<!-- {section} -->\n{text.rstrip()}\n<!-- /{section} -->"
    pattern = re.compile(rf"<!-- {re.escape(section)} -->.*?<!-- /{re.escape(section)} -->", re.S)
    new = (
        pattern.sub(lambda _: block, old)
        if pattern.search(old)
        else f"{old.rstrip()}\n\n{block}\n"
    )
    path.write_text(new)


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), numpy {np.__version__}"
    )


def numpy_fit_and_score(train: np.ndarray, test: np.ndarray, bins: int, rng: list) -> np.ndarray:
    # genlab stores float32 edges (linspace in float64, then rounded): give numpy those values.
    grid = [np.linspace(lo, hi, bins + 1).astype(np.float32).astype(np.float64) for lo, hi in rng]
    counts, edges = np.histogramdd(train, bins=grid)
    p = counts / counts.sum()
    index = []
    for d, e in enumerate(edges):
        i = np.searchsorted(e, test[:, d], side="right") - 1
        i[test[:, d] == e[-1]] = len(e) - 2  # the last edge belongs to the last bin
        index.append(i)
    index = np.stack(index)
    inside = ((index >= 0) & (index < bins)).all(0)
    index = np.clip(index, 0, bins - 1)
    volume = np.prod([np.diff(e)[i] for e, i in zip(edges, index, strict=True)], axis=0)
    with np.errstate(divide="ignore"):
        out = np.log(p[tuple(index)] / volume)
    out[~inside] = -np.inf
    return out


def genlab_fit_and_score(
    train: torch.Tensor, test: torch.Tensor, bins: int, rng: list
) -> torch.Tensor:
    model = Histogram(event_shape=(2,), bins=bins, range=rng, alpha=0.0)
    return model.fit_closed_form(train).log_prob(test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="points to fit and to score")
    parser.add_argument("--bins", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="results markdown file to update")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    train = load_data("moons", n=args.n, seed=0).x  # (n, 2) float32
    test = load_data("moons", split="test", n=args.n, seed=1).x
    low = torch.minimum(train.min(0).values, test.min(0).values) - 0.01
    high = torch.maximum(train.max(0).values, test.max(0).values) + 0.01
    rng = [[float(a), float(b)] for a, b in zip(low, high, strict=True)]
    train_np, test_np = train.double().numpy(), test.double().numpy()

    # Same answer first.
    ours = genlab_fit_and_score(train, test, args.bins, rng).double().numpy()
    theirs = numpy_fit_and_score(train_np, test_np, args.bins, rng)
    finite = np.isfinite(theirs)
    assert np.array_equal(finite, np.isfinite(ours))
    agree = float(np.abs(ours[finite] - theirs[finite]).max())

    times: dict[str, list[float]] = {"genlab": [], "numpy": []}
    for _ in range(args.repeats):
        start = time.perf_counter()
        genlab_fit_and_score(train, test, args.bins, rng)
        times["genlab"].append(time.perf_counter() - start)
        start = time.perf_counter()
        numpy_fit_and_score(train_np, test_np, args.bins, rng)
        times["numpy"].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["numpy"] / med["genlab"]
    lines = [
        "## Histogram: fit + log_prob of 1M 2-D points vs numpy.histogramdd + lookup",
        "",
        f"Command: `OMP_NUM_THREADS={args.threads} .venv/bin/python bench/bench_histogram.py "
        f"--n {args.n} --bins {args.bins} --repeats {args.repeats} --threads {args.threads}"
        + (f" --out {args.out}`" if args.out else "`"),
        "",
        f"Machine: {machine()}. Data: moons, {args.n:,} train points counted and {args.n:,} "
        f"test points scored, {args.bins}x{args.bins} bins. Both give the same log densities "
        f"(max abs difference {agree:.1e}, float32 output).",
        "",
        "| library | median time (s) | min (s) | numpy / library |",
        "|---|---|---|---|",
        f"| genlab Histogram | {med['genlab']:.3f} | {min(times['genlab']):.3f} | {ratio:.2f}x |",
        f"| numpy histogramdd + searchsorted lookup | {med['numpy']:.3f} | "
        f"{min(times['numpy']):.3f} | 1.00x |",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        update_results(args.out, "bench_histogram", text)


if __name__ == "__main__":
    sys.exit(main())
