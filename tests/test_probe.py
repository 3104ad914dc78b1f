"""The linear probe: correct on features whose answer is known, seeded and stratified draws,
the same computation for a model's features and for the pixel references, and ``genlab probe``
writing its table, JSON and plot."""

from __future__ import annotations

import json
import math
from typing import ClassVar

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from genlab import Dataset, create, fit, load_data
from genlab.base import GenerativeModel
from genlab.cli import main
from genlab.errors import ConfigError, DataError, NoRepresentation
from genlab.probe import parse_labels, probe, stratified_subset

CLASSES, DIM = 4, 12


def separable(n: int, seed: int, *, shuffle_labels: bool = False) -> Dataset:
    """Class c is N(8 e_c, I) in 12 dimensions: the means are 8 * sqrt(2) = 11.3 standard
    deviations apart, so the Bayes error of the nearest-mean rule, Phi(-5.66) per pair, is
    below 1e-7 and any sensible linear classifier scores every test point (expected errors in
    400 points: < 1e-4)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % CLASSES
    x = torch.randn(n, DIM, generator=g)
    x[torch.arange(n), y] += 8.0
    if shuffle_labels:
        y = y[torch.randperm(n, generator=g)]
    return Dataset(x=x, y=y, num_classes=CLASSES, name="separable")


class Rotation(GenerativeModel):
    """A model whose features are a fixed rotation of the data (test-only, unregistered)."""

    has_encoder: ClassVar[bool] = True

    def __init__(self, *, event_shape, num_classes=None, num_levels=None) -> None:
        super().__init__(event_shape=event_shape, num_classes=num_classes, num_levels=num_levels)
        q, _ = torch.linalg.qr(torch.randn(DIM, DIM, generator=torch.Generator().manual_seed(1)))
        self.register_buffer("q", q)
        self.dummy = nn.Parameter(torch.zeros(()))

    def _sample(self, n: int, y: Tensor | None, *, generator=None) -> Tensor:
        return torch.randn(n, DIM, generator=generator)

    def _encode(self, x: Tensor, y: Tensor | None) -> Tensor:
        return x @ self.q  # (n, DIM)


def test_probe_of_separable_features_scores_every_test_point():
    train, test = separable(400, seed=0), separable(400, seed=1)
    result = probe(Rotation(event_shape=(DIM,)), train, test, labels=[10, None], draws=3,
                   name="rotation")
    assert set(result.scores) == {"rotation", "pixels", "pca16"}
    assert result.feature_sizes == {"rotation": DIM, "pixels": DIM, "pca16": DIM}
    for row in ("rotation", "pixels"):
        for budget in ("10", "all"):
            assert result.scores[row][budget].mean == 1.0, (row, budget)
    assert len(result.scores["pixels"]["10"].accuracies) == 3
    assert result.scores["pixels"]["all"].accuracies == (1.0,)  # every label: one fit


def test_probe_of_labels_unrelated_to_the_features_is_at_chance():
    train, test = separable(400, seed=0), separable(800, seed=1, shuffle_labels=True)
    acc = probe(None, train, test, labels=[10], draws=5).scores["pixels"]["10"].mean
    # 5 draws x 800 points, chance 1/4: standard error <= sqrt(.25 * .75 / 800) = 0.015
    assert abs(acc - 1 / CLASSES) < 4 * math.sqrt(0.25 * 0.75 / 800)


def test_a_model_row_is_computed_exactly_as_the_pixel_row():
    class Identity(Rotation):
        def _encode(self, x: Tensor, y: Tensor | None) -> Tensor:
            return x

    train, test = separable(200, seed=0, shuffle_labels=True), separable(200, seed=1)
    result = probe(Identity(event_shape=(DIM,)), train, test, labels=[2, 10], draws=4,
                   name="identity")
    assert result.scores["identity"] == result.scores["pixels"]
    again = probe(Identity(event_shape=(DIM,)), train, test, labels=[2, 10], draws=4,
                  name="identity")
    assert again.to_dict() == result.to_dict()  # same seed, same numbers
    other = probe(None, train, test, labels=[2], draws=4, seed=1)
    assert other.scores["pixels"]["2"] != result.scores["pixels"]["2"]


def test_label_draws_are_stratified_and_seeded():
    y = np.repeat(np.arange(5), [30, 12, 50, 10, 40])
    for k in (1, 3, 10):
        picks = stratified_subset(y, k, np.random.default_rng([0, k, 0]))
        assert len(np.unique(picks)) == len(picks) == 5 * k
        assert (np.bincount(y[picks], minlength=5) == k).all()
        again = stratified_subset(y, k, np.random.default_rng([0, k, 0]))
        assert np.array_equal(picks, again)
    draws = {tuple(stratified_subset(y, 3, np.random.default_rng([0, 3, d]))) for d in range(10)}
    assert len(draws) == 10
    with pytest.raises(DataError, match="class 3"):
        stratified_subset(y, 11, np.random.default_rng(0))


def test_bad_requests_get_typed_errors():
    train = separable(40, seed=0)
    assert parse_labels("1, 10,all") == [1, 10, None]
    for text in ("0", "ten", "1,,2", "-1"):
        with pytest.raises(ConfigError):
            parse_labels(text)
    with pytest.raises(ConfigError):
        probe(None, train, train, labels=[1], draws=0)
    with pytest.raises(DataError):
        probe(None, Dataset(x=train.x), train, labels=[1])
    with pytest.raises(NoRepresentation):
        probe(create("gaussian", event_shape=(DIM,)), train, train, labels=[1])
    conditional = Rotation(event_shape=(DIM,), num_classes=CLASSES)
    with pytest.raises(ConfigError, match="unconditional"):
        probe(conditional, train, train, labels=[1])


def test_genlab_probe_writes_table_json_and_plot(tmp_path, capsys):
    data = load_data("digits", split="train")
    torch.manual_seed(0)
    model = create("made", data=data, width=16, depth=1, dropout=0.0)
    fit(model, data, out=tmp_path / "run", steps=2, batch_size=64, progress=False)
    code = main(["probe", str(tmp_path / "run"), "--labels", "1,all", "--draws", "2",
                 "--out", str(tmp_path / "probe")])
    assert code == 0
    assert "| made | 16 |" in capsys.readouterr().out
    document = json.loads((tmp_path / "probe" / "probe.json").read_text())
    assert document["labels_per_class"] == ["1", "all"]
    assert set(document["scores"]) == {"made", "pixels", "pca16"}
    assert len(document["scores"]["made"]["1"]["accuracies"]) == 2
    assert (tmp_path / "probe" / "probe.png").stat().st_size > 0
    assert main(["probe", str(tmp_path / "run"), "--labels", "ten"]) == 2


def test_compare_report_has_a_probe_column_for_models_with_an_encoder():
    from genlab.report import _probe_column
    from genlab.report.evaluate import format_table

    train, test = separable(200, seed=0), separable(200, seed=1)
    row = _probe_column(Rotation(event_shape=(DIM,)), train, test, seed=0)
    assert row == {"probe_10": 1.0}
    assert _probe_column(create("gaussian", event_shape=(DIM,)), train, test, seed=0) == {}
    assert _probe_column(Rotation(event_shape=(DIM,)), Dataset(x=train.x), test, seed=0) == {}
    assert "probe (10/class)" in format_table([{"model": "rotation", **row}])
