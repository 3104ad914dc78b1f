"""Hostile input to the command line: whatever the arguments and files, ``genlab`` ends with
a result or one line on standard error with a hint, never a traceback (``--debug`` aside).

``main([...])`` runs in-process under a time limit; argument lists are drawn by hypothesis
from a fixed seed (the ``hostile`` profile in _hostile.py). ``compare`` and ``demo`` are left
out of the drawn commands: with valid arguments they train every family, which is a result
that takes minutes, not a hang.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, UnidentifiedImageError

from _hostile import HOSTILE, check_one_line, tally, time_limit
from genlab import cli, create, fit, load_data
from genlab.errors import DataError


def run_cli(*argv: str) -> tuple[int, str, str]:
    """``genlab ARGV`` in-process: (exit code, stdout, stderr); argparse's exits included."""
    out, err = io.StringIO(), io.StringIO()
    with time_limit(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(argv))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def check_outcome(code: int, err: str, argv: tuple[str, ...]) -> None:
    """Success, help, or one error line (warnings, one line each, may come first)."""
    lines = [line for line in err.splitlines() if not line.startswith("genlab: warning:")]
    tally(f"exit {code}")
    if code == 0:
        return
    assert "Traceback" not in err, err
    assert len(lines) == 1, f"{argv}: {err!r}"
    check_one_line(lines[0])
    assert lines[0].startswith("genlab"), lines[0]


@functools.cache
def workspace(root: Path) -> dict[str, Path]:
    """Files the drawn arguments point at: a trained run, data, garbage, a folder."""
    run = root / "cli-run"
    fit(create("toy-normal", event_shape=(2,)), load_data("moons", n=64), out=run, steps=2,
        progress=False)
    np.save(root / "ok.npy", np.random.default_rng(0).normal(size=(20, 2)))
    np.save(root / "nan.npy", np.full((5, 2), np.nan))
    (root / "junk.npy").write_bytes(b"\x93NUMPY junk")
    (root / "junk.glc").write_bytes(b"\x89GLC\x01" + bytes(30))
    (root / "text.csv").write_text("a,b\n1,x\n")
    (root / "a_file").write_text("not a folder")
    return {"run": run, "ok.npy": root / "ok.npy", "nan.npy": root / "nan.npy",
            "junk.npy": root / "junk.npy", "junk.glc": root / "junk.glc",
            "text.csv": root / "text.csv", "a_file": root / "a_file",
            "under_a_file": root / "a_file" / "x.npy", "missing": root / "missing"}


COMMANDS = ["train", "sample", "eval", "plot", "compress", "decompress", "list", "bogus"]
MODELS = ["toy-normal", "gaussian", "histogram", "gmm", "made", "nosuch"]
FLAGS = ["--data", "--out", "-o", "-n", "--steps", "--batch-size", "--lr", "--seed", "--param",
         "--option", "--kind", "--y", "--resume", "--conditional", "--n-samples", "--quiet",
         "--temperature", "--patience", "--list"]


def templates(paths: dict[str, Path]) -> list[tuple[str, ...]]:
    run, new = str(paths["run"]), str(paths["missing"])
    return [("train", "toy-normal", "--data", str(paths["ok.npy"]), "--out", new),
            ("train", "gaussian", "--data", "moons", "--out", new, "--param", "method=sgd"),
            ("sample", run, "-n", "4", "--out", new + ".npy", "--temperature", "0.5"),
            ("eval", run, "--n-samples", "50"), ("plot", run, "--list"),
            ("decompress", run, str(paths["junk.glc"]), "-o", new + ".npy"),
            ("list", "toy-normal")]


@settings(HOSTILE, max_examples=100)
@given(data=st.data())
def test_drawn_command_lines(tmp_path_factory, data):
    paths = workspace(tmp_path_factory.getbasetemp())
    values = st.one_of(
        st.sampled_from(list(paths)).map(lambda k: str(paths[k])),
        st.sampled_from(MODELS + ["moons", "digits", "0", "-1", "nan", "inf", "1e400",
                                  "99999999999999999999", "", "k=v", "width=-3", "bins=[1,",
                                  "temperature=0", "none"]),
        st.text(max_size=6).filter(lambda t: "\x00" not in t),
    )
    if data.draw(st.booleans(), "from a working command"):
        # a command line that works, with one token replaced or one setting added
        argv = list(data.draw(st.sampled_from(templates(paths)), "template"))
        if data.draw(st.booleans(), "replace"):
            argv[data.draw(st.integers(1, len(argv) - 1), "at")] = data.draw(values, "value")
        else:
            argv += [data.draw(st.sampled_from(FLAGS), "flag"), data.draw(values, "value")]
    else:
        command = data.draw(st.sampled_from(COMMANDS), "command")
        argv = [command, *data.draw(st.lists(st.one_of(st.sampled_from(FLAGS), values),
                                             max_size=8), "rest")]
    if argv[0] == "train":  # keep training short: a long run is a request, not a hang
        argv += ["--steps", "2", "--quiet"]
    argv = tuple(argv)
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))  # anything written lands in a fresh folder
    try:
        code, _, err = run_cli(*argv)
    finally:
        os.chdir(cwd)
    check_outcome(code, err, argv)


