"""Weight decay for the flows on digits, chosen on the validation split (never the test).

1,350 training digits are few for a flow: every recipe for images keeps its best-validation
weights, and this script asks whether decoupled weight decay (AdamW) on top helps. Each flow
is trained with its recipe and ``optimizer="adamw"`` at several ``weight_decay`` values; the
table reports the best validation bits/dim of each run (what the recipe's early stopping
keeps). The value with the lowest validation NLL is the one to put in the recipe; the test
split is not looked at.

    OMP_NUM_THREADS=1 python bench/tune_regularisation.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from _report import Report, common_arguments
from genlab import create, fit, load_data

MODELS = ("maf", "nsf", "realnvp", "glow")
DECAYS = (0.0, 1e-3, 1e-2)
QUICK_STEPS = 40  # --quick: every model and decay, this many steps each (recipe otherwise)


def best_val_bpd(folder: Path) -> tuple[float, int]:
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    best = min((r for r in records if "val_bpd" in r), key=lambda r: r["val_bpd"])
    return best["val_bpd"], best["step"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_arguments(parser)
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    report = Report("regularisation", "Weight decay for the flows on digits (validation split)",
                    quick=args.quick, description=__doc__.split("\n\n")[1])
    train, val = load_data("digits"), load_data("digits", split="val")
    extra = {"steps": QUICK_STEPS, "val_every": QUICK_STEPS // 4} if args.quick else {}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            runs = []
            for decay in DECAYS:
                model = create(name, data=train, seed=0)
                folder = Path(tmp) / f"{name}-{decay}"
                start = time.perf_counter()
                fit(model, train, val_data=val, out=folder, optimizer="adamw",
                    weight_decay=decay, progress=False, seed=0, **extra)
                bpd, step = best_val_bpd(folder)
                runs.append([name, decay, bpd, step, time.perf_counter() - start])
                print(f"{name} weight_decay={decay:g}: best val {bpd:.4f} bits/dim at step "
                      f"{step}", flush=True)
            lowest = min(r[2] for r in runs)
            rows += [[*r[:3], r[2] - lowest, *r[3:], r[2] == lowest] for r in runs]
    report.table("best validation bits/dim per weight decay",
                 ["model", "weight_decay", "best val bits/dim", "minus the model's lowest",
                  "at step", "seconds", "lowest?"], rows, kind="result",
                 formats=[None, "g", ".4f", ".4f", None, ".0f", None],
                 note="Each flow's recipe for images (steps, batch, lr, patience, best weights) "
                 "with AdamW at the given decoupled weight decay; best validation bits/dim "
                 "over the run (150 validation digits), seed 0."
                 + (f" Quick: {QUICK_STEPS} steps per run." if args.quick else ""))
    report.write(args.out)


if __name__ == "__main__":
    main()
