"""The benchmark report writer, and that bench/ holds only what its scripts wrote.

Each ``bench/results/NAME.md`` must equal the rendering of ``NAME.json`` (apart from the kept
notes block), and ``bench/RESULTS.md`` must equal what ``bench/make_results.py`` builds from
those JSON files: a hand edit to a table shows up here as a failure.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import _report  # noqa: E402
import make_results  # noqa: E402


def _report_of(tmp_path: Path) -> _report.Report:
    report = _report.Report("demo", "Demo", quick=True, versions={"peer": "1.0"})
    report.table("case", ["library", "time (s)"], [["genlab", 0.123456], ["peer", 0.5]],
                 kind="like-for-like", formats=[None, ".3f"])
    report.table("defaults", ["library", "nll"], [["genlab", float("nan")]], kind="user")
    report.target("time <= 0.5x", "0.25x", True)
    report.target("a hard one", "missed by 3%", False)
    report.bits("gmm", 2.944, kind="bound")
    report.bits("rbm", 2.046, kind="estimate", error=0.0006)
    return report


def test_render_is_a_function_of_the_json(tmp_path: Path) -> None:
    md = _report_of(tmp_path).write(tmp_path)
    data = json.loads((tmp_path / "demo.json").read_text())
    text = md.read_text()
    assert text == _report.render(data)
    assert "## Like for like: case" in text and "## What a user gets: defaults" in text
    assert "| genlab | 0.123 |" in text and "| genlab | nan |" in text
    assert "| a hard one | missed by 3% | no |  |" in text
    assert "≤ 2.944" in text and "≈ 2.046 ± 0.0006" in text
    assert data["meta"]["quick"] is True and data["meta"]["versions"]["peer"] == "1.0"
    assert data["sections"][1]["rows"][0][1] == "nan"  # JSON has no NaN literal


def test_notes_survive_a_rerun(tmp_path: Path) -> None:
    md = _report_of(tmp_path).write(tmp_path)
    notes = "<!-- notes -->\nWhy the peer is faster: it reads the numbers.\n<!-- /notes -->"
    md.write_text(md.read_text().replace("<!-- notes -->\n<!-- /notes -->", notes))
    _report_of(tmp_path).write(tmp_path)
    assert notes in md.read_text()


@pytest.mark.parametrize("bad", [
    lambda r: r.table("t", ["a", "b"], [[1]]),
    lambda r: r.table("t", ["a"], [[1]], kind="fast"),
    lambda r: r.bits("m", 1.0, kind="guess"),
])
def test_malformed_entries_are_refused(tmp_path: Path, bad) -> None:
    with pytest.raises(ValueError, match="Expected"):
        bad(_report_of(tmp_path))


def test_results_page_gathers_targets_and_bits(tmp_path: Path) -> None:
    _report_of(tmp_path).write(tmp_path)
    page = make_results.build(tmp_path)
    assert "| time <= 0.5x | 0.25x | yes | quick," in page
    rows = [line for line in page.splitlines() if line.startswith("| digits test |")]
    assert [r.split("|")[2].strip() for r in rows] == ["rbm", "gmm"]  # sorted by bits/dim


def _committed_reports() -> list[Path]:
    return [BENCH / "results" / f"{r['name']}.json"
            for r in make_results.load_reports(BENCH / "results")]


@pytest.mark.parametrize("path", _committed_reports(), ids=lambda p: p.stem)
def test_committed_results_are_the_scripts_output(path: Path) -> None:
    data = json.loads(path.read_text())
    md = path.with_suffix(".md").read_text()
    kept = _report.NOTES.search(md)
    assert md == _report.render(data, kept.group(0) if kept else None), (
        f"{path.with_suffix('.md').name} differs from its JSON's rendering: rerun its script")


def test_results_page_is_built_from_the_committed_json() -> None:
    if not _committed_reports():
        pytest.fail("bench/results holds no report JSON: run bench/run")
    page = (BENCH / "RESULTS.md").read_text()
    assert page == make_results.build(BENCH / "results", page), (
        "bench/RESULTS.md differs from make_results.py's output: run bench/make_results.py")
