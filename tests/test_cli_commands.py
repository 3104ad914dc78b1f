"""Every command through the CLI's entry point, for one model of each family.

Models are trained for a few steps in their tiny test configurations (``tiny_configs``), on
moons for 2-D families and on digits for image families; each run is then sampled (.npy and
.png), evaluated, plotted and listed. Compression runs on an autoregressive model.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from genlab.cli import main
from genlab.registry import get

#: One model per family, and the data it runs on.
FAMILIES = [("histogram", "moons"), ("gmm", "digits"), ("made", "digits"),
            ("realnvp", "moons"), ("gan", "moons"), ("ddpm", "moons")]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def tiny_params(name: str, data: str) -> list[str]:
    """--param flags of the model's first tiny configuration for this data's shape."""
    shape, levels = ((2,), None) if data == "moons" else ((1, 8, 8), 17)
    for config in get(name).tiny_configs():
        if tuple(config["event_shape"]) == shape and config.get("num_levels") == levels \
                and not config.get("num_classes"):
            skip = ("event_shape", "num_levels", "num_classes")
            return [f for k, v in config.items() if k not in skip
                    for f in ("--param", f"{k}={json.dumps(v)}")]
    return []


@pytest.mark.parametrize("name,data", FAMILIES)
def test_train_sample_eval_plot_list(name, data, tmp_path, capsys):
    out = tmp_path / "run"
    run(capsys, "train", name, "--data", data, *tiny_params(name, data), "--steps", 3,
        "--batch-size", 32, "--quiet", "--out", out)
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    run(capsys, "sample", out, "-n", 6, "--out", tmp_path / "s.npy")
    x = np.load(tmp_path / "s.npy")
    assert x.shape == (6, *get(name)(**json.loads((out / "config.json").read_text())["config"])
                       .event_shape)
    run(capsys, "sample", out, "-n", 6, "--out", tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 1000
    table = run(capsys, "eval", out, "--n-samples", 64)
    assert f"| {name} |" in table and (out / "eval.json").is_file()
    kinds = run(capsys, "plot", out, "--list").split()
    assert "samples" in kinds
    written = run(capsys, "plot", out, "--out", tmp_path / "figs")
    assert written.count("wrote") >= 1
    for path in (tmp_path / "figs").iterdir():
        assert path.stat().st_size > 1000
    assert "settings" in run(capsys, "list", name)


def test_compress_decompress_round_trip(tmp_path, capsys):
    out = tmp_path / "made"
    run(capsys, "train", "made", "--data", "digits", *tiny_params("made", "digits"),
        "--steps", 3, "--quiet", "--out", out)
    from genlab import load_data

    x = load_data("digits", split="test").x[:5].numpy().astype(np.uint8)
    np.save(tmp_path / "x.npy", x)
    run(capsys, "compress", out, tmp_path / "x.npy", "-o", tmp_path / "x.glc")
    run(capsys, "decompress", out, tmp_path / "x.glc", "-o", tmp_path / "back.npy")
    assert np.array_equal(np.load(tmp_path / "back.npy"), x)


def test_compare_and_demo(tmp_path, capsys):
    run(capsys, "compare", "--data", "moons", "--models", "histogram,gmm", "--out",
        tmp_path / "cmp")
    rows = json.loads((tmp_path / "cmp" / "results.json").read_text())["moons"]
    assert [r["model"] for r in rows] == ["histogram", "gmm"]
    run(capsys, "demo", "--models", "histogram", "--out", tmp_path / "demo")
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert set(results) == {"moons", "digits"}
    html = (tmp_path / "demo" / "report.html").read_text()
    for fig in (tmp_path / "demo" / "figures").iterdir():
        assert fig.name in html


def test_console_script_is_the_entry_point(tmp_path):
    """The installed `genlab` command (here `python -m genlab`) runs main() and exits 2
    with one line on bad input."""
    done = subprocess.run([sys.executable, "-m", "genlab", "list"], capture_output=True,
                          text=True, cwd=tmp_path)
    assert done.returncode == 0 and "histogram" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "genlab", "train", "nosuch", "--data", "moons",
                          "--out", str(tmp_path / "r")], capture_output=True, text=True,
                         cwd=tmp_path)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
