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
import json
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
from genlab.lab.jobs import FINAL
from genlab.lab.runs_table import PathRefused, reports, safe_path, table
from genlab.lab.state import Lab
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
            (k.startswith("loss_") or k.startswith("val_") and not k.endswith("bpd"))
            and isinstance(v, (int, float)))}
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
