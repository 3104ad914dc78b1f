"""The VAE: bounds on the test splits, bits-back coding of digits, and pythae's VAE beside it.

* Like for like (binarised digits, pixel on at level >= 8): genlab's VAE and pythae's, same
  MLP networks and initial weights, Bernoulli likelihood, Adam, steps, batches and seed
  (bench/_vae_peers.py); -ELBO and -IWAE-K bits/dim on the test split from one evaluator.
* What a user gets (binarised digits): genlab's recipe against pythae's defaults at about the
  same wall time.
* genlab alone: the recipe on moons and on 17-level digits (``create("vae", data=...)`` and
  ``fit``, as ``genlab train vae``), and the MLP variant (width 128, one layer) on digits; the
  ELBO (closed-form KL, reconstruction averaged over draws) and the importance-weighted bound
  for K = 1 .. 5000; the digits test split coded bits-back by ``genlab.compress.compress_file``
  from the run folder, decoded again and compared, the rate split into header, initial bits
  and the rest (target: the rest within 1% of the -ELBO).

    OMP_NUM_THREADS=1 python bench/bench_vae.py [--quick]
"""

from __future__ import annotations

import argparse
import bz2
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import pythae
import torch

from _report import Report, common_arguments
from _vae_peers import binarise, parameters, train_like_for_like, user_runs
from _vae_peers import bounds as shared_bounds
from genlab import create, fit, load
from genlab.compress import compress, compress_file, decompress_file
from genlab.compress.bitsback import initial_bits
from genlab.compress.container import unpack
from genlab.data import load_data

SIZES = {  # full, quick
    "steps": (None, 150), "ks": ((1, 10, 100, 1000, 5000), (1, 10, 100)), "draws": (100, 10),
    "lfl_steps": (3000, 200), "lfl_ks": ((1, 100, 1000), (1, 100)),
}


def bounds(model, test, ks, draws: int) -> dict[str, float]:
    """Test bits per dimension: -ELBO and -IWAE-k of genlab's own methods (fixed seeds)."""
    scale = test.x[0].numel() * math.log(2)
    g = torch.Generator().manual_seed(0)
    model.eval()
    y = test.y if model.conditional else None
    with torch.no_grad():
        elbo = torch.stack([model.elbo(test.x, y, generator=g) for _ in range(draws)]).mean(0)
        out = {"ELBO": (-elbo.mean() / scale).item()}
        for k in ks:
            out[f"IWAE-{k}"] = (-model.iwae_bound(test.x, y, k=k, generator=g).mean()
                                / scale).item()
    return out


def train_run(data_name: str, folder: Path, steps: int | None, **params):
    """Train (or reuse the finished run in ``folder``); the model and its training seconds."""
    if not (folder / "model.safetensors").is_file():
        train, val = load_data(data_name, split="train"), load_data(data_name, split="val")
        torch.manual_seed(0)
        model = create("vae", data=train, **params)
        fit(model, train, val_data=val, out=folder, progress=False,
            **({"steps": steps} if steps else {}))
    model = load(folder)
    if {k: model.config[k] for k in params} != params:
        raise SystemExit(f"{folder} holds another configuration; remove it to retrain.")
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    return model, json.loads(lines[-1])["time"], json.loads(lines[-1])["step"]


def bits_back(run: Path, test, work: Path) -> dict[str, float]:
    """Compress the test split with the run through the file API and decode it again."""
    np.save(work / "digits_test.npy", test.x.numpy().astype(np.uint8))
    start = time.perf_counter()
    result = compress_file(run, work / "digits_test.npy", work / "digits_test.glc")
    t_enc = time.perf_counter() - start
    start = time.perf_counter()
    decompress_file(run, work / "digits_test.glc", work / "back.npy")
    t_dec = time.perf_counter() - start
    exact = bool(np.array_equal(np.load(work / "back.npy"), test.x.numpy().astype(np.uint8)))
    data = (work / "digits_test.glc").read_bytes()
    _, payload = unpack(data)
    pixels = test.x.numel()
    return {"file": 8 * len(data) / pixels, "header": 8 * (len(data) - len(payload)) / pixels,
            "initial": result.initial_bits / pixels,
            "coded": (8 * len(payload) - result.initial_bits) / pixels,
            "exact": exact, "t_enc": t_enc, "t_dec": t_dec}


