"""The runs folder as the lab sees it: safe paths inside it, and one row per run.

A run is any folder under the runs folder that holds a ``config.json`` (what ``genlab
train``, ``genlab compare`` and the lab all write). The browser names runs by their path
relative to the runs folder; :func:`safe_path` refuses anything that would leave it
(``..``, absolute paths, links pointing out).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from genlab.errors import ConfigError
from genlab.train import checkpoint as ckpt

#: The lab's own record of a run it started (request, state, error), beside config.json.
LAB_FILE = "lab.json"
#: Comparison metrics shown in the runs table (keys of eval.json / results.json rows).
METRICS = ("bits_per_dim", "nll_nats", "mmd2", "sliced_wasserstein", "energy_distance",
           "precision", "recall", "modes_hit", "memorization_ratio")
#: How deep under the runs folder runs are looked for (a compare writes OUT/runs/NAME).
MAX_DEPTH = 4


class PathRefused(ConfigError):
    """A path from the browser that points outside the runs folder."""


def safe_path(root: Path, relative: str) -> Path:
    """``root / relative`` resolved, if it stays inside ``root``.

    Raises:
        PathRefused: an absolute path, a ``..`` part, a NUL byte, or a link out of ``root``.
    """
    parts = Path(relative).parts if relative else ()
    if "\x00" in relative or Path(relative).is_absolute() or ".." in parts \
            or relative.startswith(("/", "\\")):
        raise PathRefused(f"Expected a path inside the runs folder, but found {relative!r}.")
    root = root.resolve()
    path = (root / relative).resolve()
    if path != root and root not in path.parents:
        raise PathRefused(f"Expected a path inside the runs folder, but found {relative!r}.")
    return path


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; an empty dict when it is missing or unreadable."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def find_runs(root: Path) -> list[Path]:
    """Every run folder under ``root`` (hidden folders skipped), sorted by path: those with a
    ``config.json``, and those the lab started that ended before their first checkpoint."""
    root = root.resolve()
    found = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        depth = len(here.relative_to(root).parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if depth < MAX_DEPTH else []
        if (ckpt.CONFIG_FILE in files or LAB_FILE in files) and here != root:
            found.append(here)
    return sorted(found)


def _last_step(run: Path) -> int | None:
    """The step of the last line of ``metrics.jsonl`` (read from its end)."""
    path = run / ckpt.METRICS_FILE
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue
    return None


def _compare_row(run: Path, model: str) -> dict[str, Any]:
    """The run's row of the ``results.json`` a ``genlab compare`` wrote two folders up."""
    results = read_json(run.parent.parent / "results.json")
    data = run.name.removesuffix(f"-{model}")
    for row in results.get(data, []) if isinstance(results.get(data), list) else []:
        if isinstance(row, dict) and row.get("model") == model:
            return row
    return {}


def run_row(root: Path, run: Path) -> dict[str, Any]:
    """One row of the runs table: names, progress, state and comparison metrics."""
    config = read_json(run / ckpt.CONFIG_FILE)
    lab = read_json(run / LAB_FILE)
    model = str(config.get("model") or lab.get("model") or "?")
    data = (config.get("data") or {}).get("name") or lab.get("data") or "?"
    metrics = read_json(run / "eval.json") or _compare_row(run, model)
    steps = (lab.get("train") or {}).get("steps")
    state = lab.get("state") or "done"
    if state == "running":  # written by a lab that is no longer there
        state = "interrupted"
    row = {
        "run": run.relative_to(root.resolve()).as_posix(),
        "model": model,
        "data": Path(data).name if os.sep in str(data) or "/" in str(data) else data,
        "step": _last_step(run),
        "steps": steps,
        "state": state,
        "error": lab.get("error"),
        "conditional": (config.get("config") or {}).get("num_classes") is not None,
        "num_classes": (config.get("config") or {}).get("num_classes"),
        "points": list((config.get("config") or {}).get("event_shape") or []) == [2],
        "modified": run.stat().st_mtime,
        "from": "lab" if lab else "cli",
    }
    for key in METRICS:
        value = metrics.get(key)
        row[key] = value if isinstance(value, (int, float)) else None
    return row


def table(root: Path) -> list[dict[str, Any]]:
    """Rows of every run under ``root``."""
    return [run_row(root, run) for run in find_runs(root)]


def reports(root: Path) -> list[str]:
    """Paths (relative to ``root``) of every ``report.html`` a ``genlab compare`` wrote."""
    root = root.resolve()
    out = []
    for folder, dirs, files in os.walk(root):
        depth = len(Path(folder).relative_to(root).parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if depth < 2 else []
        if "report.html" in files:
            out.append((Path(folder) / "report.html").relative_to(root).as_posix())
    return sorted(out)
