"""What a user trains from the command line, beside what the benchmark reports.

Runs the README's commands with no extra flags (``genlab train NAME --data digits --out R``,
then ``genlab eval R``) in this process through the real CLI entry point, and compares each
model's digits test bits/pixel with the figure ``bench/bench_autoregressive.py`` wrote into
``bench/results/autoregressive.md`` (read from that file's table). Both go through
``create(name, data=...)`` and ``fit`` with the family's recipe, so they should agree to the
seed; the target is within 5%. Extra rows run a README command with one flag changed (for
example ``--steps 3000``, 1.5x the recipe's steps) to show that training longer keeps the best
validation weights instead of an overfitted model.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_defaults.py --out bench/results/defaults.md

``--only histogram,gmm,maf,glow --out bench/results/defaults_baselines.md`` runs the other
families' rows (a few minutes).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import re
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from genlab.cli import main as genlab

HERE = Path(__file__).resolve().parent
BENCH_TABLE = HERE / "results" / "autoregressive.md"
RUNS = [  # (label, model, extra CLI flags)
    ("made", "made", []),
    ("rnn", "rnn", []),
    ("transformer", "transformer", []),
    ("pixelcnn", "pixelcnn", []),
    ("pixelcnn --steps 3000", "pixelcnn", ["--steps", "3000"]),
    # the other families' rows of the same table (likelihood or dequantization bound)
    ("histogram", "histogram", []),
    ("gmm", "gmm", []),
    ("maf", "maf", []),
    ("glow", "glow", []),
]


def bench_figures(path: Path) -> dict[str, float]:
    """model -> test bits/pixel from the table bench_autoregressive.py wrote."""
    figures = {}
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"\d+\.\d+", cells[2]):
            figures.setdefault(cells[0], float(cells[2]))
    return figures


def run(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = genlab(argv)
    if code != 0:
        raise SystemExit(f"genlab {' '.join(argv)} failed with exit code {code}")
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated labels of RUNS to run")
    parser.add_argument("--runs", type=Path, default=None, help="keep run folders here")
    parser.add_argument("--out", type=Path, default=None, help="write a markdown report")
    args = parser.parse_args()
    wanted = set(args.only.split(",")) if args.only else None
    reference = bench_figures(BENCH_TABLE)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.runs or Path(tmp)
        for label, model, flags in RUNS:
            if wanted is not None and label not in wanted:
                continue
            folder = root / label.replace(" ", "").replace("--", "-")
            argv = ["train", model, "--data", "digits", *flags, "--out", str(folder), "--quiet"]
            start = time.perf_counter()
            summary = run(argv)
            seconds = time.perf_counter() - start
            run(["eval", str(folder), "--n-samples", "297"])
            result = json.loads((folder / "eval.json").read_text())
            records = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
            vals = [r for r in records if "val_bpd" in r]
            best = min(vals, key=lambda r: r["val_bpd"])
            warning = next((r["warning"] for r in reversed(vals) if "warning" in r), "")
            ref = reference.get(model, float("nan"))
            bits = result["bits_per_dim"]
            rows.append((label, bits, result["bits_per_dim_stderr"], ref, bits / ref - 1.0,
                         best["step"], records[-1]["step"], warning, seconds))
            print(f"{label}: {bits:.3f} bits/pixel (benchmark {ref:.3f}); {summary.strip()}",
                  flush=True)
    if args.out is not None:
        write_report(args, rows)


def write_report(args, rows) -> None:
    revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=HERE).stdout.strip()
    lines = [
        "# What the command line delivers",
        "",
        "Command: `OMP_NUM_THREADS=1 .venv/bin/python bench/bench_defaults.py"
        + (f" --only {args.only}" if args.only else "") + "`  ",
        f"Revision {revision}, {time.strftime('%Y-%m-%d')}, {platform.machine()}, "
        f"{torch.get_num_threads()} torch thread(s), torch {torch.__version__}.",
        "",
        "Each row is `genlab train MODEL --data digits [flags] --out R` then `genlab eval R`, "
        "nothing else set: the family's recipe for images. 'benchmark' is the figure "
        "bench_autoregressive.py wrote into results/autoregressive.md. Target: within 5%.",
        "",
        "| command | test bits/pixel (± se) | benchmark | difference | within 5% | best val step "
        "| stopped at | warning | seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, bits, se, ref, diff, best, last, warning, seconds in rows:
        lines.append(f"| `{label}` | {bits:.3f} ± {se:.3f} | {ref:.3f} | {diff:+.1%} | "
                     f"{'yes' if abs(diff) <= 0.05 else 'no'} | {best} | {last} | "
                     f"{warning or '-'} | {seconds:.0f} |")
    args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
