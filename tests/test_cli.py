"""The command line: the README's commands work, and bad input is one line with exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genlab.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_sample_eval_histogram_on_moons(tmp_path, capsys):
    out = tmp_path / "moons-hist"
    code, _, err = run(capsys, "train", "histogram", "--data", "moons", "--out", str(out))
    assert code == 0, err
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    code, _, err = run(capsys, "sample", str(out), "-n", "100", "--out", str(tmp_path / "s.npy"))
    assert code == 0, err
    assert np.load(tmp_path / "s.npy").shape == (100, 2)
    code, stdout, err = run(capsys, "eval", str(out), "--n-samples", "500")
    assert code == 0, err
    results = json.loads((out / "eval.json").read_text())
    assert np.isfinite(results["nll_nats"]) and "mmd2" in results and "| histogram |" in stdout


def test_train_gmm_on_digits_and_sample_png(tmp_path, capsys):
    out = tmp_path / "digits-gmm"
    code, _, err = run(capsys, "train", "gmm", "--data", "digits", "--param", "components=3",
                       "--param", "max_iter=20", "--out", str(out))
    assert code == 0, err
    assert json.loads((out / "config.json").read_text())["config"]["components"] == 3
    code, _, err = run(capsys, "sample", str(out), "-n", "16", "--out", str(tmp_path / "s.png"))
    assert code == 0, err
    assert (tmp_path / "s.png").stat().st_size > 1000


def test_sgd_training_resumes(tmp_path, capsys):
    out = tmp_path / "gmm-sgd"
    args = ["train", "gmm", "--data", "moons", "--param", "method=sgd", "--param", "components=4",
            "--steps", "20", "--batch-size", "64", "--out", str(out), "--quiet"]
    assert run(capsys, *args)[0] == 0
    code, _, err = run(capsys, *args, "--resume")
    assert code == 0, err
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["step"] == 20


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "nosuchmodel", "--data", "moons", "--out", "{tmp}/r"], "Unknown model"),
        (["train", "histogram", "--data", "nosuchdata", "--out", "{tmp}/r"], "nosuchdata"),
        (["train", "histogram", "--data", "moons", "--param", "bins", "--out", "{tmp}/r"],
         "key=value"),
        (["train", "histogram", "--data", "moons", "--param", "colour=3", "--out", "{tmp}/r"],
         "no setting 'colour'"),
        (["train", "histogram", "--data", "moons", "--param", "bins=0", "--out", "{tmp}/r"],
         "Expected bins to be"),
        (["train", "histogram", "--data", "{tmp}/missing.npy", "--out", "{tmp}/r"], "missing.npy"),
        (["sample", "{tmp}/nowhere", "--out", "{tmp}/s.png"], "does not exist"),
        (["eval", "{tmp}/nowhere"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    code, _, err = run(capsys, *[a.format(tmp=tmp_path) for a in argv])
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["train", "histogram", "--data", "moons", "--out", "r", "--steps", "-5"],
    ["train", "histogram", "--data", "moons", "--out", "r", "--keep", "worst"],
    ["sample", "r", "-n", "0", "--out", "s.png"], ["nosuchcommand"]])
def test_bad_arguments_exit_2(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written, and never into the checkout
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def test_corrupt_checkpoint_is_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert run(capsys, "train", "histogram", "--data", "moons", "--out", str(out))[0] == 0
    data = (out / "model.safetensors").read_bytes()
    (out / "model.safetensors").write_bytes(data[:50])
    code, _, err = run(capsys, "sample", str(out), "--out", str(tmp_path / "s.npy"))
    assert code == 2 and "corrupt or truncated" in err
    assert not (tmp_path / "s.npy").exists()


def test_bad_sample_suffix_and_label(tmp_path, capsys):
    out = tmp_path / "run"
    assert run(capsys, "train", "histogram", "--data", "moons", "--out", str(out))[0] == 0
    code, _, err = run(capsys, "sample", str(out), "--out", str(tmp_path / "s.txt"))
    assert code == 2 and ".png or .npy" in err
    code, _, err = run(capsys, "sample", str(out), "--y", "3", "--out", str(tmp_path / "s.npy"))
    assert code == 2 and "unconditional" in err


def test_same_command_same_weights_whatever_ran_before(tmp_path, capsys):
    """Construction is seeded: the run's initial and final weights do not depend on what the
    process did before (here, drawing random numbers)."""
    import torch

    argv = ["train", "realnvp", "--data", "moons", "--steps", "3", "--quiet",
            "--param", "transforms=2", "--param", "width=8"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    torch.rand(1000)
    assert main([*argv, "--out", str(tmp_path / "b")]) == 0
    for name in ("init.safetensors", "model.safetensors"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
