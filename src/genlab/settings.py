"""Declared settings: each one's name, type, default, range or choices and a line of help.

A model declares its settings once, in its constructor's signature, with
``typing.Annotated``::

    def __init__(self, *, event_shape, width: Annotated[int, Setting("hidden units", ge=1)] = 64):

The name and default come from the signature, the type from the annotation, the range, choices
and help from :class:`Setting`. From that one declaration genlab validates construction (one
error style: ``Expected width to be an int >= 1, but found 0.``), records ``config.json``,
prints ``genlab list MODEL``, writes the CLI's help and the settings tables of the docs.
Sampling options (keyword arguments of a family's ``_sample``) and training settings
(:class:`~genlab.train.TrainConfig`'s fields) are declared the same way.
"""

from __future__ import annotations

import inspect
import math
import numbers
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Union

from genlab.errors import ConfigError

__all__ = ["Annotated", "Setting", "SettingSpec", "declared", "settings_table"]

#: Arguments that describe the data rather than the model; validated by GenerativeModel.
DATA_ARGUMENTS = ("event_shape", "num_classes", "num_levels", "conditions")


@dataclass(frozen=True)
class Setting:
    """What one setting accepts, beyond its type, and one line of help.

    Attributes:
        help: One line, shown by ``genlab list MODEL``, ``--help`` and the docs.
        ge, gt, le, lt: Bounds on a number (or on each item of a list of numbers).
        choices: The allowed values.
    """

    help: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class SettingSpec:
    """One declared setting, resolved: name, type, default and its :class:`Setting`."""

    name: str
    annotation: Any
    default: Any
    setting: Setting

    @property
    def help(self) -> str:
        return self.setting.help

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty

    def type_name(self) -> str:
        """``int``, ``float``, ``list[int]``, ``int | None``, ..."""
        return _type_name(self.annotation)

    def describe(self) -> str:
        """What the setting accepts in words: ``an int >= 1``, ``one of 'a', 'b'``."""
        s = self.setting
        if s.choices is not None:
            return "one of " + ", ".join(map(repr, s.choices))
        name = self.type_name()
        optional = name.endswith(" | None")
        text = _article(name.removesuffix(" | None")) + _range_text(s)
        return text + " or None" if optional else text

    def check(self, value: Any) -> Any:
        """Return ``value`` if it fits the declaration; else raise ConfigError."""
        ok = _fits(value, self.annotation) and (
            self.setting.choices is None or value in self.setting.choices
        ) and _in_range(value, self.setting)
        if not ok:
            raise ConfigError(
                f"Expected {self.name} to be {self.describe()}, but found {value!r}."
            )
        return value


def declared(function: Callable[..., Any], *, skip: Sequence[str] = ()) -> dict[str, SettingSpec]:
    """The settings declared on ``function``'s keyword arguments, in signature order.

    ``skip`` names arguments that are not settings (``self``, the data arguments, ``n``,
    ``y``, ``generator``). A keyword argument without a :class:`Setting` is listed with an
    empty help and any type: ``tests/test_contract.py`` requires every family to declare all.
    """
    signature = inspect.signature(function)
    hints = typing.get_type_hints(function, include_extras=True)
    out: dict[str, SettingSpec] = {}
    for name, parameter in signature.parameters.items():
        if name in skip or name == "self" or parameter.kind in (
                inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            continue
        hint = hints.get(name, Any)
        base, setting = Any, Setting("")
        if typing.get_origin(hint) is Annotated:
            first, *extras = typing.get_args(hint)
            found = next((e for e in extras if isinstance(e, Setting)), None)
            if found is not None:
                base, setting = first, found
        out[name] = SettingSpec(name, base, parameter.default, setting)
    return out


def settings_table(specs: Mapping[str, SettingSpec], *, markdown: bool = True) -> str:
    """A table of settings: name, type, default, accepted values, help."""
    rows = [(s.name, s.type_name(), "required" if s.required else repr(s.default),
             s.describe(), s.help) for s in specs.values()]
    head = ("setting", "type", "default", "accepts", "meaning")
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        # a "|" inside a cell, even in a code span, must be escaped in a Markdown table
        lines += ["| " + " | ".join((f"`{c}`" if i < 3 else c).replace("|", "\\|")
                                    for i, c in enumerate(r)) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(4)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(head[:4], widths, strict=True))
             + "  " + head[4]]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r[:4], widths, strict=True))
              + "  " + r[4] for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- type checks
