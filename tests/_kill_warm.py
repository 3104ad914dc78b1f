"""Imported by the fork server of ``test_kill.py`` only: one run of each model there pays for
every lazy import and first use of a kernel once, so the children forked from it (killed and
restarted many times) start warm, in milliseconds."""

from __future__ import annotations

import tempfile

from test_kill import MODELS, train

with tempfile.TemporaryDirectory() as folder:
    for name, config in MODELS:
        train(name, config, f"{folder}/{name}")
