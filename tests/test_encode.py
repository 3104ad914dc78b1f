"""``encode(x)`` over the registry: every family that declares an encoder gives finite,
deterministic features of one fixed size k per sample, each sample's features independent of
the rest of its batch, and refuses bad input with the documented errors; every other family
raises ``NoRepresentation``. A family registered later is checked with no edit here.

Latent interpolation (flows, GANs): spherical paths and their pictures."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from genlab import create, fit, load_data
from genlab.errors import ConfigError, DataError, NoRepresentation, ShapeError
from genlab.registry import get
from genlab.viz.grid import CELL_PX
from genlab.viz.interpolation import ROWS, STEPS, lerp, slerp
from genlab.viz.run import plot_run, run_figures
from test_contract import CASES, labels, make_data


def build(name, config):
    torch.manual_seed(0)
    model = get(name)(**config)
    model.initialize(make_data(config))  # data-dependent layers (ActNorm, scales) are set
    return model


@pytest.mark.parametrize(("name", "config"), CASES)
def test_encode_contract(name, config):
    model = build(name, config)
    x = make_data(config, n=7, seed=1).x
    if not model.has_encoder:
        with pytest.raises(NoRepresentation):
            model.encode(x, labels(model, 7))
        return
    model.train()  # encode must switch to evaluation itself (dropout, batch norm) and back
    features = model.encode(x, labels(model, 7))
    assert model.training
    assert features.dim() == 2 and features.shape[0] == 7 and features.shape[1] >= 1
    assert torch.isfinite(features).all()
    assert torch.equal(model.encode(x, labels(model, 7)), features), "not deterministic"
    # k is fixed, and a sample's features do not depend on the other samples of its batch
    y = labels(model, 7)
    part = model.encode(x[:3], None if y is None else y[:3])
    torch.testing.assert_close(part, features[:3], rtol=1e-5, atol=1e-5)
    # extra batch dims are restored (Conditions keep their rows: the batch shape is x's)
    batched = model.encode(x[:6].reshape(2, 3, *x.shape[1:]),
                           None if y is None else
                           y[:6] if model.y_is_conditions else y[:6].reshape(2, 3))
    assert batched.shape == (2, 3, features.shape[1])

    with pytest.raises(ShapeError):
        model.encode(torch.zeros(4, 3, 5, 7), labels(model, 4))
    bad = x.clone()
    bad[0].view(-1)[0] = float("nan")
    with pytest.raises(DataError):
        model.encode(bad, labels(model, 7))
    with pytest.raises(ConfigError):
        model.encode(x, labels(model, 7), no_such_option=1)
    if set(model.conditions) - set(model.optional_conditions):
        with pytest.raises(DataError):
            model.encode(x)  # a conditional model's features need the conditions it requires


def test_diffusion_encodes_at_a_chosen_noise_step():
    name, config = next((n, c) for n, c in (p.values for p in CASES)
                        if n == "ddpm" and len(c["event_shape"]) == 3 and "num_classes" not in c)
    model = build(name, config)
    x = make_data(config, n=5).x
    t_last = model.schedule.num_timesteps - 1
    early, late = model.encode(x, t=0), model.encode(x, t=t_last)
    assert early.shape == late.shape and not torch.equal(early, late)
    with pytest.raises(ConfigError):
        model.encode(x, t=t_last + 1)
    with pytest.raises(ConfigError):
        model.encode(x, t=-1)


# ---------------------------------------------------------------- latent interpolation
def test_slerp_keeps_the_ends_and_the_norm_of_equal_norm_ends():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(4, 16, generator=g, dtype=torch.float64), torch.randn(
        4, 16, generator=g, dtype=torch.float64)
    z1 = z1 * (z0.norm(dim=1, keepdim=True) / z1.norm(dim=1, keepdim=True))
    path = slerp(z0, z1, 7)  # (4, 7, 16)
    assert path.shape == (4, 7, 16)
    torch.testing.assert_close(path[:, 0], z0)
    torch.testing.assert_close(path[:, -1], z1)
    torch.testing.assert_close(path.norm(dim=2), z0.norm(dim=1, keepdim=True).expand(4, 7))
    # the straight line's midpoint is shorter: cos(omega / 2) times the norm
    assert (lerp(z0, z1, 3)[:, 1].norm(dim=1) < z0.norm(dim=1)).all()
    torch.testing.assert_close(slerp(z0, z0, 3), z0[:, None].expand(4, 3, 16))  # parallel
    with pytest.raises(ConfigError):
        slerp(z0, z1, 1)


def _tiny_run(name, config, tmp_path):
    torch.manual_seed(0)
    data = load_data("digits", split="train").subset(slice(0, 64))
    model = create(name, data=data, **config)
    fit(model, data, out=tmp_path / name, steps=2, batch_size=32, progress=False)
    return model, tmp_path / name


@pytest.mark.parametrize(("name", "config"), [
    ("realnvp", {"transforms": 2, "width": 8, "depth": 1}),
    ("dcgan", {"width": 2, "latent_size": 4}),
])
def test_interpolation_picture_has_one_strip_per_pair(name, config, tmp_path):
    model, run = _tiny_run(name, config, tmp_path)
    assert "interpolation" in run_figures(model, run)
    (png,) = plot_run(model, run, tmp_path / "interp.png", "interpolation")
    width, height = Image.open(png).size
    assert (width, height) == (STEPS * CELL_PX, ROWS * CELL_PX)  # ROWS strips of STEPS panels


def test_flow_interpolation_starts_and_ends_at_its_data_points(tmp_path):
    model, _ = _tiny_run("realnvp", {"transforms": 2, "width": 8, "depth": 1}, tmp_path)
    x = load_data("digits", split="test").x[:6]
    paths = model.interpolate(x[:3], x[3:], 5)
    assert paths.shape == (3, 5, 1, 8, 8)
    assert torch.equal(paths[:, 0], x[:3]) and torch.equal(paths[:, -1], x[3:])
