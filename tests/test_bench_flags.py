"""The autoregressive benchmark's runs and the command line agree on what each run sets.

``bench/bench_defaults.py`` reruns every benchmark model through ``genlab train NAME --data
digits FLAGS`` with the FLAGS the benchmark reports; these tests check that those flags, read
by the CLI's own parser, give back the settings the benchmark trained with, and that the
defaults script reads the figures and scales the steps as it says.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from bench_autoregressive import BASELINES, MODELS, cli_flags  # noqa: E402
from bench_defaults import benchmark_figures, steps_flag  # noqa: E402
from genlab.cli import build_parser, parse_params  # noqa: E402


@pytest.mark.parametrize("quick", [False, True])
@pytest.mark.parametrize("name", [*MODELS, *BASELINES])
def test_flags_round_trip_through_the_cli_parser(name: str, quick: bool) -> None:
    params, settings, flags = cli_flags(name, quick=quick, max_steps=100)
    argv = ["train", name, "--data", "digits", *flags, "--out", "unused"]
    args = build_parser(argv).parse_args(argv)
    assert parse_params(args.param) == params
    # unset: a sentinel, or no flag at all for a family fitted in closed form
    steps = getattr(args, "steps", None)
    steps = steps if isinstance(steps, int) else None
    assert steps == settings.get("steps")
    assert steps is None or steps <= 100


def test_steps_flag_scales_the_given_or_the_recipe_steps() -> None:
    assert steps_flag("made", ["--steps=100"], 1.0) == ["--steps=100"]
    assert steps_flag("made", ["--param=width=8", "--steps=100"], 1.5) == [
        "--param=width=8", "--steps=150"]
    recipe_steps = cli_flags("made", quick=False, max_steps=0)[1].get("steps")
    assert recipe_steps is None  # no cap: the recipe's own steps, no flag
    assert steps_flag("made", [], 2.0)[0].startswith("--steps=")


def test_benchmark_figures_only_from_a_report_of_the_same_size(tmp_path: Path) -> None:
    from _report import Report

    report = Report("autoregressive", "t", quick=True)
    report.table("bits", ["model", "test bits/pixel", "genlab train flags"],
                 [["made", 2.25, "--steps=150"], ["made, 2 random orders", 2.2, None]])
    report.write(tmp_path)
    path = tmp_path / "autoregressive.json"
    assert benchmark_figures(path, quick=True) == {"made": (2.25, ["--steps=150"])}
    assert benchmark_figures(path, quick=False) == {}
    assert benchmark_figures(tmp_path / "missing.json", quick=True) == {}
