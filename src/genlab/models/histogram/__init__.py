"""Histogram density estimator, registered as ``"histogram"``.

* :mod:`~genlab.models.histogram.model` -- :class:`Histogram`: counting, bin lookup, sampling.
* :mod:`~genlab.models.histogram.tables` -- parsing ``bins``/``edges``/``range``, bin lookup,
  flat cell indices, table sizes, drawing cells (dense, sparse or factorized tables).
"""

from genlab.models.histogram import tables
from genlab.models.histogram.model import Histogram

__all__ = ["Histogram", "tables"]
