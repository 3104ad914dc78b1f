"""The lab served from a background thread: for tests, benchmarks and notebooks."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextmanager
def running_lab(root: str | Path, *, host: str = "127.0.0.1", port: int | None = None,
                warm: bool = True, timeout: float = 30.0) -> Iterator[str]:
    """Serve the lab over ``root`` in a thread; yields its URL. Leaving the block shuts the
    server down the way Ctrl-C does (every training stops with a checkpoint).

    Example:
        >>> with running_lab("runs") as url:  # doctest: +SKIP
        ...     print(url)
        http://127.0.0.1:40123
    """
    import uvicorn

    from genlab.lab.app import create_app

    port = port or free_port(host)
    app = create_app(root, warm=warm)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           lifespan="on", timeout_graceful_shutdown=3))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"The lab did not start on {host}:{port}.")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        app.state.lab.close()  # trainings end first, so the pages' event streams end too
        server.should_exit = True
        thread.join(timeout)
