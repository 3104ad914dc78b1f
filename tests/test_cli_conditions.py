"""The command line with conditions: ``genlab train ddpm --data digits --condition ...`` and
``genlab sample RUN --sketch --prompt --label --mask --image --guidance``; bad input is one
line with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genlab.cli import main

DRAWING = Path(__file__).parents[1] / "docs" / "figures" / "drawings" / "drawn_7.png"
TINY = ["--steps", "2", "--batch-size", "16", "--val-every", "2", "--quiet",
        "--param", "width=8", "--param", "num_timesteps=8", "--param", "text_width=8"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli-conditions") / "run"
    assert main(["train", "ddpm", "--data", "digits", "--condition",
                 "prompt,sketch,label,mask", "--out", str(out), *TINY]) == 0
    return out


def test_train_records_the_conditions(trained):
    config = json.loads((trained / "config.json").read_text())
    assert config["config"]["conditions"] == ["label", "sketch", "mask", "prompt"]
    assert config["config"]["num_classes"] == 10
    assert config["data"]["conditions"] == ["label", "sketch", "mask", "prompt"]


def test_sample_with_every_condition_flag(trained, tmp_path, capsys):
    digit = tmp_path / "digit.npy"
    np.save(digit, np.full((1, 8, 8), 8.0, dtype=np.float32))
    out = tmp_path / "s.npy"
    code, stdout, err = run(capsys, "sample", trained, "--sketch", DRAWING, "--prompt",
                            "a thin 7 leaning left", "--label", "7", "--mask", "half",
                            "--image", digit, "--guidance", "sketch=2,prompt=3", "-n", "3",
                            "--sampler", "ddim", "--steps", "2", "--out", out)
    assert code == 0, err
    assert np.load(out).shape == (3, 1, 8, 8) and "wrote 3 samples" in stdout
    # conditions trained with dropout may be left out; one guidance scale for all
    code, _, err = run(capsys, "sample", trained, "--prompt", "seven", "--guidance", "1.5",
                       "-n", "2", "--sampler", "ddim", "--steps", "2", "--out",
                       tmp_path / "s.png")
    assert code == 0, err
    assert Image.open(tmp_path / "s.png").size[0] > 0


def bad_files(tmp_path):
    blank, text, small = tmp_path / "blank.png", tmp_path / "text.png", tmp_path / "small.npy"
    Image.fromarray(np.full((40, 30), 255, dtype=np.uint8)).save(blank)
    text.write_text("not an image")
    np.save(small, np.zeros((7, 7), dtype=np.float32))
    return blank, text, small


@pytest.mark.parametrize("flags,words", [
    (["--prompt", ""], "non-empty prompt"),
    (["--prompt", "a 3 " * 13], "at most 24 words"),
    (["--prompt", "a thni 3"], "Did you mean 'thin'"),
    (["--sketch", "small.npy"], "Expected a sketch of shape (1, 8, 8)"),
    (["--sketch", "blank.png"], "blank image"),
    (["--sketch", "text.png"], "Expected an image file"),
    (["--sketch", "missing.png"], "no file at"),
    (["--lowres", "small.npy"], "trained with (label, sketch, mask, prompt), but found --lowres"),
    (["--mask", "half"], "--mask and --image together"),
    (["--mask", "diagonal", "--image", "small.npy"], "Expected --mask half"),
    (["--mask", "top", "--image", "small.npy"], "Expected an array of shape (1, 8, 8)"),
    (["--mask", "top", "--image", "text.png"], "Expected an image file"),
    (["--label", "12"], "label values in [0, 9]"),
    (["--guidance", "colour=2"], "guidance for the model's conditions"),
])
def test_bad_sample_input_is_one_line(trained, tmp_path, capsys, monkeypatch, flags, words):
    bad_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "sample", trained, *flags, "-n", "1", "--out", "s.npy")
    assert code == 2
    assert err.count("\n") == 1 and words in err, err


@pytest.mark.parametrize("flags,words", [
    (["--data", "moons", "--condition", "sketch"], "Expected --data digits with --condition"),
    (["--data", "digits", "--condition", "sketch,colour"], "but found 'colour'"),
    (["--data", "digits", "--condition", "label", "--conditional"], "but found both"),
])
def test_bad_train_input_is_one_line(tmp_path, capsys, flags, words):
    code, _, err = run(capsys, "train", "ddpm", *flags, "--out", tmp_path / "r", *TINY)
    assert code == 2
    assert err.count("\n") == 1 and words in err, err


def test_label_only_model_refuses_condition_flags(tmp_path, capsys):
    out = tmp_path / "gmm"
    code, _, err = run(capsys, "train", "gmm", "--data", "digits", "--param", "components=2",
                       "--param", "max_iter=2", "--out", out)
    assert code == 0, err
    code, _, err = run(capsys, "sample", out, "--sketch", DRAWING, "-n", "1", "--out",
                       tmp_path / "s.npy")
    assert code == 2 and "trained with (no conditions), but found --sketch" in err


def test_eval_reports_obedience(trained, capsys):
    code, _, err = run(capsys, "eval", trained, "--n-samples", "8")
    assert code == 0, err
    results = json.loads((trained / "eval.json").read_text())
    assert 0 <= results["obey_sketch_iou"] <= 1 and 0 <= results["obey_label_accuracy"] <= 1
    assert results["bound"] and results["n"] == 297
