"""The lab's web server: a Starlette app over a runs folder.

Routes (JSON unless said otherwise):

* ``GET /`` the page; ``GET /static/...`` its scripts and styles (package data).
* ``GET /api/models`` models for 2-D points with their declared settings; ``GET
  /api/data/{name}`` a preview of a toy set; ``POST /api/upload`` points from a CSV or
  ``.npy`` file.
* ``POST /api/jobs`` start a training; ``POST /api/jobs/{id}/control`` pause, resume, step,
  stop, label; ``GET /api/jobs/{id}/events`` its updates as Server-Sent Events; ``GET
  /api/jobs`` the jobs of this server.
* ``GET /api/runs`` the runs table; ``GET /api/runs/metrics?run=`` a run's
  ``metrics.jsonl``; ``GET /api/runs/samples.png?run=`` its samples; ``POST
  /api/runs/resume``.
* ``POST /api/compare`` start ``genlab compare``; ``GET /api/compare/{id}`` its progress.
* ``GET /files/{path}`` files inside the runs folder (reports and their pictures).

Every path from the browser goes through :func:`~genlab.lab.runs_table.safe_path`; request
bodies are size-limited; state-changing requests from another origin are refused.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from genlab.errors import ConfigError, GenlabError
from genlab.lab import requests as checks
from genlab.lab.compare import CompareJob
from genlab.lab.jobs import FINAL, Jobs
from genlab.lab.runs_table import LAB_FILE, PathRefused, read_json, reports, safe_path, table
from genlab.train import checkpoint as ckpt

STATIC = Path(__file__).parent / "static"
#: Largest JSON body (drawn points included).
MAX_JSON = 2 << 20
#: Files of the runs folder the browser may read.
SERVED = (".html", ".png", ".json", ".jsonl", ".md", ".csv", ".txt")
#: How much of a body over its limit is read (and dropped) before the refusal.
DRAIN = 4
#: Seconds between checks for news on an event stream.
POLL_S = 0.05


class TooLarge(GenlabError):
    """A request body over its limit."""


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused once it passes ``limit`` bytes.

    Past the limit the rest is read and dropped, up to ``DRAIN`` times the limit, so the
    client hears the refusal instead of a reset connection; nothing past it is kept.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > DRAIN * limit:
        raise TooLarge(f"Expected at most {limit} bytes, but found {declared}.")
    body, size = bytearray(), 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            body.extend(chunk)
        elif size > DRAIN * limit:
            break
    if size > limit:
        raise TooLarge(f"Expected at most {limit} bytes, but found {size}.")
    return bytes(body)


async def read_json_body(request: Request) -> dict[str, Any]:
    body = await read_body(request, MAX_JSON)
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        raise ConfigError("Expected a JSON body, but found something else.") from None
    if not isinstance(value, dict):
        raise ConfigError("Expected a JSON object, but found another value.")
    return value


def error_response(err: Exception) -> JSONResponse:
    status = 403 if isinstance(err, PathRefused) else 413 if isinstance(err, TooLarge) else 400
    return JSONResponse({"error": " ".join(str(err).split())}, status_code=status)


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
                                "grid": 64, "seed": int(train.get("seed", 0))}
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
        spec.update(resume=True, grid=64, seed=int((record.get("train") or {}).get("seed", 0)),
                    reset_stop=record.get("state") in ("stopped", "running"))
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


def create_app(root: str | Path, *, warm: bool = True) -> Starlette:
    """The lab's ASGI app over the runs folder ``root``.

    Arguments:
        root: The runs folder (created if missing).
        warm: Keep a spare worker process started, so a training starts without waiting for
            torch to import (False: start each worker when its training starts).
    """
    lab = Lab(Path(root), warm=warm)

    def guarded(handler):
        async def endpoint(request: Request) -> Response:
            if request.method != "GET":
                origin = request.headers.get("origin")
                host = request.headers.get("host", "")
                if origin is not None and origin.split("://", 1)[-1] != host:
                    return JSONResponse({"error": "Expected a request from the lab's own "
                                         f"page, but found origin {origin!r}."}, 403)
            try:
                return await handler(request)
            except GenlabError as err:
                return error_response(err)
        return endpoint

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def favicon(request: Request) -> Response:
        return Response(status_code=204)  # pages it serves (reports) ask for one

    async def models(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(checks.catalogue))

    async def data_preview(request: Request) -> Response:
        from genlab.data import available_datasets, load_data

        name = request.path_params["name"]
        if name not in available_datasets() or name == "digits":
            raise ConfigError(f"Expected a toy 2-D data set, but found {name!r}.")
        data = await run_in_threadpool(load_data, name, "train", n=1000)
        labels = None if data.y is None else data.y.tolist()
        return JSONResponse({"name": name, "points": np.round(data.x.numpy(), 3).tolist(),
                             "labels": labels, "num_classes": data.num_classes})

    async def upload(request: Request) -> Response:
        body = await read_body(request, checks.MAX_UPLOAD)
        x = checks.read_upload(body, request.headers.get("content-type", ""))
        return JSONResponse({"points": np.round(x, 4).tolist()})

    async def jobs_list(request: Request) -> Response:
        return JSONResponse([job.summary() for job in lab.jobs.all()])

    async def jobs_start(request: Request) -> Response:
        body = await read_json_body(request)
        return JSONResponse(await run_in_threadpool(lab.start_job, body))

    def job_of(request: Request):
        job = lab.jobs.get(request.path_params["job"])
        if job is None:
            raise ConfigError(f"Expected a job of this server, but found "
                                     f"{request.path_params['job']!r}.")
        return job

    async def job_control(request: Request) -> Response:
        job = job_of(request)
        body = await read_json_body(request)
        cmd, value = body.get("cmd"), body.get("value")
        if cmd not in ("pause", "resume", "step", "stop", "label"):
            raise ConfigError(f"Expected pause, resume, step, stop or label, but found "
                                     f"{cmd!r}.")
        if cmd == "label" and value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ConfigError(f"Expected a class label >= 0, but found {value!r}.")
        sent = job.command(cmd, value)
        return JSONResponse({**job.summary(), "sent": sent})

    async def job_events(request: Request) -> Response:
        job = job_of(request)

        async def stream():
            job.watch(+1)
            points_seen, pictures_seen, version = 0, -1, -1
            try:
                while True:
                    if job.version != version:
                        update = job.since(points_seen, pictures_seen)
                        version = update["version"]
                        points_seen = update["points_total"]
                        pictures_seen = update["pictures"]
                        yield f"data: {json.dumps(update, allow_nan=False)}\n\n"
                        if update["status"] in FINAL:
                            break
                    await asyncio.sleep(POLL_S)
            finally:
                job.watch(-1)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    async def runs(request: Request) -> Response:
        rows = await run_in_threadpool(table, lab.root)
        live = {job.run: job.id for job in lab.jobs.all() if job.status not in FINAL}
        for row in rows:
            row["job"] = live.get(row["run"])
            if row["job"] is not None:
                row["state"] = "training"
        return JSONResponse({"runs": rows, "reports": await run_in_threadpool(reports,
                                                                               lab.root)})

    async def run_metrics(request: Request) -> Response:
        from genlab.viz.curves import read_metrics

        run_dir = safe_path(lab.root, request.query_params.get("run", ""))
        path = run_dir / ckpt.METRICS_FILE
        records = await run_in_threadpool(read_metrics, path) if path.is_file() else []
        return JSONResponse([{k: v for k, v in r.items() if k == "step" or (
            k.startswith(("loss_", "val_nll")) and isinstance(v, (int, float)))}
            for r in records], headers={"Cache-Control": "no-store"})

    async def run_samples(request: Request) -> Response:
        label = request.query_params.get("label")
        label = int(label) if label is not None and label.isdigit() else None
        png = await run_in_threadpool(lab.samples_png, request.query_params.get("run", ""),
                                      label)
        return Response(png, media_type="image/png")

    async def run_resume(request: Request) -> Response:
        body = await read_json_body(request)
        return JSONResponse(await run_in_threadpool(lab.resume, str(body.get("run", ""))))

    async def compare_start(request: Request) -> Response:
        body = await read_json_body(request)
        return JSONResponse(await run_in_threadpool(lab.start_compare, body))

    async def compare_state(request: Request) -> Response:
        job = lab.compares.get(request.path_params["job"])
        if job is None:
            return JSONResponse({"error": "Expected a comparison of this server."}, 404)
        return JSONResponse(job.state())

    async def files(request: Request) -> Response:
        path = safe_path(lab.root, request.path_params["path"])
        if not path.is_file() or path.suffix.lower() not in SERVED:
            return JSONResponse({"error": "Expected a report, picture or metrics file of the "
                                 "runs folder."}, 404)
        return FileResponse(path, headers={"X-Content-Type-Options": "nosniff"})

    @asynccontextmanager
    async def lifespan(app: Starlette):
        lab.jobs.warm()
        yield
        await run_in_threadpool(lab.close)

    routes = [
        Route("/", index),
        Route("/favicon.ico", favicon),
        Route("/api/models", guarded(models)),
        Route("/api/data/{name}", guarded(data_preview)),
        Route("/api/upload", guarded(upload), methods=["POST"]),
        Route("/api/jobs", guarded(jobs_list)),
        Route("/api/jobs", guarded(jobs_start), methods=["POST"]),
        Route("/api/jobs/{job}/control", guarded(job_control), methods=["POST"]),
        Route("/api/jobs/{job}/events", guarded(job_events)),
        Route("/api/runs", guarded(runs)),
        Route("/api/runs/metrics", guarded(run_metrics)),
        Route("/api/runs/samples.png", guarded(run_samples)),
        Route("/api/runs/resume", guarded(run_resume), methods=["POST"]),
        Route("/api/compare", guarded(compare_start), methods=["POST"]),
        Route("/api/compare/{job}", guarded(compare_state)),
        Route("/files/{path:path}", guarded(files)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.lab = lab
    return app
