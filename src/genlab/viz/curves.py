"""Training curves from a run's ``metrics.jsonl``: one panel per family of logged quantities.

The trainer writes one JSON object per logged step, e.g.
``{"step": 100, "time": 1.2, "loss_nll": 1.31, "grad_norm_nll": 0.8, "lr_nll": 0.001}``
and, at validation steps, ``"val_nll"`` and ``"val_bpd"``. Keys are grouped by prefix:

* ``loss...`` -- training loss of each objective (discriminator and generator for GANs);
* ``val_...`` -- validation NLL per dim and bits per dim;
* ``lr...`` -- learning rate of each objective;
* ``grad_norm...`` -- gradient norm of each objective, before clipping;
* everything else numeric (family logs such as mean D(x)) -- one more panel.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from genlab.errors import DataError
from genlab.viz.core import new_figure, save_figure

#: (panel title, key prefixes) in display order; a key joins the first family it matches.
FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("training loss", ("loss",)),
    ("validation", ("val",)),
    ("learning rate", ("lr",)),
    ("gradient norm", ("grad_norm",)),
)
_NOT_PLOTTED = {"step", "time", "epoch", "wall_time"}
PANEL_PX = (400, 300)  # width, height of one panel


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Records of a ``metrics.jsonl`` file; a truncated last line (a run in progress) is skipped.

    Raises:
        DataError: the file is missing, or a line other than the last is not JSON.
    """
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as error:
        raise DataError(f"Cannot read metrics file {str(path)!r}: {error.strerror}.") from None
    records = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break  # being written right now
            raise DataError(f"Expected one JSON object per line in {str(path)!r}, but line "
                            f"{i + 1} is not JSON.") from None
        if isinstance(record, dict):
            records.append(record)
    return records


def _family(key: str) -> str:
    for title, prefixes in FAMILIES:
        for prefix in prefixes:
            if key == prefix or key.startswith((prefix + "_", prefix + "/")):
                return title
    return "other logs"


def training_curves_figure(records: list[dict[str, Any]]) -> Figure:
    """The figure of :func:`plot_training_curves` from already-read records."""
    series: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for index, record in enumerate(records):
        step = record.get("step", index)
        for key, value in record.items():
            if key in _NOT_PLOTTED or isinstance(value, bool) or not isinstance(value, (int,
                                                                                      float)):
                continue
            steps, values = series.setdefault(_family(key), {}).setdefault(key, ([], []))
            steps.append(step)
            values.append(value if math.isfinite(value) else math.nan)
    if not series:
        raise DataError("Expected logged numbers to plot, but found none.")
    order = [title for title, _ in FAMILIES] + ["other logs"]
    panels = [title for title in order if title in series]
    ncols = min(3, len(panels))
    rows = math.ceil(len(panels) / ncols)
    fig = new_figure(ncols * PANEL_PX[0], rows * PANEL_PX[1])
    for i, title in enumerate(panels):
        ax = fig.add_subplot(rows, ncols, i + 1)
        for key, (steps, values) in sorted(series[title].items()):
            marker = "o" if len(steps) < 30 else None  # sparse series (validation) get dots
            ax.plot(steps, values, label=key, marker=marker, markersize=3, linewidth=1)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_training_curves(metrics_jsonl_path: str | os.PathLike[str],
                         out: str | os.PathLike[str]) -> Path:
    """Save the training curves of a run as a PNG and return its path.

    Arguments:
        metrics_jsonl_path: A run's ``metrics.jsonl`` (or the run folder holding it).
        out: Output ``.png`` path (written atomically).

    Returns:
        The path of the PNG: up to 3 panels of 400 x 300 pixels per row.

    Raises:
        DataError: the file is missing or malformed, or logs no numbers.
    """
    path = Path(metrics_jsonl_path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    return save_figure(training_curves_figure(read_metrics(path)), out)
