"""What the hostile-input tests share: a reproducible hypothesis profile, a per-case time
limit, and the one rule every outcome obeys (a result, or a typed error in one line)."""

from __future__ import annotations

import atexit
import json
import os
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings

from genlab.errors import GenlabError

CASE_SECONDS = 10.0  # one case: an input check, a file read, a step of training

# derandomize: the same examples on every machine and every run; no example database, so a
# CI run does not depend on what an earlier run found.
settings.register_profile(
    "hostile",
    derandomize=True,
    database=None,
    deadline=None,  # the SIGALRM guard below bounds each case instead of timing it
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)
HOSTILE = settings.get_profile("hostile")

# GENLAB_HOSTILE_TALLY=FILE: count the outcomes (per test: results and each error type) into
# FILE as JSON when the run ends; docs/reliability.md quotes these counts.
TALLY: Counter[str] = Counter()


def tally(kind: str) -> None:
    """Count one outcome as ``"test: kind"`` for the current test."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "?").split("::")[-1].split(" ")[0]
    TALLY[f"{test.split('[')[0]}: {kind}"] += 1


@atexit.register
def _write_tally() -> None:
    path = os.environ.get("GENLAB_HOSTILE_TALLY")
    if path and TALLY:
        Path(path).write_text(json.dumps(dict(sorted(TALLY.items())), indent=1) + "\n")


class CaseTimeout(BaseException):  # noqa: N818 - BaseException: no `except Exception` eats it
    """A case ran past its time limit: genlab hangs on this input."""


@contextmanager
def time_limit(seconds: float = CASE_SECONDS) -> Iterator[None]:
    """Raise :class:`CaseTimeout` in the main thread when the block runs past ``seconds``."""

    def expire(signum: int, frame: Any) -> None:
        raise CaseTimeout(f"the case ran for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_one_line(text: str) -> str:
    """An error message: not empty and exactly one line."""
    assert text.strip(), "an empty error message"
    assert "\n" not in text.strip(), f"a message over several lines: {text!r}"
    return text


def outcome(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, GenlabError | None]:
    """Call ``fn`` under the time limit: ``(result, None)`` or ``(None, typed error)``.

    Any other exception (a raw traceback for the user) propagates and fails the case.
    """
    with time_limit():
        try:
            result = fn(*args, **kwargs)
        except GenlabError as err:
            check_one_line(str(err))
            tally(type(err).__name__)
            return None, err
    tally("result")
    return result, None
