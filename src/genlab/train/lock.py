"""One training per run folder: a lock held while a run writes its folder.

Two trainings pointed at the same ``out`` would interleave their checkpoints and logs. The
first takes an exclusive lock on ``out/.lock`` (``fcntl.flock``, released by the operating
system when the process ends, also when it is killed); a second is refused with a clear error
and touches nothing. On systems without ``fcntl`` no lock is taken.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from genlab.errors import ConfigError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"


@contextmanager
def run_lock(folder: str | Path | None) -> Iterator[None]:
    """Hold the run folder's lock for the duration of the block (rank 0 only).

    Raises:
        ConfigError: another process holds it.
    """
    if folder is None or fcntl is None or int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115 - held below
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise ConfigError(
            f"Another training (process {holder}) is writing to {folder}; wait for it to end "
            "or choose another output folder."
        ) from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
