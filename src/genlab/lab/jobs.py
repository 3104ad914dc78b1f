"""Training jobs of the lab: one worker process each, watched by any number of pages.

The server never trains. :class:`Jobs` starts ``python -m genlab.lab.worker`` processes (one
is kept started and waiting, so pressing train does not wait for torch to import), writes
each its job as one JSON line and reads its reports in a thread. A :class:`Job` keeps what
the pages need: state, the loss points so far and the latest picture; each page follows it
with its own cursor (:meth:`Job.since`). A worker that crashes marks its job as failed and
nothing else; stopping the server stops every worker after its current step, with a
checkpoint, so every run resumes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from genlab.lab.runs_table import LAB_FILE, read_json
from genlab.train import checkpoint as ckpt

#: States after which a job changes no more.
FINAL = ("done", "stopped", "error")


def worker_command(spare: bool = True) -> list[str]:
    """The command line of a worker process (this Python, this genlab); a spare one warms
    up before it waits (:func:`genlab.lab.worker.warm_up`)."""
    return [sys.executable, "-m", "genlab.lab.worker", *(() if spare else ("--cold",))]


def worker_env() -> dict[str, str]:
    """The worker's environment: this genlab first on the path, one thread per process."""
    env = dict(os.environ)
    source = str(Path(__file__).resolve().parents[2])  # the folder that holds genlab/
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH")) if p)
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def start_worker(spare: bool = True) -> subprocess.Popen:
    """A worker process that imports genlab and waits for its job on standard input."""
    return subprocess.Popen(worker_command(spare), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, encoding="utf-8",
                            env=worker_env(), bufsize=1)


class Job:
    """One training and what its watchers need (all fields under ``lock``)."""

    def __init__(self, job_id: str, run: str, run_dir: Path, spec: dict[str, Any],
                 process: subprocess.Popen) -> None:
        self.id = job_id
        self.run = run
        self.run_dir = run_dir
        self.spec = spec
        self.process = process
        self.lock = threading.Lock()
        self.status = "starting"
        self.step = 0
        self.steps = (spec.get("train") or {}).get("steps")
        self.error: str | None = None
        self.eval: dict[str, float] | None = None
        self.overhead_s: float | None = None  # the worker's time on reports and pictures
        self.points: list[dict[str, float]] = []
        self.picture: dict[str, Any] | None = None
        self.picture_count = 0
        self.version = 0
        self.watchers = 0
        self.started = time.perf_counter()
        self.first_picture_s: float | None = None
        self.stderr: deque[str] = deque(maxlen=40)
        self.reader: threading.Thread | None = None

    def summary(self) -> dict[str, Any]:
        """State without the picture and the curve."""
        with self.lock:
            return self._summary()

    def _summary(self) -> dict[str, Any]:
        return {"id": self.id, "run": self.run, "model": self.spec.get("model"),
                "status": self.status, "step": self.step, "steps": self.steps,
                "error": self.error, "eval": self.eval, "overhead_s": self.overhead_s,
                "watchers": self.watchers,
                "pictures": self.picture_count, "first_picture_s": self.first_picture_s,
                "conditional": bool(self.spec.get("conditional")),
                "num_classes": self.spec.get("num_classes"), "version": self.version,
                "bounds": self.spec.get("bounds")}

    def since(self, points_seen: int, pictures_seen: int) -> dict[str, Any]:
        """What a watcher that has seen ``points_seen`` points and ``pictures_seen``
        pictures lacks: the state, the new loss points, the picture if it is newer."""
        with self.lock:
            update = self._summary()
            update["points"] = self.points[points_seen:]
            update["points_total"] = len(self.points)
            if self.picture is not None and self.picture_count != pictures_seen:
                update["picture"] = self.picture
        return update

    def handle(self, message: dict[str, Any]) -> None:
        """Fold one report of the worker into the job."""
        event = message.get("event")
        with self.lock:
            if event == "status":
                self.status = message["status"]
                self.step = message.get("step", self.step)
                self.steps = message.get("steps", self.steps)
            elif event == "progress":
                self.step = message["step"]
                self.points.extend(message.get("points", []))
            elif event == "picture":
                self.picture = message
                self.picture_count += 1
                if self.first_picture_s is None:
                    self.first_picture_s = round(time.perf_counter() - self.started, 3)
            elif event == "done":
                self.status = message["status"]
                self.step = message.get("step", self.step)
                self.eval = message.get("eval")
                self.overhead_s = message.get("overhead_s")
            elif event == "error":
                self.status, self.error = "error", message.get("message")
            else:
                return
            self.version += 1

    def command(self, cmd: str, value: Any = None) -> bool:
        """Send a command to the worker; False when it is gone."""
        try:
            self.process.stdin.write(json.dumps({"cmd": cmd, "value": value}) + "\n")
            self.process.stdin.flush()
            return True
        except (OSError, ValueError):  # closed pipe: the worker ended
            return False

    def watch(self, delta: int) -> None:
        """A page starts (+1) or stops (-1) watching; the worker draws only while watched."""
        with self.lock:
            before = self.watchers
            self.watchers = max(0, before + delta)
            changed = (before == 0) != (self.watchers == 0)
            final = self.status in FINAL
        if changed and not final:
            self.command("watch", self.watchers > 0)


