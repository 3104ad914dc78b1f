"""Linear probe benchmark: frozen features of every genlab family with an encoder, on digits.

Each family with ``has_encoder`` and a recipe for images is built and trained exactly as
``genlab train NAME --data digits`` would (``create(name, data=train)``, then ``fit`` with the
recipe's settings; ``--scale`` multiplies the steps), on the training split without labels.
Its features ``model.encode(x)`` are then frozen and probed (:func:`genlab.probe.probe`): a
logistic regression on standardised features with 1, 10, 100 and every label per class, 10
seeded draws of the labelled subset (the same subsets for every row), scored on the digits
test split (the last 297 images), beside raw pixels and PCA-16 given the same labels.
Diffusion is also probed at several noise steps t (its encoding option).

A family registered later with an encoder is included with no edit here.

Usage:
    python bench/bench_probe.py                      # every family, full recipes
    python bench/bench_probe.py --scale 0.5 --models made,ddpm
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from genlab import create, fit, load_data  # noqa: E402
from genlab.probe import DEFAULT_LABELS, probe  # noqa: E402
from genlab.recipes import recipe_for, train_settings  # noqa: E402
from genlab.registry import available, get  # noqa: E402
from genlab.train.checkpoint import atomic_write_text  # noqa: E402

RESULTS = ROOT / "bench" / "results"
#: Reference measured with the same protocol before genlab had encoders (10 labels per class).
REFERENCE = "raw pixels 0.812 ± 0.026 (10 labels), 0.892 (all); PCA-16 0.810 ± 0.023 (10 labels)"
TARGET = 0.90
#: Extra encodings probed beside a family's default (noise steps of the digits recipe, T=100).
EXTRA_OPTIONS: dict[str, list[dict[str, Any]]] = {"ddpm": [{"t": 0}, {"t": 30}, {"t": 60}]}


def families(train) -> list[str]:
    """Registered models with an encoder and a recipe for ``train``'s kind of data."""
    return [name for name in available() if not name.startswith("_")
            and get(name).has_encoder and recipe_for(get(name), train) is not None]


def train_family(name: str, train, scale: float, seed: int) -> tuple[Any, dict[str, Any]]:
    """The recipe's model and training settings, without the validation split: the last
    weights are kept (validating diffusion's bound costs more than its training here)."""
    torch.manual_seed(seed)
    model = create(name, data=train)
    settings = train_settings(model, train, has_val=False, seed=seed, progress=None)
    if "steps" in settings:
        settings["steps"] = max(1, int(round(settings["steps"] * scale)))
    start = time.perf_counter()
    fit(model, train, **settings)
    return model, {"steps": settings.get("steps"), "train_seconds": time.perf_counter() - start}


def row_text(name: str, scores: dict[str, Any], labels: list[str], k: int, info: str) -> str:
    cells = []
    for b in labels:
        s = scores[b]
        cells.append(f"{s['mean']:.3f} ± {s['std']:.3f}" if len(s["accuracies"]) > 1
                     else f"{s['mean']:.3f}")
    return f"| {name} | {k} | " + " | ".join(cells) + f" | {info} |"


