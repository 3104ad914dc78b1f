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
Also reported: the per-pixel histogram on all 64 pixels (alpha chosen the same way), whose
test NLL is an exact bits/dim figure on discrete levels.

    OMP_NUM_THREADS=1 python bench/bench_histogram_dims.py [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from _report import Report, common_arguments  # noqa: E402
from genlab import load_data  # noqa: E402
from genlab.models.histogram import Histogram  # noqa: E402

ALPHAS = (1e-4, 1e-3, 0.01, 0.1, 0.3, 1.0)


def bits_per_pixel(model: Histogram, x: torch.Tensor) -> float:
    return (-model.log_prob(x).double().mean() / (x.shape[1] * math.log(2))).item()


def best_alpha(train: torch.Tensor, val: torch.Tensor, **kwargs) -> float:
    """The smoothing in ALPHAS with the lowest validation NLL."""
    d = train.shape[1]
    return min(ALPHAS, key=lambda a: bits_per_pixel(
        Histogram(event_shape=(d,), num_levels=17, alpha=a, **kwargs).fit_closed_form(train),
        val))


def plot(rows: list[dict], path: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3), dpi=90)
    ds = [r["d"] for r in rows]
    left.plot(ds, [r["joint"] for r in rows], "o-", label="joint histogram")
    left.plot(ds, [r["factorized"] for r in rows], "s--", label="per-pixel (factorized)")
    left.set_xlabel("pixels d")
    left.set_ylabel("test NLL (bits/pixel)")
    left.legend(fontsize=8)
    right.plot(ds, [100 * r["empty"] for r in rows], "o-", label="empty cells")
    right.plot(ds, [100 * r["test_in_empty"] for r in rows], "s--",
               label="test images in empty cells")
    right.set_xlabel("pixels d")
    right.set_ylabel("%")
    right.legend(fontsize=8)
    fig.suptitle("Histogram on d digit pixels: 17^d cells, 1350 training images", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.add_argument("--dims", type=int, nargs="+", default=None,
                        help="pixel counts d (default 2..8; --quick: 2..6)")
    args = parser.parse_args()
    dims = args.dims or list(range(2, 7 if args.quick else 9))
    report = Report("histogram_dims", "Histogram in more dimensions: 2..8 pixels of digits",
                    quick=args.quick,
                    description="The d most variable pixels of the 1350 training digits, 17 "
                    "levels each; alpha chosen on the 150 validation images from "
                    + ", ".join(map(str, ALPHAS)) + "; test NLL on the 297 test images.")

    flat = {s: load_data("digits", split=s).x.reshape(-1, 64) for s in ("train", "val", "test")}
    order = flat["train"].var(0).argsort(descending=True)  # most variable pixels first
    rows = []
    for d in dims:
        pixels = order[:d]
        train, val, test = (flat[s][:, pixels] for s in ("train", "val", "test"))
        best = best_alpha(train, val, sparse=True)
        joint = Histogram(event_shape=(d,), num_levels=17, sparse=True, alpha=best)
        joint.fit_closed_form(train)
        occupied = joint.keys.numel()
        strides = torch.tensor([17 ** (d - 1 - i) for i in range(d)])
        test_keys = (test.long() * strides).sum(1)  # row-major cell index, as the model's keys
        in_empty = (~torch.isin(test_keys, joint.keys)).double().mean().item()
        factorized = Histogram(event_shape=(d,), num_levels=17, factorized=True, alpha=best)
        factorized.fit_closed_form(train)
        rows.append({"d": d, "cells": 17**d, "occupied": occupied,
                     "empty": 1 - occupied / 17**d, "test_in_empty": in_empty, "alpha": best,
                     "joint": bits_per_pixel(joint, test),
                     "factorized": bits_per_pixel(factorized, test)})
        print(rows[-1], flush=True)
    report.table(
        "joint and per-pixel histograms on the d most variable pixels",
        ["pixels d", "cells 17^d", "occupied cells", "empty cells (%)",
         "test images in an empty cell (%)", "alpha", "joint test bits/pixel",
         "per-pixel test bits/pixel"],
        [[r["d"], float(r["cells"]), r["occupied"], 100 * r["empty"], 100 * r["test_in_empty"],
          r["alpha"], r["joint"], r["factorized"]] for r in rows],
        formats=[None, ".3g", ",", ".7g", ".1f", None, ".3f", ".3f"])
    plot(rows, Path(args.out) / "histogram_dims.png")
    report.figure("histogram_dims.png", "test NLL and empty bins against the number of pixels")

    # The per-pixel histogram on the whole image: an exact NLL on the 17 discrete levels.
    alpha = best_alpha(flat["train"], flat["val"], factorized=True)
    per_pixel = Histogram(event_shape=(64,), num_levels=17, factorized=True, alpha=alpha)
    per_pixel.fit_closed_form(flat["train"])
    nll = -per_pixel.log_prob(flat["test"]).double() / (64 * math.log(2))  # (297,) bits/pixel
    error = (nll.std() / math.sqrt(nll.numel())).item()
    report.table("per-pixel histogram, all 64 pixels", ["alpha", "test bits/pixel", "std. error"],
                 [[alpha, nll.mean().item(), error]], formats=[None, ".4f", ".4f"])
    report.bits("histogram (per-pixel)", nll.mean().item(), kind="exact", error=error,
                note=f"factorized, alpha={alpha:g} chosen on validation")
    report.write(args.out)


if __name__ == "__main__":
    main()
