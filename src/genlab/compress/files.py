"""File-level compression with a run folder's model (behind ``genlab compress`` /
``genlab decompress``). Outputs are written atomically: a temporary file, then a rename.

The run's model picks the coder: a model with exact ordered conditionals codes with them
(:mod:`genlab.compress.coder`); a VAE (``has_posterior``) codes by bits back
(:mod:`genlab.compress.bitsback`)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genlab.compress import bitsback, coder
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
        model_bits_per_dim: The model's negative log-likelihood of the data (its -ELBO for a
            VAE), bits per dimension: what the rate approaches.
        initial_bits: Bits-back coding's one-off cost (:func:`bitsback.initial_bits`); 0 for
            the other coders.
    """

    path: Path
    num_bytes: int
    num_samples: int
    bits_per_dim: float
    model_bits_per_dim: float | None = None
    initial_bits: int = 0

    def __str__(self) -> str:
        text = (f"wrote {self.path}: {self.num_bytes} bytes, {self.bits_per_dim:.4f} bits/dim "
                f"for {self.num_samples} samples")
        if self.model_bits_per_dim is not None:
            bound = "-ELBO" if self.initial_bits else "NLL"
            text += f" (model {bound}: {self.model_bits_per_dim:.4f} bits/dim"
            if self.initial_bits:
                text += f"; initial bits: {self.initial_bits}"
            text += ")"
        return text


def _bits_back(model) -> bool:
    return bool(getattr(model, "has_posterior", False))


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
        run_dir: A run folder of a discrete autoregressive model or a discrete VAE.
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
    codec = bitsback if _bits_back(model) else coder
    data = codec.compress(model, x, y)
    path = atomic_write_bytes(output_path, data)
    n = x.size // model.event_dim
    with torch.no_grad():
        flat = torch.as_tensor(np.asarray(x, dtype=np.float64)).reshape(n, *model.event_shape)
        labels = None if y is None else torch.as_tensor(np.asarray(y)).reshape(n)
        model_bpd = model.bits_per_dim(flat, labels).mean().item()
    initial = bitsback.initial_bits(model.latent_size) if _bits_back(model) else 0
    return CompressionResult(path, len(data), n, 8 * len(data) / (n * model.event_dim),
                             model_bpd, initial)


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
    codec = bitsback if _bits_back(model) else coder
    values, labels = codec.decompress_with_labels(model, path.read_bytes())
    out = _write_npy(output_npy, values)
    if labels_npy is not None and labels is not None:
        _write_npy(labels_npy, labels.astype(np.int64))
    return out


__all__ = ["CompressionResult", "compress_file", "decompress_file"]
