"""``genlab lab``: watch models learn in the browser, on the runs the command line writes.

A Starlette app (:func:`~genlab.lab.app.create_app`) served by uvicorn on 127.0.0.1 unless
told otherwise. Training runs in worker processes (:mod:`genlab.lab.worker`) that write the
same run folders as ``genlab train``, through :func:`genlab.fit`; the page follows them by
Server-Sent Events. See docs/lab.md.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["create_app", "serve"]


def create_app(root: str | Path, *, warm: bool = True):
    """The lab's ASGI app over the runs folder ``root`` (see :mod:`genlab.lab.app`)."""
    from genlab.lab.app import create_app as build

    return build(root, warm=warm)


def serve(root: str | Path = "runs", *, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve the lab on ``host:port`` until interrupted; every training stops with a
    checkpoint on the way out, so each run resumes later."""
    import uvicorn

    app = create_app(root)
    print(f"genlab lab: http://{host}:{port}/  (runs folder: {Path(root).resolve()})",
          flush=True)
    # Event streams end when their training does; the trainings stop (with a checkpoint)
    # once the open streams have had a few seconds to close.
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=3)