def peers(report: Report, quick: bool, seed: int) -> None:
    """The two tables against pythae on binarised digits."""
    q = int(quick)
    train, val, test = (binarise(load_data("digits", split=s)) for s in ("train", "val", "test"))
    ks = SIZES["lfl_ks"][q]
    steps, batch, lr, latent, width = SIZES["lfl_steps"][q], 128, 1e-3, 16, 512
    runs = train_like_for_like(train, steps=steps, batch=batch, lr=lr, latent=latent,
                               width=width, seed=seed)
    rows = []
    for lib, (model, secs) in runs.items():
        b = shared_bounds(model, test.x, ks, draws=SIZES["draws"][q], seed=seed)
        rows.append([lib, parameters(model), secs, 1000 * secs / steps, b["ELBO"],
                     *[b[f"IWAE-{k}"] for k in ks]])
        print(lib, b, f"{secs:.1f} s", flush=True)
    report.table(
        "binarised digits test split (297 x 64 pixels), bits per dimension",
        ["library", "parameters", "train s", "ms / step", "-ELBO", *[f"-IWAE-{k}" for k in ks]],
        rows, kind="like-for-like", formats=[None, "d", ".1f", ".2f", *[".4f"] * (1 + len(ks))],
        note=f"MLP encoder 64-{width}-2x{latent} and decoder {latent}-{width}-64 (SiLU; "
        f"genlab's networks and initial weights in both), Bernoulli likelihood, Adam lr {lr}, "
        f"{steps} steps of batch {batch} on the same batches, seed {seed}, steps interleaved "
        "in one process. genlab minimises -ELBO per dimension, pythae per image (Adam is "
        "invariant to the scale). One evaluator scores both: -ELBO with the closed-form KL, "
        "-IWAE-K with K posterior draws.")
    users = user_runs(train, val, steps=SIZES["steps"][q], seed=seed)
    rows = []
    for lib, (model, secs, settings) in users.items():
        b = shared_bounds(model, test.x, ks, draws=SIZES["draws"][q], seed=seed)
        rows.append([lib, settings, parameters(model), secs, b["ELBO"], b[f"IWAE-{ks[-1]}"]])
        print(lib, b, f"{secs:.1f} s", flush=True)
    report.table(
        "binarised digits, each library's defaults at about equal wall time",
        ["library", "settings", "parameters", "train s", "-ELBO", f"-IWAE-{ks[-1]}"], rows,
        kind="user", formats=[None, None, "d", ".1f", ".4f", ".4f"],
        note="genlab: the recipe for images (its validation split, early stopping, best "
        "weights). pythae: VAEConfig and BaseTrainerConfig defaults through TrainingPipeline "
        "(best model on the validation split), reconstruction_loss='bce' (the default 'mse' "
        "is no likelihood of binary pixels); its epochs set from one timed epoch to match "
        "genlab's training time.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_arguments(parser)
    parser.add_argument("--runs", type=Path, default=Path("runs/bench-vae"),
                        help="run folders, reused when finished (--quick: a temporary folder)")
    parser.add_argument("--pixelcnn", type=Path, default=None,
                        help="a PixelCNN run on digits to code the test split with as well")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    q = int(args.quick)
    report = Report("vae", "VAE: bounds, bits-back coding and pythae's VAE", quick=args.quick,
                    versions={"pythae": getattr(pythae, "__version__", "0.1.2")})
    peers(report, args.quick, args.seed)

    tmp = tempfile.TemporaryDirectory()
    runs = Path(tmp.name) if args.quick else args.runs
    runs.mkdir(parents=True, exist_ok=True)
    steps, ks, draws = SIZES["steps"][q], SIZES["ks"][q], SIZES["draws"][q]
    moons = load_data("moons", split="test")
    model, secs, trained = train_run("moons", runs / "moons", steps)
    moon_ks = [k for k in ks if k <= 1000]
    b = bounds(model, moons, moon_ks, draws)
    nats = 2 * math.log(2)  # bits/dim -> nats per 2-D point
    report.table("moons test split (2-D, continuous): nats per point, lower is better",
                 ["model", "steps", "train s", "-ELBO", *[f"-IWAE-{k}" for k in moon_ks]],
                 [["vae (recipe)", trained, secs, b["ELBO"] * nats,
                   *[b[f"IWAE-{k}"] * nats for k in moon_ks]]],
                 formats=[None, "d", ".0f", *[".3f"] * (1 + len(moon_ks))])

    test = load_data("digits", split="test")
    rows, results = [], []
    for name, folder, params in (("vae (recipe: conv)", "recipe", {}),
                                 ("vae mlp", "mlp", {"network": "mlp", "width": 128,
                                                     "depth": 1})):
        model, secs, trained = train_run("digits", runs / folder, steps, **params)
        b = bounds(model, test, ks, draws)
        print(name, b, f"{secs:.0f} s", flush=True)
        rows.append([name, trained, secs, b["ELBO"], *[b[f"IWAE-{k}"] for k in ks]])
        results.append((name, runs / folder, b))
        report.bits(name, b["ELBO"], kind="bound", note="-ELBO")
        report.bits(name, b[f"IWAE-{ks[-1]}"], kind="bound", note=f"-IWAE-{ks[-1]}")
    report.table("digits test split (297 x 64 pixels, 17 levels): bits per dimension",
                 ["model", "steps", "train s", "-ELBO", *[f"-IWAE-{k}" for k in ks]], rows,
                 formats=[None, "d", ".0f", *[".4f"] * (1 + len(ks))])

    name, folder, b = min(results, key=lambda r: r[2]["ELBO"])
    bb = bits_back(folder, test, runs)
    print("bits-back", bb, flush=True)
    latent = load(folder).latent_size
    pixels = test.x.numpy().astype(np.uint8)
    gap = bb["coded"] / b["ELBO"] - 1
    rows = [["bits-back ANS (VAE, 2^12 buckets per latent)", bb["file"], b["ELBO"],
             bb["header"], bb["initial"], bb["coded"], 100 * gap, bb["exact"], bb["t_enc"],
             bb["t_dec"]],
            ["bz2 -9", 8 * len(bz2.compress(pixels.tobytes(), compresslevel=9)) / pixels.size,
             None, None, None, None, None, True, None, None]]
    if args.pixelcnn is not None:
        pixelcnn = load(args.pixelcnn)
        with torch.no_grad():
            nll = (-pixelcnn.log_prob(test.x).mean() / (64 * math.log(2))).item()
        rows.append([f"ANS with PixelCNN conditionals ({args.pixelcnn})",
                     8 * len(compress(pixelcnn, test.x)) / test.x.numel(), nll, None, None,
                     None, None, True, None, None])
    report.table(f"coding the digits test split with the best VAE ({name}), bits per pixel",
                 ["coder", "file", "model bound", "header", "initial bits", "coded",
                  "coded / -ELBO - 1 (%)", "round trip exact", "encode s", "decode s"], rows,
                 formats=[None, ".4f", ".4f", ".4f", ".4f", ".4f", "+.2f", None, ".1f", ".1f"],
                 note=f"Initial bits: {initial_bits(latent)} bits for the first image's "
                 "latent; the header and the initial bits are fixed costs "
                 "(genlab.compress.bitsback). The model bound of the VAE is its -ELBO, of the "
                 "PixelCNN its exact NLL.")
    report.target("bits-back: the coded part within 1% of the -ELBO", f"{100 * gap:+.2f}%",
                  abs(gap) <= 0.01, details=f"round trip exact: {bb['exact']}")
    report.write(args.out)
    tmp.cleanup()


if __name__ == "__main__":
    main()
