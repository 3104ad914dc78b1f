"""The histogram in more dimensions: test NLL and empty bins on 2..8 pixels of digits.

"Inefficient in high dimensions", measured. For d = 2..8 pixels of the 8x8 digits (the d
pixels with the largest training variance), a joint histogram with one bin per level has
17^d cells, from 289 to about 7e9, while there are only 1350 training images. Reported per d:

* the fraction of the 17^d cells that hold no training image (empty bins);
* the fraction of test images that fall in such an empty cell;
* test NLL in bits per pixel of the joint histogram (Laplace smoothing ``alpha`` chosen on
  the validation split from a small grid) and of the factorized (per-pixel) histogram on
  the same pixels, which has only 17 d cells.

The joint table is stored sparsely (``sparse=True``: only occupied cells), so every d fits.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_histogram_dims.py \
        --out bench/results/histogram_gmm.md --plot bench/results/histogram_dims.png
"""

from __future__ import annotations

import argparse
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from bench_histogram import update_results  # noqa: E402
from genlab import load_data  # noqa: E402
from genlab.models.histogram import Histogram  # noqa: E402

ALPHAS = (1e-4, 1e-3, 0.01, 0.1, 0.3, 1.0)


def bits_per_pixel(model: Histogram, x: torch.Tensor) -> float:
    return (-model.log_prob(x).double().mean() / (x.shape[1] * math.log(2))).item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=list(range(2, 9)))
    parser.add_argument("--out", default=None, help="results markdown file to update")
    parser.add_argument("--plot", default=None, help="PNG file for the curves")
    args = parser.parse_args()

    flat = {s: load_data("digits", split=s).x.reshape(-1, 64) for s in ("train", "val", "test")}
    order = flat["train"].var(0).argsort(descending=True)  # most variable pixels first
    rows = []
    for d in args.dims:
        pixels = order[:d]
        train, val, test = (flat[s][:, pixels] for s in ("train", "val", "test"))
        best = min(
            ALPHAS,
            key=lambda a: bits_per_pixel(
                Histogram(event_shape=(d,), num_levels=17, sparse=True, alpha=a).fit_closed_form(
                    train
                ),
                val,
            ),
        )
        joint = Histogram(event_shape=(d,), num_levels=17, sparse=True, alpha=best)
        joint.fit_closed_form(train)
        cells = 17**d
        occupied = joint.keys.numel()
        strides = torch.tensor([17 ** (d - 1 - i) for i in range(d)])
        test_keys = (test.long() * strides).sum(1)  # row-major cell index, as the model's keys
        in_empty = (~torch.isin(test_keys, joint.keys)).double().mean().item()
        factorized = Histogram(event_shape=(d,), num_levels=17, factorized=True, alpha=best)
        factorized.fit_closed_form(train)
        rows.append(
            {
                "d": d,
                "cells": cells,
                "occupied": occupied,
                "empty": 1 - occupied / cells,
                "test_in_empty": in_empty,
                "alpha": best,
                "joint": bits_per_pixel(joint, test),
                "factorized": bits_per_pixel(factorized, test),
            }
        )
        print(rows[-1], flush=True)

    lines = [
        "## Histogram in more dimensions: 2..8 pixels of digits",
        "",
        "Command: `OMP_NUM_THREADS=1 .venv/bin/python bench/bench_histogram_dims.py"
        + (f" --out {args.out}" if args.out else "")
        + (f" --plot {args.plot}" if args.plot else "")
        + "`",
        "",
        "The d most variable pixels of the 1350 training digits, 17 levels each; alpha chosen "
        "on the 150 validation images from " + ", ".join(map(str, ALPHAS)) + ".",
        "",
        "| pixels d | cells 17^d | occupied cells | empty cells | test images in an empty cell "
        "| alpha | joint test bits/pixel | factorized test bits/pixel |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['d']} | {r['cells']:.3g} | {r['occupied']:,} | {100 * r['empty']:.7g}% | "
            f"{100 * r['test_in_empty']:.1f}% | {r['alpha']} | {r['joint']:.3f} | "
            f"{r['factorized']:.3f} |"
        )
    if args.plot:
        fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3), dpi=90)
        ds = [r["d"] for r in rows]
        left.plot(ds, [r["joint"] for r in rows], "o-", label="joint histogram")
        left.plot(ds, [r["factorized"] for r in rows], "s--", label="per-pixel (factorized)")
        left.set_xlabel("pixels d")
        left.set_ylabel("test NLL (bits/pixel)")
        left.legend(fontsize=8)
        right.plot(ds, [100 * r["empty"] for r in rows], "o-", label="empty cells")
        right.plot(
            ds, [100 * r["test_in_empty"] for r in rows], "s--", label="test images in empty cells"
        )
        right.set_xlabel("pixels d")
        right.set_ylabel("%")
        right.legend(fontsize=8)
        fig.suptitle("Histogram on d digit pixels: 17^d cells, 1350 training images", fontsize=9)
        fig.tight_layout()
        fig.savefig(args.plot)
        lines += ["", f"![test NLL and empty bins vs dimension]({args.plot.split('/')[-1]})"]
    text = "\n".join(lines)
    print(text)
    if args.out:
        update_results(args.out, "bench_histogram_dims", text)


if __name__ == "__main__":
    sys.exit(main())
