"""Lossless compression with a trained discrete autoregressive model and ANS.

An entropy coder driven by a model p spends about ``-log2 p(x)`` bits on ``x`` (Shannon), so
by the chain rule

    bits(x) ~= -sum_t log2 p(x_{o_t} | x_{o_<t}) = NLL(x) / ln 2,

and a model's test bits per dimension is its compression rate. The coder is constriction's
asymmetric numeral systems (ANS) coder (Duda 2009; Bamler 2022): a stack holding one large
integer state; pushing symbol s with quantised probability ``q(s) = f(s) / 2^24`` grows the
state by a factor ``~1 / q(s)``, i.e. by ``-log2 q(s)`` bits, and popping undoes it exactly.

Encoder and decoder must see bit-identical probabilities. The decoder can only compute
``p(x_{o_t} | x_{o_<t})`` after decoding ``x_{o_<t}``, one position at a time for a whole
chunk of images; the encoder therefore computes them *the same way*: the same sampling loop
(the model's ``autoregress``), the same batch shapes, on one CPU thread, with
``x_{o_<t}`` filled in and zeros elsewhere. Probabilities are then quantised to integers by
constriction, a deterministic function of the same float64 array on both sides. A CRC-32 of
the data in the header catches any mismatch (or corruption) after decoding.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import constriction
import numpy as np
import torch
from torch import Tensor

from genlab.base import GenerativeModel
from genlab.compress import container
from genlab.errors import CheckpointError, ConfigError, DataError

CHUNK = 4096  # images coded per batch of the sampling loop (fixed by format version 1)


def model_digest(model: GenerativeModel) -> str:
    """SHA-256 of a model's registry name, config and weights (as saved in safetensors).

    Each tensor contributes its name, dtype, shape and raw bytes in sorted order, so the
    digest is the same for the model in memory and after ``genlab.load`` of its run folder.
    """
    h = hashlib.sha256()
    h.update(json.dumps({"model": model.name, "config": model.config}, sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _check_model(model: Any) -> None:
    """A coder needs exact discrete conditionals in one fixed order: the model's
    ``autoregress(n, y, choose)`` loop, its ``conditional_probs`` and its ``order``."""
    ordered = getattr(model, "has_ordered_conditionals", False)
    if not (ordered and getattr(model, "discrete", False)):
        found = type(model).__name__ + (" without num_levels" if ordered else "")
        raise ConfigError(
            "Expected a model with exact discrete conditionals in a fixed order, e.g. made, "
            f"pixelcnn, rnn, transformer with num_levels set, to compress with, but found "
            f"{found}."
        )


@contextmanager
def _deterministic(model: GenerativeModel) -> Iterator[None]:
    """Evaluation mode, no autograd and one CPU thread (a fixed summation order)."""
    threads, was_training = torch.get_num_threads(), model.training
    torch.set_num_threads(1)
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        torch.set_num_threads(threads)
        model.train(was_training)


def categorical_family() -> Any:
    """The coder's categorical entropy model, for tables given at coding time."""
    return constriction.stream.model.Categorical(perfect=False)


def as_symbols(model: GenerativeModel, x: Any) -> tuple[np.ndarray, np.ndarray]:
    """Data to code: the array as given (its dtype and shape go in the header) and its
    validated levels as int32 symbols ``(n, D)``.

    Raises:
        DataError: not a numeric array, empty, or values outside the model's levels.
        ShapeError: ``x`` does not fit the model's event shape.
    """
    original = x.detach().cpu() if isinstance(x, Tensor) else np.asarray(x)
    if isinstance(original, Tensor) and original.dtype in (torch.bfloat16, torch.float16):
        original = original.float()
    array = original.numpy() if isinstance(original, Tensor) else original
    if array.dtype.kind not in "biuf":
        raise DataError(f"Expected an integer or float array, but found dtype {array.dtype}.")
    if array.size == 0:
        raise DataError("Expected at least one sample to compress, but found none.")
    flat, _ = model._check_x(torch.from_numpy(np.array(array, dtype=np.float64)))
    return array, flat.reshape(flat.shape[0], -1).long().cpu().numpy().astype(np.int32)


def _symbols_crc(symbols: np.ndarray, labels: np.ndarray | None) -> int:
    crc = zlib.crc32(np.ascontiguousarray(symbols, dtype="<i4").tobytes())
    if labels is not None:
        crc = zlib.crc32(np.ascontiguousarray(labels, dtype="<i4").tobytes(), crc)
    return crc


def _probs(model: Any, params: Tensor) -> np.ndarray:
    return model.conditional_probs(params.to(torch.float64)).cpu().numpy()  # (n, L)


