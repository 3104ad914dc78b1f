"""Bins and count tables behind :class:`~genlab.models.histogram.Histogram`: parsing of
``bins``/``edges``/``range``, bin lookup, cell indices, table sizes, drawing cells.

A histogram over D dimensions with ``B_d`` bins in dimension d has ``K = prod_d B_d`` cells.
Cell ``i`` is named by its multi-index ``(i_1, ..., i_D)`` or by its row-major flat index
``i = sum_d i_d * stride_d`` (the order ``numpy.ravel_multi_index`` uses).

With ``count_i`` training points in cell i out of n and Laplace smoothing ``alpha``,

    p_i = (count_i + alpha) / (n + alpha * K).

Three ways to store the counts, all giving that same ``p_i``:

* dense: a ``(C, K)`` table, C classes (1 when unconditional);
* sparse: only the occupied cells, as sorted keys ``c * K + i`` and their counts; empty cells
  have ``count_i = 0`` (for many dimensions, where K is far larger than n);
* factorized: one histogram per dimension, ``p(i) = prod_d p_d(i_d)``, a ``(C, D, B_max)`` table
  (the "per-pixel histogram": it ignores every dependency between dimensions).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from genlab import rand
from genlab.errors import ConfigError, GenlabWarning

#: Warn when a histogram table has more cells than this.
WARN_CELLS = 10**7
#: ``torch.multinomial`` takes at most this many categories.
_MULTINOMIAL_MAX = 2**24


# ---------------------------------------------------------------------------- configuration
# The declared settings already fix the types and bounds; these check what depends on the
# number of dimensions D and on the values together.
def parse_bins(bins: int | Sequence[int], dims: int) -> list[int]:
    """One bin count per dimension from an int or a list of D ints."""
    values = [bins] * dims if isinstance(bins, int) else list(bins)
    if len(values) != dims:
        raise ConfigError(
            f"Expected bins as an int or {dims} ints (one per dimension), but found {bins!r}."
        )
    return values


def parse_edges(edges: Sequence[Sequence[float]], dims: int) -> list[Tensor]:
    """One float64 row of increasing edges per dimension."""
    rows = [torch.tensor([float(e) for e in row], dtype=torch.float64) for row in edges]
    if len(rows) != dims:
        raise ConfigError(
            f"Expected {dims} lists of edges (one per dimension), but found {len(rows)}."
        )
    for d, row in enumerate(rows):
        if row.numel() < 2 or not (row[1:] > row[:-1]).all():
            raise ConfigError(
                f"Expected edges[{d}] to hold at least 2 increasing values, but found "
                f"{row.tolist()}."
            )
    return rows


def parse_range(value: Sequence[Any], dims: int) -> list[tuple[float, float]]:
    """``[lo, hi]`` for every dimension, or one ``[lo, hi]`` per dimension."""
    if all(isinstance(v, (int, float)) for v in value):
        pairs = [tuple(map(float, value))] * dims
    else:
        pairs = [tuple(map(float, row)) for row in value]
    if len(pairs) != dims or any(len(p) != 2 or not p[0] < p[1] for p in pairs):
        raise ConfigError(
            f"Expected range as [low, high] or {dims} pairs [low, high], each low < high, but "
            f"found {value!r}."
        )
    return pairs


def uniform_edges(
    low: Sequence[float], high: Sequence[float], bins: Sequence[int]
) -> list[Tensor]:
    """Equal-width float64 edges ``linspace(low_d, high_d, B_d + 1)`` per dimension."""
    return [
        torch.linspace(lo, hi, b + 1, dtype=torch.float64)
        for lo, hi, b in zip(low, high, bins, strict=True)
    ]


# ---------------------------------------------------------------------------- binning
# Bin indices are kept as (D, n): one contiguous row per dimension, so that the per-dimension
# work (lookups, strides, volumes) runs over contiguous memory.
def bin_index(x: Tensor, edges: Tensor, bins: Sequence[int]) -> tuple[Tensor, Tensor]:
    """Bin index of each point in each dimension, and whether the point is inside the range.

    Bins are half-open ``[e_j, e_{j+1})`` except the last one, which also holds its upper edge
    (as in ``numpy.histogramdd``).

    Arguments:
        x: Points, shape ``(n, D)``.
        edges: Bin edges, shape ``(D, B_max + 1)``, each row increasing and padded with +inf
            after its ``bins[d] + 1`` real edges.
        bins: Number of bins per dimension, length D.

    Returns:
        ``(index, inside)``: int64 ``(D, n)`` bin indices (clamped into range for points
        outside) and a bool ``(n,)`` mask of points inside every dimension's range.
    """
    num_bins = torch.tensor(bins, device=x.device)[:, None]  # (D, 1)
    xt = columns(x.to(edges.dtype))  # (D, n)
    # searchsorted(right=True) counts the edges <= x; minus one is the bin whose left edge <= x.
    index = torch.searchsorted(edges, xt, right=True) - 1  # (D, n)
    upper = edges.gather(1, num_bins)  # (D, 1), the last real edge
    index = torch.where(xt == upper, num_bins - 1, index)
    inside = ((index >= 0) & (index < num_bins)).all(0)  # (n,)
    return torch.minimum(index.clamp_(min=0), num_bins - 1), inside


def uniform_bin_index(x: Tensor, edges: Tensor, bins: Sequence[int]) -> tuple[Tensor, Tensor]:
    """:func:`bin_index` for equally spaced edges, by arithmetic instead of binary search.

    ``floor((x - e_0) B / (e_B - e_0))`` can be one bin off after rounding; comparing with the
    stored edges corrects it, so the result is exactly that of :func:`bin_index`.
    """
    x = x.to(edges.dtype)
    index = torch.empty(x.shape[1], x.shape[0], dtype=torch.long, device=x.device)  # (D, n)
    inside = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
    for d, b in enumerate(bins):
        e, v = edges[d, : b + 1], x[:, d]
        low, high = e[0], e[-1]
        shifted = v - low  # >= 0 exactly when v >= low
        inside &= (shifted >= 0) & (v <= high)
        i = shifted.mul_(b / (high - low)).to(torch.long).clamp_(0, b - 1)  # truncation
        i.sub_((v < e.index_select(0, i)).long())  # one bin too far right after rounding
        i.clamp_(min=0)
        i.add_(((v >= e.index_select(0, i + 1)) & (i < b - 1)).long())  # one bin too far left
        index[d] = i
    return index, inside


def columns(x: Tensor) -> Tensor:
    """``x.T`` as a contiguous ``(D, n)`` tensor (column by column: faster than a transpose)."""
    return torch.stack([c.contiguous() for c in x.unbind(1)])


def log_bin_widths(edges: Tensor, bins: Sequence[int]) -> Tensor:
    """``log(e_{d, j+1} - e_{d, j})`` per dimension and bin, float64 ``(D, B_max)``; 0 past
    each dimension's last bin."""
    widths = (edges[:, 1:] - edges[:, :-1]).double()
    real = (
        torch.arange(widths.shape[1], device=edges.device)
        < torch.tensor(bins, device=edges.device)[:, None]
    )
    return torch.where(real, widths, torch.ones_like(widths)).log()