class Jobs:
    """Every training job of one lab server."""

    def __init__(self, root: Path, *, spare: bool = True) -> None:
        self.root = root
        self.keep_spare = spare
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.spare: subprocess.Popen | None = None
        self.closed = False

    def warm(self) -> None:
        """Start the spare worker now (it takes a few seconds to import torch)."""
        with self.lock:
            if self.spare is None and self.keep_spare and not self.closed:
                self.spare = start_worker()

    def _take_worker(self) -> subprocess.Popen:
        with self.lock:
            spare, self.spare = self.spare, None
        if spare is None or spare.poll() is not None:
            spare = start_worker(spare=False)
        threading.Thread(target=self.warm, daemon=True).start()
        return spare

    def start(self, run: str, run_dir: Path, spec: dict[str, Any]) -> Job:
        """Start a worker on ``spec`` (the job line of :mod:`genlab.lab.worker`)."""
        process = self._take_worker()
        job_id = f"{int(time.time() * 1000):x}{len(self.jobs)}"
        job = Job(job_id, run, run_dir, spec, process)
        with self.lock:
            self.jobs[job_id] = job
        record = {**read_json(run_dir / LAB_FILE), **{k: v for k, v in spec.items()
                  if k in ("model", "params", "train", "data", "conditional", "bounds")}}
        record.update(state="running", error=None)
        ckpt.atomic_write_text(run_dir / LAB_FILE, json.dumps(record, indent=2) + "\n")
        process.stdin.write(json.dumps({**spec, "run_dir": str(run_dir)}) + "\n")
        process.stdin.flush()
        job.reader = threading.Thread(target=self._read, args=(job,), daemon=True)
        job.reader.start()
        threading.Thread(target=self._read_stderr, args=(job,), daemon=True).start()
        return job

    def get(self, job_id: str) -> Job | None:
        with self.lock:
            return self.jobs.get(job_id)

    def live_for(self, run: str) -> Job | None:
        """The job now training ``run``, if any."""
        with self.lock:
            for job in self.jobs.values():
                if job.run == run and job.status not in FINAL:
                    return job
        return None

    def all(self) -> list[Job]:
        with self.lock:
            return list(self.jobs.values())

    def _read_stderr(self, job: Job) -> None:
        for line in job.process.stderr:
            job.stderr.append(line.rstrip())

    def _read(self, job: Job) -> None:
        for line in job.process.stdout:
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(message, dict):
                job.handle(message)
                if message.get("event") in ("done", "error"):
                    self._record(job)
        code = job.process.wait()
        with job.lock:
            if job.status not in FINAL:  # ended without a word: killed, or out of memory
                job.status = "error"
                job.error = f"The training process ended with exit code {code}" + (
                    f": {job.stderr[-1]}" if job.stderr else ".")
                job.version += 1
        self._record(job)

    @staticmethod
    def _record(job: Job) -> None:
        """Write the job's state into the run's ``lab.json``."""
        with job.lock:
            state, error = job.status, job.error
        record = read_json(job.run_dir / LAB_FILE)
        record.update(state=state, error=error)
        ckpt.atomic_write_text(job.run_dir / LAB_FILE, json.dumps(record, indent=2) + "\n")

    def close(self, timeout: float = 30.0) -> None:
        """Stop every worker after its current step (a checkpoint is written), then end."""
        with self.lock:
            self.closed = True
            spare, self.spare = self.spare, None
            jobs = list(self.jobs.values())
        if spare is not None:
            spare.kill()
            spare.wait()
        for job in jobs:
            if job.process.poll() is None:
                job.command("stop")
        deadline = time.monotonic() + timeout
        for job in jobs:
            try:
                job.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                job.process.kill()
                job.process.wait()
            if job.reader is not None:  # it records the final state in lab.json
                job.reader.join(5.0)
