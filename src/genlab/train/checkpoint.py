"""Run folders: ``config.json`` + ``model.safetensors`` (+ ``trainer_state.pt`` for resume).

A model is its config plus its weights. Rebuilding needs no pickle: ``config.json`` names the
registered class and its constructor arguments; the weights are safetensors. The trainer state
(optimizers, RNG, data order) is loaded with ``torch.load(weights_only=True)``, which refuses
arbitrary objects. Every file is written to a temporary name, fsynced and renamed, so an
interrupted write never leaves a half-written file; the files of one checkpoint (config,
weights, trainer state) are replaced together as one unit (:mod:`genlab.train.commit`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor

import genlab
from genlab.allocations import build_model
from genlab.base import GenerativeModel
from genlab.errors import CheckpointError, GenlabError
from genlab.train.commit import commit_files, committed_path, fsync_dir
from genlab.train.header import ConfigCheck, read_shapes

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
INIT_WEIGHTS_FILE = "init.safetensors"
LAST_WEIGHTS_FILE = "model_last.safetensors"
TRAINER_STATE_FILE = "trainer_state.pt"
METRICS_FILE = "metrics.jsonl"


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename;
    the file and the folder are fsynced, so the new contents survive a power cut."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` as UTF-8 to ``path``, atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def torch_bytes(obj: Any) -> bytes:
    """What ``torch.save(obj)`` writes, as bytes."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` through a temporary file and a rename."""
    return atomic_write_bytes(path, torch_bytes(obj))


def truncate_metrics(path: str | Path, step: int) -> None:
    """Drop the lines of a ``metrics.jsonl`` logged after ``step`` (and unreadable ones), so a
    resumed run logs each step once."""
    path = Path(path)
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                kept.append(line)
        except json.JSONDecodeError:
            continue
    atomic_write_text(path, "".join(k + "\n" for k in kept))


def _tensors_for_save(state: dict[str, Tensor]) -> dict[str, Tensor]:
    # safetensors refuses tensors that share memory; a contiguous copy of each is safe.
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def weights_bytes(state: dict[str, Tensor], *,
                  metadata: dict[str, str] | None = None) -> bytes:
    """A state dict as the bytes of a safetensors file (with string ``metadata``)."""
    return safetensors.torch.save(_tensors_for_save(state),
                                  metadata={"format": "pt", **(metadata or {})})


def save_weights(state: dict[str, Tensor], path: str | Path, *,
                 metadata: dict[str, str] | None = None) -> Path:
    """Save a state dict as safetensors (with string ``metadata``), atomically."""
    return atomic_write_bytes(path, weights_bytes(state, metadata=metadata))


