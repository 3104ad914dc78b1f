"""The relativistic pairing GAN loss (rpgan) and its R1 / R2 penalties, by hand and autograd."""

from __future__ import annotations

import math

import pytest
import torch

from genlab.errors import ConfigError
from genlab.models.gan import GAN, losses
from genlab.models.gan.model import RPGAN_GAMMA


def softplus(v: float) -> float:
    return math.log1p(math.exp(v))


def test_rpgan_losses_by_hand():
    """L_D = mean_i softplus(-(r_i - f_i)), L_G = mean_i softplus(-(f_i - r_i)), pair by pair."""
    real = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    fake = torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64)
    d = (softplus(-1.0) + softplus(3.0) + softplus(0.0)) / 3
    g = (softplus(1.0) + softplus(-3.0) + softplus(0.0)) / 3
    assert losses.discriminator_loss("rpgan", real, fake).item() == pytest.approx(d, rel=1e-12)
    assert losses.generator_loss("rpgan", fake, real).item() == pytest.approx(g, rel=1e-12)
    # Paired, not averaged: the same outputs paired differently give another loss.
    swapped = (softplus(0.0) + softplus(2.0) + softplus(0.0)) / 3  # fake[[1, 0, 2]]
    assert losses.discriminator_loss("rpgan", real, fake[[1, 0, 2]]).item() == pytest.approx(
        swapped, rel=1e-12)
    # Extreme logit gaps stay finite (softplus, never log of a rounded 0).
    huge = torch.tensor([1e4], dtype=torch.float64)
    assert losses.discriminator_loss("rpgan", -huge, huge).item() == pytest.approx(2e4)
    with pytest.raises(ValueError, match="Expected outputs on real data"):
        losses.generator_loss("rpgan", fake)


def test_rpgan_generator_gradient_moves_fakes_up_the_logit():
    """With l(x) = w.x, d L_G / d x_f,i = -sigmoid(l(x_r,i) - l(x_f,i)) w / b: descent moves
    every generated point along +w, most where its pair is told apart most confidently."""
    w = torch.tensor([0.6, -0.8], dtype=torch.float64)
    x_real = torch.tensor([[1.0, 0.0], [0.0, 0.0], [-1.0, 2.0]], dtype=torch.float64)
    x_fake = torch.tensor([[0.0, 1.0], [2.0, 0.0], [0.0, 0.0]], dtype=torch.float64,
                          requires_grad=True)
    loss = losses.generator_loss("rpgan", x_fake @ w, x_real @ w)
    (grad,) = torch.autograd.grad(loss, x_fake)
    weight = torch.sigmoid(x_real @ w - x_fake.detach() @ w) / 3  # (b,)
    assert torch.allclose(grad, -weight[:, None] * w, rtol=1e-12, atol=0)
    # The discriminator's loss pushes the same points the other way.
    (grad_d,) = torch.autograd.grad(losses.discriminator_loss("rpgan", x_real @ w, x_fake @ w),
                                    x_fake)
    assert (grad_d @ w > 0).all()


def test_zero_centred_penalty_by_hand():
    """1/2 E ||grad l||^2: ||w||^2 / 2 for l(x) = w.x; E ||x||^2 / 2 for l(x) = ||x||^2 / 2."""
    x = torch.tensor([[1.0, 2.0], [0.0, -3.0]], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([3.0, 4.0], dtype=torch.float64)
    assert losses.zero_centred_penalty(x @ w, x).item() == pytest.approx(12.5, rel=1e-12)
    assert losses.zero_centred_penalty(0.5 * (x**2).sum(1), x).item() == pytest.approx(
        (5.0 + 9.0) / 4, rel=1e-12)


def per_sample_squared_gradients(model: GAN, v: torch.Tensor) -> torch.Tensor:
    """||grad_v l(v_i)||^2 one sample at a time (no batching trick), shape ``(n,)``."""
    out = []
    for row in v:
        row = row[None].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(model.discriminator(row, None).sum(), row)
        out.append(g.square().sum())
    return torch.stack(out)


def test_model_rpgan_objectives_match_autograd():
    """The model's discriminator loss is the paired loss + gamma_1/2 E||grad l(x)||^2 +
    gamma_2/2 E||grad l(G(z))||^2, each norm as plain autograd gives it per sample; the
    generator's loss is the paired loss on the same real batch."""
    torch.manual_seed(0)
    model = GAN(event_shape=(2,), width=8, depth=2, latent_size=3, pack=1, loss="rpgan",
                r1_weight=0.7, r2_weight=0.3).double()
    x = torch.randn(12, 2, dtype=torch.float64)
    model.initialize(type("D", (), {"x": x})())
    torch.manual_seed(1)
    loss, logs = model.discriminator_loss(x, None)
    torch.manual_seed(1)
    with torch.no_grad():
        fake = model.generator(model.noise(12), None)
    real = model.to_model_space(x)
    r1 = 0.5 * per_sample_squared_gradients(model, real).mean()
    r2 = 0.5 * per_sample_squared_gradients(model, fake).mean()
    with torch.no_grad():
        out_real, out_fake = model.discriminator(real, None), model.discriminator(fake, None)
    adversarial = torch.nn.functional.softplus(out_fake - out_real).mean()
    assert logs["r1"] == pytest.approx(r1.item(), rel=1e-10)
    assert logs["r2"] == pytest.approx(r2.item(), rel=1e-10)
    assert r1.item() > 0 and r2.item() > 0
    assert loss.item() == pytest.approx((adversarial + 0.7 * r1 + 0.3 * r2).item(), rel=1e-10)
    torch.manual_seed(2)
    g_loss, _ = model.generator_loss(x, None)
    torch.manual_seed(2)
    with torch.no_grad():
        out_fake = model.discriminator(model.generator(model.noise(12), None), None)
    expected = torch.nn.functional.softplus(out_real - out_fake).mean()
    assert g_loss.item() == pytest.approx(expected.item(), rel=1e-10)


def test_rpgan_settings_are_checked():
    assert GAN(event_shape=(2,), loss="rpgan").r2_weight == RPGAN_GAMMA
    plain = GAN(event_shape=(2,))
    assert (plain.r1_weight, plain.r2_weight) == (0.0, 0.0)
    with pytest.raises(ConfigError, match="r2_weight"):
        GAN(event_shape=(2,), loss="rpgan", r2_weight=-1.0)
    with pytest.raises(ConfigError, match="r1_weight"):
        GAN(event_shape=(2,), loss="rpgan", r1_weight=float("nan"))
    with pytest.raises(ConfigError, match="Expected r1_weight > 0 or r2_weight > 0"):
        GAN(event_shape=(2,), loss="rpgan", r1_weight=0.0, r2_weight=0.0)
    # One penalty alone is allowed (R1 only is the classic regulariser).
    assert GAN(event_shape=(2,), loss="rpgan", r2_weight=0.0).r1_weight == RPGAN_GAMMA
