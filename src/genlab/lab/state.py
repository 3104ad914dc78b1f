"""What one lab server holds: its runs folder, training jobs and comparisons.

:class:`Lab` turns the page's requests, once checked (:mod:`genlab.lab.requests`), into
run folders and worker processes; the routes in :mod:`genlab.lab.app` only translate HTTP.
"""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from genlab.errors import ConfigError
from genlab.lab import requests as checks
from genlab.lab.compare import CompareJob
from genlab.lab.jobs import Jobs
from genlab.lab.runs_table import LAB_FILE, read_json, safe_path
from genlab.train import checkpoint as ckpt


class Lab:
    """The state of one server: its runs folder, training jobs and comparisons."""

    def __init__(self, root: Path, *, warm: bool = True) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.jobs = Jobs(self.root, spare=warm)
        self.compares: dict[str, CompareJob] = {}
        self.samples: dict[tuple, bytes] = {}
        self.samples_lock = threading.Lock()

    def new_run_dir(self, stem: str) -> tuple[str, Path]:
        base = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        for i in range(1000):
            name = base if i == 0 else f"{base}-{i}"
            path = self.root / name
            try:
                path.mkdir(parents=True)
            except FileExistsError:
                continue
            return name, path
        raise ConfigError(f"Expected a free run folder name near {base}, found none.")

    # ---------------------------------------------------------------- jobs
    def start_job(self, body: dict[str, Any]) -> dict[str, Any]:
        from genlab.data import available_datasets, load_data

        name, params, train = checks.check_model(body.get("model"), body.get("params"),
                                                 body.get("train"))
        bounds = checks.check_bounds(body.get("bounds"))
        data = body.get("data") or {}
        conditional = bool(body.get("conditional"))
        spec: dict[str, Any] = {"model": name, "params": params, "train": train,
                                "conditional": conditional, "bounds": bounds,
                                "grid": 64, "seed": int(train.get("seed", 0)),
                                "watched": False}  # until a page follows it
        if "points" in data:
            x = checks.check_points(data["points"])
            if conditional:
                raise ConfigError("Expected a toy set with labels for a conditional "
                                         "model, but found drawn points (no labels).")
            run, run_dir = self.new_run_dir(f"drawn-{name}")
            buffer = io.BytesIO()
            np.save(buffer, x, allow_pickle=False)
            ckpt.atomic_write_bytes(run_dir / "points.npy", buffer.getvalue())
            spec["data"] = str(run_dir / "points.npy")
        else:
            toy = [n for n in available_datasets() if n != "digits"]
            if data.get("name") not in toy:
                raise ConfigError(f"Expected data to be one of {', '.join(toy)} or "
                                         f"drawn points, but found {data.get('name')!r}.")
            spec["data"] = data["name"]
            if conditional:
                spec["num_classes"] = load_data(data["name"], n=64).num_classes
            run, run_dir = self.new_run_dir(f"{data['name']}-{name}")
        label = body.get("label")
        spec["label"] = label if isinstance(label, int) and not isinstance(label, bool) else None
        return self.jobs.start(run, run_dir, spec).summary()

    def resume(self, relative: str) -> dict[str, Any]:
        run_dir = safe_path(self.root, relative)
        record = read_json(run_dir / LAB_FILE)
        if not record or not (run_dir / ckpt.TRAINER_STATE_FILE).is_file():
            raise ConfigError(f"Expected a lab run with a checkpoint, but {relative!r} "
                                     "has none.")
        if self.jobs.live_for(relative) is not None:
            raise ConfigError(f"Expected a run at rest, but {relative!r} is training.")
        spec = {k: record[k] for k in ("model", "params", "train", "data", "conditional",
                                       "bounds") if k in record}
        spec.update(resume=True, grid=64, watched=False,
                    seed=int((record.get("train") or {}).get("seed", 0)))
        return self.jobs.start(relative, run_dir, spec).summary()

    # ---------------------------------------------------------------- runs
    def samples_png(self, relative: str, label: int | None) -> bytes:
        """The run's samples picture (``genlab plot RUN --kind samples``), cached."""
        import tempfile

        import torch

        from genlab import load
        from genlab.viz.run import plot_samples

        run_dir = safe_path(self.root, relative)
        weights = run_dir / ckpt.WEIGHTS_FILE
        if not weights.is_file():
            raise ConfigError(f"Expected trained weights in {relative!r}, found none.")
        key = (relative, label, weights.stat().st_mtime_ns)
        with self.samples_lock:
            if key in self.samples:
                return self.samples[key]
            model = load(run_dir)
            if model.y_is_conditions:
                png = self._conditioned_samples_png(model, run_dir, label)
                self.samples[key] = png
                return png
            generator = torch.Generator().manual_seed(0)
            points = model.event_shape == (2,)
            n = 1000 if points else 64
            y = None
            if model.conditional:
                y = torch.full((n,), label) if label is not None else \
                    torch.arange(n) % model.num_classes
            samples = model.sample(n, y, generator=generator).cpu()
            data = None
            if points:
                from genlab.runs import run_data

                data = run_data(run_dir, "test").x
            with tempfile.TemporaryDirectory() as tmp:
                path = plot_samples(model, samples, Path(tmp) / "samples.png", data=data,
                                    generator=generator)
                png = path.read_bytes()
            self.samples[key] = png
            return png

    @staticmethod
    def _conditioned_samples_png(model: Any, run_dir: Path, label: int | None) -> bytes:
        """Samples of a run trained with conditions, each beside the sketch (or other image)
        of the test digit whose conditions it was drawn under."""
        import tempfile

        from genlab.viz.run import plot_run

        if label is not None:
            raise ConfigError(f"Expected no label for a run with conditions "
                              f"{model.conditions} (its samples follow test digits' "
                              f"conditions), but found label={label}.")
        with tempfile.TemporaryDirectory() as tmp:
            (path,) = plot_run(model, run_dir, Path(tmp) / "samples.png", "samples")
            return path.read_bytes()

    def start_compare(self, body: dict[str, Any]) -> dict[str, Any]:
        from genlab.data import available_datasets
        from genlab.registry import available

        datasets, models = body.get("data"), body.get("models")
        scale = body.get("scale", 1.0)
        if not isinstance(datasets, list) or not datasets or \
                not set(datasets) <= set(available_datasets()):
            raise ConfigError(f"Expected data sets among {available_datasets()}, but "
                                     f"found {datasets!r}.")
        if not isinstance(models, list) or not models or not set(models) <= set(available()):
            raise ConfigError(f"Expected models among {available()}, but found "
                                     f"{models!r}.")
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) \
                or not 0 < scale <= 10:
            raise ConfigError(f"Expected scale in (0, 10], but found {scale!r}.")
        relative, out = self.new_run_dir("compare")
        job = CompareJob(f"c{len(self.compares)}", out, relative, datasets, models,
                         float(scale))
        self.compares[job.id] = job
        return job.state()

    def close(self) -> None:
        for job in self.compares.values():
            job.stop()
        self.jobs.close()
