"""Registering a family is enough: the test-only ``toy-normal`` (tests/_tiny_family.py) is
listed, explained, trained, sampled, evaluated, plotted and compared by the real CLI, and the
contract suite runs it (tests/test_contract.py picks it up from the registry)."""

from __future__ import annotations

import json

import numpy as np

from genlab.cli import main
from test_contract import CASES


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def test_contract_suite_takes_the_new_family():
    assert [c.values[0] for c in CASES].count("toy-normal") == 2


def test_cli_takes_the_new_family(tmp_path, capsys):
    assert "toy-normal" in run(capsys, "list")
    listing = run(capsys, "list", "toy-normal")
    assert "init_scale" in listing and "starting standard deviation" in listing
    assert "temperature" in listing and "recipe for points" in listing
    out = tmp_path / "run"
    run(capsys, "train", "toy-normal", "--data", "moons", "--out", str(out), "--quiet")
    state = json.loads((out / "config.json").read_text())
    assert state["config"]["init_scale"] == 2.0  # the recipe's
    run(capsys, "sample", str(out), "-n", "10", "--temperature", "0.5",
        "--out", str(tmp_path / "s.npy"))
    assert np.load(tmp_path / "s.npy").shape == (10, 2)
    run(capsys, "eval", str(out), "--n-samples", "100")
    assert "bits_per_dim" in json.loads((out / "eval.json").read_text())
    written = run(capsys, "plot", str(out))
    assert "samples.png" in written and "curves.png" in written
    report = tmp_path / "report"
    run(capsys, "compare", "--data", "moons", "--models", "toy-normal", "--out", str(report))
    rows = json.loads((report / "results.json").read_text())["moons"]
    assert [r["model"] for r in rows] == ["toy-normal"]


def test_docs_settings_tables_are_generated_and_current():
    """Every model's settings table in docs/ is the generated one (`make docs` rewrites them)."""
    from pathlib import Path

    from genlab.registry import available
    from genlab.settings import render_docs_tables

    pages = sorted((Path(__file__).parents[1] / "docs").glob("*.md"))
    text = {p: p.read_text(encoding="utf-8") for p in pages}
    for page, body in text.items():
        assert render_docs_tables(body) == body, f"{page.name} is out of date: run `make docs`"
    everything = "".join(text.values())
    for name in available():
        if name.startswith("_") or name == "toy-normal":
            continue
        assert f"<!-- settings: {name} -->" in everything, f"no settings table for {name}"
