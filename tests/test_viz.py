"""Tests of genlab.viz: PNGs of the documented pixel size, what each panel shows, bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.errors import ConfigError, DataError, ShapeError
from genlab.viz import (
    density_2d_figure,
    plot_density_2d,
    plot_image_grid,
    plot_training_curves,
)


class FakeGaussian:
    """An exact 2-D model: N(mu_y, I), with class means on the x axis when conditional."""

    has_exact_likelihood = True
    device, dtype = torch.device("cpu"), torch.float64

    def __init__(self, num_classes=None):
        self.num_classes = num_classes

    def _mean(self, y, n):
        if y is None:
            return torch.zeros(n, 2, dtype=torch.float64)
        y = torch.as_tensor(y).expand(n).double()
        return torch.stack([2.0 * y, torch.zeros_like(y)], -1)

    def log_prob(self, x, y=None):
        return -0.5 * ((x - self._mean(y, len(x))) ** 2).sum(1) - math.log(2 * math.pi)

    def sample(self, n, y=None, *, generator=None):
        return self._mean(y, n) + torch.randn(n, 2, generator=generator, dtype=torch.float64)


class FakeGAN(FakeGaussian):
    has_exact_likelihood = False

    def log_prob(self, x, y=None):
        raise AssertionError("a GAN has no density to evaluate")


def png_size(path):
    with Image.open(path) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("L"), dtype=np.float64)
        assert pixels.std() > 1.0  # something was drawn
        return image.size


def test_density_plot_of_a_log_density_function(tmp_path):
    data = torch.randn(500, 2, generator=torch.Generator().manual_seed(0))
    samples = torch.randn(300, 2, generator=torch.Generator().manual_seed(1))

    def log_density(points):
        return -0.5 * (points**2).sum(1) - math.log(2 * math.pi)

    out = plot_density_2d(log_density, data, samples, tmp_path / "sub" / "density.png",
                          resolution=40)
    assert out == tmp_path / "sub" / "density.png"
    assert png_size(out) == (1200, 400)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["density.png"]  # no temp file


def test_density_panel_integrates_to_one_for_a_mixture():
    # conditional model: p(x) = mean_y N(x; (2y, 0), I) over 3 labels. The heatmap holds p on
    # a grid of spacing h over [-5, 9] x [-7, 7]; its Riemann sum h^2 sum p equals the integral
    # up to the mass outside the box (< 1e-5) and an exponentially small quadrature error
    model = FakeGaussian(num_classes=3)
    data = model.sample(100, torch.randint(3, (100,), generator=torch.Generator()))
    fig = density_2d_figure(model, data, None, bounds=(-5, 9, -7, 7), resolution=201,
                            generator=torch.Generator().manual_seed(0))
    density = np.asarray(fig.axes[1].images[0].get_array())
    h = 14 / 200
    assert density.shape == (201, 201)
    assert abs(density.sum() * h * h - 1.0) < 1e-3
    assert "density" in fig.axes[1].get_title()


def test_density_plot_of_a_model_without_density(tmp_path):
    data = torch.randn(200, 2, generator=torch.Generator().manual_seed(2))
    fig = density_2d_figure(FakeGAN(), data, None, num_hist_samples=5000, resolution=50,
                            generator=torch.Generator().manual_seed(3))
    assert "histogram" in fig.axes[1].get_title()
    assert "n=200" in fig.axes[2].get_title()  # samples drawn from the model, as many as data
    out = plot_density_2d(FakeGAN(), data, None, tmp_path / "gan.png", num_hist_samples=5000,
                          resolution=50)
    assert png_size(out) == (1200, 400)


def test_density_plot_bad_input(tmp_path):
    data = torch.randn(20, 2)
    with pytest.raises(ShapeError):
        plot_density_2d(FakeGaussian(), torch.randn(20, 3), None, tmp_path / "x.png")
    with pytest.raises(ConfigError):
        plot_density_2d(FakeGaussian(), data, None, tmp_path / "x.png", bounds=(1, 0, 0, 1))
    with pytest.raises(ConfigError):
        plot_density_2d(FakeGaussian(), data, None, tmp_path / "x.jpg")
    with pytest.raises(ConfigError):
        plot_density_2d(None, data, data, tmp_path / "x.png")
    assert not list(tmp_path.iterdir())


def test_image_grid_sizes(tmp_path):
    digits = torch.randint(0, 17, (10, 1, 8, 8), generator=torch.Generator().manual_seed(4))
    out = plot_image_grid(digits.float(), tmp_path / "grid.png", nrow=5, num_levels=17)
    assert png_size(out) == (5 * 80, 2 * 80)
    titled = plot_image_grid(digits, tmp_path / "titled.png", nrow=4,
                             titles=[str(i) for i in range(10)])
    assert png_size(titled) == (4 * 80, 3 * (80 + 20))
    rgb = np.random.default_rng(0).uniform(size=(7, 3, 16, 16))
    assert png_size(plot_image_grid(rgb, tmp_path / "rgb.png")) == (3 * 80, 3 * 80)
    with pytest.raises(ShapeError):
        plot_image_grid(torch.zeros(4, 2, 8, 8), tmp_path / "bad.png")
    with pytest.raises(ShapeError):
        plot_image_grid(digits, tmp_path / "bad.png", titles=["a"])
    with pytest.raises(DataError):
        plot_image_grid(torch.full((2, 1, 8, 8), math.nan), tmp_path / "bad.png")


def test_training_curves(tmp_path):
    lines = []
    for step in range(1, 201):
        record = {"step": step, "time": step * 0.01, "loss_discriminator": 1.0 / step,
                  "loss_generator": 2.0 - 1.0 / step, "grad_norm_discriminator": 0.5,
                  "lr_discriminator": 1e-3, "d_real": 0.6}
        if step % 50 == 0:
            record.update(val_nll=1.5 - step / 1000, val_bpd=(1.5 - step / 1000) / math.log(2))
        lines.append(json.dumps(record))
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 201, "loss_')
    # five families (loss, validation, lr, grad norm, other): 3 per row, 400 x 300 each
    out = plot_training_curves(run, tmp_path / "curves.png")
    assert png_size(out) == (3 * 400, 2 * 300)
    (run / "bad.jsonl").write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    with pytest.raises(DataError):
        plot_training_curves(run / "bad.jsonl", tmp_path / "bad.png")
    with pytest.raises(DataError):
        plot_training_curves(tmp_path / "missing.jsonl", tmp_path / "bad.png")
    (run / "empty.jsonl").write_text('{"step": 1, "time": 0.1}\n')
    with pytest.raises(DataError):
        plot_training_curves(run / "empty.jsonl", tmp_path / "bad.png")
