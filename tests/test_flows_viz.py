"""The flow pictures: stages of f^-1 (and of f from the base), before and after training."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from genlab import Dataset, create, fit, load_data
from genlab.errors import ConfigError
from genlab.models.flows import Flow, Glow, RealNVP
from genlab.viz.flows import flow_stages, plot_flow_sampling, plot_flow_stages, sampling_stages


def test_stages_end_at_the_latent_and_start_at_the_data() -> None:
    torch.manual_seed(0)
    model = RealNVP(event_shape=(2,), transforms=3, width=8, depth=1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    x = torch.randn(50, 2)
    stages = flow_stages(model, x)
    assert len(stages) == len(model.transform) + 1
    assert torch.equal(stages[0], x)
    assert torch.allclose(stages[-1], model.transform.inverse(x), atol=1e-6)


def test_sampling_stages_start_at_the_base_and_end_at_the_samples() -> None:
    torch.manual_seed(0)
    model = RealNVP(event_shape=(2,), transforms=3, width=8, depth=1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    stages = sampling_stages(model, 40, generator=g())
    assert len(stages) == len(model.transform) + 1
    assert torch.equal(stages[0], model.base_sample(40, None, g()))
    assert torch.allclose(stages[-1], model.sample(40, generator=g()), atol=1e-6)


def test_plot_two_rows_for_a_2d_run(tmp_path) -> None:
    torch.manual_seed(0)
    data = load_data("moons", n=512)
    model = RealNVP(event_shape=(2,), transforms=4, width=16, depth=1)
    fit(model, data, steps=20, batch_size=128, out=tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "init.safetensors").is_file()
    out = plot_flow_stages(tmp_path / "run", tmp_path / "stages.png", data=data)
    width, height = Image.open(out).size
    assert width > 4 * height / 2  # one row of (layers + 1) panels per training state
    assert height > 400  # two rows

    # The same pictures as the family's figures, drawn from the run alone (its data's name).
    assert set(Flow.figures()) == {"stages", "sampling", "interpolation"}
    for kind in ("stages", "sampling"):
        written = model.plot(kind, tmp_path / "run", tmp_path / f"{kind}.png")
        assert written == [tmp_path / f"{kind}.png"] and Image.open(written[0]).size == (
            width, height)
    with pytest.raises(ConfigError):
        model.plot("spectrum", tmp_path / "run", tmp_path / "x.png")


def test_plot_for_a_conditional_image_flow(tmp_path) -> None:
    torch.manual_seed(0)
    data = load_data("digits").subset(slice(0, 128))
    model = Glow(**data.model_kwargs(conditional=True), scales=2, transforms=1, width=4, depth=1)
    fit(model, data, steps=5, batch_size=32, out=tmp_path / "run", progress=False)
    out = plot_flow_stages(tmp_path / "run", tmp_path / "stages.png", data=data)
    assert out.is_file()
    with pytest.raises(ConfigError):  # a conditional flow needs labels
        plot_flow_stages(tmp_path / "run", tmp_path / "bad.png", data=data.x)
    assert plot_flow_sampling(tmp_path / "run", tmp_path / "sampling.png", n=300).is_file()


def test_plot_rejects_a_run_that_is_not_a_flow(tmp_path) -> None:
    from genlab.registry import available

    if "gmm" not in available():
        pytest.skip("no Gaussian mixture registered")
    data = Dataset(x=torch.randn(64, 2), name="blob")
    fit(create("gmm", event_shape=(2,), components=2), data, out=tmp_path / "gmm")
    with pytest.raises(ConfigError):
        plot_flow_stages(tmp_path / "gmm", tmp_path / "x.png", data=data)
    with pytest.raises(ConfigError):
        plot_flow_sampling(tmp_path / "gmm", tmp_path / "x.png")
