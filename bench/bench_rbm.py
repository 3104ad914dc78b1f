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
trainer reports as ``val_bpd`` for an RBM) and training time.

    OMP_NUM_THREADS=1 python bench/bench_rbm.py            # writes bench/results/rbm.md
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

from genlab import create, fit, load_data
from genlab.recipes import recipe_for, train_settings

VARIANTS = {
    "recipe (categorical, PCD-1)": {},
    "binomial units, PCD-1": {"visible": "binomial"},
    "categorical, CD-1": {"cd": "cd"},
}
DIMS_LN2 = 64 * math.log(2.0)


def measure(name: str, variant: dict, steps: int | None, seed: int) -> dict:
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
    for key, chains, temperatures in (("eval", 100, 1000), ("long", 200, 3000)):
        generator = torch.Generator().manual_seed(seed)
        start = time.perf_counter()
        log_z = model.log_z_estimate(chains=chains, temperatures=temperatures,
                                     generator=generator)
        row[f"{key}_s"] = time.perf_counter() - start
        nats = -model.log_prob_estimate(test.x, log_z=log_z).log_prob.double()  # (297,)
        row[key] = (nats.mean().item() / DIMS_LN2, log_z.stderr.item() / DIMS_LN2,
                    nats.std().item() / math.sqrt(len(nats)) / DIMS_LN2, log_z.ess.item())
    with torch.no_grad():
        pseudo = model.validation_loss(val.x, None).double().mean().item()
    row["val_pseudo_bpd"] = pseudo / math.log(2.0)
    return row


def table(rows: list[dict]) -> str:
    lines = [
        "| model | steps | test bits/dim (AIS 200 x 3000) | AIS error | test spread | ESS | "
        "bits/dim (AIS 100 x 1000, `genlab eval`) | val pseudo-NLL bits/dim | train s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        long, short = r["long"], r["eval"]
        lines.append(
            f"| {r['name']} | {r['steps']} | ≈ {long[0]:.3f} | ± {long[1]:.4f} | "
            f"± {long[2]:.3f} | {long[3]:.0f} / 200 | ≈ {short[0]:.3f} ± {short[1]:.4f} | "
            f"{r['val_pseudo_bpd']:.3f} | {r['train_s']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, help="training steps (default: the recipe's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "rbm.md"))
    args = parser.parse_args(argv)
    from genlab.models.rbm import RBM
    from genlab.train.checkpoint import atomic_write_text

    rows = []
    for name, variant in VARIANTS.items():
        rows.append(measure(name, variant, args.steps, args.seed))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    recipe = recipe_for(RBM, "images")
    text = f"""# RBM on digits: AIS estimate of the test log-likelihood

Produced by `bench/bench_rbm.py` (seed {args.seed}; {torch.get_num_threads()} thread(s),
torch {torch.__version__}). Every likelihood here is an **estimate**: `-F(x) - log Z` with
`log Z` from annealed importance sampling; the AIS error is the standard error of `log Z` in
bits per dimension (shared by all 297 test images), the test spread is `std / sqrt(297)`.
ESS: effective sample size of the importance weights, out of the chains.

Recipe: `{dict(recipe.params)}`, training `{dict(recipe.train)}`.

{table(rows)}
"""
    atomic_write_text(args.out, text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
