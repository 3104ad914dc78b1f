"""Sample sets as float64 matrices, and their pairwise distances computed block by block.

The sample metrics flatten each sample to a vector of ``D`` numbers, so one metric serves
2-D points and 8x8 images, and never hold a whole ``n x m`` matrix of distances, only blocks
of :data:`BLOCK_ELEMENTS` entries.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from genlab.errors import DataError, ShapeError

ArrayLike = Tensor | np.ndarray

#: Elements of one block of a pairwise matrix (float64: 2 MiB): small enough to stay in cache
#: while the kernel is evaluated on it, which is several times faster than large blocks.
BLOCK_ELEMENTS = 1 << 18


def as_tensor(x: ArrayLike, name: str) -> Tensor:
    """``x`` as a tensor (a numpy array shares its memory); anything else is a DataError."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, Tensor):
        raise DataError(f"Expected {name} to be a torch.Tensor or numpy array, but found "
                        f"{type(x).__name__}.")
    return x


def as_matrix(x: ArrayLike, name: str, *, min_rows: int = 1) -> Tensor:
    """Validate ``x`` of shape ``(n, *shape)`` and flatten it to float64 ``(n, D)``."""
    x = as_tensor(x, name)
    if x.dtype == torch.bool or x.is_complex():
        raise DataError(f"Expected {name} of a real dtype, but found {x.dtype}.")
    if x.dim() == 1:
        x = x[:, None]  # (n,) -> (n, 1): a set of scalars
    x = x.detach().reshape(x.shape[0], -1).double()  # (n, D)
    if x.shape[0] < min_rows:
        raise ShapeError(f"Expected {name} with at least {min_rows} samples, but found "
                         f"{x.shape[0]}.")
    if not torch.isfinite(x).all():
        raise DataError(f"Expected finite {name}, but found NaN or Inf.")
    return x


def as_pair(x: ArrayLike, y: ArrayLike, names: tuple[str, str], *, min_rows: int = 1
            ) -> tuple[Tensor, Tensor]:
    """Two sets as float64 matrices ``(n, D)`` and ``(m, D)`` on ``x``'s device, checked to
    have the same ``D``; ``names`` name them in messages."""
    a = as_matrix(x, names[0], min_rows=min_rows)
    b = as_matrix(y, names[1], min_rows=min_rows).to(a.device)
    if a.shape[1] != b.shape[1]:
        raise ShapeError(f"Expected {names[0]} and {names[1]} with the same number of values "
                         f"per sample, but found {a.shape[1]} and {b.shape[1]}.")
    return a, b


def sq_dist_blocks(a: Tensor, b: Tensor) -> Iterator[tuple[int, Tensor]]:
    """Yield ``(start, block)`` with ``block[i, j] = |a[start + i] - b[j]|^2``."""
    rows = max(1, BLOCK_ELEMENTS // max(1, b.shape[0]))
    b_sq = (b * b).sum(1)  # (m,)
    for start in range(0, a.shape[0], rows):
        block = a[start:start + rows]
        # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b, clamped: rounding can make it slightly negative
        d2 = (block * block).sum(1, keepdim=True) + b_sq[None, :] - 2.0 * block @ b.T
        yield start, d2.clamp_min_(0.0)  # (rows, m)


def nearest_sq_dist(a: Tensor, b: Tensor, k: int = 1) -> Tensor:
    """Squared distance from each row of ``a`` to its k-th nearest row of ``b``, shape (n,)."""
    out = torch.empty(a.shape[0], dtype=a.dtype, device=a.device)
    for start, d2 in sq_dist_blocks(a, b):
        out[start:start + d2.shape[0]] = d2.topk(k, dim=1, largest=False).values[:, k - 1]
    return out


def median_distance(x: Tensor, max_points: int = 1000) -> float:
    """Median pairwise distance of (an evenly strided subset of) the rows of ``x``."""
    step = max(1, math.ceil(x.shape[0] / max_points))
    sub = x[::step]
    d2 = torch.cat([blk for _, blk in sq_dist_blocks(sub, sub)])
    upper = torch.triu_indices(sub.shape[0], sub.shape[0], offset=1, device=sub.device)
    return d2[upper[0], upper[1]].sqrt().median().item() if sub.shape[0] > 1 else 0.0
