"""One way for every benchmark to write its results.

A script builds a :class:`Report` while it measures and ends with ``report.write(out_dir)``,
which writes ``NAME.json`` (every value, unrounded, with the run's metadata) and ``NAME.md``
(rendered from that JSON alone). ``bench/make_results.py`` then builds ``RESULTS.md`` from the
JSON files. Nothing under ``bench/results/`` is edited by hand, with one exception: prose that
reads the numbers goes between ``<!-- notes -->`` and ``<!-- /notes -->`` in a results file,
and :meth:`Report.write` keeps that block as it finds it. Tables never hold prose.

Tables carry a kind:

* ``"like-for-like"``: the contenders share architecture, parameter count, optimizer,
  schedule, steps, data and seeds; only the library differs.
* ``"user"``: what a user gets: each library's recommended defaults for the task, at equal
  wall time (or as stated in the table's note).
* ``"result"``: genlab alone (no ratio to a peer).

Example::

    report = Report("gmm", "Gaussian-mixture EM", quick=args.quick,
                    versions={"scikit-learn": sklearn.__version__})
    report.table("digits, full covariances", ["library", "time (s)", "test log-lik"],
                 [["genlab", 0.12, 35.9], ["scikit-learn", 0.31, 35.3]],
                 kind="like-for-like", formats=[None, ".3f", ".2f"])
    report.target("EM time <= 0.5x scikit-learn's, likelihood at least as good",
                  "0.39x, +0.6 nats", met=True)
    report.bits("gmm", 2.944, kind="bound")
    report.write(args.out)
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
KINDS = {"like-for-like": "Like for like", "user": "What a user gets", "result": "Result"}
NOTES = re.compile(r"<!-- notes -->.*?<!-- /notes -->", re.S)
BITS_KINDS = ("exact", "bound", "estimate")


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def metadata(quick: bool, versions: dict[str, str] | None = None) -> dict[str, Any]:
    """What a reader needs to rerun and judge a result: command, revision, machine, load."""
    import genlab

    changed = [line for line in _git("status", "--porcelain", "--untracked-files=no").splitlines()
               if "bench/results/" not in line and not line.endswith("bench/RESULTS.md")]
    rev = _git("rev-parse", "--short=12", "HEAD") or "unknown"
    threads = os.environ.get("OMP_NUM_THREADS")
    script = Path(sys.argv[0]).resolve()
    try:
        script_name = str(script.relative_to(ROOT))
    except ValueError:
        script_name = sys.argv[0]
    command = " ".join([*([f"OMP_NUM_THREADS={threads}"] if threads else []), "python",
                        shlex.join([script_name, *sys.argv[1:]])])
    return {
        "command": command,
        "git_revision": rev + ("+local changes" if changed else ""),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{_cpu_model()}, {os.cpu_count()} logical cores, {platform.system()}",
        "threads": {"torch": torch.get_num_threads(), "OMP_NUM_THREADS": threads},
        "load_start": list(os.getloadavg()),
        "quick": bool(quick),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "numpy": np.__version__, "genlab": genlab.__version__, **(versions or {})},
    }


def _plain(value: Any) -> Any:
    """JSON-able copy: numpy and torch scalars to Python numbers, NaN/inf to strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.generic, torch.Tensor)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


