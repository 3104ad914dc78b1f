"""Lossless compression driven by a trained discrete autoregressive model (ANS coding).

In memory: :func:`compress` / :func:`decompress`; files: :func:`compress_file` /
:func:`decompress_file` (behind ``genlab compress`` and ``genlab decompress``).
"""

from genlab.compress.coder import compress, decompress, decompress_with_labels, model_digest
from genlab.compress.files import CompressionResult, compress_file, decompress_file

__all__ = [
    "CompressionResult",
    "compress",
    "compress_file",
    "decompress",
    "decompress_file",
    "decompress_with_labels",
    "model_digest",
]
