r"""Bits-back coding with a VAE and ANS (BB-ANS; Townsend, Bird & Barber 2019).

A VAE gives no ``p(x)`` to code with, only ``p(z) p(x | z)`` and a guess ``q(z | x)``.
Coding ``z`` and then ``x`` costs ``-log p(z) - log p(x | z)`` bits; bits-back coding takes
the choice of ``z`` *from the message already on the stack* by decoding it with ``q(z | x)``,
which gets ``-log q(z | x)`` bits back. Per sample, in the encoder's order:

1. pop   ``z ~ q(z | x)``     (the stack shrinks by ``-log2 q(z | x)`` bits)
2. push  ``x`` with ``p(x | z)`` (grows by ``-log2 p(x | z)``)
3. push  ``z`` with ``p(z)``     (grows by ``-log2 p(z)``)

so the stack grows by ``-log2 [p(x | z) p(z) / q(z | x)]`` bits, whose mean over ``q`` is
``-ELBO(x) / ln 2``. The decoder runs the same steps backwards and in reverse order: pop
``z`` with ``p(z)``, pop ``x`` with ``p(x | z)``, compute ``q(z | x)`` and push ``z`` back,
which returns the bits the encoder borrowed.

**Latent discretisation.** ANS codes integers, so each latent coordinate is cut into
``2^b`` buckets of equal prior mass, at the standard normal's quantiles
``Phi^-1(j / 2^b)``: under the prior every bucket has probability ``2^-b`` exactly (``b``
bits per coordinate), a bucket stands for its prior-median point
``Phi^-1((j + 1/2) / 2^b)``, and the posterior's bucket probabilities are
``Phi((e_{j+1} - mu) / sigma) - Phi((e_j - mu) / sigma)``. With ``b = 12`` (the default) the
buckets near 0 are ~0.0006 wide, far narrower than a trained posterior, and the discretised
ELBO matches the continuous one.

**Initial bits.** The first sample's pop needs bits that are not there yet: the stack starts
with ``INITIAL`` words drawn from a fixed seed (the same on both sides), enough for the worst
case of ``24`` bits (the coder's precision) per latent coordinate plus the 64-bit ANS head.
They travel in the file and the decoder checks it ends with exactly these words. The file
therefore costs ``32 * initial_words(latent_size)`` bits (448 for 16 latent dimensions) plus
the stream's ``-ELBO`` in bits, plus the container's header: :func:`initial_bits`.

The probabilities on both sides come from the same calls (one sample per network call, one
CPU thread, float64 tables), so they agree bit for bit; a CRC-32 of the data and the final
check of the initial words catch any mismatch or corruption.

References:
    Townsend, Bird, Barber. Practical lossless compression with latent variables using bits
    back coding. ICLR 2019.
"""

from __future__ import annotations

import math
from typing import Any

import constriction
import numpy as np
import torch
from torch import Tensor

from genlab.base import GenerativeModel
from genlab.compress import container
from genlab.compress.coder import (
    _deterministic,
    _symbols_crc,
    as_symbols,
    categorical_family,
    check_model_hash,
    model_digest,
)
from genlab.errors import ConfigError, DataError

#: Bits per latent coordinate (2^b buckets) unless the caller chooses.
LATENT_BITS = 12
#: The most bits per latent coordinate: the coder's precision is 24 bits.
MAX_LATENT_BITS = 20
#: Precision of constriction's categorical models: the most bits one pop can take.
PRECISION = 24
#: Seed of the initial words (a constant of the format).
INITIAL_SEED = 20190211


def initial_words(latent_size: int) -> int:
    """32-bit words on the stack before the first pop: 24 bits per latent coordinate and the
    64-bit head, rounded up."""
    return math.ceil((PRECISION * latent_size + 64) / 32)


def initial_bits(latent_size: int) -> int:
    """The one-off cost of a bits-back file beyond its ``-ELBO``, in bits (header aside)."""
    return 32 * initial_words(latent_size)


