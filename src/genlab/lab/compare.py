"""``genlab compare`` started from the page: a subprocess whose output the page follows.

The comparison is the command line's, unchanged (same report, same run folders), written to a
new folder inside the runs folder; its progress is the count of trainings it has announced
(``[data] training MODEL ...``) out of the trainings asked for.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from genlab.lab.jobs import worker_env

_TRAINING = re.compile(r"^\[(?P<data>[^\]]+)\] training (?P<model>\S+)")


class CompareJob:
    """One ``genlab compare`` run: its output folder, progress and state."""

    def __init__(self, job_id: str, out: Path, relative: str, datasets: list[str],
                 models: list[str], scale: float) -> None:
        import sys

        self.id = job_id
        self.out = out
        self.relative = relative
        self.total = len(datasets) * len(models)
        self.started_trainings = 0
        self.lines: deque[str] = deque(maxlen=200)
        self.status = "running"
        self.lock = threading.Lock()
        self.started = time.time()
        command = [sys.executable, "-m", "genlab", "compare", "--data", ",".join(datasets),
                   "--models", ",".join(models), "--out", str(out), "--scale", repr(scale)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        text=True, encoding="utf-8", env=worker_env())
        threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self) -> None:
        for line in self.process.stdout:
            line = line.rstrip()
            with self.lock:
                self.lines.append(line)
                if _TRAINING.match(line):
                    self.started_trainings += 1
        code = self.process.wait()
        with self.lock:
            self.status = "done" if code == 0 else "error"

    def state(self) -> dict[str, Any]:
        """What the page shows: progress, the last lines, the report once written."""
        with self.lock:
            done = self.status == "done"
            finished = self.total if done else max(0, self.started_trainings - 1)
            report = f"{self.relative}/report.html" if done else None
            return {"id": self.id, "status": self.status, "out": self.relative,
                    "trainings": self.total, "started": self.started_trainings,
                    "progress": finished / max(1, self.total), "report": report,
                    "log": list(self.lines)[-20:]}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
