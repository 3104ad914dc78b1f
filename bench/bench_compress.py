"""Lossless compression of the digits test split: trained autoregressive models + ANS against
gzip -9, bz2 -9, lzma (preset 9, extreme), PNG (optimize) and WebP lossless of the same pixels.

The pixels are the 297 test digits as uint8 levels 0..16 (18,944 bytes raw). The fixed codecs
get the raw bytes; PNG and WebP get one grayscale image tiling the digits 27 across and 11
down (216 x 88). Each model compresses with ``genlab.compress.compress`` and the file is
decoded again and compared. Reported: file bits per pixel (header included), the model's test
NLL in bits per pixel, and the coding overhead ``file / NLL - 1``.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_compress.py \\
        --runs runs/bench-ar --out bench/results/autoregressive.md

``--runs`` is a folder of run folders written by ``bench/bench_autoregressive.py --runs``;
without it (or when it is empty) a gated PixelCNN is trained here first. When it holds
several models, their mixture (``ar_mixture``, same raster order, weights fitted by EM on
the validation split) is coded too.
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
import torch
from PIL import Image

import genlab  # noqa: F401
from genlab.compress import compress, decompress
from genlab.data import load_data
from genlab.models.autoregressive import AutoregressiveMixture, AutoregressiveModel
from genlab.registry import create
from genlab.train import fit
from genlab.train.checkpoint import load, save_model


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
        "bz2 -9": len(bz2.compress(raw, compresslevel=9)),
        "lzma -9 (best of normal, extreme)": min(
            len(lzma.compress(raw, preset=9)),
            len(lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME)),
        ),
        "PNG (optimize, tiled)": saved(format="PNG", optimize=True),
        "WebP lossless (method 6, tiled)": saved(format="WEBP", lossless=True, quality=100,
                                                 method=6),
    }


def train_pixelcnn(folder: Path) -> None:
    train, val = load_data("digits", split="train"), load_data("digits", split="val")
    model = create("pixelcnn", event_shape=(1, 8, 8), num_levels=17, width=64,
                   depth=4, kernel_size=5, gated=True, dropout=0.2)
    fit(model, train, val_data=val, steps=1000, batch_size=64, lr=2e-3, warmup_steps=50,
        val_every=100, patience=8, progress=False, out=folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/bench-ar"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    test = load_data("digits", split="test")
    pixels = test.x.numpy().astype(np.uint8)  # (297, 1, 8, 8)
    num_pixels = pixels.size
    codecs = {k: 8 * v / num_pixels for k, v in codec_sizes(pixels).items()}
    best_codec = min(v for k, v in codecs.items() if not k.startswith("raw"))
    for k, v in codecs.items():
        print(f"{k:34s} {v:.3f} bits/pixel")

    runs = sorted(p for p in args.runs.glob("*") if (p / "config.json").is_file()) \
        if args.runs.is_dir() else []
    if not runs:
        train_pixelcnn(args.runs / "pixelcnn")
        runs = [args.runs / "pixelcnn"]
    singles = [r for r in runs if r.name != "ar_mixture"]
    if len(singles) > 1 and not (args.runs / "ar_mixture").is_dir():
        # the runs share the raster order: their equal mixture is a codable model too
        members = [load(r) for r in singles]
        members = [m for m in members if m.discrete and isinstance(m, AutoregressiveModel)]
        mixture = AutoregressiveMixture.from_models(members)
        mixture.fit_weights(load_data("digits", split="val").x)  # EM on the validation split
        print("mixture weights", dict(zip([r.name for r in singles],
                                          mixture._log_weights().exp().tolist(), strict=True)))
        save_model(mixture, args.runs / "ar_mixture")
        runs.append(args.runs / "ar_mixture")
    results = []
    for run in runs:
        model = load(run)
        if not (getattr(model, "has_ordered_conditionals", False) and model.discrete):
            continue  # the coder needs exact discrete conditionals in a fixed order
        start = time.perf_counter()
        data = compress(model, test.x)
        t_enc = time.perf_counter() - start
        start = time.perf_counter()
        back = decompress(model, data)
        t_dec = time.perf_counter() - start
        exact = bool(torch.equal(back, test.x))
        with torch.no_grad():
            nll = (-model.log_prob(test.x).sum() / (num_pixels * math.log(2))).item()
        bits = 8 * len(data) / num_pixels
        results.append((run.name, bits, nll, bits / nll - 1, exact, t_enc, t_dec))
        print(f"{run.name:34s} {bits:.3f} bits/pixel (NLL {nll:.3f}, overhead "
              f"{100 * (bits / nll - 1):.2f}%, exact={exact}, {t_enc:.1f} s / {t_dec:.1f} s)")

    if args.out is not None:
        write_report(args, codecs, best_codec, results)


def write_report(args, codecs, best_codec, results) -> None:
    lines = [
        "## Lossless compression of the digits test split (297 x 64 pixels, 17 levels)",
        "",
        f"Command: `OMP_NUM_THREADS=1 .venv/bin/python bench/bench_compress.py --runs "
        f"{args.runs} --out {args.out}`",
        "",
        "| coder | bits/pixel | vs best fixed codec |",
        "|---|---|---|",
    ]
    for k, v in codecs.items():
        lines.append(f"| {k} | {v:.3f} | {v / best_codec:.2f} |")
    lines += [
        "",
        f"Target: at most half the best fixed codec ({best_codec / 2:.3f} bits/pixel) and "
        "within 1% of the model's own NLL.",
        "",
        "| model + ANS | file bits/pixel | model NLL bits/pixel | overhead | vs best codec | "
        "exact | encode / decode (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, bits, nll, overhead, exact, t_enc, t_dec in results:
        lines.append(f"| {name} | {bits:.3f} | {nll:.3f} | {100 * overhead:.2f}% | "
                     f"{bits / best_codec:.2f} | {exact} | {t_enc:.1f} / {t_dec:.1f} |")
    text = "\n".join(lines) + "\n"
    marker = "<!-- bench_compress -->"
    old = args.out.read_text() if args.out.exists() else ""
    head, _, rest = old.partition(marker)
    tail = rest.partition("<!-- /bench_compress -->")[2] if rest else ""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    head = head if not head or head.endswith("\n") else head + "\n"
    tail = tail if tail.startswith("\n") else "\n" + tail
    args.out.write_text(f"{head}{marker}\n{text}<!-- /bench_compress -->{tail}")


if __name__ == "__main__":
    main()
