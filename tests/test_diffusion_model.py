"""The diffusion model: parametrisations, guidance, decoder, options, trajectory, inpainting."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genlab import create
from genlab.data.transforms import to_symmetric
from genlab.errors import ConfigError, DataError, ShapeError
from genlab.models.diffusion.bound import discretized_gaussian_log_mass
from genlab.models.diffusion.denoisers import MLPDenoiser, UNetDenoiser, sinusoidal_embedding


class Oracle(nn.Module):
    """Returns the exact training target for known (x0, eps): lets us check conversions."""

    def __init__(self, schedule, x0, eps, prediction):
        super().__init__()
        self.schedule, self.x0, self.eps, self.prediction = schedule, x0, eps, prediction

    def forward(self, x, t, y=None):
        ab = self.schedule.alpha_bar_at(int(t[0]))
        a, s = math.sqrt(ab), math.sqrt(1 - ab)
        return {"eps": self.eps, "x0": self.x0, "v": a * self.eps - s * self.x0}[self.prediction]


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_every_parametrisation_gives_back_x0_and_eps(prediction):
    model = create("ddpm", event_shape=(3,), prediction=prediction, width=4, depth=1).double()
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(5, 3, generator=g, dtype=torch.float64)
    eps = torch.randn(5, 3, generator=g, dtype=torch.float64)
    model.net = Oracle(model.schedule, x0, eps, prediction)
    for t in (0, 400, 999):
        x_t = model.q_sample(x0, t, eps)
        x0_hat, eps_hat = model._guesses(x_t, t, None)
        # eps -> x0 divides by sqrt(alpha_bar), 1/0.0064 at t = 999: allow for that rounding.
        assert torch.allclose(x0_hat, x0, atol=1e-9) and torch.allclose(eps_hat, eps, atol=1e-9)


def test_training_loss_targets_and_label_dropout():
    torch.manual_seed(0)
    model = create("ddpm", event_shape=(2,), num_classes=3, prediction="v", width=8, depth=1)
    x, y = torch.randn(64, 2), torch.randint(0, 3, (64,))
    loss, logs = model.training_loss(x, y)
    assert loss.ndim == 0 and torch.isfinite(loss) and logs["mse"] == pytest.approx(loss.item())
    seen = []
    model.net.embed.classes.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    torch.manual_seed(1)
    model.training_loss(torch.randn(4000, 2), torch.zeros(4000, dtype=torch.long))
    dropped = (seen[0] == 3).float().mean().item()
    # Binomial(4000, 0.1): standard error sqrt(0.1 * 0.9 / 4000) = 0.0047.
    assert abs(dropped - 0.1) < 5 * 0.0047


def test_classifier_free_guidance_combines_conditional_and_null_outputs():
    torch.manual_seed(0)
    model = create("ddpm", event_shape=(2,), num_classes=3, width=8, depth=1).eval()
    x, y = torch.randn(4, 2), torch.tensor([0, 1, 2, 1])
    t = torch.full((4,), 500)
    with torch.no_grad():
        cond = model.net(x, t, y)
        uncond = model.net(x, t, torch.full((4,), 3))
        for w in (0.0, 1.0, 3.0):
            eps = model._guesses(x, 500, y, guidance=w)[1]
            assert torch.allclose(eps, uncond + w * (cond - uncond), atol=1e-5)


def test_discretized_decoder_is_a_distribution_over_levels():
    levels = 17
    centres = to_symmetric(torch.arange(levels, dtype=torch.float64), levels)[:, None]  # (L, 1)
    for mean, std in [(0.03, 0.01), (-0.95, 0.2), (0.5, 3.0), (2.0, 0.05)]:
        log_mass = discretized_gaussian_log_mass(
            centres, torch.full_like(centres, mean), std, levels
        )
        assert torch.isfinite(log_mass).all()
        assert torch.logsumexp(log_mass, 0).item() == pytest.approx(0.0, abs=1e-9)
    # Far tails stay finite (no log(0)): a bin 30 standard deviations away.
    far = discretized_gaussian_log_mass(centres[:1], torch.full((1, 1), 1.0), 0.05, levels)
    assert torch.isfinite(far).all() and far.item() < -300


def test_discrete_bound_is_a_log_mass_with_gradients():
    torch.manual_seed(0)
    model = create("ddpm", event_shape=(1, 4, 4), num_levels=17, num_timesteps=10, width=8,
                   channel_mults=(1, 2))
    x = torch.randint(0, 17, (3, 1, 4, 4)).float()
    lp = model.log_prob_bound(x)
    assert lp.shape == (3,) and torch.isfinite(lp).all() and (lp <= 0).all()
    lp.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    # Deterministic (fixed bound noise): the same numbers twice.
    assert torch.equal(lp.detach(), model.log_prob_bound(x).detach())
    with pytest.raises(DataError):
        model.log_prob_bound(x + 0.5)


def test_sample_options_and_errors():
    model = create("ddpm", event_shape=(2,), num_timesteps=20, width=8, depth=1)
    g = torch.Generator
    for opts in [{}, {"sampler": "ddim", "steps": 5, "eta": 0.5}, {"sampler": "dpm-solver"},
                 {"sampler": "ddpm", "steps": 7, "variance": "large"}]:
        a = model.sample(6, generator=g().manual_seed(0), **opts)
        assert a.shape == (6, 2) and torch.equal(a, model.sample(6, generator=g().manual_seed(0),
                                                                  **opts))
    bad = [({"sampler": "euler"}, "sampler"), ({"steps": 21}, "steps"), ({"steps": 0}, "steps"),
           ({"eta": -1.0, "sampler": "ddim"}, "eta"), ({"variance": "mid"}, "variance"),
           ({"guidance": 2.0}, "guidance"), ({"temperature": 1.0}, "temperature")]
    for opts, word in bad:
        with pytest.raises(ConfigError, match=word):
            model.sample(2, **opts)


def test_constructor_validation():
    for kwargs, word in [({"num_timesteps": 0}, "num_timesteps"),
                         ({"prediction": "score"}, "prediction"),
                         ({"denoiser": "resnet"}, "denoiser"),
                         ({"condition_dropout": 1.0}, "condition_dropout"),
                         ({"schedule": "custom"}, "betas"),
                         ({"bound_variance": "mid"}, "bound_variance"),
                         ({"channel_mults": []}, "channel_mults"),
                         ({"channel_mults": (1, 0)}, "channel_mults")]:
        with pytest.raises(ConfigError, match=word):
            create("ddpm", event_shape=(2,), **kwargs)
    with pytest.raises(ConfigError, match="divisible"):
        create("ddpm", event_shape=(1, 6, 6), channel_mults=(1, 2, 2))
    with pytest.raises(ConfigError, match=r"\(c, h, w\)"):
        create("ddpm", event_shape=(2,), denoiser="unet")


def test_trajectory_ends_at_the_samples_of_sample():
    torch.manual_seed(0)
    model = create("ddpm", event_shape=(2,), num_timesteps=30, width=8, depth=1)
    model.data_scale.fill_(2.0)
    for opts in [{}, {"sampler": "dpm-solver", "steps": 6}]:
        tr = model.sample_trajectory(5, generator=torch.Generator().manual_seed(3), **opts)
        x = model.sample(5, generator=torch.Generator().manual_seed(3), **opts)
        k = len(tr.timesteps)
        assert tr.timesteps[0] == 29 and tr.timesteps[-1] == -1
        assert tr.states.shape == (k, 5, 2) and tr.denoised.shape == (k - 1, 5, 2)
        assert torch.allclose(model.from_working(tr.states[-1]), x)


def test_inpaint_keeps_known_pixels_and_checks_input():
    torch.manual_seed(0)
    model = create("ddpm", event_shape=(1, 4, 4), num_levels=17, num_timesteps=10, width=8)
    x = torch.randint(0, 17, (3, 1, 4, 4)).float()
    mask = torch.zeros(1, 4, 4)
    mask[..., :2, :] = 1
    out = model.inpaint(x, mask, generator=torch.Generator().manual_seed(0), resample=2)
    assert out.shape == x.shape and torch.equal(out[..., :2, :], x[..., :2, :])
    assert torch.equal(out, out.round()) and out.min() >= 0 and out.max() <= 16
    with pytest.raises(ShapeError):
        model.inpaint(x, torch.ones(4, 4))
    with pytest.raises(ShapeError):
        model.inpaint(x, torch.ones(2, 1, 4, 4))  # 2 masks for 3 images
    with pytest.raises(DataError):
        model.inpaint(x, mask * 0.5)
    with pytest.raises(ConfigError):
        model.inpaint(x, mask, resample=0)


def test_initialize_measures_data_scale():
    from genlab import Dataset

    model = create("ddpm", event_shape=(2,), width=4, depth=1)
    data = Dataset(x=3 * torch.randn(5000, 2, generator=torch.Generator().manual_seed(0)))
    model.initialize(data)
    # std of 10000 N(0, 9) values: standard error 3 / sqrt(2 * 10000) = 0.021.
    assert model.data_scale.item() == pytest.approx(3.0, abs=5 * 0.021)
    assert "data_scale" in model.state_dict()


def test_denoisers_shapes_and_time_embedding():
    emb = sinusoidal_embedding(torch.tensor([0.0, 1.0, 500.0]), 16)
    assert emb.shape == (3, 16) and torch.allclose(emb[0, :8], torch.ones(8))
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([3, 900])
    unet = UNetDenoiser((1, 8, 8), 1000, num_classes=10, width=8, channel_mults=(1, 2, 2),
                        depth=2)
    assert unet(x, t, torch.tensor([0, 10])).shape == x.shape
    mlp = MLPDenoiser((1, 8, 8), 1000, width=16, depth=2)
    assert mlp(x, t).shape == x.shape


def test_sampling_options_are_declared_once_and_shared():
    from dataclasses import fields

    from genlab.models.diffusion.samplers import SamplingOptions

    model = create("ddpm", event_shape=(2,), num_timesteps=10, width=4, depth=1)
    declared = model.sample_options()
    assert [f.name for f in fields(SamplingOptions)] == list(declared)
    defaults = model.sampling_options()
    assert all(getattr(defaults, name) == spec.default for name, spec in declared.items())
    assert model.sampling_options(sampler="ddim", steps=4).steps == 4
    for opts, word in [({"temperature": 1.0}, "temperature"), ({"eta": -1.0}, "eta"),
                       ({"sampler": "euler"}, "sampler")]:
        with pytest.raises(ConfigError, match=word):
            model.sample_trajectory(2, **opts)
    with pytest.raises(ConfigError, match="'ddpm' for inpainting"):
        model.inpaint(torch.zeros(2, 2), torch.tensor([1.0, 0.0]), sampler="ddim")
