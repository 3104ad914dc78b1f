"""The training process of the lab: ``python -m genlab.lab.worker``.

The server starts one process per training and speaks JSON lines with it, nothing else (no
pickle crosses the boundary). The process imports genlab first and says ``{"event":
"ready"}``, so a spare one can wait for its job; then it reads the job (one line), trains with
:func:`genlab.fit` into the job's run folder (the same folder the CLI writes) and reports:

* ``progress``: the step and the losses since the last report (at most 5 per second);
* ``picture``: heatmap, samples and the family's view (:mod:`genlab.lab.pictures`), only
  while a page watches, and never more than 3% of the training time;
* ``status``: running, paused, evaluating; ``done`` (with the test metrics) or ``error``.

Commands arrive on standard input while it trains: ``pause``, ``resume``, ``step`` (one step,
then paused), ``stop`` (finish the step, write a checkpoint and end: the run resumes later),
``watch`` (a page watches or not), ``label`` (the class a conditional model samples). A
closed standard input (the server went away) counts as ``stop``.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import IO, Any

from genlab.train.callbacks import Callback

#: Seconds between progress reports and, at the least, between pictures.
PROGRESS_EVERY = 0.2
PICTURE_EVERY = 0.25
#: Largest fraction of the training time spent on pictures.
PICTURE_SHARE = 0.03
#: Loss points per run sent to the page: one every steps // CURVE_POINTS steps, at least
#: one every CURVE_EVERY_MAX steps (so the curve starts at once).
CURVE_POINTS = 1000
CURVE_EVERY_MAX = 10


class Channel:
    """One JSON object per line to the server, from any thread."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, allow_nan=False, default=float)
        with self.lock:
            self.stream.write(line + "\n")
            self.stream.flush()


def read_commands(stream: IO[str], commands: queue.Queue) -> None:
    """Put each command line of ``stream`` on ``commands``; at its end, a ``stop``."""
    for line in stream:
        try:
            commands.put(json.loads(line))
        except json.JSONDecodeError:
            continue
    commands.put({"cmd": "stop"})


def _finite(logs: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in logs.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) \
                and value == value and abs(value) != float("inf"):
            out[key] = float(value)
    return out


