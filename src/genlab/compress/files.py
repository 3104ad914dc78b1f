"""File-level compression with a run folder's model (behind ``genlab compress`` /
``genlab decompress``). Outputs are written atomically: a temporary file, then a rename."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genlab.compress.coder import compress, decompress_with_labels
from genlab.errors import DataError
from genlab.train.checkpoint import atomic_write_bytes, load


@dataclass
class CompressionResult:
    """What :func:`compress_file` wrote.

    Attributes:
        path: The ``.glc`` file.
        num_bytes: Its size in bytes (header included).
        num_samples: Number of samples compressed.
        bits_per_dim: ``8 * num_bytes / (num_samples * D)``, the achieved rate.
    """

    path: Path
    num_bytes: int
    num_samples: int
    bits_per_dim: float


def _read_npy(path: str | Path, what: str) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Expected {what} at {str(path)!r}, but found no such file.")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise DataError(f"Could not read {what} {str(path)!r} as a .npy array: {err}") from None


def _write_npy(path: str | Path, array: np.ndarray) -> Path:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return atomic_write_bytes(path, buffer.getvalue())


def compress_file(
    run_dir: str | Path,
    input_npy: str | Path,
    output_path: str | Path,
    *,
    labels_npy: str | Path | None = None,
) -> CompressionResult:
    """Compress the array in ``input_npy`` with the model of ``run_dir`` into ``output_path``.

    Arguments:
        run_dir: A run folder of a discrete autoregressive model.
        input_npy: ``.npy`` array of integers in ``[0, num_levels)``, shape
            ``(n, *event_shape)``, any integer or float dtype.
        output_path: The ``.glc`` file to write (atomically).
        labels_npy: ``.npy`` labels of shape ``(n,)``, required for a conditional model.

    Raises:
        CheckpointError: unreadable run folder. DataError: unreadable or invalid input.
    """
    model = load(run_dir)
    x = _read_npy(input_npy, "the input")
    y = None if labels_npy is None else _read_npy(labels_npy, "the labels")
    data = compress(model, x, y)
    path = atomic_write_bytes(output_path, data)
    n = x.size // model.event_dim
    return CompressionResult(path, len(data), n, 8 * len(data) / (n * model.event_dim))


def decompress_file(
    run_dir: str | Path,
    input_path: str | Path,
    output_npy: str | Path,
    *,
    labels_npy: str | Path | None = None,
) -> Path:
    """Decode ``input_path`` (made by :func:`compress_file` with the same run) into
    ``output_npy``, bit-exact; labels of a conditional model go to ``labels_npy`` if given.

    Raises:
        CheckpointError: the file was made with another model, or the run folder is bad.
        DataError: the file is missing, corrupt or truncated.
    """
    model = load(run_dir)
    path = Path(input_path)
    if not path.is_file():
        raise DataError(f"Expected a compressed file at {str(path)!r}, but found none.")
    values, labels = decompress_with_labels(model, path.read_bytes())
    out = _write_npy(output_npy, values)
    if labels_npy is not None and labels is not None:
        _write_npy(labels_npy, labels.astype(np.int64))
    return out


__all__ = ["CompressionResult", "compress_file", "decompress_file"]