def compress(
    model: GenerativeModel, x: Tensor | np.ndarray, y: Tensor | np.ndarray | None = None
) -> bytes:
    """Losslessly compress discrete data ``x`` with a trained autoregressive model.

    Arguments:
        model: A model with exact discrete conditionals in a fixed order
            (``has_ordered_conditionals``, ``num_levels`` set), e.g. a discrete autoregressive
            model.
        x: Integers in ``[0, num_levels)`` of shape ``(*batch, *event_shape)``, any real dtype;
            the shape and dtype are restored by :func:`decompress`.
        y: Class labels of shape ``batch`` for a conditional model (stored in the stream at
            ``log2(num_classes)`` bits each).

    Returns:
        The ``.glc`` file contents (see :mod:`genlab.compress.container`).

    Note:
        Decode on the same kind of device as you encode (CPU is the portable choice: it is
        what ``compress_file`` uses); a mismatch in floating-point results is caught by the
        checksum and reported as a DataError, never returned as wrong data.

    Raises:
        ConfigError: the model has no exact discrete conditionals in a fixed order.
        ShapeError, DataError: ``x`` or ``y`` do not fit the model.

    Example:
        >>> import torch
        >>> from genlab import create
        >>> model = create("made", event_shape=(4,), num_levels=3, width=8, depth=1)
        >>> x = torch.randint(0, 3, (10, 4))
        >>> bool((decompress(model, compress(model, x)) == x).all())
        True
    """
    _check_model(model)
    array, symbols = as_symbols(model, x)  # symbols (n, D)
    n = symbols.shape[0]
    labels = model._check_y(y, n)
    label_arr = None if labels is None else labels.cpu().numpy().astype(np.int32)
    order = model.order.cpu().numpy()
    coder = constriction.stream.stack.AnsCoder()
    family = categorical_family()
    with _deterministic(model):
        starts = list(range(0, n, CHUNK))
        # ANS is a stack: push the last chunk first so that the decoder pops chunk 0 first;
        # within a chunk push the pixels, then the labels (decoded before the pixels).
        for start in reversed(starts):
            chunk = symbols[start : start + CHUNK]
            m = chunk.shape[0]
            y_chunk = None if labels is None else labels[start : start + m]
            truth = torch.as_tensor(chunk, dtype=model.dtype, device=model.device)
            tables = []

            def teacher(t: int, params: Tensor, truth: Tensor = truth, tables: list = tables):
                tables.append(_probs(model, params))
                return truth[:, int(order[t])]

            model.autoregress(m, y_chunk, teacher)
            stream = chunk[:, order].T.reshape(-1)  # (D*m,) in decoding order
            coder.encode_reverse(stream, family, np.concatenate(tables, axis=0))
            if label_arr is not None:
                uniform = np.full((m, model.num_classes), 1.0 / model.num_classes)
                coder.encode_reverse(label_arr[start : start + m], family, uniform)
    payload = coder.get_compressed().astype("<u4").tobytes()
    header = {
        "model_hash": model_digest(model),
        "num_levels": model.num_levels,
        "num_classes": model.num_classes,
        "dtype": array.dtype.str,
        "shape": list(array.shape),
        "data_crc32": _symbols_crc(symbols, label_arr),
    }
    return container.pack(header, payload)


def check_model_hash(header: dict[str, Any], model: GenerativeModel) -> None:
    """Refuse a file whose header names another model than ``model``.

    Raises:
        CheckpointError: the file was compressed with another model.
    """
    expected = model_digest(model)[:16]
    if header["model_hash"] != expected:
        raise CheckpointError(
            f"This file was compressed with another model (hash {header['model_hash']}), but "
            f"the given {model.name!r} model has hash {expected}; decode it with the model "
            "that compressed it."
        )


def decompress_with_labels(
    model: GenerativeModel, data: bytes
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode a ``.glc`` stream; returns the data (original shape and dtype, as numpy) and
    the labels (None for an unconditional model).

    Raises:
        DataError: corrupt or truncated data.
        CheckpointError: the data were compressed with another model.
    """
    _check_model(model)
    header, payload = container.unpack(data)
    check_model_hash(header, model)
    if (header["num_levels"], header["num_classes"]) != (model.num_levels, model.num_classes):
        raise DataError(
            "The compressed file is corrupt: it declares num_levels="
            f"{header['num_levels']}, num_classes={header['num_classes']}, but its model has "
            f"{model.num_levels}, {model.num_classes}."
        )
    shape = tuple(header["shape"])
    k = len(model.event_shape)
    try:
        dtype = np.dtype(header["dtype"])
    except TypeError:
        raise DataError(
            f"The compressed file is corrupt: bad dtype {header['dtype']!r}."
        ) from None
    if len(shape) < k or shape[len(shape) - k :] != model.event_shape:
        raise DataError(
            f"The compressed file is corrupt: shape {shape} does not end with the model's "
            f"event shape {model.event_shape}."
        )
    n = int(np.prod(shape[: len(shape) - k]))
    chunk = CHUNK
    words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
    try:
        coder = constriction.stream.stack.AnsCoder(words)
    except ValueError as err:
        raise DataError(f"The compressed file is corrupt: {err}") from None
    family = categorical_family()
    out = np.zeros((n, model.event_dim), dtype=np.int32)
    label_out = None if model.num_classes is None else np.zeros(n, dtype=np.int32)
    with _deterministic(model):
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            y_chunk = None
            if label_out is not None:
                uniform = np.full((m, model.num_classes), 1.0 / model.num_classes)
                label_out[start : start + m] = coder.decode(family, uniform)
                y_chunk = torch.as_tensor(label_out[start : start + m], device=model.device)

            def decode(t: int, params: Tensor) -> Tensor:
                symbols = coder.decode(family, _probs(model, params))  # (m,)
                return torch.as_tensor(symbols, dtype=model.dtype, device=model.device)

            out[start : start + m] = model.autoregress(m, y_chunk, decode).cpu().numpy()
    if not coder.is_empty() or _symbols_crc(out, label_out) != header["data_crc32"]:
        raise DataError(
            "The decoded data fail the checksum: the file is corrupt, or this machine computes "
            "the model's probabilities differently from the one that compressed it."
        )
    return out.reshape(shape).astype(dtype), label_out


def decompress(model: GenerativeModel, data: bytes) -> Tensor:
    """Decode a ``.glc`` stream made by :func:`compress` with the same model.

    Returns:
        The data, bit-exact, with the shape and dtype given to :func:`compress`.

    Raises:
        DataError: corrupt or truncated data.
        CheckpointError: the data were compressed with another model.
    """
    values, _ = decompress_with_labels(model, data)
    return torch.from_numpy(values)
