"""The ``.glc`` file layout: magic, version, a compact binary header, the ANS payload.

::

    field        size      content
    magic        4         b"\\x89GLC"  (the high byte catches text-mode copies)
    version      1         format version, currently 1
    model_hash   8         first 8 bytes of the model's SHA-256 digest (config + weights)
    num_levels   varint    levels of the data
    num_classes  varint    classes of a conditional model, 0 for an unconditional one
    dtype        1 + k     length, then the numpy dtype string (e.g. "<i8")
    shape        1 + ...   number of dimensions, then each size as a varint
    data_crc32   4         CRC-32 of the decoded symbols (and labels), checked after decoding
    num_words    varint    payload length in 32-bit words
    header_crc   2         low 16 bits of the CRC-32 of every byte above (checked first)
    payload      4 * num_words   the ANS coder's words, little-endian

The reader checks the header against the payload before any decoding, because decoding
costs a pass of the model per position whatever the payload holds: the dtype must be numeric
(bool, integer or float), the shape at most ``MAX_DIMS`` sizes and ``MAX_VALUES`` values, and
past the first ``FREE_VALUES`` values each payload bit may stand for at most
``MAX_VALUES_PER_BIT`` values (1/64 bit per value; trained models spend 0.1 to 8 bits per
value on real data). An exact bound does not exist: ANS pushes symbol 0 onto an empty coder
for free, so only this limit stops a 200-byte file from claiming 200,000 images and keeping
the decoder busy for minutes. :func:`pack` applies the same limits, so genlab never writes a
file it would refuse to read.

Varints are unsigned LEB128 (7 bits per byte, high bit = more bytes follow). The header is
compact on purpose: the whole digits test split codes to ~5 kB, and a verbose header would
add a per-file cost comparable to the coding overhead we promise to stay under (1%). A
64-bit prefix of SHA-256 identifies a model with a chance of ~2^-64 of a false match.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np

from genlab.errors import DataError

MAGIC = b"\x89GLC"
VERSION = 1
MAX_DIMS = 32  # numpy's own limit is 64; data have a batch shape plus an event shape
MAX_VALUES = 2**28  # values per file (1 GiB as the decoder's int32 symbols)
FREE_VALUES = 2**16  # values any payload may claim (about a second of decoding)
MAX_VALUES_PER_BIT = 64  # values each further payload bit may claim


def check_layout(dtype: str, shape: list[int], payload_bytes: int) -> np.dtype:
    """Return ``np.dtype(dtype)`` if it is numeric and ``shape`` fits the format's limits and
    a payload of ``payload_bytes`` bytes (see the module docstring).

    Raises:
        DataError: a non-numeric or unknown dtype, too many dimensions or values, or more
            values than the payload can stand for.
    """
    try:
        parsed = np.dtype(dtype)
    except (TypeError, ValueError, SyntaxError):
        parsed = None
    if parsed is None or parsed.kind not in "biuf":
        raise DataError(
            f"Expected a numeric dtype (bool, integer or float) in the compressed file, but "
            f"found {dtype!r}."
        )
    values = 1
    for size in shape:
        values *= size
    if len(shape) > MAX_DIMS or values > MAX_VALUES:
        raise DataError(
            f"Expected at most {MAX_DIMS} dimensions and {MAX_VALUES} values in a compressed "
            f"file, but found shape {tuple(shape)}; compress large data in parts."
        )
    allowed = FREE_VALUES + MAX_VALUES_PER_BIT * 8 * payload_bytes
    if values > allowed:
        raise DataError(
            f"Expected at most {allowed} values for a payload of {payload_bytes} bytes (1/"
            f"{MAX_VALUES_PER_BIT} bit per value past the first {FREE_VALUES}), but the header "
            f"claims {values}; the file is corrupt or hostile, or the data were compressed in "
            "too large a part."
        )
    return parsed


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


class _Reader:
    """Reads fields from the front of ``data``; running out means a truncated file."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, k: int, what: str) -> bytes:
        if self.pos + k > len(self.data):
            raise DataError(
                f"The compressed file is truncated: it ends inside the {what} (needs byte "
                f"{self.pos + k}, but the file has {len(self.data)} bytes)."
            )
        chunk = self.data[self.pos : self.pos + k]
        self.pos += k
        return chunk

    def varint(self, what: str) -> int:
        value, shift = 0, 0
        while True:
            (byte,) = self.take(1, what)
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value
            if shift > 63:
                raise DataError(f"The compressed file is corrupt: the {what} is not a varint.")


def pack(header: dict[str, Any], payload: bytes) -> bytes:
    """Serialise ``header`` (keys ``model_hash`` (hex), ``num_levels``, ``num_classes``,
    ``dtype``, ``shape``, ``data_crc32``) and ``payload`` (whole 32-bit words).

    Raises:
        DataError: a layout the reader would refuse (see :func:`check_layout`).
    """
    check_layout(header["dtype"], header["shape"], len(payload))
    dtype = header["dtype"].encode("ascii")
    parts = [
        MAGIC,
        bytes([VERSION]),
        bytes.fromhex(header["model_hash"])[:8],
        _varint(header["num_levels"]),
        _varint(header["num_classes"] or 0),
        bytes([len(dtype)]),
        dtype,
        bytes([len(header["shape"])]),
        *(_varint(s) for s in header["shape"]),
        struct.pack("<I", header["data_crc32"]),
        _varint(len(payload) // 4),
    ]
    head = b"".join(parts)
    return head + struct.pack("<H", zlib.crc32(head) & 0xFFFF) + payload


def unpack(data: bytes) -> tuple[dict[str, Any], bytes]:
    """Parse a ``.glc`` file; returns ``(header, payload)``.

    Raises:
        DataError: not a ``.glc`` file, an unknown version, a non-numeric dtype, a shape over
            the limits, or a truncated or corrupt file.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DataError(f"Expected compressed data as bytes, but found {type(data).__name__}.")
    data = bytes(data)
    if not data.startswith(MAGIC):
        raise DataError(
            f"Expected a genlab compressed file starting with {MAGIC!r}, but found "
            f"{data[:4]!r}; this is not a .glc file (or its start is damaged)."
        )
    r = _Reader(data)
    r.take(len(MAGIC), "magic")
    (version,) = r.take(1, "version")
    if version != VERSION:
        raise DataError(
            f"Expected .glc format version {VERSION}, but found version {version}; this file "
            "needs another genlab version (or is corrupt)."
        )
    header: dict[str, Any] = {"model_hash": r.take(8, "model hash").hex()}
    header["num_levels"] = r.varint("number of levels")
    header["num_classes"] = r.varint("number of classes") or None
    (k,) = r.take(1, "dtype")
    try:
        header["dtype"] = r.take(k, "dtype").decode("ascii")
    except UnicodeDecodeError:
        raise DataError("The compressed file is corrupt: its dtype is not text.") from None
    (ndim,) = r.take(1, "shape")
    header["shape"] = [r.varint("shape") for _ in range(ndim)]
    (header["data_crc32"],) = struct.unpack("<I", r.take(4, "checksum"))
    words = r.varint("payload length")
    head_end = r.pos
    (crc,) = struct.unpack("<H", r.take(2, "header checksum"))
    if zlib.crc32(data[:head_end]) & 0xFFFF != crc:
        raise DataError("The compressed file is corrupt: its header fails the checksum.")
    payload = r.take(4 * words, "payload")
    if r.pos != len(data):
        raise DataError(
            f"The compressed file is corrupt: {len(data) - r.pos} unexpected bytes after the "
            "payload."
        )
    check_layout(header["dtype"], header["shape"], len(payload))
    return header, payload
