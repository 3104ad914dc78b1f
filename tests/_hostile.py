"""What the hostile-input tests share: a reproducible hypothesis profile, a per-case time
limit, and the one rule every outcome obeys (a result, or a typed error in one line)."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
            return fn(*args, **kwargs), None
        except GenlabError as err:
            check_one_line(str(err))
            return None, err
