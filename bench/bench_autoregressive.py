"""Autoregressive models on digits: test bits per pixel against simpler families, and
transformer sampling speed with and without the key/value cache.

Every model is built by ``create(name, data=train, seed=0)`` and trained by ``fit(model, train,
val_data=val, out=RUN)`` with nothing else set: the family's recipe for images
(``genlab.recipes``), which is exactly what ``genlab train NAME --data digits --out RUN`` does
(``bench/bench_defaults.py`` checks that), except that each recipe's steps are capped at
``--max-steps`` (default 100: on the shared development machine, with a load of 18 on two
cores, the recipes' own 600-2000 steps take hours for the PixelCNN alone; 0 lifts the cap).
``--quick`` uses the recipes' quick settings (fewer steps, smaller networks) instead. The
table's last column gives the ``genlab train`` flags that reproduce each run. Training uses the
1350 training digits and keeps the weights with the best NLL on the 150 validation digits;
scores are on the 297 test digits (17 levels, 64 pixels) and, for comparison, on the training
digits themselves.

Autoregressive models give exact log-masses. The Gaussian mixture and the flows give the
uniform-dequantization bound of ONE noise draw: in eval mode each model dequantizes with its
own fixed, seeded noise (so repeated calls agree), and that one draw is what is reported; the
"±" is the standard error over the test images. The histogram is the per-pixel independent
table (exact). An "order ensemble" mixes K MADEs with different random orders,
``p(x) = (1/K) sum_k p_k(x)``: exact, but not autoregressive in one order (so not used by the
coder); ``ar_mixture`` mixes the four trained models, which share the raster order, with
weights fitted by EM on the validation split.

    OMP_NUM_THREADS=1 python bench/bench_autoregressive.py [--quick] [--out DIR] [--runs DIR]

Run folders go to ``--runs`` (default ``runs/bench-ar``, ``runs/bench-ar-quick`` with
``--quick``); ``bench/bench_compress.py`` codes with them. A run folder that holds a finished
run with the same configuration is loaded instead of retrained (``--retrain`` forces training).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

import genlab  # noqa: F401  (registers every family)
from _report import ROOT, Report, common_arguments
from genlab.data import load_data
from genlab.models.autoregressive import AutoregressiveMixture
from genlab.recipes import Recipe, recipe_for
from genlab.registry import create, get
from genlab.train import fit
from genlab.train.checkpoint import atomic_write_text, load, save_model

LN2 = math.log(2.0)
MODELS = ("made", "pixelcnn", "rnn", "transformer")
#: The simpler families and how they score discrete digits: the histogram is a discrete
#: table; the Gaussian mixture and the flows are continuous densities, dequantized.
BASELINES = {"histogram": "exact", "gmm": "bound", "glow": "bound", "maf": "bound"}
DONE = "bench_run.json"  # written last into a run folder: the run finished


def default_runs(quick: bool) -> Path:
    return ROOT / "runs" / ("bench-ar-quick" if quick else "bench-ar")


def bits_and_se(model, x: torch.Tensor) -> tuple[float, float]:
    """Mean bits per pixel over the images of ``x`` and its standard error over images."""
    model.eval()
    with torch.no_grad():
        per_image = model.bits_per_dim(x).double()  # (n,)
    return per_image.mean().item(), (per_image.std() / math.sqrt(len(per_image))).item()


def cli_flags(name: str, *, quick: bool, max_steps: int) -> tuple[dict, dict, list[str]]:
    """What a run changes from the family's recipe for images: constructor settings,
    training settings, and the same as ``genlab train`` flags."""
    recipe = recipe_for(get(name), "images") or Recipe()
    params = dict(recipe.quick_params) if quick else {}
    settings = dict(recipe.quick) if quick else {}
    if max_steps and "steps" in recipe.train:  # trained by SGD (closed forms have no steps)
        steps = settings.get("steps", recipe.train["steps"])
        if steps > max_steps:
            settings["steps"] = max_steps
    flags = [f"--param={k}={v}" for k, v in params.items()]
    flags += [f"--{k.replace('_', '-')}={v}" for k, v in settings.items()]
    return params, settings, flags


def train(name: str, data, val, folder: Path, *, quick: bool, max_steps: int,
          retrain: bool, seed: int = 0, **params):
    """The user's path: create + fit with the recipe, changed as :func:`cli_flags` says; a
    finished run in ``folder`` with the same configuration is loaded instead.
    Returns (model, training seconds, run record)."""
    changed, settings, _ = cli_flags(name, quick=quick, max_steps=max_steps)
    model = create(name, data=data, seed=seed, **changed, **params)
    key = json.loads(json.dumps({"model": name, "config": model.config, "settings": settings,
                                 "seed": seed}, default=str))
    done = folder / DONE
    if not retrain and done.is_file():
        record = json.loads(done.read_text())
        if record["key"] == key:
            return load(folder).eval(), record["seconds"], record
    start = time.perf_counter()
    extra = {} if model.closed_form else {"progress": False, "seed": seed}
    fit(model, data, val_data=val, out=folder, **settings, **extra)
    seconds = time.perf_counter() - start
    records = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    vals = [r for r in records if "val_bpd" in r]
    best = min(vals, key=lambda r: r["val_bpd"]) if vals else {"step": 0}
    record = {"key": key, "seconds": seconds, "best_step": best["step"],
              "last_step": records[-1]["step"] if records else 0}
    atomic_write_text(done, json.dumps(record, indent=1) + "\n")
    return load(folder).eval(), seconds, record


def ensemble_bits(models, x: torch.Tensor) -> tuple[float, float]:
    """-log2 of the equal mixture (1/K) sum_k p_k(x) per pixel: mean and standard error."""
    with torch.no_grad():
        lp = torch.stack([m.log_prob(x) for m in models]).double()  # (K, n)
        per_image = -(torch.logsumexp(lp, 0) - math.log(len(models))) / (64 * LN2)  # (n,)
    return per_image.mean().item(), (per_image.std() / math.sqrt(len(per_image))).item()


def sampling_speed(model, n: int, repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` seconds to draw n samples with and without the cache (interleaved)."""
    best = {"cached": math.inf, "uncached": math.inf}
    for r in range(repeats):
        for use_cache in (True, False):
            g = torch.Generator().manual_seed(r)
            start = time.perf_counter()
            model.sample(n, generator=g, use_cache=use_cache)
            key = "cached" if use_cache else "uncached"
            best[key] = min(best[key], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_arguments(parser)
    parser.add_argument("--runs", type=Path, default=None,
                        help="run folders (default runs/bench-ar, runs/bench-ar-quick)")
    parser.add_argument("--retrain", action="store_true", help="ignore finished run folders")
    parser.add_argument("--max-steps", type=int, default=100,
                        help="cap on each recipe's training steps; 0: the recipes' own")
    parser.add_argument("--ensemble", type=int, default=2, help="MADEs with random orders")
    parser.add_argument("--speed-n", type=int, default=128, help="images per sampling run")
    args = parser.parse_args()
    if args.quick:
        args.ensemble = 2
    runs = args.runs or default_runs(args.quick)
    how = {"quick": args.quick, "max_steps": args.max_steps, "retrain": args.retrain}
    report = Report("autoregressive", "Autoregressive models on digits: bits per pixel and "
                    "sampling speed", quick=args.quick, description=__doc__.split("\n\n")[1])

    data, val, test = (load_data("digits", split=s) for s in ("train", "val", "test"))
    rows = []  # model, likelihood, test bits, se, train bits, train s, best step, last step
    trained = {}

    def add(label, kind, test_bits, train_bits, seconds, record):
        flags = None if label not in (*MODELS, *BASELINES) else " ".join(
            cli_flags(label, quick=args.quick, max_steps=args.max_steps)[2])
        rows.append([label, kind, *test_bits, train_bits, test_bits[0] - train_bits, seconds,
                     record.get("best_step"), record.get("last_step"), flags])
        print(f"{label:40s} test {test_bits[0]:.3f} ± {test_bits[1]:.3f}, train "
              f"{train_bits:.3f} ({seconds:.0f} s)", flush=True)
        return test_bits

    def add_model(label, kind, model, seconds, record):
        return add(label, kind, bits_and_se(model, test.x), bits_and_se(model, data.x)[0],
                   seconds, record)

    for name in MODELS:
        model, seconds, record = train(name, data, val, runs / name, **how)
        trained[name] = model
        bits, se = add_model(name, "exact", model, seconds, record)
        report.bits(name, bits, kind="exact", error=se,
                    note="recipe's quick settings" if args.quick else
                    f"recipe for images, steps capped at {args.max_steps}" if args.max_steps
                    else "recipe for images")
    # The four models share the raster order, so their mixture is itself an autoregressive
    # model (posterior-weighted conditionals) that the coder can use.
    mixture = AutoregressiveMixture.from_models(list(trained.values())).eval()
    mixture.fit_weights(val.x)  # EM on the validation split
    save_model(mixture, runs / "ar_mixture", data=data.describe())
    weights = dict(zip(trained, mixture._log_weights().exp().tolist(), strict=True))
    bits, se = add_model(f"ar_mixture of the {len(trained)} models above (EM weights)",
                         "exact", mixture, sum(r[6] for r in rows if r[0] in trained), {})
    report.bits("ar_mixture (4 autoregressive models)", bits, kind="exact", error=se)
    members, seconds = [], 0.0
    for k in range(args.ensemble):
        member, s, _ = train("made", data, val, runs / f"made-order{k}", **how, seed=k,
                             order="random", order_seed=k)
        members.append(member)
        seconds += s
    if members:
        bits, se = add(f"made, {args.ensemble} random orders (equal mixture)", "exact",
                       ensemble_bits(members, test.x), ensemble_bits(members, data.x)[0],
                       seconds, {})
        report.bits(f"made, {args.ensemble}-order ensemble", bits, kind="exact", error=se)
    for name, likelihood in BASELINES.items():
        model, seconds, record = train(name, data, val, runs / name, **how)
        exact = likelihood == "exact"
        kind = "exact" if exact else "dequantization bound (one draw)"
        bits, se = add_model(name, kind, model, seconds, record)
        report.bits(f"{name} (autoregressive benchmark's baseline)", bits,
                    kind="exact" if exact else "bound", error=se,
                    note="" if exact else "one fixed dequantization draw")
    hist = next(r[2] for r in rows if r[0] == "histogram")
    table = [[*r[:4], r[2] / hist, *r[4:]] for r in rows]
    weights_text = ", ".join(f"{k} {v:.2f}" for k, v in weights.items())
    report.table(
        "digits test bits per pixel (297 images x 64 pixels, 17 levels)",
        ["model", "likelihood", "test bits/pixel", "± se", "vs histogram",
         "train-split bits/pixel", "test - train", "train time (s)", "best val step",
         "steps run", "genlab train flags"], table, kind="result",
        note=("Each model: its family's recipe for images through create + fit, changed only "
              "as the last column says (the same run is `genlab train NAME --data digits "
              "FLAGS`; " + ("the recipes' quick settings" if args.quick else
                            f"steps capped at {args.max_steps} to fit the CPU budget")
              + f"); one thread. ± is the standard error over test images. ar_mixture weights "
              f"(EM on validation): {weights_text}."),
        formats=[None, None, ".3f", ".3f", ".3f", ".3f", "+.3f", ".0f", None, None, None])

    speed = sampling_speed(trained["transformer"], args.speed_n, repeats=2)
    ratio = speed["uncached"] / speed["cached"]
    n_px = args.speed_n * 64
    report.table(f"transformer sampling, {args.speed_n} images x 64 pixels (best of 2, "
                 "interleaved)", ["", "seconds", "pixels/second"],
                 [["with key/value cache", speed["cached"], n_px / speed["cached"]],
                  ["without (re-run the prefix)", speed["uncached"], n_px / speed["uncached"]]],
                 kind="result", formats=[None, ".3f", ",.0f"])
    report.target("transformer sampling with the key/value cache >= 5x faster than without",
                  f"{ratio:.1f}x ({args.speed_n} images)", ratio >= 5.0)
    anchor = 2.19  # plain MADE on these digits, from the reference notes
    made = next(r[2] for r in rows if r[0] == "made")
    report.target("MADE below the plain-MADE figure of 2.19 bits/pixel",
                  f"MADE {made:.3f}", made < anchor)
    throughput = []
    for name, model in trained.items():
        start = time.perf_counter()
        model.sample(args.speed_n, generator=torch.Generator().manual_seed(0))
        throughput.append([name, n_px / (time.perf_counter() - start)])
    report.table(f"sampling throughput, {args.speed_n} images", ["model", "pixels/second"],
                 throughput, kind="result", formats=[None, ",.0f"])
    report.write(args.out)


if __name__ == "__main__":
    main()
