"""What a user trains from the command line, beside what the benchmark reports.

Runs the README's commands (``genlab train NAME --data digits FLAGS --out R``, then ``genlab
eval R``) in this process through the real CLI entry point, and compares each model's digits
test bits/pixel with the figure ``bench/bench_autoregressive.py`` wrote into
``autoregressive.json`` in the same ``--out`` folder. FLAGS are the ones that report's table
gives for the model: what its run changed from the recipe (a step cap; with ``--quick`` the
recipe's quick settings, ``--steps`` and ``--param``). Both paths go through ``create(name,
data=..., seed=0)`` and ``fit`` with the family's recipe, so they should agree to the seed;
the target is within 5%. Extra rows give 1.5x the steps (MADE; with ``--all`` also the
PixelCNN), to show that training longer keeps the best validation weights instead of an
overfitted model.

Without ``--all`` the cheaper rows run (the baselines and MADE); ``--all`` adds the RNN, the
transformer and the PixelCNN (tens of minutes on one core); ``--quick`` runs every row. Run the
autoregressive benchmark first, with the same ``--quick`` and ``--out``.

    OMP_NUM_THREADS=1 python bench/bench_defaults.py [--quick] [--all] [--out DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
import time
from pathlib import Path

import genlab  # noqa: F401  (registers every family)
from _report import Report, common_arguments
from genlab.cli import main as genlab_cli
from genlab.recipes import Recipe, recipe_for
from genlab.registry import get

#: (label, model, steps multiplier, only with --all)
RUNS = [
    ("histogram", "histogram", 1.0, False),
    ("gmm", "gmm", 1.0, False),
    ("maf", "maf", 1.0, False),
    ("glow", "glow", 1.0, False),
    ("made", "made", 1.0, False),
    ("made, 1.5x steps", "made", 1.5, False),
    ("rnn", "rnn", 1.0, True),
    ("transformer", "transformer", 1.0, True),
    ("pixelcnn", "pixelcnn", 1.0, True),
    ("pixelcnn, 1.5x steps", "pixelcnn", 1.5, True),
]


def cli(argv: list[str]) -> str:
    """Run ``genlab ARGV`` in this process; its standard output."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = genlab_cli(argv)
    if code != 0:
        raise SystemExit(f"genlab {' '.join(argv)} failed with exit code {code}")
    return out.getvalue()


def steps_flag(model: str, flags: list[str], multiplier: float) -> list[str]:
    """``flags`` with ``--steps`` times ``multiplier`` (from the recipe's steps if unset)."""
    if multiplier == 1.0:
        return flags
    given = [f for f in flags if f.startswith("--steps=")]
    recipe = recipe_for(get(model), "images") or Recipe()
    steps = int(given[0].split("=")[1]) if given else recipe.train.get("steps", 1000)
    return [f for f in flags if f not in given] + [f"--steps={round(steps * multiplier)}"]


def benchmark_figures(path: Path, quick: bool) -> dict[str, tuple[float, list[str]]]:
    """model -> (test bits/pixel, genlab train flags) from the autoregressive report's first
    table, when that report was run with the same ``quick``."""
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    if data["meta"]["quick"] != quick:
        return {}
    table = next(s for s in data["sections"] if s["type"] == "table")
    bits, flags = (table["columns"].index(c) for c in ("test bits/pixel", "genlab train flags"))
    return {row[0]: (row[bits], row[flags].split()) for row in table["rows"]
            if row[flags] is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_arguments(parser)
    parser.add_argument("--all", action="store_true",
                        help="also the RNN, transformer and PixelCNN rows (tens of minutes)")
    parser.add_argument("--runs", type=Path, default=None, help="keep run folders here")
    args = parser.parse_args()
    report = Report("defaults", "What the command line delivers", quick=args.quick,
                    description=__doc__.split("\n\n")[1])
    source = Path(args.out) / "autoregressive.json"
    reference = benchmark_figures(source, args.quick)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.runs or Path(tmp)
        for label, model, multiplier, heavy in RUNS:
            if heavy and not (args.all or args.quick):
                continue
            folder = root / label.replace(" ", "").replace(",", "-")
            if model not in reference:
                print(f"{label}: no benchmark figure in {source}, skipped", flush=True)
                continue
            ref, given = reference[model]
            extra = steps_flag(model, given, multiplier)
            argv = ["train", model, "--data", "digits", *extra, "--out", str(folder),
                    "--quiet"]
            start = time.perf_counter()
            cli(argv)
            seconds = time.perf_counter() - start
            cli(["eval", str(folder), "--n-samples", "64"])
            result = json.loads((folder / "eval.json").read_text())
            records = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
            vals = [r for r in records if "val_bpd" in r]
            best = min(vals, key=lambda r: r["val_bpd"]) if vals else {"step": 0}
            warning = next((r["warning"] for r in reversed(vals) if "warning" in r), "")
            bits = result["bits_per_dim"]
            diff = 100 * (bits / ref - 1.0)
            rows.append([f"genlab train {model} --data digits {' '.join(extra)}".strip(), bits,
                         result["bits_per_dim_stderr"], ref, diff,
                         abs(diff) <= 5.0 if multiplier == 1.0 else None, best["step"],
                         records[-1]["step"], warning or None, seconds])
            print(f"{label}: {bits:.3f} bits/pixel (benchmark {ref:.3f}) in {seconds:.0f} s",
                  flush=True)
    report.table(
        "digits test bits/pixel from the command line against the benchmark",
        ["command", "test bits/pixel", "± se", "benchmark", "difference (%)", "within 5%",
         "best val step", "stopped at", "warning", "seconds"], rows, kind="result",
        note="Each row: the command shown, then `genlab eval R` (its bits/pixel on the 297 test "
             f"digits). 'benchmark': the same model's figure in {source.name}, whose flags "
             "each command repeats (" + ("the recipes' quick settings" if args.quick else
                                         "the recipes, steps capped") + "); a command with "
             "1.5x the steps is shown beside that same figure but is not part of the target.",
        formats=[None, ".3f", ".3f", ".3f", "+.1f", None, None, None, None, ".0f"])
    same = [r for r in rows if r[5] is not None]  # the benchmark's own commands
    if same:
        worst = max(same, key=lambda r: abs(r[4]))
        report.target("`genlab train NAME --data digits` within 5% of the benchmark figure",
                      f"largest difference {worst[4]:+.1f}% ({len(same)} commands)",
                      all(r[5] for r in same))
    else:
        report.target("`genlab train NAME --data digits` within 5% of the benchmark figure",
                      f"no benchmark figure in {source} (run bench_autoregressive.py "
                      "with the same --quick and --out first)", None)
    report.write(args.out)


if __name__ == "__main__":
    main()
