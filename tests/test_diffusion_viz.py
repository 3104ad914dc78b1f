"""Diffusion plots: q(x_t) over t and reverse trajectories write PNGs of the expected size."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from genlab import Dataset, create
from genlab.errors import ConfigError, ShapeError
from genlab.models.diffusion import NoiseSchedule
from genlab.viz.diffusion import default_timesteps, plot_forward_process, plot_reverse_trajectory


def test_default_timesteps():
    assert default_timesteps(1000) == [0, 50, 100, 250, 500, 999]
    assert default_timesteps(4) == [0, 1, 2, 3]


def test_forward_process_plots(tmp_path):
    g = torch.Generator().manual_seed(0)
    points = torch.randn(300, 2, generator=g)
    out = plot_forward_process(points, tmp_path / "f.png", schedule=NoiseSchedule.cosine(50),
                               ts=[0, 10, 49], max_points=100)
    assert Image.open(out).size == (3 * 220, 250)
    digits = Dataset(x=torch.randint(0, 17, (8, 1, 8, 8), generator=g).float(),
                     kind="discrete", num_levels=17)
    out = plot_forward_process(digits, tmp_path / "d.png", n_images=4)
    assert Image.open(out).size[0] == 6 * 80  # one column per default t
    with pytest.raises(ConfigError):
        plot_forward_process(points, tmp_path / "x.png", ts=[1000])
    with pytest.raises(ShapeError):
        plot_forward_process(torch.randn(10, 3), tmp_path / "x.png")


def test_reverse_trajectory_plots(tmp_path):
    torch.manual_seed(0)
    model = create("ddpm", event_shape=(2,), num_timesteps=20, width=8, depth=1)
    out = plot_reverse_trajectory(model, tmp_path / "r.png", n=50, panels=4,
                                  sampler="dpm-solver", steps=5)
    assert Image.open(out).size == (5 * 220, 250)
    images = create("ddpm", event_shape=(1, 8, 8), num_levels=17, num_classes=3,
                    num_timesteps=10, width=8)
    out = plot_reverse_trajectory(images, tmp_path / "i.png", n=3, panels=3, guidance=2.0)
    assert Image.open(out).size[0] == 3 * 80


def test_run_figures_use_the_runs_schedule_and_data(tmp_path):
    from genlab import load_data
    from genlab.train.checkpoint import save_model

    assert set(create("ddpm", event_shape=(2,)).figures()) == {"forward", "reverse"}
    torch.manual_seed(0)
    model = create("ddpm", event_shape=(2,), num_timesteps=20, schedule="cosine", width=8,
                   depth=1)
    data = load_data("moons", n=400)
    model.initialize(data)
    save_model(model, tmp_path / "run", data=data.describe())
    [forward] = model.plot("forward", tmp_path / "run", tmp_path / "forward.png")
    # One panel per default t of the run's own T = 20 (not the linear T = 1000 default).
    assert Image.open(forward).size == (len(default_timesteps(20)) * 220, 250)
    [reverse] = model.plot("reverse", tmp_path / "run", tmp_path / "reverse.png")
    assert Image.open(reverse).size == (7 * 220, 250)  # 6 snapshots and the paths
    with pytest.raises(ConfigError, match="forward"):
        model.plot("density3d", tmp_path / "run", tmp_path / "x.png")
    save_model(model, tmp_path / "nameless", data=None)
    with pytest.raises(ConfigError, match="training data"):
        model.plot("forward", tmp_path / "nameless", tmp_path / "x.png")