def _initial(latent_size: int) -> np.ndarray:
    rng = np.random.default_rng(INITIAL_SEED)
    return rng.integers(1, 2**32, size=initial_words(latent_size), dtype=np.uint32)


def _check_model(model: Any) -> None:
    if not (getattr(model, "has_posterior", False) and getattr(model, "discrete", False)):
        raise ConfigError(
            "Expected a VAE with num_levels set (a posterior, a prior and a discrete "
            f"decoder) to code with bits back, but found {type(model).__name__}"
            f"{'' if getattr(model, 'discrete', False) else ' without num_levels'}."
        )


class _Latents:
    """The latent buckets: edges and centres at the standard normal's quantiles."""

    def __init__(self, bits: int) -> None:
        k = 2**bits
        j = torch.arange(k + 1, dtype=torch.float64)
        self.edges = torch.special.ndtri(j / k)  # (2^b + 1,), -inf .. inf
        self.centres = torch.special.ndtri((j[:-1] + 0.5) / k).float()  # (2^b,)
        self.prior = constriction.stream.model.Uniform(k)

    def posterior(self, mean: Tensor, std: Tensor) -> np.ndarray:
        """Bucket probabilities of N(mean, std^2): ``(latent_size, 2^b)`` float64."""
        mean, std = mean.double().reshape(-1, 1), std.double().reshape(-1, 1)
        cdf = torch.special.ndtr((self.edges - mean) / std)  # (latent_size, 2^b + 1)
        return _table(cdf[:, 1:] - cdf[:, :-1])


def _table(probs: Tensor) -> np.ndarray:
    """Rows of probabilities as the C-ordered float64 array the coder reads."""
    return np.ascontiguousarray(probs.double().clamp_min(0.0).cpu().numpy())


def compress(model: GenerativeModel, x: Tensor | np.ndarray, y: Tensor | np.ndarray | None = None,
             *, latent_bits: int = LATENT_BITS) -> bytes:
    """Losslessly compress discrete data ``x`` with a VAE by bits-back coding.

    Arguments:
        model: A VAE with ``num_levels`` set.
        x: Integers in ``[0, num_levels)`` of shape ``(*batch, *event_shape)``, any real
            dtype; :func:`decompress` restores shape and dtype.
        y: Labels of shape ``batch`` for a conditional VAE (coded uniformly).
        latent_bits: ``b``: each latent coordinate is cut into ``2^b`` buckets of equal prior
            mass (1 to 20); stored in the stream.

    Returns:
        The ``.glc`` file contents (:mod:`genlab.compress.container`).

    Raises:
        ConfigError: not a discrete VAE, or ``latent_bits`` out of range.
        ShapeError, DataError: ``x`` or ``y`` do not fit the model.

    Example:
        >>> import torch
        >>> from genlab import create
        >>> model = create("vae", event_shape=(6,), num_levels=3, width=8, depth=1)
        >>> x = torch.randint(0, 3, (5, 6))
        >>> bool((decompress(model, compress(model, x)) == x).all())
        True
    """
    _check_model(model)
    if isinstance(latent_bits, bool) or not isinstance(latent_bits, int) or not (
            1 <= latent_bits <= MAX_LATENT_BITS):
        raise ConfigError(
            f"Expected latent_bits to be an int in [1, {MAX_LATENT_BITS}], but found "
            f"{latent_bits!r}."
        )
    array, symbols = as_symbols(model, x)  # symbols (n, D)
    n = symbols.shape[0]
    labels = model._check_y(y, n)
    label_arr = None if labels is None else labels.cpu().numpy().astype(np.int32)
    latents, family = _Latents(latent_bits), categorical_family()
    coder = constriction.stream.stack.AnsCoder(_initial(model.latent_size))
    with _deterministic(model):
        for i in range(n):
            y_i = None if labels is None else labels[i : i + 1]
            x_i = torch.as_tensor(symbols[i : i + 1], dtype=model.dtype, device=model.device)
            mean, std = model.posterior(x_i.reshape(1, *model.event_shape), y_i)
            z = coder.decode(family, latents.posterior(mean.cpu(), std.cpu()))  # pop z ~ q
            z_i = latents.centres[z].reshape(1, -1).to(device=model.device, dtype=model.dtype)
            table = _table(model.decoder_probs(z_i, y_i)[0])  # (D, L)
            coder.encode_reverse(symbols[i], family, table)  # push x ~ p(x | z)
            coder.encode_reverse(z, latents.prior)  # push z ~ p(z)
    if label_arr is not None:
        uniform = np.full((n, model.num_classes), 1.0 / model.num_classes)
        coder.encode_reverse(label_arr, family, uniform)
    coder.encode_reverse(np.array([latent_bits - 1], dtype=np.int32),
                         constriction.stream.model.Uniform(32))
    header = {
        "model_hash": model_digest(model),
        "num_levels": model.num_levels,
        "num_classes": model.num_classes,
        "dtype": array.dtype.str,
        "shape": list(array.shape),
        "data_crc32": _symbols_crc(symbols, label_arr),
    }
    return container.pack(header, coder.get_compressed().astype("<u4").tobytes())