def model_config(model: GenerativeModel, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON document that rebuilds ``model``: registry name, arguments, version, data."""
    if not model.name:
        raise CheckpointError(
            f"{type(model).__name__} is not registered (use @register) and cannot be saved."
        )
    return {
        "model": model.name,
        "config": model.config,
        "genlab_version": genlab.__version__,
        "data": data,
    }


def save_model(
    model: GenerativeModel,
    folder: str | Path,
    *,
    data: dict[str, Any] | None = None,
    state: dict[str, Tensor] | None = None,
    extra: dict[str, bytes] | None = None,
    remove: tuple[str, ...] = (),
) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into ``folder``, as one unit.

    Arguments:
        model: A registered model.
        folder: Run folder (created if missing).
        data: Description of the training data (``Dataset.describe()``).
        state: Weights to write instead of ``model.state_dict()`` (e.g. EMA weights).
        extra: More files of the same unit, name -> bytes (the trainer state).
        remove: Files the unit deletes (those of an earlier run in the folder).
    """
    files = {CONFIG_FILE: config_bytes(model, data),
             WEIGHTS_FILE: weights_bytes(model.state_dict() if state is None else state),
             **(extra or {})}
    commit_files(folder, files, remove)
    return Path(folder)


def config_bytes(model: GenerativeModel, data: dict[str, Any] | None = None) -> bytes:
    """The bytes of the ``config.json`` that rebuilds ``model``."""
    document = model_config(model, data)
    try:
        text = json.dumps(document, indent=2, sort_keys=True)
    except TypeError as err:
        raise CheckpointError(f"The config of {model.name!r} is not JSON-able: {err}") from None
    return (text + "\n").encode("utf-8")


def read_config(folder: str | Path) -> dict[str, Any]:
    """Read and check a run folder's ``config.json``."""
    folder = Path(folder)
    path = committed_path(folder, CONFIG_FILE)
    if not folder.is_dir():
        raise CheckpointError(f"Expected a run folder at {str(folder)!r}, but it does not exist.")
    if not path.is_file():
        raise CheckpointError(f"Expected {CONFIG_FILE} in {str(folder)!r}, but found none.")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(
            f"{path} is not valid JSON ({err}); the checkpoint is corrupt.") from None
    if not isinstance(document, dict) or "model" not in document or "config" not in document:
        raise CheckpointError(f"{path} lacks the 'model' and 'config' entries of a genlab run.")
    return document


def load_weights(path: str | Path) -> dict[str, Tensor]:
    """Load a safetensors file; corrupt or truncated files raise CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Expected weights at {str(path)!r}, but found none.")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path} is corrupt or truncated: {err}") from None


def load_state_into(model: GenerativeModel, state: dict[str, Tensor], source: str) -> None:
    """Load ``state`` strictly; buffers whose shape was data-dependent are resized first."""
    odd = [k for k, v in state.items() if not (isinstance(k, str) and isinstance(v, Tensor))]
    if odd:
        raise CheckpointError(
            f"Expected {source} to map names to tensors, but found {odd[:3]} holding other values."
        )
    own = dict(model.named_parameters())
    expected = set(model.state_dict())
    buffers = {k: v for k, v in model.named_buffers() if k in expected}
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"{source} does not match {type(model).__name__}: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}."
        )
    for name, tensor in state.items():
        if name in own and own[name].shape != tensor.shape:
            raise CheckpointError(
                f"{source} does not match {type(model).__name__}: parameter {name!r} has shape "
                f"{tuple(tensor.shape)} in the file but {tuple(own[name].shape)} in the model."
            )
        if name in buffers and buffers[name].shape != tensor.shape:
            module_name, _, attr = name.rpartition(".")
            module = model.get_submodule(module_name) if module_name else model
            module._buffers[attr] = torch.empty_like(tensor, device=buffers[name].device)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{source} does not match {type(model).__name__}: {err}") from None


TRAINER_STATE_KEYS = ("model", "optimizers", "schedulers", "sampler", "torch_rng", "step",
                      "best_val", "bad_validations")


def load_trainer_state(path: str | Path) -> dict[str, Any]:
    """Read ``trainer_state.pt`` with ``torch.load(weights_only=True)``: tensors, numbers,
    strings and containers only, so a pickled object is refused without running its code.

    Raises:
        CheckpointError: unreadable, holding a disallowed object, or lacking a trainer-state
            entry (one line each).
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols first
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is a corrupt checkpoint
        # torch's message spans paragraphs of advice on weights_only=False; keep its reason
        reason = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\n|$)", str(err), re.S)
        if reason is not None:
            found = " ".join(reason.group(1).split())
            raise CheckpointError(
                f"Expected only tensors and plain values in {path}, but found {found!r}; "
                "it was refused without running it (not a genlab trainer state, or tampered)."
            ) from None
        text = " ".join(str(err).split()) or type(err).__name__
        raise CheckpointError(f"{path} is corrupt or truncated: {text}") from None
    missing = [k for k in TRAINER_STATE_KEYS if k not in state] if isinstance(state, dict) \
        else list(TRAINER_STATE_KEYS)
    if missing or not isinstance(state["model"], dict):
        raise CheckpointError(
            f"Expected a genlab trainer state in {path} with entries {list(TRAINER_STATE_KEYS)},"
            f" but found {type(state).__name__} lacking {missing or ['a model state dict']}."
        )
    return state


def load(folder: str | Path, *, weights: str = WEIGHTS_FILE) -> GenerativeModel:
    """Rebuild a model from a run folder written by ``genlab.fit(..., out=...)`` or the CLI.

    Arguments:
        folder: The run folder.
        weights: Which weights file to load: ``model.safetensors`` (the weights the run kept,
            its best by default), ``model_last.safetensors`` (the last weights of a run that
            kept its best), or ``init.safetensors`` (the weights before training).

    Raises:
        CheckpointError: missing, corrupt, truncated or mismatched files.
        UnknownNameError: the config names a model this genlab does not have.
    """
    from genlab.registry import get

    folder = Path(folder)
    document = read_config(folder)
    config = document["config"]
    if not isinstance(config, dict):
        raise CheckpointError(f"{folder / CONFIG_FILE}: 'config' must be an object.")
    path = committed_path(folder, weights)
    # the config is compared with the weights' header before the model is allocated
    expect = ConfigCheck(read_shapes(path), path, committed_path(folder, CONFIG_FILE))
    try:
        model = build_model(get(document["model"]), config, expect=expect)
    except GenlabError:
        raise
    except TypeError as err:
        raise CheckpointError(
            f"{folder / CONFIG_FILE} does not fit model {document['model']!r}: {err}"
        ) from None
    load_state_into(model, load_weights(path), str(folder / weights))
    model.eval()
    return model


def file_digest(*paths: str | Path) -> str:
    """SHA-256 over the bytes of ``paths`` (identifies a trained model)."""
    h = hashlib.sha256()
    for p in paths:
        h.update(Path(p).read_bytes())
    return h.hexdigest()
