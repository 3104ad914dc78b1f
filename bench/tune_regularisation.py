"""Weight decay for the flows on digits, chosen on the validation split (never the test).

1,350 training digits are few for a flow: every recipe for images keeps its best-validation
weights, and this script asks whether decoupled weight decay (AdamW) on top helps. Each flow
is trained with its recipe and ``optimizer="adamw"`` at several ``weight_decay`` values; the
table reports the best validation bits/dim of each run (what the recipe's early stopping
keeps). The value with the lowest validation NLL is the one to put in the recipe; the test
split is not looked at.

    OMP_NUM_THREADS=1 .venv/bin/python bench/tune_regularisation.py \\
        --out bench/results/regularisation.md
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from genlab import create, fit, load_data

HERE = Path(__file__).resolve().parent
MODELS = ("maf", "nsf", "realnvp", "glow")
DECAYS = (0.0, 1e-4, 1e-3, 1e-2)


def best_val_bpd(folder: Path) -> tuple[float, int]:
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    best = min((r for r in records if "val_bpd" in r), key=lambda r: r["val_bpd"])
    return best["val_bpd"], best["step"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    train, val = load_data("digits"), load_data("digits", split="val")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            for decay in DECAYS:
                torch.manual_seed(0)
                model = create(name, data=train)
                folder = Path(tmp) / f"{name}-{decay}"
                start = time.perf_counter()
                fit(model, train, val_data=val, out=folder, optimizer="adamw",
                    weight_decay=decay, progress=False, seed=0)
                bpd, step = best_val_bpd(folder)
                rows.append((name, decay, bpd, step, time.perf_counter() - start))
                print(f"{name} weight_decay={decay:g}: best val {bpd:.4f} bits/dim at step "
                      f"{step}", flush=True)
    if args.out is not None:
        write(args, rows)


def write(args, rows) -> None:
    revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=HERE).stdout.strip()
    lines = ["# Weight decay for the flows on digits, chosen on the validation split", "",
             "Command: `OMP_NUM_THREADS=1 .venv/bin/python bench/tune_regularisation.py"
             + ("" if args.models == ",".join(MODELS) else f" --models {args.models}")
             + " --out bench/results/regularisation.md`  ",
             f"Revision {revision}, {time.strftime('%Y-%m-%d')}, {platform.machine()}, "
             f"{torch.get_num_threads()} torch thread(s), torch {torch.__version__}.", "",
             "Each flow's recipe for images with AdamW at the given decoupled weight decay; "
             "best validation bits/dim over the run (150 validation digits). Lowest per model "
             "in bold.", "",
             "| model | weight_decay | best val bits/dim | at step | seconds |",
             "|---|---|---|---|---|"]
    best = {}
    for name, _, bpd, _, _ in rows:
        best[name] = min(best.get(name, float("inf")), bpd)
    for name, decay, bpd, step, seconds in rows:
        value = f"**{bpd:.4f}**" if bpd == best[name] else f"{bpd:.4f}"
        lines.append(f"| {name} | {decay:g} | {value} | {step} | {seconds:.0f} |")
    args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