def _fits(value: Any, annotation: Any) -> bool:
    if annotation is Any:
        return True
    if annotation is None or annotation is type(None):
        return value is None
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        return any(_fits(value, a) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:  # NumPy integers too; never a bool
        return isinstance(value, numbers.Integral) and not isinstance(value, bool) \
            and -2**63 <= value < 2**63  # what a tensor (int64) can hold
    if annotation is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool) \
            and math.isfinite(value)
    if annotation is str:
        return isinstance(value, str)
    if origin in (list, tuple, Sequence) or annotation in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        if origin is tuple and len(args) > 1 and Ellipsis not in typing.get_args(annotation):
            return len(value) == len(args) and all(map(_fits, value, args))
        return not args or all(_fits(v, args[0]) for v in value)
    if origin is dict or annotation is dict:
        return isinstance(value, dict)
    return isinstance(value, annotation) if isinstance(annotation, type) else True


def _numbers(value: Any) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for item in value for v in _numbers(item)]
    return []


def _in_range(value: Any, s: Setting) -> bool:
    for v in _numbers(value):
        if (s.ge is not None and v < s.ge) or (s.gt is not None and v <= s.gt) \
                or (s.le is not None and v > s.le) or (s.lt is not None and v >= s.lt):
            return False
    return True


def _range_text(s: Setting) -> str:
    low = (f"[{s.ge:g}", s.ge) if s.ge is not None else (f"({s.gt:g}", s.gt) \
        if s.gt is not None else None
    high = (f"{s.le:g}]", s.le) if s.le is not None else (f"{s.lt:g})", s.lt) \
        if s.lt is not None else None
    if low and high:
        return f" in {low[0]}, {high[0]}"
    if low:
        return f" {'>=' if s.ge is not None else '>'} {low[1]:g}"
    if high:
        return f" {'<=' if s.le is not None else '<'} {high[1]:g}"
    return ""


def _type_name(annotation: Any) -> str:
    if annotation is None or annotation is type(None):
        return "None"
    if annotation is Any:
        return "any"
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return " | ".join(map(repr, typing.get_args(annotation)))
    if origin is not None:
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        name = "list" if origin in (list, Sequence) else getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(_type_name(a) for a in args)}]" if args else name
    return getattr(annotation, "__name__", str(annotation))


def _article(type_name: str) -> str:
    plain = {"int": "an int", "float": "a number", "bool": "true or false", "str": "a string",
             "list[int]": "a list of ints", "list[float]": "a list of numbers",
             "tuple[float, float]": "a pair of numbers", "tuple[int, int]": "a pair of ints"}
    return plain.get(type_name, type_name)


# ---------------------------------------------------------------------------- docs tables
_BLOCK = r"(<!-- settings: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /settings -->)"


def render_docs_tables(text: str) -> str:
    """Fill every ``<!-- settings: MODEL -->`` ... ``<!-- /settings -->`` block of a docs page
    with MODEL's generated settings table (and its sampling options, if any)."""
    import re

    from genlab.registry import get

    def table(match: re.Match[str]) -> str:
        cls = get(match["name"])
        body = settings_table(cls.settings())
        if cls.sample_options():
            body += ("\n\nSampling options (`model.sample(n, **options)`, "
                     "`genlab sample RUN --NAME`):")
            body += "\n\n" + settings_table(cls.sample_options())
        return f"{match[1]}{body}\n{match[4]}"

    return re.sub(_BLOCK, table, text, flags=re.S)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m genlab.settings docs/*.md``: regenerate the settings tables in place;
    ``--check`` only reports pages that are out of date (exit 1)."""
    import sys
    from pathlib import Path

    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    stale = []
    for name in (a for a in args if a != "--check"):
        path = Path(name)
        text = path.read_text(encoding="utf-8")
        new = render_docs_tables(text)
        if new != text:
            stale.append(path)
            if not check:
                path.write_text(new, encoding="utf-8")
    for path in stale:
        print(f"{'out of date' if check else 'updated'}: {path}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