def format_cell(value: Any, spec: str | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)) and spec:
        return format(value, spec)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]],
                   formats: Sequence[str | None] | None = None) -> str:
    formats = list(formats or [None] * len(columns))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [format_cell(v, f) for v, f in zip(row, formats, strict=True)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def met_word(met: bool | None) -> str:
    return {True: "yes", False: "no", None: "reported"}[met]


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class Report:
    """Results of one benchmark script; see the module docstring."""

    def __init__(self, name: str, title: str, *, quick: bool = False, description: str = "",
                 versions: dict[str, str] | None = None) -> None:
        if not re.fullmatch(r"[a-z0-9_\-]+", name):
            raise ValueError(f"Expected a report name of [a-z0-9_-], but found {name!r}.")
        self.name, self.title, self.description = name, title, description
        self.meta = metadata(quick, versions)
        self._started = time.perf_counter()
        self.sections: list[dict[str, Any]] = []
        self.targets: list[dict[str, Any]] = []
        self.bits_rows: list[dict[str, Any]] = []

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *,
              kind: str = "result", note: str = "",
              formats: Sequence[str | None] | None = None) -> None:
        """A table of measured values; ``kind`` is ``"like-for-like"``, ``"user"`` or
        ``"result"``; ``formats`` are per-column format specs for the markdown only."""
        if kind not in KINDS:
            raise ValueError(f"Expected kind in {sorted(KINDS)}, but found {kind!r}.")
        for row in rows:
            if len(row) != len(columns):
                raise ValueError(f"Expected {len(columns)} cells per row, but found {len(row)}.")
        if formats is not None and len(formats) != len(columns):
            raise ValueError(f"Expected {len(columns)} formats, but found {len(formats)}.")
        self.sections.append({"type": "table", "title": title, "kind": kind, "note": note,
                              "columns": list(columns), "rows": _plain(list(rows)),
                              "formats": list(formats) if formats else None})

    def text(self, text: str) -> None:
        """A paragraph the script writes from its numbers (a verdict, a computed summary)."""
        self.sections.append({"type": "text", "text": text})

    def figure(self, path: str | Path, caption: str) -> None:
        """A picture the script wrote, relative to the output folder."""
        self.sections.append({"type": "figure", "path": str(path), "caption": caption})

    def target(self, target: str, measured: str, met: bool | None, *, details: str = "") -> None:
        """A target from the issue tracker's list beside what this run measured."""
        self.targets.append({"target": target, "measured": measured, "met": met,
                             "details": details})

    def bits(self, model: str, value: float, *, kind: str = "exact", error: float | None = None,
             data: str = "digits test", note: str = "") -> None:
        """A bits/dim figure for the every-family table in RESULTS.md."""
        if kind not in BITS_KINDS:
            raise ValueError(f"Expected kind in {BITS_KINDS}, but found {kind!r}.")
        self.bits_rows.append({"model": model, "bits_per_dim": _plain(value), "kind": kind,
                               "error": _plain(error), "data": data, "note": note})

    def to_json(self) -> dict[str, Any]:
        meta = dict(self.meta, wall_seconds=round(time.perf_counter() - self._started, 1),
                    load_end=list(os.getloadavg()))
        return {"name": self.name, "title": self.title, "description": self.description,
                "meta": meta, "sections": self.sections, "targets": self.targets,
                "bits": self.bits_rows}

    def write(self, out_dir: str | Path = RESULTS) -> Path:
        """Write ``NAME.json`` and ``NAME.md`` into ``out_dir``; returns the markdown path."""
        out_dir = Path(out_dir)
        data = self.to_json()
        atomic_write(out_dir / f"{self.name}.json", json.dumps(data, indent=1) + "\n")
        md_path = out_dir / f"{self.name}.md"
        old = md_path.read_text() if md_path.exists() else ""
        kept = NOTES.search(old)
        atomic_write(md_path, render(data, kept.group(0) if kept else None))
        print(f"wrote {md_path} and {self.name}.json")
        return md_path


def meta_lines(meta: dict[str, Any]) -> list[str]:
    load = "/".join(f"{v:.1f}" for v in meta["load_start"])
    load_end = "/".join(f"{v:.1f}" for v in meta.get("load_end", []))
    threads = meta["threads"]
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    return [
        f"- command: `{meta['command']}`" + (" (quick: reduced sizes)" if meta["quick"] else ""),
        f"- git revision {meta['git_revision']}, {meta['date']}, "
        f"{meta.get('wall_seconds', '?')} s wall",
        f"- machine: {meta['machine']}; torch threads {threads['torch']}, "
        f"OMP_NUM_THREADS={threads['OMP_NUM_THREADS']}",
        f"- load average (1/5/15 min) at start {load}, at end {load_end}",
        f"- versions: {versions}",
    ]


def render(data: dict[str, Any], notes: str | None = None) -> str:
    """The markdown of one report, from its JSON alone."""
    out = [f"# {data['title']}", "",
           "<!-- Written by the script named below from its JSON; do not edit by hand, except "
           "between the notes markers. -->", ""]
    if data["description"]:
        out += [data["description"], ""]
    out += meta_lines(data["meta"]) + [""]
    if data["targets"]:
        out += ["## Targets", "", markdown_table(
            ["target", "measured", "met?", "details"],
            [[t["target"], t["measured"], met_word(t["met"]), t["details"]]
             for t in data["targets"]]), ""]
    for s in data["sections"]:
        if s["type"] == "table":
            out += [f"## {KINDS[s['kind']]}: {s['title']}", ""]
            if s["note"]:
                out += [s["note"], ""]
            out += [markdown_table(s["columns"], s["rows"], s["formats"]), ""]
        elif s["type"] == "text":
            out += [s["text"], ""]
        else:
            out += [f"![{s['caption']}]({s['path']})", "", f"*{s['caption']}*", ""]
    if data["bits"]:
        out += ["## Bits per dimension (for the every-family table)", "", markdown_table(
            ["model", "data", "bits/dim", "kind", "note"],
            [[b["model"], b["data"], bits_cell(b), b["kind"], b["note"]] for b in data["bits"]]),
            ""]
    out += [notes or "<!-- notes -->\n<!-- /notes -->", ""]
    return "\n".join(out)


def bits_cell(row: dict[str, Any]) -> str:
    value = row["bits_per_dim"]
    text = f"{value:.3f}" if isinstance(value, (int, float)) else str(value)
    if row["kind"] == "estimate":
        text = "≈ " + text
    elif row["kind"] == "bound":
        text = "≤ " + text
    if row["error"] is not None:
        text += f" ± {row['error']:.2g}"
    return text


def common_arguments(parser: Any, default_out: str | Path = RESULTS) -> None:
    """``--quick`` and ``--out``, which bench/run passes to every script."""
    parser.add_argument("--quick", action="store_true",
                        help="reduced sizes: the whole bench/run --quick takes minutes")
    parser.add_argument("--out", default=str(default_out),
                        help="folder for NAME.json and NAME.md (default bench/results)")
