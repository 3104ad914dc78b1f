r"""Histogram density estimator: the course's first generative model.

Bin the data space into K cells and estimate the probability of each by counting:

.. math::

    p_i = \frac{\mathrm{count}_i + \alpha}{n + \alpha K}, \qquad
    p(x) = \frac{p_{i(x)}}{\mathrm{vol}(\text{bin } i(x))},

where :math:`i(x)` is the bin holding x (inference is a bin lookup) and :math:`\alpha` is
Laplace smoothing (``alpha=0`` is the plain counting estimate, which is also the maximum of
the likelihood :math:`\frac{1}{n}\sum_j \log p(x^{(j)})` over piecewise-constant densities on
these bins). Sampling picks bin i with probability :math:`p_i`, then a uniform point inside it.

For discrete data (``num_levels = L``) there is one bin per level, of unit width, so
``log_prob`` is a log probability *mass*. A joint table over D dimensions has ``L^D`` cells,
"inefficient in high dimensions": ``sparse=True`` stores only occupied cells and
``factorized=True`` keeps one histogram per dimension (the per-pixel histogram baseline).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from genlab import rand
from genlab.base import GenerativeModel
from genlab.data.dataset import Dataset
from genlab.errors import ConfigError, DataError, GenlabWarning, NotFittedError
from genlab.models.histogram import tables
from genlab.recipes import Recipe
from genlab.registry import register
from genlab.settings import Annotated, Setting

__all__ = ["Histogram"]

DEFAULT_BINS = 32


@register("histogram")
class Histogram(GenerativeModel):
    r"""Histogram density (continuous data) or probability table (discrete data).

    Arguments:
        event_shape: Shape of one sample; the histogram is over its D = prod(event_shape) values.
        num_classes: One histogram per class label (p(x | y)) when set.
        num_levels: Discrete data with L levels: one bin per level, ``log_prob`` is a log mass.
        bins: Bins per dimension, an int or one int per dimension (continuous data; default 32).
        edges: Explicit bin edges, one increasing list per dimension (instead of ``bins``).
        range: ``[low, high]`` (every dimension) or one pair per dimension; default: the
            range of the training data widened by ``margin`` on each side.
        margin: Fraction of the data range added on each side when ``range`` is None.
        alpha: Laplace smoothing added to every count, >= 0.
        outside: What ``log_prob`` does with points outside the range: ``"-inf"`` (density 0)
            or ``"error"`` (raise DataError).
        factorized: Product of independent per-dimension histograms instead of a joint table.
        sparse: Store only the occupied cells of the joint table (any number of cells up to
            2^63; ``log_prob`` and sampling are exact, empty cells get ``alpha``).

    Example:
        >>> import torch
        >>> from genlab.models.histogram import Histogram
        >>> model = Histogram(event_shape=(2,), bins=8, range=[-6, 6], alpha=1.0)
        >>> x = torch.randn(1000, 2, generator=torch.Generator().manual_seed(0))
        >>> model = model.fit_closed_form(x)
        >>> model.log_prob(torch.zeros(4, 2)).shape
        torch.Size([4])
        >>> model.sample(5, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([5, 2])
    """

    recipes: ClassVar[dict[str, Recipe]] = {
        "points": Recipe(params={"bins": 48, "alpha": 0.1}, showcase=True),
        # a joint table over many columns is almost all empty cells (docs/histogram.md)
        "table": Recipe(params={"bins": 16, "sparse": True, "alpha": 0.1}),
        "images": Recipe(params={"factorized": True, "alpha": 1.0}, showcase=True),
    }

    def __init__(
        self,
        *,
        event_shape: Sequence[int],
        num_classes: int | None = None,
        num_levels: int | None = None,
        bins: Annotated[int | list[int] | None, Setting(
            "bins per dimension, or one count per dimension (continuous data; None: 32)",
            ge=1)] = None,
        edges: Annotated[list[list[float]] | None, Setting(
            "explicit increasing bin edges, one list per dimension (instead of bins)")] = None,
        range: Annotated[list[float] | list[list[float]] | None, Setting(  # noqa: A002
            "[low, high] for every dimension or one pair each (None: the data's range)")] = None,
        margin: Annotated[float, Setting(
            "fraction of the data range added on each side when range is None", ge=0)] = 0.05,
        alpha: Annotated[float, Setting("Laplace smoothing added to every count", ge=0)] = 1.0,
        outside: Annotated[str, Setting(
            "log_prob of points outside the range: -inf (density 0) or raise an error",
            choices=("-inf", "error"))] = "-inf",
        factorized: Annotated[bool, Setting(
            "product of per-dimension histograms instead of one joint table")] = False,
        sparse: Annotated[bool, Setting(
            "store only the occupied cells of the joint table")] = False,
    ) -> None:
        super().__init__(event_shape=event_shape, num_classes=num_classes, num_levels=num_levels)
        dims = self.event_dim
        if factorized and sparse:
            raise ConfigError(
                "Expected at most one of factorized=True and sparse=True, but found both."
            )
        self.alpha = float(alpha)
        self.margin = float(margin)
        self.outside = outside
        self.factorized = factorized
        self.sparse = sparse

        edge_rows: list[Tensor] | None = None
        if num_levels is not None:
            if bins is not None or edges is not None or range is not None:
                raise ConfigError(
                    "Expected no bins, edges or range for discrete data (one bin per level), "
                    f"but found bins={bins!r}, edges={edges!r}, range={range!r}."
                )
            self.bins = [num_levels] * dims
            # Level k is the unit-width bin [k, k + 1): its density equals its mass.
            edge_rows = [torch.arange(num_levels + 1, dtype=torch.float64)] * dims
        elif edges is not None:
            if bins is not None or range is not None:
                raise ConfigError("Expected edges alone, but found bins or range as well.")
            edge_rows = tables.parse_edges(edges, dims)
            self.bins = [len(row) - 1 for row in edge_rows]
        else:
            self.bins = tables.parse_bins(DEFAULT_BINS if bins is None else bins, dims)
            if range is not None:
                low, high = zip(*tables.parse_range(range, dims), strict=True)
                edge_rows = tables.uniform_edges(low, high, self.bins)
        self.num_cells = tables.product_cells(self.bins)
        self.uniform = num_levels is None and edges is None  # equal widths: index by arithmetic
        classes = num_classes or 1
        if sparse and classes * self.num_cells >= 2**63:
            raise ConfigError(
                f"Expected fewer than 2^63 cells for sparse=True, but found "
                f"{tables.describe_count(classes * self.num_cells)}. Use factorized=True."
            )

        # Edges first: the model's dtype is that of its first floating buffer.
        b_max = max(self.bins)
        self.register_buffer("edges", torch.full((dims, b_max + 1), float("inf")))
        if edge_rows is not None:
            self._set_edges(edge_rows)
        self.register_buffer("edges_set", torch.tensor(edge_rows is not None))
        if factorized:
            tables.check_table_size(classes * dims * b_max, dims=dims, factorizable=False)
            counts = torch.zeros(classes, dims, b_max, dtype=torch.long)
        elif sparse:
            counts = torch.zeros(0, dtype=torch.long)
            self.register_buffer("keys", torch.zeros(0, dtype=torch.long))
        else:
            tables.check_table_size(classes * self.num_cells, dims=dims, factorizable=True)
            counts = torch.zeros(classes, self.num_cells, dtype=torch.long)
        self.register_buffer("counts", counts)
        self.register_buffer("totals", torch.zeros(classes, dtype=torch.long))
        self.register_buffer("fitted", torch.tensor(False))

    # ------------------------------------------------------------------ config parsing
    def _set_edges(self, rows: Sequence[Tensor]) -> None:
        self.edges.fill_(float("inf"))
        for d, row in enumerate(rows):
            self.edges[d, : row.numel()] = row.to(self.edges.dtype)

    # ------------------------------------------------------------------ state helpers
    @property
    def closed_form(self) -> bool:
        return True

    def _require_fitted(self) -> None:
        if not bool(self.fitted):
            raise NotFittedError(
                "Expected a fitted Histogram, but found an unfitted one: call "
                "fit_closed_form(data) or genlab.fit(model, data) first."
            )

    def _class_alpha(self) -> Tensor:
        """Smoothing per class, float64 ``(C,)``: ``alpha``, or 1 for an empty class with
        ``alpha = 0`` (the limit alpha -> 0 of an empty table is uniform)."""
        alpha = torch.full(
            self.totals.shape, self.alpha, dtype=torch.float64, device=self.totals.device
        )
        return torch.where((self.totals == 0) & (alpha == 0), torch.ones_like(alpha), alpha)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001
        # A sparse table's size depends on the data: take the stored shape.
        for name in ("keys", "counts"):
            stored = state_dict.get(prefix + name)
            own = self._buffers.get(name)
            if stored is not None and own is not None and stored.shape != own.shape:
                self._buffers[name] = torch.empty_like(own).resize_(stored.shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------ fitting: counting
    def fit_closed_form(
        self, data: Dataset | Tensor, *, val_data: Dataset | None = None
    ) -> Histogram:
        """Fit by counting: ``count_i`` = number of training points in bin i (per class).

        Points outside an explicit ``range``/``edges`` are not counted (a GenlabWarning says
        how many), or raise DataError when ``outside="error"``.

        Arguments:
            data: A :class:`~genlab.data.dataset.Dataset` (labels used when conditional), or a
                tensor of shape ``(n, *event_shape)`` for an unconditional model.
            val_data: Unused (counting has nothing to tune); accepted for the trainer.

        Returns:
            ``self``, fitted.
        """
        x_raw = data.x if isinstance(data, Dataset) else data
        # Labels matter only to a conditional model; toy sets carry them regardless.
        y_raw = data.y if isinstance(data, Dataset) and self.conditional else None
        x, _ = self._check_x(x_raw)
        if x.shape[0] == 0:
            raise DataError("Expected at least one training point, but found none.")
        y = self._check_y(y_raw, x.shape[0])
        x = x.reshape(x.shape[0], -1)  # (n, D)
        if not bool(self.edges_set):
            low, high = x.double().min(0).values, x.double().max(0).values
            pad = self.margin * (high - low)
            pad = torch.where(high > low, pad, torch.full_like(pad, 0.5))  # constant dims
            self._set_edges(
                tables.uniform_edges((low - pad).tolist(), (high + pad).tolist(), self.bins)
            )
            self.edges_set.fill_(True)
        index, inside = self._index(x)  # (D, n), (n,)
        if not inside.all():
            self._outside(inside, "training")
            index, y = index[:, inside], None if y is None else y[inside]
        classes = self.totals.shape[0]
        if y is None:
            self.totals.fill_(index.shape[1])
        else:
            self.totals.copy_(torch.bincount(y, minlength=classes))
        if self.factorized:
            dims, b_max = self.counts.shape[1:]
            key = self._factorized_keys(index, y)  # (D, n)
            self.counts.copy_(
                torch.bincount(key.reshape(-1), minlength=classes * dims * b_max).view_as(
                    self.counts
                )
            )
        else:
            key = tables.ravel(index, self.bins)
            if y is not None:
                key += y * self.num_cells
            if self.sparse:
                self.keys, self.counts = torch.unique(key, sorted=True, return_counts=True)
            else:
                self.counts.copy_(
                    torch.bincount(key, minlength=classes * self.num_cells).view_as(self.counts)
                )
        if self.alpha == 0 and (self.totals == 0).any():
            empty = (self.totals == 0).nonzero().squeeze(1).tolist()
            warnings.warn(
                f"Classes {empty} have no training points; with alpha=0 their histograms are "
                "uniform.",
                GenlabWarning,
                stacklevel=2,
            )
        self.fitted.fill_(True)
        return self

    def _index(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Bin indices ``(D, n)`` and inside mask ``(n,)`` of flat points ``(n, D)``."""
        if self.discrete:  # validated integers in [0, L): the level is the bin
            return x.T.long(), torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        if self.uniform:
            return tables.uniform_bin_index(x, self.edges, self.bins)
        return tables.bin_index(x, self.edges, self.bins)

    def _factorized_keys(self, index: Tensor, y: Tensor | None) -> Tensor:
        """Flat positions ``((c * D + d) * B_max + i_d)`` in the factorized table, ``(D, n)``."""
        dims, b_max = self.counts.shape[1:]
        d = torch.arange(dims, device=index.device)[:, None]  # (D, 1)
        base = d * b_max if y is None else (y * dims + d) * b_max  # (D, 1) or (D, n)
        return index + base

    def _outside(self, inside: Tensor, what: str) -> None:
        count = int((~inside).sum())
        low = self.edges[:, 0].tolist()
        high = self.edges.gather(1, torch.tensor(self.bins, device=self.edges.device)[:, None])
        message = (
            f"Expected {what} points inside the histogram's range "
            f"[{low}, {high.squeeze(1).tolist()}], "
            f"but found {count} outside."
        )
        if self.outside == "error":
            raise DataError(message + " Set outside='-inf' to give them density 0.")
        if what == "training":
            warnings.warn(message + " They were not counted.", GenlabWarning, stacklevel=3)

    # ------------------------------------------------------------------ inference: lookup
    def _log_prob(self, x: Tensor, y: Tensor | None) -> Tensor:
        """``log p(x) = log p_{i(x)} - log vol(bin i(x))``; -inf outside the range."""
        self._require_fitted()
        n = x.shape[0]
        flat_x = x.reshape(n, -1)  # (n, D)
        index, inside = self._index(flat_x)
        if not inside.all():
            self._outside(inside, "x")
        c = torch.zeros(n, dtype=torch.long, device=x.device) if y is None else y
        alpha = self._class_alpha()
        if self.factorized:
            count = self.counts.view(-1)[self._factorized_keys(index, y)]  # (D, n)
            bins = torch.tensor(self.bins, device=x.device)[:, None]  # (D, 1)
            norm = tables.log_normalizer(self.totals[c], alpha[c], bins)  # (D, n)
            log_mass = (torch.log(count.double() + alpha[c]) - norm).sum(0)
        elif not self.sparse and self.counts.numel() <= n:
            # Fewer cells than points: one table of log densities, then a single lookup.
            table = (
                torch.log(self.counts.double() + alpha[:, None])
                - tables.log_normalizer(self.totals, alpha, self.num_cells)[:, None]
            )  # (C, K)
            if not self.discrete:
                table = table - tables.log_cell_volumes(self.edges, self.bins)
            key = tables.ravel(index, self.bins)
            if y is not None:
                key += y * self.num_cells
            log_p = table.view(-1)[key]
            if not inside.all():
                log_p = log_p.masked_fill_(~inside, float("-inf"))
            return log_p.to(x.dtype)
        else:
            key = c * self.num_cells + tables.ravel(index, self.bins)
            if self.sparse:
                count = tables.sparse_lookup(self.keys, self.counts, key)
            else:
                count = self.counts.view(-1)[key]
            norm = tables.log_normalizer(self.totals[c], alpha[c], self.num_cells)
            log_mass = torch.log(count.double() + alpha[c]) - norm
        if self.discrete:
            log_p = log_mass  # unit-width bins: a log mass
        else:
            log_p = log_mass - tables.log_bin_volume(index, self.edges, self.bins)
        log_p = torch.where(inside, log_p, torch.full_like(log_p, float("-inf")))
        return log_p.to(x.dtype)

    # ------------------------------------------------------------------ sampling
    def _sample(
        self, n: int, y: Tensor | None, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """Pick bin i with probability p_i, then a uniform point inside it."""
        self._require_fitted()
        device = self.edges.device
        c = torch.zeros(n, dtype=torch.long, device=device) if y is None else y
        index = torch.empty(self.event_dim, n, dtype=torch.long, device=device)  # (D, n)
        alpha = self._class_alpha()
        for cls in c.unique().tolist():
            rows = (c == cls).nonzero().squeeze(1)
            m, a = rows.numel(), float(alpha[cls])
            if self.factorized:
                mask = (
                    torch.arange(self.counts.shape[-1], device=device)
                    < torch.tensor(self.bins, device=device)[:, None]
                )  # (D, B_max): real bins
                weights = (self.counts[cls].double() + a) * mask
                index[:, rows] = rand.multinomial(
                    weights, m, replacement=True, generator=generator
                )
            else:
                if self.sparse:
                    lo, hi = cls * self.num_cells, (cls + 1) * self.num_cells
                    sel = (self.keys >= lo) & (self.keys < hi)
                    flat = tables.sample_sparse_cells(
                        self.keys[sel] - lo, self.counts[sel], a, self.num_cells, m, generator
                    )
                else:
                    flat = tables.categorical(self.counts[cls].double() + a, m, generator)
                index[:, rows] = tables.unravel(flat, self.bins)
        if self.discrete:
            x = index.to(self.edges.dtype)
        else:
            low, high = self.edges.gather(1, index), self.edges.gather(1, index + 1)  # (D, n)
            u = rand.rand(index.shape, generator=generator, dtype=low.dtype, device=device)
            # Stay strictly below the upper edge so the point is in bin i after rounding.
            x = torch.minimum(low + u * (high - low), torch.nextafter(high, low))
        return x.T.reshape(n, *self.event_shape)

    # ------------------------------------------------------------------ registry hooks
    @classmethod
    def tiny_configs(cls) -> list[dict[str, Any]]:
        """Small configurations covering the variants (for the contract tests)."""
        return [
            {"event_shape": (2,), "bins": 4, "range": [-8, 8]},
            {"event_shape": (2,), "bins": [3, 5], "range": [[-8, 8], [-9, 9]], "num_classes": 3},
            {"event_shape": (3,), "bins": 4, "range": [-8, 8], "sparse": True},
            {"event_shape": (2,), "bins": 4, "range": [-8, 8], "factorized": True},
            {"event_shape": (2,), "num_levels": 3},
            {"event_shape": (1, 8, 8), "num_levels": 17, "factorized": True},
            {"event_shape": (1, 2, 2), "num_levels": 17, "sparse": True, "num_classes": 3},
        ]

    def extra_repr(self) -> str:
        mode = "factorized" if self.factorized else "sparse" if self.sparse else "joint"
        return f"{super().extra_repr()}, bins={self.bins}, alpha={self.alpha}, {mode}"
