"""RBM on digits: the test split's log-likelihood, estimated by annealed importance sampling.

An RBM has no exact likelihood and no bound: ``log p(x) = -F(x) - log Z`` with ``log Z``
estimated by AIS (Salakhutdinov & Murray 2008). The table gives bits per dimension on the
digits test split (last 297 images) with two errors: the AIS standard error of ``log Z``
(shared by every test image, so it does not average out) and the spread over test images
(``std / sqrt(n)``). ``log Z`` is estimated twice, with ``genlab eval``'s defaults (100 chains,
1,000 intermediate distributions) and with 200 chains and 3,000 distributions: the two agreeing
within their errors is the check that the annealing is long enough.

Rows: the recipe (``genlab train rbm --data digits``: categorical visible units, PCD-1, 128
hidden units), and the same with binomial visible units, and with CD-1 instead of PCD-1.
Each is built by ``create("rbm", data=train, **variant)`` and trained by ``fit`` with the
recipe's settings, as ``genlab train`` does. Also: the validation pseudo-likelihood (what the
trainer reports as ``val_pseudo_bpd`` for an RBM) and training time.

    OMP_NUM_THREADS=1 python bench/bench_rbm.py [--quick]   # writes bench/results/rbm.{md,json}
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import torch

from _report import Report, common_arguments
from genlab import create, fit, load_data
from genlab.recipes import recipe_for, train_settings

VARIANTS = {
    "recipe (categorical, PCD-1)": {},
    "binomial units, PCD-1": {"visible": "binomial"},
    "categorical, CD-1": {"cd": "cd"},
}
DIMS_LN2 = 64 * math.log(2.0)
#: (key, chains, intermediate distributions) of the two AIS runs, full and --quick.
AIS = {False: (("eval", 100, 1000), ("long", 200, 3000)),
       True: (("eval", 50, 200), ("long", 100, 600))}


def measure(name: str, variant: dict, steps: int | None, seed: int, quick: bool) -> dict:
    train, val, test = (load_data("digits", split=s) for s in ("train", "val", "test"))
    torch.manual_seed(seed)
    model = create("rbm", data=train, **variant)
    settings = train_settings(model, train, has_val=True, seed=seed, progress=False)
    if steps is not None:
        settings["steps"] = steps
    start = time.perf_counter()
    fit(model, train, val_data=val, **settings)
    seconds = time.perf_counter() - start
    row = {"name": name, "steps": settings["steps"], "train_s": seconds}
    for key, chains, temperatures in AIS[quick]:
        generator = torch.Generator().manual_seed(seed)
        start = time.perf_counter()
        log_z = model.log_z_estimate(chains=chains, temperatures=temperatures,
                                     generator=generator)
        row[f"{key}_s"] = time.perf_counter() - start
        nats = -model.log_prob_estimate(test.x, log_z=log_z).log_prob.double()  # (297,)
        row[key] = (nats.mean().item() / DIMS_LN2, log_z.stderr.item() / DIMS_LN2,
                    nats.std().item() / math.sqrt(len(nats)) / DIMS_LN2, log_z.ess.item(),
                    chains, temperatures)
    with torch.no_grad():
        pseudo = model.validation_loss(val.x, None).double().mean().item()
    row["val_pseudo_bpd"] = pseudo / math.log(2.0)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_arguments(parser)
    parser.add_argument("--steps", type=int,
                        help="training steps (default: the recipe's; --quick: 500)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from genlab.models.rbm import RBM

    steps = args.steps if args.steps is not None else (500 if args.quick else None)
    report = Report("rbm", "RBM on digits: AIS estimate of the test log-likelihood",
                    quick=args.quick)
    rows = [measure(name, variant, steps, args.seed, args.quick)
            for name, variant in VARIANTS.items()]
    (_, short_chains, short_t), (_, long_chains, long_t) = AIS[args.quick]
    recipe = recipe_for(RBM, "images")
    report.table(
        "digits test split (297 images), bits per dimension (estimates)",
        ["model", "steps", f"AIS {long_chains} x {long_t}", "AIS error", "test spread",
         f"ESS (of {long_chains})", f"AIS {short_chains} x {short_t}", "its AIS error",
         "val pseudo-NLL bits/dim", "train s"],
        [[r["name"], r["steps"], r["long"][0], r["long"][1], r["long"][2], r["long"][3],
          r["eval"][0], r["eval"][1], r["val_pseudo_bpd"], r["train_s"]] for r in rows],
        formats=[None, "d", ".3f", ".4f", ".3f", ".0f", ".3f", ".4f", ".3f", ".0f"],
        note=f"Seed {args.seed}. Every likelihood is an estimate, -F(x) - log Z with log Z from "
        "annealed importance sampling: the AIS error is the standard error of log Z in bits per "
        "dimension (shared by all 297 test images), the test spread std / sqrt(297); ESS is "
        "the effective sample size of the importance weights. The short run is what `genlab "
        f"eval` does. Recipe: {dict(recipe.params)}, training {dict(recipe.train)}.")
    for r in rows:
        long, short = r["long"], r["eval"]
        gap, err = abs(long[0] - short[0]), math.hypot(long[1], short[1])
        report.text(f"{r['name']}: the two AIS runs differ by {gap:.4f} bits/dim, "
                    f"{gap / err:.1f} times their combined error ({err:.4f}).")
    best = rows[0]
    report.bits("rbm (recipe)", best["long"][0], kind="estimate",
                error=math.hypot(best["long"][1], best["long"][2]),
                note=f"AIS {long_chains} x {long_t}; error: AIS and test spread in quadrature")
    report.write(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
