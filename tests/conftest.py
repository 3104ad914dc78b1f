"""Test-wide settings: headless plots and a private cache for the digits feature classifier."""

from __future__ import annotations

import os

import matplotlib
import pytest
import torch._dynamo  # noqa: F401

import _tiny_family  # noqa: F401  (registers the test-only family "toy-normal")

# torch.optim imports torch._dynamo lazily, on the first optimizer built; imported here so that
# a time-limited hostile-input case never pays that one-off cost (seconds on a busy machine).
matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True, scope="session")
def _genlab_cache(tmp_path_factory):
    # CI sets GENLAB_CACHE to a folder inside the checkout; elsewhere tests never write to ~.
    if os.environ.get("GENLAB_CACHE"):
        yield
        return
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_CACHE", str(tmp_path_factory.mktemp("genlab-cache")))
        yield