def log_bin_volume(index: Tensor, edges: Tensor, bins: Sequence[int]) -> Tensor:
    """``log vol(bin) = sum_d log(e_{d, i_d + 1} - e_{d, i_d})`` for indices ``(D, n)``."""
    return log_bin_widths(edges, bins).gather(1, index).sum(0)


def log_cell_volumes(edges: Tensor, bins: Sequence[int]) -> Tensor:
    """``log vol`` of every cell of the joint table in row-major order, float64 ``(K,)``."""
    table = log_bin_widths(edges, bins)
    out = torch.zeros((), dtype=torch.float64, device=edges.device)
    for d, b in enumerate(bins):
        out = (out[..., None] + table[d, :b]).reshape(-1)
    return out


def strides(bins: Sequence[int]) -> list[int]:
    """Row-major strides: ``stride_d = prod_{e > d} B_e``."""
    out = [1] * len(bins)
    for d in range(len(bins) - 2, -1, -1):
        out[d] = out[d + 1] * bins[d + 1]
    return out


def ravel(index: Tensor, bins: Sequence[int]) -> Tensor:
    """Flat row-major cell index ``(n,)`` of bin indices ``(D, n)``."""
    flat = index[-1].clone()
    for d, stride in enumerate(strides(bins)[:-1]):
        flat.add_(index[d], alpha=stride)
    return flat


def unravel(flat: Tensor, bins: Sequence[int]) -> Tensor:
    """Bin indices ``(D, n)`` of flat row-major cell indices ``(n,)``."""
    s = torch.tensor(strides(bins), device=flat.device)[:, None]
    b = torch.tensor(bins, device=flat.device)[:, None]
    return torch.div(flat, s, rounding_mode="floor") % b


# ---------------------------------------------------------------------------- table size
def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def describe_count(count: int) -> str:
    """``1,024`` for readable numbers, ``~10^78`` for astronomical ones."""
    return f"{count:,}" if count < 10**15 else f"~10^{len(str(count)) - 1}"


