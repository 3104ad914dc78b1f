"""The lab's server without a browser: its API, what it refuses, and workers that fail."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from genlab.lab.requests import MAX_UPLOAD
from genlab.lab.server import running_lab

TINY = {"model": "realnvp", "params": {"transforms": 2, "width": 8, "depth": 1},
        "data": {"name": "moons"}, "bounds": [-3, 3, -3, 3]}


def call(url: str, body: bytes | dict | None = None, content_type: str = "application/json",
         headers: dict | None = None) -> tuple[int, object]:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(url, data=data, headers={
        "Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def raw_get(url: str, path: str) -> int:
    """Status of GET ``path`` sent as is (urllib would normalise the ``..``)."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request("GET", path)
    status = connection.getresponse().status
    connection.close()
    return status


def follow(url: str, job_id: str, until=("done", "stopped", "error"), timeout=120.0):
    """Read the job's event stream until its status is in ``until``; returns the updates."""
    updates = []
    deadline = time.monotonic() + timeout
    with urllib.request.urlopen(f"{url}/api/jobs/{job_id}/events", timeout=timeout) as stream:
        for line in stream:
            if line.startswith(b"data:"):
                updates.append(json.loads(line[5:]))
                if updates[-1]["status"] in until:
                    return updates
            assert time.monotonic() < deadline, "the job did not reach its state in time"
    return updates


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.json").write_text("{}")
    (root / "escape").symlink_to(outside, target_is_directory=True)
    with running_lab(root, warm=False) as url:  # no spare worker: fewer imports of torch
        yield url, root


def test_models_are_the_registry_declarations(lab):
    from genlab.registry import get

    url, _ = lab
    status, models = call(f"{url}/api/models")
    assert status == 200
    realnvp = next(m for m in models if m["name"] == "realnvp")
    assert [s["name"] for s in realnvp["settings"]] == list(get("realnvp").settings())
    assert {"steps", "batch_size", "lr"} <= {s["name"] for s in realnvp["train"]}
    assert "pixelcnn" not in {m["name"] for m in models}  # no recipe for 2-D points


@pytest.mark.parametrize("change, words", [
    ({"model": "nope"}, "Expected one of"),
    ({"params": {"width": 0}}, "Expected width to be an int >= 1, but found 0."),
    ({"params": {"colour": 1}}, "but found 'colour'"),
    ({"train": {"steps": -1}}, "Expected steps"),
    ({"bounds": [1, 0, 0, 1]}, "Expected bounds"),
    ({"data": {"name": "../../etc"}}, "Expected data to be one of"),
    ({"data": {"points": [[0, 0]] * 10}}, "Expected between 50 and"),
    ({"data": {"points": [[0, "x"]] * 60}}, "Expected points as a list"),
])
def test_bad_requests_are_refused_with_a_reason(lab, change, words):
    url, _ = lab
    status, answer = call(f"{url}/api/jobs", {**TINY, **change})
    assert status == 400 and words in answer["error"]


def test_paths_outside_the_runs_folder_are_refused(lab):
    url, root = lab
    assert raw_get(url, "/files/..%2f..%2f..%2fetc%2fpasswd") == 403
    assert raw_get(url, "/files/escape/secret.json") == 403  # a link pointing out
    assert raw_get(url, "/api/runs/metrics?run=..%2F..") == 403
    assert raw_get(url, "/api/runs/metrics?run=%2Fetc") == 403
    status, answer = call(f"{url}/api/runs/resume", {"run": "../x"})
    assert status == 403 and "inside the runs folder" in answer["error"]
    (root / "note.txt").write_text("inside")
    assert raw_get(url, "/files/note.txt") == 200


def test_another_origin_cannot_start_trainings(lab):
    url, _ = lab
    status, answer = call(f"{url}/api/jobs", TINY, headers={"Origin": "http://evil.example"})
    assert status == 403 and "origin" in answer["error"]


def test_uploads_have_size_and_type_limits(lab):
    url, _ = lab
    points = np.random.default_rng(0).normal(size=(60, 2))
    csv = "x,y\n" + "\n".join(f"{a},{b}" for a, b in points)
    status, answer = call(f"{url}/api/upload", csv.encode(), "text/csv")
    assert status == 200 and np.allclose(answer["points"], points, atol=1e-4)
    buffer = io.BytesIO()
    np.save(buffer, points.astype(np.float32))
    status, answer = call(f"{url}/api/upload", buffer.getvalue(), "application/octet-stream")
    assert status == 200 and len(answer["points"]) == 60
    status, answer = call(f"{url}/api/upload", b"0,0\n" * (MAX_UPLOAD // 4 + 1), "text/csv")
    assert status == 413 and f"at most {MAX_UPLOAD} bytes" in answer["error"]
    status, answer = call(f"{url}/api/upload", b"\x89PNG....", "image/png")
    assert status == 400 and "Expected a CSV or .npy upload" in answer["error"]
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"a": 1}] * 60, dtype=object), allow_pickle=True)
    status, answer = call(f"{url}/api/upload", pickled.getvalue(), "application/octet-stream")
    assert status == 400 and ".npy" in answer["error"]  # never unpickled