class LabCallback(Callback):
    """Reports a run to the server and obeys its commands, between training steps."""

    def __init__(self, job: dict[str, Any], channel: Channel, commands: queue.Queue,
                 data_x: Any) -> None:
        self.job = job
        self.channel = channel
        self.commands = commands
        self.data_x = data_x
        self.bounds = tuple(job["bounds"])
        self.watched = bool(job.get("watched", False))
        self.label = job.get("label")
        self.paused = False
        self.step_once = False
        self.stopped = False
        self.every = 1
        self.points: list[dict[str, float]] = []
        self.last_progress = 0.0
        self.next_picture = 0.0
        self.overhead = 0.0  # seconds spent on reports and pictures inside the steps

    def on_train_start(self, trainer: Any) -> None:
        self.every = min(CURVE_EVERY_MAX, max(1, trainer.config.steps // CURVE_POINTS))
        self.status("running", trainer)
        self.picture(trainer.model, trainer.step)

    def on_step_end(self, trainer: Any, step: int, logs: dict[str, Any]) -> None:
        now = time.perf_counter()
        if step % self.every == 0:
            self.points.append({"step": step, **_finite(logs)})
        if now - self.last_progress >= PROGRESS_EVERY:
            self.progress(step)
        if self.watched and now >= self.next_picture:
            self.picture(trainer.model, step)
        self.overhead += time.perf_counter() - now
        self.obey(trainer, step)

    def on_validation_end(self, trainer: Any, step: int, logs: dict[str, Any]) -> None:
        self.points.append({"step": step, **_finite(logs)})

    def on_train_end(self, trainer: Any) -> None:
        self.progress(trainer.step)

    # Reports.
    def status(self, status: str, trainer: Any) -> None:
        self.channel.send({"event": "status", "status": status, "step": trainer.step,
                           "steps": trainer.config.steps})

    def progress(self, step: int) -> None:
        self.channel.send({"event": "progress", "step": step, "points": self.points})
        self.points = []
        self.last_progress = time.perf_counter()

    def picture(self, model: Any, step: int) -> None:
        from genlab.lab.pictures import picture

        start = time.perf_counter()
        drawn = picture(model, self.data_x, self.bounds, res=int(self.job.get("grid", 64)),
                        label=self.label, seed=int(self.job.get("seed", 0)))
        self.channel.send({"event": "picture", "step": step, **drawn})
        spent = time.perf_counter() - start
        self.next_picture = time.perf_counter() + max(PICTURE_EVERY, spent / PICTURE_SHARE)

    # Commands.
    def obey(self, trainer: Any, step: int) -> None:
        if self.step_once:
            self.step_once, self.paused = False, True
            self.progress(step)
            self.picture(trainer.model, step)
            self.status("paused", trainer)
        while True:
            try:
                command = self.commands.get(block=self.paused)
            except queue.Empty:
                return
            self.apply(command, trainer, step)
            if self.stopped or (not self.paused and self.commands.empty()):
                return

    def apply(self, command: dict[str, Any], trainer: Any, step: int) -> None:
        cmd = command.get("cmd")
        if cmd == "pause" and not self.paused:
            self.paused = True
            self.progress(step)
            self.picture(trainer.model, step)
            self.status("paused", trainer)
        elif cmd == "resume" and self.paused:
            self.paused = False
            self.status("running", trainer)
        elif cmd == "step" and self.paused:
            self.paused, self.step_once = False, True
        elif cmd == "stop":
            # The trainer finishes this step, writes its checkpoint and leaves its loop.
            self.stopped, self.paused = True, False
            trainer.stop_requested = True
        elif cmd == "watch":
            self.watched = bool(command.get("value"))
            if self.watched:
                self.picture(trainer.model, step)
        elif cmd == "label":
            value = command.get("value")
            self.label = None if value is None else int(value)
            if self.paused or self.watched:
                self.picture(trainer.model, step)


def run_job(job: dict[str, Any], channel: Channel, commands: queue.Queue) -> None:
    """Train the job's model into its run folder, reporting through ``channel``."""
    import torch

    from genlab import create, fit, load_data
    from genlab.report.evaluate import evaluate_run

    torch.set_num_threads(int(job.get("threads", 1)))
    out = Path(job["run_dir"])
    data = load_data(job["data"], split="train")
    val = load_data(job["data"], split="val")
    if job.get("resume"):
        from genlab.train import checkpoint as ckpt

        saved = ckpt.read_config(out)
        model = create(saved["model"], **saved["config"])
    else:
        torch.manual_seed(int(job.get("seed", 0)))
        model = create(job["model"], data=data, conditional=bool(job.get("conditional")),
                       **job.get("params", {}))
    lab = LabCallback(job, channel, commands, data.x)
    if model.closed_form:  # one call, no steps: the trainer's events never come
        channel.send({"event": "status", "status": "running", "step": 0, "steps": 0})
    settings = {"progress": False, **job.get("train", {})}
    model = fit(model, data, val_data=val, out=out, resume=bool(job.get("resume")),
                callbacks=[lab], **settings)
    if model.closed_form:  # no steps: one picture of the fitted model
        lab.picture(model, 0)
    step = _steps_done(out)
    if lab.stopped:
        lab.picture(model, step)
        channel.send({"event": "done", "status": "stopped", "step": step})
        return
    channel.send({"event": "status", "status": "evaluating", "step": step})
    lab.picture(model, step)
    metrics = evaluate_run(model, out, n_samples=int(job.get("eval_samples", 1000)))
    channel.send({"event": "done", "status": "done", "step": step,
                  "eval": _finite(metrics), "overhead_s": round(lab.overhead, 4)})


def _steps_done(out: Path) -> int:
    """The step of the run's last ``metrics.jsonl`` line (0 for a closed-form fit)."""
    from genlab.viz.curves import read_metrics

    path = out / "metrics.jsonl"
    records = read_metrics(path) if path.is_file() else []
    return int(records[-1].get("step", 0)) if records else 0


def warm_up() -> None:
    """Everything a job imports on its first use (torch, scikit-learn's data sets, the
    optimizers, matplotlib for the flow stages), done before ``ready``: a spare worker has it
    behind it when its job comes. A one-step fit of a tiny flow, in memory, walks that path."""
    import torch

    from genlab import create, fit, load_data
    from genlab.lab.pictures import picture
    from genlab.report.evaluate import evaluate  # noqa: F401

    data = load_data("moons", n=64)
    with torch.random.fork_rng():
        model = create("realnvp", data=data, transforms=1, width=4, depth=1)
        fit(model, data, steps=1, batch_size=16, progress=False)
    picture(model, data.x, (-3.0, 3.0, -3.0, 3.0), res=4)


def main() -> int:
    # Standard output carries the protocol; anything else printed goes to standard error.
    channel = Channel(os.fdopen(os.dup(1), "w", encoding="utf-8"))
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    if "--cold" not in sys.argv[1:]:  # a spare: its job is not there yet
        warm_up()
    channel.send({"event": "ready", "pid": os.getpid()})
    line = sys.stdin.readline()
    if not line:
        return 0
    job = json.loads(line)
    commands: queue.Queue = queue.Queue()
    threading.Thread(target=read_commands, args=(sys.stdin, commands), daemon=True).start()
    return serve_job(job, channel, commands)


def serve_job(job: dict[str, Any], channel: Channel, commands: queue.Queue) -> int:
    """Run the job; any failure becomes an ``error`` report (one line) and exit status 1."""
    try:
        run_job(job, channel, commands)
    except Exception as err:  # noqa: BLE001 - every failure is reported to the page
        traceback.print_exc()
        message = " ".join(str(err).split()) or type(err).__name__
        channel.send({"event": "error", "message": f"{type(err).__name__}: {message}"})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
