"""Checks of function arguments that are not declared settings (data loaders, metrics).

Model settings, sampling options and training settings are declared with
:class:`~genlab.settings.Setting` and checked from the declaration. Plain functions check
their arguments with these helpers, which write the same message::

    Expected n to be an int >= 1, but found 0.

Example:
    >>> from genlab.checks import check_choice, check_int
    >>> check_int("k", 3)
    3
    >>> check_choice("split", "val", ("train", "val", "test"))
    'val'
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Iterable
from typing import Any

from genlab.settings import Setting, SettingSpec

__all__ = ["check_choice", "check_int", "check_number", "did_you_mean"]


def _check(name: str, value: Any, annotation: Any, setting: Setting) -> Any:
    # A SettingSpec with no default is only used for its check and its message.
    return SettingSpec(name, annotation, None, setting).check(value)


def check_int(name: str, value: Any, *, ge: int = 1, allow_none: bool = False) -> int | None:
    """Return ``value`` as an int if it is an integer ``>= ge`` (or None when allowed).

    NumPy integers are accepted; booleans are not.

    Raises:
        ConfigError: anything else.
    """
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = int(value)
    return _check(name, value, int | None if allow_none else int, Setting("", ge=ge))


def check_number(name: str, value: Any, *, ge: float | None = None, gt: float | None = None,
                 allow_none: bool = False) -> Any:
    """Return ``value`` if it is a finite real number within the bounds (or None when
    allowed).

    Raises:
        ConfigError: anything else.
    """
    plain = float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) \
        else value  # NumPy floats
    _check(name, plain, float | None if allow_none else float, Setting("", ge=ge, gt=gt))
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``.

    Raises:
        ConfigError: anything else.
    """
    return _check(name, value, Any, Setting("", choices=tuple(choices)))


def did_you_mean(name: Any, known: Iterable[str]) -> str:
    """`` Did you mean 'a', 'b'?`` for up to three known names close to ``name``, or ``""``.

    Example:
        >>> did_you_mean("moon", ["moons", "circles"])
        " Did you mean 'moons'?"
    """
    close = difflib.get_close_matches(str(name), list(known), n=3)
    return f" Did you mean {', '.join(map(repr, close))}?" if close else ""
