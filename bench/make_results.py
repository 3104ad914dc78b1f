"""Build ``bench/RESULTS.md`` from the JSON files the benchmark scripts wrote.

Every row comes from a ``results/*.json`` file (see ``bench/_report.py``); prose that reads the
numbers lives between the ``<!-- notes -->`` markers of RESULTS.md and is kept as found.

    .venv/bin/python bench/make_results.py [--results bench/results]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _report import NOTES, RESULTS, atomic_write, bits_cell, markdown_table, met_word

ORDER = ("bits", "defaults", "histogram", "histogram_dims", "gmm", "flows", "autoregressive",
         "compress", "gan", "diffusion", "vae", "rbm", "probe", "conditional", "lab")


def load_reports(folder: Path) -> list[dict]:
    reports = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))
               if not p.name.startswith(".")]
    reports = [r for r in reports if isinstance(r, dict) and "meta" in r and "name" in r]
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(reports, key=lambda r: (rank.get(r["name"], len(ORDER)), r["name"]))


def run_cell(meta: dict) -> str:
    return f"{'quick' if meta['quick'] else 'full'}, {meta['date'][:10]}, {meta['git_revision']}"


def build(folder: Path, old: str = "") -> str:
    reports = load_reports(folder)
    rel = Path("results") if folder.resolve() == RESULTS.resolve() else folder
    out = ["# Benchmark results", "",
           "<!-- Written by bench/make_results.py from results/*.json; do not edit by hand, "
           "except between the notes markers. -->", "",
           "Every number below was written by a committed script under `bench/` (see "
           "[README.md](README.md)); `bench/run` reruns them all (`--quick` for reduced sizes) "
           "and rebuilds this page. Each results file starts with the exact command, git "
           "revision, date, machine, threads and load of its run; the *run* column says "
           "whether a row comes from a full or a quick run.", ""]
    rows = []
    for r in reports:
        for t in r["targets"]:
            rows.append([f"[{r['title']}]({rel / (r['name'] + '.md')})", t["target"],
                         t["measured"], met_word(t["met"]), run_cell(r["meta"])])
    out += ["## Targets", "", markdown_table(["area", "target", "measured", "met?", "run"], rows)
            if rows else "No results yet: run `bench/run`.", ""]
    bits = [(r, b) for r in reports for b in r["bits"]]
    if bits:
        bits.sort(key=lambda rb: (rb[1]["data"], rb[1]["bits_per_dim"]
                                  if isinstance(rb[1]["bits_per_dim"], (int, float)) else 1e9))
        out += ["## Every family's bits per dimension", "",
                "Lower is better. *exact*: the model's own log-likelihood; *bound*: an upper "
                "bound on the true bits/dim (ELBO, diffusion bound, dequantized continuous "
                "models); *estimate*: an annealed-importance-sampling estimate with its error.",
                "", markdown_table(
                    ["data", "model", "bits/dim", "kind", "from", "note"],
                    [[b["data"], b["model"], bits_cell(b), b["kind"],
                      f"[{r['name']}]({rel / (r['name'] + '.md')})", b["note"]]
                     for r, b in bits]), ""]
    out += ["## Results files", "", markdown_table(
        ["file", "what", "run", "wall (s)", "load at start"],
        [[f"[{r['name']}.md]({rel / (r['name'] + '.md')})", r["title"], run_cell(r["meta"]),
          r["meta"].get("wall_seconds"), f"{r['meta']['load_start'][0]:.1f}"]
         for r in reports]), ""]
    kept = NOTES.search(old)
    out += [kept.group(0) if kept else "<!-- notes -->\n<!-- /notes -->", ""]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(RESULTS))
    parser.add_argument("--out", default=str(RESULTS.parent / "RESULTS.md"))
    args = parser.parse_args()
    out = Path(args.out)
    atomic_write(out, build(Path(args.results), out.read_text() if out.exists() else ""))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