def decompress_with_labels(model: GenerativeModel, data: bytes
                           ) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode a bits-back ``.glc`` stream: the data (original shape and dtype) and labels.

    Raises:
        DataError: corrupt or truncated data.
        CheckpointError: the data were compressed with another model.
    """
    _check_model(model)
    header, payload = container.unpack(data)
    check_model_hash(header, model)
    shape, k = tuple(header["shape"]), len(model.event_shape)
    if (header["num_levels"], header["num_classes"]) != (model.num_levels, model.num_classes) \
            or len(shape) < k or shape[len(shape) - k:] != model.event_shape:
        raise DataError(
            f"The compressed file is corrupt: it declares num_levels={header['num_levels']}, "
            f"num_classes={header['num_classes']}, shape {shape}, which do not fit its model."
        )
    try:
        dtype = np.dtype(header["dtype"])
        coder = constriction.stream.stack.AnsCoder(np.frombuffer(payload, dtype="<u4")
                                                   .astype(np.uint32))
    except (TypeError, ValueError) as err:
        raise DataError(f"The compressed file is corrupt: {err}") from None
    n = int(np.prod(shape[: len(shape) - k]))
    bits = int(coder.decode(constriction.stream.model.Uniform(32), 1)[0]) + 1
    latents, family = _Latents(bits), categorical_family()
    label_out = None
    if model.num_classes is not None:
        uniform = np.full((n, model.num_classes), 1.0 / model.num_classes)
        label_out = coder.decode(family, uniform).astype(np.int32)
    labels = None if label_out is None else torch.as_tensor(label_out, device=model.device)
    out = np.zeros((n, model.event_dim), dtype=np.int32)
    with _deterministic(model):
        for i in reversed(range(n)):
            y_i = None if labels is None else labels[i : i + 1]
            z = coder.decode(latents.prior, model.latent_size)  # pop z ~ p(z)
            z_i = latents.centres[z].reshape(1, -1).to(device=model.device, dtype=model.dtype)
            table = _table(model.decoder_probs(z_i, y_i)[0])
            out[i] = coder.decode(family, table)  # pop x ~ p(x | z)
            x_i = torch.as_tensor(out[i : i + 1], dtype=model.dtype, device=model.device)
            mean, std = model.posterior(x_i.reshape(1, *model.event_shape), y_i)
            coder.encode_reverse(z, family, latents.posterior(mean.cpu(), std.cpu()))  # z back
    rest = coder.get_compressed()
    if not np.array_equal(rest, _initial(model.latent_size)) or \
            _symbols_crc(out, label_out) != header["data_crc32"]:
        raise DataError(
            "The decoded data fail the checksum: the file is corrupt, or this machine computes "
            "the model's probabilities differently from the one that compressed it."
        )
    return out.reshape(shape).astype(dtype), label_out


def decompress(model: GenerativeModel, data: bytes) -> Tensor:
    """Decode a bits-back ``.glc`` stream made by :func:`compress` with the same model."""
    values, _ = decompress_with_labels(model, data)
    return torch.from_numpy(values)