def test_an_error_in_training_becomes_one_reported_line(tmp_path):
    import queue

    from genlab.lab.worker import Channel, serve_job

    stream = io.StringIO()
    job = {**TINY, "data": "moons", "run_dir": str(tmp_path / "run"), "watched": False,
           "train": {"steps": 50, "lr": 1e30, "batch_size": 32}}
    assert serve_job(job, Channel(stream), queue.Queue()) == 1
    last = json.loads(stream.getvalue().splitlines()[-1])
    # the loss, or the picture of the exploded flow, fails: a typed error, named
    assert last["event"] == "error"
    assert re.match(r"(TrainingError|DataError): (Expected|The)", last["message"])


def _serve(job: dict, commands: list[dict]) -> list[dict]:
    """Run a job in this process with ``commands`` waiting; returns its reports."""
    import queue

    from genlab.lab.worker import Channel, serve_job

    waiting: queue.Queue = queue.Queue()
    for command in commands:
        waiting.put(command)
    stream = io.StringIO()
    serve_job(job, Channel(stream), waiting)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_stopped_run_resumes_to_the_same_weights(tmp_path):
    from genlab import load

    job = {**TINY, "data": "moons", "watched": False, "eval_samples": 200,
           "train": {"steps": 12, "batch_size": 32}}
    straight = _serve({**job, "run_dir": str(tmp_path / "straight")}, [])
    assert straight[-1]["event"] == "done" and straight[-1]["step"] == 12
    run = tmp_path / "stopped"
    stopped = _serve({**job, "run_dir": str(run)}, [{"cmd": "stop"}])
    assert stopped[-1] == {"event": "done", "status": "stopped", "step": 1}
    assert (run / "trainer_state.pt").is_file()
    # the stop is not saved as early stopping: any resume (the lab's, genlab train --resume)
    # carries on to the end
    resumed = _serve({**job, "run_dir": str(run), "resume": True}, [])
    assert resumed[-1]["status"] == "done" and resumed[-1]["step"] == 12
    a, b = load(tmp_path / "straight").state_dict(), load(run).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # resume is bit-exact


def test_a_killed_worker_shows_its_error_and_the_server_stays_up(lab):
    url, root = lab
    status, job = call(f"{url}/api/jobs", {**TINY, "train": {"steps": 40000, "batch_size": 32}})
    assert status == 200
    updates = follow(url, job["id"], until=("running",))
    while updates[-1]["step"] < 5:
        updates = follow(url, job["id"], until=("running",))
        time.sleep(0.2)
    run = Path(root) / job["run"]
    os.kill(int((run / ".lock").read_text()), signal.SIGKILL)
    last = follow(url, job["id"])[-1]
    assert last["status"] == "error" and "exit code -9" in last["error"]
    status, _ = call(f"{url}/api/models")
    assert status == 200
    row = next(r for r in call(f"{url}/api/runs")[1]["runs"] if r["run"] == job["run"])
    assert row["state"] == "error" and "exit code -9" in row["error"]


def test_each_family_draws_its_own_picture():
    from genlab import create, load_data
    from genlab.lab.pictures import grid_points, picture

    data = load_data("moons", n=300)
    bounds = (-3.0, 3.0, -2.0, 2.0)
    grid = grid_points(bounds, 4)  # rows from the top, as an image is laid out
    assert torch.allclose(grid[0], torch.tensor([-2.25, 1.5]))
    assert torch.allclose(grid[-1], torch.tensor([2.25, -1.5]))
    gan = picture(create("gan", data=data, width=8, depth=1, loss="nonsaturating", pack=4),
                  data.x, bounds, res=8)
    assert gan["heatmap"]["kind"] == "D(x)"  # packed: a pack of copies per point
    assert 0 <= gan["heatmap"]["lo"] <= gan["heatmap"]["hi"] <= 1
    # the points recipe's relativistic critic scores only differences: no Pr(real | x) to draw
    relativistic = picture(create("gan", data=data, width=8, depth=1), data.x, bounds, res=8)
    assert relativistic["heatmap"]["kind"] == "sample histogram"
    flow = picture(create("realnvp", data=data, transforms=3, width=8, depth=1), data.x,
                   bounds, res=8)
    assert flow["heatmap"]["kind"] == "density" and len(flow["stages"]) == 3 + 1
    ddpm = picture(create("ddpm", data=data, num_timesteps=10, width=8, depth=1), data.x,
                   bounds, res=8)
    view = ddpm["diffusion"]
    assert view["t"][0] == 9 and view["t"][-1] == -1
    assert len(view["forward"]) == len(view["reverse"]) == len(view["t"])
    clean = np.asarray(view["forward"][-1])
    assert np.allclose(clean, data.x[:len(clean)].numpy(), atol=1e-3)  # t = 0: the data