def write_results(doc: dict[str, Any], out: Path) -> None:
    labels = doc["labels_per_class"]
    lines = [
        "# Linear probe on frozen features (digits)",
        "",
        f"Written by `{doc['command'].strip()}`. Test accuracy on the digits test split (297 "
        f"images) of a logistic regression on standardised frozen features, mean ± std over "
        f"{doc['draws']} seeded draws of the labelled subset (the same subsets in every row; "
        "'all' is one fit). Every family is trained without labels with its digits recipe "
        f"(steps x {doc['scale']}, no validation split: the last weights); only the classifier "
        "sees labels.",
        "",
        f"Reference before encoders: {REFERENCE}. Target: some family >= {TARGET:.2f} with 10 "
        "labels per class.",
        "",
        "| features | k | " + " | ".join(f"{b} / class" for b in labels)
        + " | training |",
        "|---|---:|" + "---:|" * len(labels) + "---|",
    ]
    for row in doc["rows"]:
        info = (f"{row['steps']} steps, {row['train_seconds']:.0f} s" if "steps" in row
                else "—")
        lines.append(row_text(row["name"], row["scores"], labels, row["k"], info))
    best = max((r for r in doc["rows"] if r["name"] not in ("pixels", "pca16")),
               key=lambda r: r["scores"]["10"]["mean"], default=None)
    if best is not None:
        verdict = "reaches" if best["scores"]["10"]["mean"] >= TARGET else "misses"
        lines += ["", f"Best family row at 10 labels per class: **{best['name']}**, "
                  f"{best['scores']['10']['mean']:.3f}: {verdict} the {TARGET:.2f} target."]
    missing = doc.get("missing") or []
    if missing:
        lines += ["", "Families with an encoder not measured in this run (out of time): "
                  + ", ".join(missing) + "."]
    lines += ["", doc["notes"], ""]
    atomic_write_text(out / "probe.md", "\n".join(lines))
    atomic_write_text(out / "probe.json", json.dumps(doc, indent=2) + "\n")


NOTES = """## How to read it, and what limits it

* One training run per family (seed 0) with the recipe's steps times the scale above, on two
  CPU cores shared with other jobs (the training seconds are wall-clock under that load);
  the spread is over the labelled subsets only, not over trainings.
  Features of a longer-trained or larger model may differ in either direction: the recipes
  are tuned for likelihood or samples, not for representations.
* The classifier is fixed: scikit-learn's `LogisticRegression` with its default L2 strength
  (C = 1), no tuning (1 label per class leaves nothing to tune on). High-dimensional features
  (the UNet bottleneck, the PixelCNN's pooled maps) get the same C as 16 PCA components.
* 297 test images: one image is 0.34 points of accuracy; the binomial standard error of an
  accuracy near 0.85 is about 0.02, comparable to the spread over draws.
* What each row is: `docs/probe.md`."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="comma-separated names (default: every encoder)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply training steps")
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--rewrite", action="store_true",
                        help="only rewrite probe.md from the probe.json of an earlier run, "
                             "naming the families it did not reach")
    args = parser.parse_args(argv)
    train = load_data("digits", split="train")
    test = load_data("digits", split="test")
    names = args.models.split(",") if args.models else families(train)
    out = Path(args.out)
    if args.rewrite:
        doc = json.loads((out / "probe.json").read_text())
        measured = {row["name"].split(" ")[0] for row in doc["rows"]}
        doc["missing"] = [n for n in families(train) if n not in measured]
        doc["notes"] = NOTES
        write_results(doc, out)
        return 0
    doc: dict[str, Any] = {
        "labels_per_class": ["all" if k is None else str(k) for k in DEFAULT_LABELS],
        "draws": args.draws, "seed": args.seed, "scale": args.scale, "rows": [],
        "command": "python bench/bench_probe.py " + " ".join(sys.argv[1:] if argv is None
                                                             else argv),
        "notes": NOTES,
    }
    base = probe(None, train, test, labels=DEFAULT_LABELS, draws=args.draws, seed=args.seed)
    for rep, scores in base.to_dict()["scores"].items():
        doc["rows"].append({"name": rep, "k": base.feature_sizes[rep], "scores": scores})
    for name in names:
        print(f"training {name} ...", flush=True)
        model, info = train_family(name, train, args.scale, args.seed)
        for options in [{}, *EXTRA_OPTIONS.get(name, [])]:
            label = name + "".join(f" ({k}={v})" for k, v in options.items())
            result = probe(model, train, test, labels=DEFAULT_LABELS, draws=args.draws,
                           seed=args.seed, baselines=False, name=label, **options)
            scores = result.to_dict()["scores"][label]
            doc["rows"].append({"name": label, "k": result.feature_sizes[label],
                                "scores": scores, "options": options, **info})
            print(f"  {label}: 10 labels {scores['10']['mean']:.3f} ± {scores['10']['std']:.3f},"
                  f" all {scores['all']['mean']:.3f}", flush=True)
        write_results(doc, out)  # after every family: a long run keeps what it measured
    write_results(doc, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
