"""Several files of a run folder replaced as one unit: all the new ones, or all the old ones.

A checkpoint is a set of files that belong together (``config.json``, ``model.safetensors``,
``model_last.safetensors``, ``trainer_state.pt``). Renaming one file is atomic; renaming
four is not, so a crash between two renames would leave new weights beside an old config. A
small write-ahead journal closes that gap:

1. every new file is written into ``out/.pending/`` and fsynced, then the folder is fsynced;
2. ``.pending/COMMIT`` (the list of files to move and to remove) is written and fsynced:
   **the commit point**;
3. the files are renamed into ``out``, the removed ones deleted, ``out`` fsynced;
4. ``.pending`` is deleted.

A crash before step 2 leaves the old files untouched and an uncommitted ``.pending`` that the
next writer deletes; a crash after it leaves a committed journal that the next writer rolls
forward (:func:`recover`). Readers never write: :func:`committed_path` gives the committed
version of a file, from the journal while one is being rolled forward, so a reader sees the
old set or the new set, never a mixture.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

PENDING = ".pending"
COMMIT = "COMMIT"


def fsync_dir(folder: str | Path) -> None:
    """Make renames and deletions in ``folder`` durable (a no-op where directories cannot be
    opened, as on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platform without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems that refuse fsync on directories
        pass
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def commit_files(folder: str | Path, files: Mapping[str, bytes],
                 remove: Iterable[str] = ()) -> None:
    """Replace ``files`` (name -> bytes) in ``folder`` and delete ``remove``, as one unit.

    Arguments:
        folder: The run folder (created if missing).
        files: New contents by file name (plain names, no folders).
        remove: Names to delete in the same unit (missing ones are fine).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    recover(folder)
    pending = folder / PENDING
    pending.mkdir()
    for name, data in files.items():
        _write_synced(pending / name, data)
    fsync_dir(pending)
    journal = {"files": sorted(files), "remove": sorted(set(remove) - set(files))}
    _write_synced(pending / f"{COMMIT}.tmp", json.dumps(journal).encode())
    os.replace(pending / f"{COMMIT}.tmp", pending / COMMIT)  # the commit point
    fsync_dir(pending)
    _apply(folder, journal)


def _apply(folder: Path, journal: Mapping[str, list[str]]) -> None:
    """Steps 3 and 4: move the committed files into place and drop the journal."""
    pending = folder / PENDING
    for name in journal["files"]:
        if (pending / name).exists():  # absent: moved before an interruption
            os.replace(pending / name, folder / name)
    for name in journal["remove"]:
        (folder / name).unlink(missing_ok=True)
    fsync_dir(folder)
    shutil.rmtree(pending)
    fsync_dir(folder)


def _journal(folder: Path) -> dict[str, list[str]] | None:
    """The committed journal of ``folder``, or None when there is none (or it is unreadable,
    which only an uncommitted write can leave: the commit point is an atomic rename)."""
    try:
        journal = json.loads((folder / PENDING / COMMIT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return journal if isinstance(journal, dict) else None


def recover(folder: str | Path) -> None:
    """Finish a committed write interrupted in ``folder``, or discard an uncommitted one.

    Writers call it before touching a run folder (holding its lock); it is idempotent.
    """
    folder = Path(folder)
    pending = folder / PENDING
    if not pending.exists():
        return
    journal = _journal(folder)
    if journal is None:
        shutil.rmtree(pending)
        fsync_dir(folder)
    else:
        _apply(folder, journal)


def committed_path(folder: str | Path, name: str) -> Path:
    """Where the committed version of ``name`` in ``folder`` is, for a reader.

    Outside an interrupted commit that is ``folder / name``; while a committed journal waits
    to be rolled forward, its new files are the committed ones (and a file it removes is
    reported where it no longer exists).
    """
    folder = Path(folder)
    journal = _journal(folder)
    if journal is not None:
        staged = folder / PENDING / name
        if name in journal.get("files", []) and staged.exists():
            return staged
        if name in journal.get("remove", []):
            return staged  # removed by the commit: a path that does not exist
    return folder / name
