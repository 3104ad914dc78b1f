"""Lossless compression of the digits test split: trained autoregressive models + ANS against
gzip -9, bz2 -9, lzma (preset 9, extreme), PNG (optimize) and WebP lossless of the same pixels.

The pixels are the 297 test digits as uint8 levels 0..16 (18,944 bytes raw). The fixed codecs
get the raw bytes; PNG and WebP get one grayscale image tiling the digits 27 across and 11
down (216 x 88). Each model codes with ``genlab.compress.compress``, and the file is decoded
again and compared. Reported: file bits per pixel (header included), the model's NLL on the
test digits and on its own training digits (bits per pixel), and the coding overhead
``file / test NLL - 1``. A model cannot code the test digits in fewer bits than its test NLL
(plus the overhead), and its training NLL shows how far more fitting alone would get.

    OMP_NUM_THREADS=1 python bench/bench_compress.py [--quick] [--out DIR] [--runs DIR]

The models are the run folders ``bench/bench_autoregressive.py`` wrote (same ``--runs``
default: ``runs/bench-ar``, ``runs/bench-ar-quick`` with ``--quick``), including their
mixture ``ar_mixture``; run that script first.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import io
import lzma
import math
import time
from pathlib import Path

import numpy as np
import PIL
import torch
from PIL import Image

import genlab  # noqa: F401
from _report import Report, common_arguments
from bench_autoregressive import DONE, MODELS, default_runs
from genlab.compress import compress, decompress
from genlab.data import load_data
from genlab.errors import ConfigError
from genlab.train.checkpoint import load

CODED = (*MODELS, "ar_mixture")  # the runs with exact conditionals in one (raster) order
REFERENCE_CODEC = "bz2 -9"


def codec_sizes(pixels: np.ndarray) -> dict[str, int]:
    """Bytes each fixed codec needs for ``pixels`` (n, 1, 8, 8) uint8."""
    raw = pixels.tobytes()
    n = pixels.shape[0]
    cols = 27 if n == 297 else math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.zeros((rows * 8, cols * 8), dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[r * 8 : r * 8 + 8, c * 8 : c * 8 + 8] = pixels[i, 0]
    image = Image.fromarray(grid, mode="L")

    def saved(**kw) -> int:
        buffer = io.BytesIO()
        image.save(buffer, **kw)
        return len(buffer.getvalue())

    return {
        "raw (1 byte/pixel)": len(raw),
        "gzip -9": len(gzip.compress(raw, compresslevel=9, mtime=0)),
        REFERENCE_CODEC: len(bz2.compress(raw, compresslevel=9)),
        "lzma -9 (best of normal, extreme)": min(
            len(lzma.compress(raw, preset=9)),
            len(lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME)),
        ),
        "PNG (optimize, tiled)": saved(format="PNG", optimize=True),
        "WebP lossless (method 6, tiled)": saved(format="WEBP", lossless=True, quality=100,
                                                 method=6),
    }


def nll_bits(model, x: torch.Tensor) -> float:
    """Mean NLL of ``x`` in bits per pixel."""
    with torch.no_grad():
        return (-model.log_prob(x).double().sum() / (x[0].numel() * len(x) * math.log(2))).item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_arguments(parser)
    parser.add_argument("--runs", type=Path, default=None,
                        help="run folders of bench_autoregressive.py (default as there)")
    args = parser.parse_args()
    runs = args.runs or default_runs(args.quick)
    report = Report("compress", "Lossless compression of the digits test split",
                    quick=args.quick, description=__doc__.split("\n\n")[1],
                    versions={"Pillow": PIL.__version__})

    train, test = load_data("digits", split="train"), load_data("digits", split="test")
    pixels = test.x.numpy().astype(np.uint8)  # (297, 1, 8, 8)
    num_pixels = pixels.size
    codecs = {k: 8 * v / num_pixels for k, v in codec_sizes(pixels).items()}
    reference = codecs[REFERENCE_CODEC]
    report.table("fixed codecs on the same pixels",
                 ["codec", "bits/pixel", f"vs {REFERENCE_CODEC}"],
                 [[k, v, v / reference] for k, v in codecs.items()], kind="user",
                 note="Each codec at its strongest setting (no equal-time budget: all take "
                      "milliseconds).", formats=[None, ".3f", ".2f"])

    found = [runs / n for n in CODED if (runs / n / "config.json").is_file()
             and ((runs / n / DONE).is_file() or n == "ar_mixture")]
    if not found:
        raise ConfigError(f"Expected the run folders of bench_autoregressive.py in {runs}, but "
                          f"found none: run bench/bench_autoregressive.py first.")
    rows = []
    for run in found:
        model = load(run).eval()
        start = time.perf_counter()
        data = compress(model, test.x)
        t_enc = time.perf_counter() - start
        start = time.perf_counter()
        back = decompress(model, data)
        t_dec = time.perf_counter() - start
        bits, nll, train_nll = 8 * len(data) / num_pixels, nll_bits(model, test.x), \
            nll_bits(model, train.x)
        rows.append([run.name, bits, nll, train_nll, 100 * (bits / nll - 1), bits / reference,
                     bool(torch.equal(back, test.x)), t_enc, t_dec])
        print(f"{run.name:12s} {bits:.3f} bits/pixel (test NLL {nll:.3f}, train NLL "
              f"{train_nll:.3f}, overhead {rows[-1][4]:.2f}%, exact={rows[-1][6]}, "
              f"{t_enc:.1f} s / {t_dec:.1f} s)", flush=True)
    report.table(
        "model + ANS on the 297 test digits",
        ["model", "file bits/pixel", "test NLL bits/pixel", "train-split NLL bits/pixel",
         "overhead vs test NLL (%)", f"vs {REFERENCE_CODEC}", "decoded exactly",
         "encode (s)", "decode (s)"], rows, kind="result",
        note=f"Models from {runs.name}/ (bench_autoregressive.py"
             + (", the recipes' quick settings)." if args.quick else ", the recipes)."),
        formats=[None, ".3f", ".3f", ".3f", ".2f", ".2f", None, ".1f", ".1f"])

    best = min(rows, key=lambda r: r[1])
    half = reference / 2
    report.target(f"file size <= half of {REFERENCE_CODEC} ({half:.3f} bits/pixel)",
                  f"{best[1]:.3f} bits/pixel ({best[0]}), {best[5]:.2f}x {REFERENCE_CODEC}",
                  best[1] <= half)
    worst = max(rows, key=lambda r: r[4])
    report.target("coding overhead within 1% of the model's test NLL, every model",
                  f"largest {worst[4]:.2f}% ({worst[0]})", worst[4] <= 1.0)
    report.target("every file decodes to the original pixels",
                  f"{sum(r[6] for r in rows)} of {len(rows)}", all(r[6] for r in rows))
    lowest_train = min(rows, key=lambda r: r[3])
    report.text(
        f"Where the limit lies: the best file is {best[1]:.3f} bits/pixel against a target of "
        f"{half:.3f}; the coder adds {best[4]:.2f}% to {best[0]}'s test NLL of {best[2]:.3f}, "
        f"so the model, not the coder, sets the rate. With the weights each run kept (best "
        f"validation NLL), the lowest NLL on the training digits themselves is "
        f"{lowest_train[3]:.3f} bits/pixel ({lowest_train[0]}), "
        + ("above the target too: these models do not reach it even on the images they were "
           "fitted to." if lowest_train[3] > half else
           f"below the target: the gap on the test digits is generalisation, not capacity "
           f"({best[2] - best[3]:+.3f} bits/pixel test minus train for {best[0]})."))
    report.write(args.out)


if __name__ == "__main__":
    main()
