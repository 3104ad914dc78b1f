"""Linear probe benchmark: frozen features of every genlab family with an encoder, on digits.

Each family with ``has_encoder`` and a recipe for images is built and trained exactly as
``genlab train NAME --data digits`` would (``create(name, data=train)``, then ``fit`` with the
recipe's settings), on the training split without labels. Its features ``model.encode(x)``
are then frozen and probed (:func:`genlab.probe.probe`): a logistic regression on standardised
features with 1, 10, 100 and every label per class, seeded draws of the labelled subset (the
same subsets for every row), scored on the digits test split (the last 297 images), beside
raw pixels and PCA-16 given the same labels. Diffusion is also probed at several noise steps
t and through its DDIM-inverted latents x_T (its encoding options).

Budget: every family trains the recipe's full steps except those in ``REDUCED`` (the
autoregressive networks whose full recipes take hours on one core), which train a stated
fraction; the table's budget column says which. ``--quick`` trains every family a few steps.
A family registered later with an encoder is included with no edit here.

    OMP_NUM_THREADS=1 python bench/bench_probe.py [--quick] [--models made,ddpm]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

from _report import Report, common_arguments
from genlab import create, fit, load_data
from genlab.probe import DEFAULT_LABELS, probe
from genlab.recipes import recipe_for, train_settings
from genlab.registry import available, get

TARGET = 0.90
#: Fractions of the recipe's steps for families whose full recipe does not fit the budget.
REDUCED = {"pixelcnn": 0.01, "transformer": 0.05, "rnn": 0.05}
QUICK_STEPS = 10
STARTED = time.perf_counter()
#: Extra encodings probed beside a family's default (noise steps of the digits recipe, T=100).
EXTRA_OPTIONS: dict[str, list[dict[str, Any]]] = {
    "ddpm": [{"t": 0}, {"t": 30}, {"t": 60}, {"method": "ddim_inversion", "steps": 20}]}


def families(train) -> list[str]:
    """Registered models with an encoder and a recipe for ``train``'s kind of data: DDPM
    (the target) first, the reduced budgets last, so that a long run writes the most first."""
    names = [name for name in available() if not name.startswith("_")
             and get(name).has_encoder and recipe_for(get(name), train) is not None]
    return sorted(names, key=lambda n: (n != "ddpm", n in REDUCED, n))


def train_family(name: str, train, quick: bool, seed: int) -> tuple[Any, dict[str, Any]]:
    """The recipe's model and training settings, without the validation split: the last
    weights are kept (validating diffusion's bound costs more than its training here)."""
    torch.manual_seed(seed)
    model = create(name, data=train)
    settings = train_settings(model, train, has_val=False, seed=seed, progress=None)
    budget = "full"
    if "steps" in settings:
        full = settings["steps"]
        if quick:
            settings["steps"] = min(full, QUICK_STEPS)
        elif name in REDUCED:
            settings["steps"] = max(1, round(full * REDUCED[name]))
        if settings["steps"] != full:
            budget = f"reduced: {settings['steps']} of {full} steps"
    start = time.perf_counter()
    fit(model, train, **settings)
    return model, {"steps": settings.get("steps"), "budget": budget,
                   "train_s": time.perf_counter() - start}


def cells(scores: dict[str, Any], labels: list[str]) -> list[Any]:
    out = []
    for b in labels:
        out += [scores[b]["mean"], scores[b]["std"] if len(scores[b]["accuracies"]) > 1
                else None]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.add_argument("--models", help="comma-separated names (default: every encoder)")
    parser.add_argument("--draws", type=int, default=None, help="default 10 (--quick: 3)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    draws = args.draws or (3 if args.quick else 10)
    train = load_data("digits", split="train")
    test = load_data("digits", split="test")
    names = args.models.split(",") if args.models else families(train)
    labels = ["all" if k is None else str(k) for k in DEFAULT_LABELS]

    base = probe(None, train, test, labels=DEFAULT_LABELS, draws=draws, seed=args.seed)
    rows = [[rep, base.feature_sizes[rep], "–", None, None, *cells(scores, labels)]
            for rep, scores in base.to_dict()["scores"].items()]
    ten: dict[str, tuple[float, float, str]] = {}
    for name in names:
        print(f"training {name} ...", flush=True)
        model, info = train_family(name, train, args.quick, args.seed)
        for options in [{}, *EXTRA_OPTIONS.get(name, [])]:
            label = name + "".join(f" ({k}={v})" for k, v in options.items())
            result = probe(model, train, test, labels=DEFAULT_LABELS, draws=draws,
                           seed=args.seed, baselines=False, name=label, **options)
            scores = result.to_dict()["scores"][label]
            rows.append([label, result.feature_sizes[label], info["budget"], info["steps"],
                         info["train_s"], *cells(scores, labels)])
            ten[label] = (scores["10"]["mean"], scores["10"]["std"], info["budget"])
            print(f"  {label}: 10 labels {scores['10']['mean']:.3f}", flush=True)
        write(args, names, train, base, rows, ten, draws)  # a long run keeps what it measured
    write(args, names, train, base, rows, ten, draws)
    return 0


def write(args, names, train, base, rows, ten, draws) -> None:
    """The report of the rows measured so far (rewritten after every family)."""
    labels = ["all" if k is None else str(k) for k in DEFAULT_LABELS]
    report = Report("probe", "Linear probe on frozen features (digits)", quick=args.quick)
    report._started = STARTED
    columns = ["features", "k", "budget", "steps", "train s"]
    for b in labels:
        columns += [f"{b} / class", "±"]
    report.table(
        "digits test accuracy of a linear probe (297 images)", columns, rows,
        formats=[None, "d", None, "d", ".0f", *[".3f"] * (2 * len(labels))],
        note=f"Logistic regression (scikit-learn, C = 1) on standardised frozen features; mean "
        f"and std over {draws} seeded draws of the labelled subset (the same subsets in every "
        "row; 'all' is one fit). Every family is trained once (seed "
        f"{args.seed}) without labels with its digits recipe and no validation split (the last "
        "weights); only the classifier sees labels. Budget 'full' is the recipe's steps.")
    if "ddpm" in ten:
        mean, std, budget = ten["ddpm"]
        report.target(f"a family >= {TARGET:.2f} with 10 labels per class (DDPM features)",
                      f"{mean:.3f} ± {std:.3f} ({budget})", mean >= TARGET)
    if ten:
        best = max(ten, key=lambda k: ten[k][0])
        report.text(f"Best family row at 10 labels per class: {best}, "
                    f"{ten[best][0]:.3f} ({ten[best][2]} budget); raw pixels "
                    f"{base.to_dict()['scores']['pixels']['10']['mean']:.3f}.")
    measured = {label.split(" ")[0] for label in ten}
    missing = [n for n in families(train) if n not in measured]
    if missing:
        report.text("Families with an encoder not measured in this run: "
                    + ", ".join(missing) + ".")
    report.write(args.out)


if __name__ == "__main__":
    raise SystemExit(main())
