"""The trainer names a family's validation score by what it is: an RBM validates on its
pseudo-likelihood, so its progress line, ``metrics.jsonl`` and the ``genlab train`` summary
say pseudo-NLL; a likelihood family keeps ``val_nll`` / ``val_bpd``."""

from __future__ import annotations

import json
import math

import torch

from genlab import load, load_data
from genlab.base import GenerativeModel, ValidationMeasure
from genlab.cli import main
from genlab.models.rbm import RBM


def train(tmp_path, capsys, model: str, *params: str):
    out = tmp_path / model
    argv = ["train", model, "--data", "digits", "--steps", "10", "--val-every", "5",
            "--keep", "last", "--out", str(out)]
    for param in params:
        argv += ["--param", param]
    assert main(argv) == 0
    captured = capsys.readouterr()
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return out, captured.out + captured.err, [r for r in records if any(
        k.startswith("val_") for k in r)]


def test_rbm_validation_is_named_pseudo_likelihood_everywhere(tmp_path, capsys):
    assert RBM.validation_measure != GenerativeModel.validation_measure  # declared, not guessed
    out, printed, vals = train(tmp_path, capsys, "rbm", "width=8")
    assert len(vals) == 2 and all("val_nll" not in r and "val_bpd" not in r for r in vals)
    # The logged value is the model's pseudo-likelihood loss on the validation split, in
    # nats and in bits (the last record is of the kept, last weights).
    model = load(out)
    val = load_data("digits", split="val")
    with torch.no_grad():
        pseudo = model.validation_loss(val.x, None).double().mean().item()
    assert math.isclose(vals[-1]["val_pseudo_nll"], pseudo, rel_tol=1e-5)
    assert math.isclose(vals[-1]["val_pseudo_bpd"], pseudo / math.log(2), rel_tol=1e-5)
    best = min(r["val_pseudo_bpd"] for r in vals)
    assert f"best val {best:.4g} pseudo-NLL bits/dim" in printed  # the run summary
    assert "best_val_pseudo_bpd" in printed  # the progress line
    assert "best_val_bpd" not in printed


def test_likelihood_family_keeps_nll_names(tmp_path, capsys):
    assert GenerativeModel.validation_measure == ValidationMeasure("val_nll", "val_bpd",
                                                                   "bits/dim")
    _, printed, vals = train(tmp_path, capsys, "made", "width=8", "depth=1")
    assert len(vals) == 2 and all({"val_nll", "val_bpd"} <= set(r) for r in vals)
    best = min(r["val_bpd"] for r in vals)
    assert f"best val {best:.4g} bits/dim at step" in printed and "pseudo" not in printed