def check_table_size(cells: int, *, dims: int, factorizable: bool) -> None:
    """Refuse a table that cannot fit in memory; warn about one that is merely huge.

    Arguments:
        cells: Number of int64 counts the table would hold.
        dims: Number of dimensions D (for the message).
        factorizable: Whether suggesting ``factorized=True`` / ``sparse=True`` makes sense.

    Raises:
        ConfigError: the table would need more than half the machine's memory.
    """
    nbytes = cells * 8
    memory = _memory_bytes()
    hint = (
        " Use fewer bins or dimensions, sparse=True (store only occupied bins) or "
        "factorized=True (one histogram per dimension)."
        if factorizable
        else " Use fewer bins."
    )
    if nbytes > memory // 2:
        raise ConfigError(
            f"Expected a histogram table that fits in memory, but found {describe_count(cells)} "
            f"bins over {dims} dimensions ({describe_count(nbytes // 2**30)} GiB of counts, "
            f"machine has {memory / 2**30:.1f} GiB).{hint}"
        )
    if cells > WARN_CELLS:
        warnings.warn(
            f"The histogram table has {describe_count(cells)} bins over {dims} dimensions "
            f"({nbytes / 2**20:,.0f} MiB); almost all of them stay empty unless the data has far "
            f"more points.{hint}",
            GenlabWarning,
            stacklevel=4,
        )


# ---------------------------------------------------------------------------- sampling cells
def categorical(weights: Tensor, m: int, generator: torch.Generator | None) -> Tensor:
    """Draw ``m`` indices with probability proportional to non-negative ``weights`` ``(K,)``.

    ``torch.multinomial`` for up to 2^24 categories, inverse-CDF sampling beyond.
    """
    if weights.numel() <= _MULTINOMIAL_MAX:
        return rand.multinomial(weights, m, replacement=True, generator=generator)
    cdf = weights.double().cumsum(0)
    u = rand.rand(m, generator=generator, dtype=torch.float64, device=weights.device)
    return torch.searchsorted(cdf, u * cdf[-1], right=True).clamp(max=weights.numel() - 1)


def sample_sparse_cells(
    keys: Tensor,
    counts: Tensor,
    alpha: float,
    num_cells: int,
    m: int,
    generator: torch.Generator | None,
) -> Tensor:
    """Draw ``m`` flat cell indices from a sparse table of one class.

    With weights ``count_i + alpha`` on the occupied cells and ``alpha`` on each of the
    ``K - M`` empty ones: pick "occupied cell i" or "some empty cell" by their total weight,
    then an empty cell uniformly by rejection (cheap: M <= n is far below K).

    Arguments:
        keys: Sorted flat indices of the M occupied cells, ``(M,)``.
        counts: Their counts, ``(M,)``.
        alpha: Laplace smoothing.
        num_cells: K.
        m: Number of draws.
        generator: Source of randomness.
    """
    empty_weight = alpha * (num_cells - keys.numel())
    weights = torch.cat([counts.double() + alpha, keys.new_tensor([empty_weight]).double()])
    pick = categorical(weights, m, generator)  # (m,)
    cells = torch.empty(m, dtype=torch.long, device=keys.device)
    occupied = pick < keys.numel()
    cells[occupied] = keys[pick[occupied]]
    todo = (~occupied).nonzero().squeeze(1)
    while todo.numel():
        draw = rand.randint(num_cells, (todo.numel(),), generator=generator, device=keys.device)
        if keys.numel():
            pos = torch.searchsorted(keys, draw).clamp(max=keys.numel() - 1)
            hit = keys[pos] == draw
        else:
            hit = torch.zeros_like(draw, dtype=torch.bool)
        cells[todo[~hit]] = draw[~hit]
        todo = todo[hit]
    return cells


def sparse_lookup(keys: Tensor, counts: Tensor, query: Tensor) -> Tensor:
    """Counts of the cells named by ``query`` keys ``(n,)``; 0 for cells not in ``keys``."""
    if keys.numel() == 0:
        return torch.zeros_like(query)
    pos = torch.searchsorted(keys, query).clamp(max=keys.numel() - 1)
    return torch.where(keys[pos] == query, counts[pos], torch.zeros_like(query))


def log_normalizer(totals: Tensor, alpha: Tensor, num_cells: Tensor | int) -> Tensor:
    """``log(n_c + alpha_c * K)``, float64, broadcasting."""
    return torch.log(totals.double() + alpha * num_cells)


def product_cells(bins: Sequence[int]) -> int:
    """K = prod_d B_d as an exact Python int."""
    return math.prod(int(b) for b in bins)