IMAGE_BYTES = st.one_of(st.binary(max_size=40), st.just(b"\x89PNG\r\n\x1a\n" + bytes(20)))


@settings(HOSTILE, max_examples=60)
@given(kind=st.sampled_from(["npy", "csv", "png", "glc"]), raw=st.binary(max_size=80),
       data=st.data())
def test_drawn_files_through_the_commands(tmp_path_factory, kind, raw, data):
    paths = workspace(tmp_path_factory.getbasetemp())
    folder = tmp_path_factory.mktemp("in")
    if kind == "png":
        (folder / "images").mkdir()
        for i, image in enumerate(data.draw(st.lists(IMAGE_BYTES, min_size=1, max_size=2))):
            (folder / "images" / f"{i}.png").write_bytes(image)
        argv = ("train", "toy-normal", "--data", str(folder / "images"), "--out",
                str(folder / "run"), "--steps", "2", "--quiet")
    elif kind == "glc":
        (folder / "x.glc").write_bytes(raw)
        argv = ("decompress", str(paths["run"]), str(folder / "x.glc"), "-o",
                str(folder / "y.npy"))
    else:
        (folder / f"x.{kind}").write_bytes(raw)
        argv = ("train", "toy-normal", "--data", str(folder / f"x.{kind}"), "--out",
                str(folder / "run"), "--steps", "2", "--quiet")
    code, _, err = run_cli(*argv)
    check_outcome(code, err, argv)


# ------------------------------------------------------------------------------ the error table
def _bomb() -> Exception:
    return Image.DecompressionBombError("Image size (400000000 pixels) exceeds limit")


RAISED = {
    "cuda oom": (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\n"
                                        "GPU 0 has a total capacity of 80 GiB"),
                 "lower --batch-size", 2),
    "cpu oom": (RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. "
                             "DefaultCPUAllocator: can't allocate memory: you tried to "
                             "allocate 8000000000000 bytes. Error code 12 (Cannot allocate "
                             "memory)"), "lower --batch-size", 2),
    "memory": (MemoryError(), "lower --batch-size", 2),
    "type": (TypeError("unsupported operand type(s) for +: 'int' and 'str'"),
             "--param", 2),
    "value": (ValueError("math domain error"), "--debug", 2),
    "bomb": (_bomb(), "smaller images", 2),
    "unidentified": (UnidentifiedImageError("cannot identify image file 'x.png'"), "PNG", 2),
    "permission": (PermissionError(errno.EACCES, "Permission denied", "/root/out"),
                   "folder you can write to", 2),
    "disk full": (OSError(errno.ENOSPC, "No space left on device", "run/model.safetensors"),
                  "free disk space", 2),
    "typed": (DataError("Expected finite x, but found NaN."), "Expected finite x", 2),
    "bug": (ZeroDivisionError("division by zero"), "rerun with --debug", 1),
}


@pytest.mark.parametrize("name", list(RAISED))
def test_each_error_is_one_line_with_a_hint(monkeypatch, name):
    error, hint, expected_code = RAISED[name]

    def raise_it(args):
        raise error

    monkeypatch.setattr(cli, "cmd_list", raise_it)
    code, _, err = run_cli("list")
    assert code == expected_code
    assert err.count("\n") == 1 and err.startswith("genlab: error: ") and hint in err, err
    code, _, err = run_cli("--debug", "list")
    assert code == expected_code and "Traceback (most recent call last)" in err
    assert err.rstrip().splitlines()[-1].startswith("genlab: error: ")


def test_interrupted_training_says_how_to_resume(monkeypatch, tmp_path):
    def interrupt(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_train", interrupt)
    code, _, err = run_cli("train", "toy-normal", "--data", "moons", "--out", str(tmp_path))
    assert (code, err) == (130, "genlab: interrupted; resume with --resume\n")
    code, _, err = run_cli("train", "toy-normal", "--data", "moons", "--out", str(tmp_path),
                           "--debug")
    assert code == 130 and "Traceback" in err and err.endswith("--resume\n")


def test_an_output_that_cannot_be_written_is_one_line(tmp_path):
    paths = workspace(tmp_path)
    code, _, err = run_cli("sample", str(paths["run"]), "-n", "4", "--out",
                           str(paths["under_a_file"]))
    assert code == 2 and err.count("\n") == 1 and "check the path" in err, err


def test_argument_errors_are_one_line():
    code, _, err = run_cli("train", "toy-normal", "--steps", "-5")
    assert code == 2 and err.count("\n") == 1 and "--help" in err, err
