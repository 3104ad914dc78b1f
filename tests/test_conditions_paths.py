"""A run trained with sketch and prompt conditions (no class label) through every command and
picture that reads a run: each draws under the run's own test conditions or refuses in one
line that says what it expects."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from genlab import create, load
from genlab.cli import main
from genlab.conditioning import random_conditions
from genlab.errors import ConfigError
from genlab.runs import run_data

TINY = ["--steps", "2", "--batch-size", "16", "--val-every", "2", "--quiet",
        "--param", "width=8", "--param", "num_timesteps=4", "--param", "text_width=8",
        "--param", "condition_dropout=0"]  # every condition required: none may be left out


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "cond"
    assert main(["train", "ddpm", "--data", "digits", "--condition", "sketch,prompt",
                 "--out", str(out), *TINY]) == 0
    return out


def test_every_plot_kind_draws(run_dir, tmp_path, capsys):
    assert main(["plot", str(run_dir), "--list"]) == 0
    kinds = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert kinds == ["samples", "curves", "forward", "reverse"]
    for kind in kinds:
        assert main(["plot", str(run_dir), "--kind", kind, "--out", str(tmp_path)]) == 0
        assert Image.open(tmp_path / f"{kind}.png").size[0] > 0
    # samples: 16 test conditions, each sketch beside its sample, 4 pairs a row of 80 px
    assert Image.open(tmp_path / "samples.png").size == (8 * 80, 4 * 80)


def test_samples_sit_beside_their_sketches():
    from genlab.viz.run import beside_conditions

    y = random_conditions(("sketch", "prompt"), 3, event_shape=(1, 8, 8),
                          generator=torch.Generator().manual_seed(0))
    samples = torch.arange(3 * 64, dtype=torch.float32).reshape(3, 1, 8, 8) % 17
    tiles = beside_conditions(samples, y, 17)
    assert tiles.shape == (6, 1, 8, 8)
    assert torch.equal(tiles[0::2], y["sketch"] * 16) and torch.equal(tiles[1::2], samples)
    prompt_only = random_conditions(("prompt",), 3, event_shape=(1, 8, 8))
    assert torch.equal(beside_conditions(samples, prompt_only, 17), samples)


def test_probe_refuses_in_one_line(run_dir, capsys):
    assert main(["probe", str(run_dir), "--labels", "1", "--draws", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "Expected an unconditional model to probe" in err
    assert "('sketch', 'prompt')" in err


def test_eval_scores_obedience(run_dir, capsys):
    assert main(["eval", str(run_dir), "--n-samples", "6"]) == 0
    results = json.loads((run_dir / "eval.json").read_text())
    assert 0.0 <= results["obey_sketch_iou"] <= 1.0
    assert "class_accuracy" not in results  # no label to be accurate about


def test_compare_leaves_the_probe_column_empty(run_dir):
    """A comparison row is eval's metrics, plot's pictures and this probe column."""
    from genlab.report import _probe_column

    model = load(run_dir)
    train, test = run_data(run_dir, "train"), run_data(run_dir, "test")
    assert _probe_column(model, train, test, 0) == {}  # its features see the conditions


def test_lab_draws_the_run_and_refuses_a_label(run_dir, tmp_path):
    import shutil

    from genlab.lab.state import Lab

    shutil.copytree(run_dir, tmp_path / "cond")
    lab = Lab(tmp_path, warm=False)
    try:
        png = lab.samples_png("cond", None)
        assert Image.open(io.BytesIO(png)).size == (8 * 80, 4 * 80)
        with pytest.raises(ConfigError, match="Expected no label for a run with conditions"):
            lab.samples_png("cond", 3)
    finally:
        lab.close()


def test_playground_picture_refuses_conditions():
    from genlab.lab.pictures import picture

    model = create("ddpm", event_shape=(2,), conditions=("prompt",), num_timesteps=4,
                   width=8, depth=1, text_width=8)
    with pytest.raises(ConfigError, match=r"found conditions \('prompt',\)"):
        picture(model, torch.zeros(4, 2), (-1.0, 1.0, -1.0, 1.0), res=4)


def test_vae_pictures_decode_under_the_first_digits_conditions():
    from genlab.viz.vae import _labels

    y = random_conditions(("sketch",), 3, event_shape=(1, 8, 8),
                          generator=torch.Generator().manual_seed(1))
    model = SimpleNamespace(conditional=True, y_is_conditions=True)
    repeated = _labels(model, y, 5)
    assert repeated.n == 5 and torch.equal(repeated["sketch"], y["sketch"][:1].expand(5, -1,
                                                                                       -1, -1))


@pytest.mark.parametrize("name", ["cond_realnvp", "cond_pixelcnn", "pix2pix"])
def test_every_plot_kind_draws_for_the_other_conditional_families(name, tmp_path, capsys):
    out = tmp_path / name
    assert main(["train", name, "--data", "digits", "--condition", "sketch,prompt",
                 "--out", str(out), "--steps", "2", "--batch-size", "16", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["plot", str(out), "--list"]) == 0
    kinds = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert "samples" in kinds
    for kind in kinds:  # flows: stages, sampling and interpolation under test conditions
        assert main(["plot", str(out), "--kind", kind, "--out", str(tmp_path)]) == 0
        assert Image.open(tmp_path / f"{kind}.png").size[0] > 0
