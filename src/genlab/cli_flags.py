"""Command-line flags generated from declared settings (:mod:`genlab.settings`).

``genlab train`` takes one flag per :class:`~genlab.train.TrainConfig` field and ``genlab
sample RUN`` one per sampling option of the run's model; each flag parses and checks its value
with the setting's own declaration, so the command line and the library accept the same
values with the same messages.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from genlab.errors import ConfigError
from genlab.settings import SettingSpec

#: Default of every generated flag: "not given", so the library's own default applies.
UNSET = argparse.SUPPRESS


def _flag_type(spec: SettingSpec):
    """An argparse type that parses a declared setting's value and checks it."""
    name = spec.type_name()
    base = name.removesuffix(" | None")

    def parse(text: str):
        if name.endswith(" | None") and text.lower() == "none":
            return None
        try:
            if base == "int":
                value: Any = int(text)
            elif base == "float":
                value = float(text)
            elif base == "str":
                value = text
            elif "dict[str, float]" in base and "=" in text:  # sketch=2,prompt=3
                value = {k.strip(): float(v) for k, _, v in
                         (item.partition("=") for item in text.split(","))}
            else:  # lists, pairs, unions: JSON
                value = json.loads(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {spec.describe()}, found {text!r}") from None
        try:
            return spec.check(value)
        except ConfigError:
            raise argparse.ArgumentTypeError(
                f"expected {spec.describe()}, found {text!r}") from None

    return parse


def add_setting_flags(parser: argparse.ArgumentParser, specs: dict[str, SettingSpec],
                      skip: Sequence[str] = ()) -> None:
    """One ``--name`` flag per declared setting (``--batch-size`` for ``batch_size``)."""
    for name, spec in specs.items():
        if name in skip:
            continue
        flag = "--" + name.replace("_", "-")
        default = "" if spec.required else f" (default {spec.default!r})"
        if spec.type_name() == "bool":
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction,
                                default=UNSET, help=spec.help + default)
            continue
        base = spec.type_name().removesuffix(" | None")
        metavar = base.upper() if base in ("int", "float", "str") else "JSON"
        if spec.setting.choices is not None:
            metavar = "{" + ",".join(map(str, spec.setting.choices)) + "}"
        parser.add_argument(flag, dest=name, type=_flag_type(spec), default=UNSET,
                            metavar=metavar, help=f"{spec.help}: {spec.describe()}{default}")
