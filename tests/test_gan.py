"""GAN math: the optimal discriminator, the two generator losses, the penalties, the layers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genlab.errors import ConfigError, IntractableLikelihood, ShapeError
from genlab.models.gan import DCGAN, GAN, losses
from genlab.models.gan.layers import MinibatchDiscrimination, pack_samples


def linear_gan(dim: int = 1, **kwargs) -> GAN:
    """A GAN whose generator and discriminator are both affine maps (no hidden layers)."""
    kwargs.setdefault("pack", 1)
    model = GAN(event_shape=(dim,), depth=0, latent_size=dim, **kwargs)
    return model.double()


def set_affine(linear: torch.nn.Linear, weight, bias) -> None:
    with torch.no_grad():
        linear.weight.copy_(
            torch.as_tensor(weight, dtype=torch.float64).reshape(linear.weight.shape)
        )
        linear.bias.copy_(torch.as_tensor(bias, dtype=torch.float64).reshape(linear.bias.shape))


# ------------------------------------------------------------------ optimal discriminator
def test_discriminator_step_reaches_optimal_discriminator():
    """With G fixed, minimising the discriminator loss gives D* = p_data / (p_data + p_g).

    p_data = N(0, 1) and G(z) = z + 1, so p_g = N(1, 1) and the optimal logit is
    log p_data - log p_g = -x + 1/2: the linear discriminator l(x) = a x + b holds it, with
    a* = -1, b* = 1/2. On n real and n generated samples the minimiser theta_hat is logistic
    regression's estimate; its error is asymptotically normal with the sandwich covariance
    H^-1 V H^-1 / n, where (derivatives of the population loss at theta*, phi = (x, 1))
        H = E_data[w phi phi^T] + E_g[w phi phi^T],  w = D*(1 - D*),
        V = Cov_data[(1 - D*) phi] + Cov_g[D* phi].
    T = err^T Cov^-1 err is then chi-square with 2 degrees of freedom: P(T > 18.4) = e^-9.2
    = 1e-4, the threshold below.
    """
    torch.manual_seed(0)
    model = linear_gan()
    set_affine(model.generator.net[0], 1.0, 1.0)  # G(z) = z + 1
    n = 4000
    real = torch.randn(n, 1, dtype=torch.float64)
    objective = model.objectives()[0]
    assert objective.name == "discriminator"

    params = list(objective.parameters)  # head weight (1, 1) and bias (1,)
    for _ in range(30):  # Newton's method: the loss is convex in (a, b) (logistic regression)
        torch.manual_seed(1)  # the same generated batch at every evaluation
        loss, _ = objective.loss(real, None)
        grads = torch.autograd.grad(loss, params, create_graph=True)
        grad = torch.cat([g.flatten() for g in grads])
        hess = torch.stack([torch.cat([h.flatten() for h in torch.autograd.grad(g, params,
                                                                                retain_graph=True)])
                            for g in grad])
        step = torch.linalg.solve(hess, grad.detach())
        with torch.no_grad():
            params[0] -= step[0]
            params[1] -= step[1]
    assert grad.abs().max().item() < 1e-10
    head = model.discriminator.head
    theta_hat = np.array([head.weight.item(), head.bias.item()])
    theta_star = np.array([-1.0, 0.5])

    # Quadrature of H and V on a fine grid.
    x = np.linspace(-12, 12, 24_001)
    dx = x[1] - x[0]
    p_data = np.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)
    p_g = np.exp(-0.5 * (x - 1) ** 2) / math.sqrt(2 * math.pi)
    d_star = 1 / (1 + np.exp(x - 0.5))
    phi = np.stack([x, np.ones_like(x)])  # (2, grid)
    w = d_star * (1 - d_star)

    def expect(f, p):  # f: (..., grid)
        return (f * p).sum(-1) * dx

    outer = phi[:, None] * phi[None]  # (2, 2, grid)
    H = expect(w * outer, p_data) + expect(w * outer, p_g)
    V = (expect((1 - d_star) ** 2 * outer, p_data)
         - np.outer(*[expect((1 - d_star) * phi, p_data)] * 2)
         + expect(d_star**2 * outer, p_g) - np.outer(*[expect(d_star * phi, p_g)] * 2))
    cov = np.linalg.inv(H) @ V @ np.linalg.inv(H) / n
    err = theta_hat - theta_star
    T = err @ np.linalg.solve(cov, err)
    assert T < 18.4, (theta_hat, T)

    # The fitted D(x) = Pr(real | x) is the optimal one, as probabilities, on the bulk.
    grid = torch.linspace(-2, 3, 11, dtype=torch.float64).reshape(-1, 1)
    d_hat = model.prob_real(grid)
    d_opt = 1 / (1 + torch.exp(grid[:, 0] - 0.5))
    # |dD| <= |dl| / 4 and |dl| <= |x| |da| + |db| <= 3 * 4.3 sd(a) + 4.3 sd(b) (4.3 sd: the
    # 1e-4 quantile per coordinate)
    sd = np.sqrt(np.diag(cov))
    tol = (3 * 4.3 * sd[0] + 4.3 * sd[1]) / 4
    assert (d_hat - d_opt).abs().max().item() < tol


# ------------------------------------------------------------------ generator losses
@pytest.mark.parametrize("logit", [0.0, -5.0, -10.0, -20.0, -40.0])
def test_minimax_gradient_vanishes_nonsaturating_does_not(logit):
    """G(z) = c (a constant, its bias), D logit l = w x + b. The generator losses' gradients in c:
        minimax        d/dc  log(1 - D(c)) = -D(c) w           -> 0 as D(G(z)) -> 0
        nonsaturating  d/dc -log D(c)      = -(1 - D(c)) w     -> -w
    exact closed forms, compared in float64 to 1e-12 relative."""
    w, c = 2.0, 0.3
    grads = {}
    for loss in ("minimax", "nonsaturating"):
        model = linear_gan(loss=loss)
        set_affine(model.generator.net[0], 0.0, c)
        set_affine(model.discriminator.head, w, logit - w * c)  # l(G(z)) = logit
        model.zero_grad()
        value, logs = model.objectives()[1].loss(torch.zeros(8, 1, dtype=torch.float64), None)
        value.backward()
        grads[loss] = model.generator.net[0].bias.grad.item()
        assert logs["d_fake_g"] == pytest.approx(1 / (1 + math.exp(-logit)), rel=1e-12)
    d = 1 / (1 + math.exp(-logit))
    assert grads["minimax"] == pytest.approx(-d * w, rel=1e-12, abs=1e-300)
    assert grads["nonsaturating"] == pytest.approx(-(1 - d) * w, rel=1e-12)


def test_minimax_gradient_vanishes_on_tiny_mlp():
    """On one sample, both generator gradients are multiples of g = grad_theta l(G(z)):
    minimax -D g, non-saturating -(1 - D) g, so their norm ratio is exactly
    D / (1 - D) = exp(l). Shifting D's output bias down drives D(G(z)) -> 0: the minimax
    gradient vanishes like exp(l) while the non-saturating one tends to ||g||."""
    torch.manual_seed(0)
    base = GAN(event_shape=(2,), width=8, depth=1, latent_size=3, pack=1).double()
    norms = {}
    for shift in (0.0, -10.0, -30.0):
        for loss in ("minimax", "nonsaturating"):
            model = GAN(event_shape=(2,), width=8, depth=1, latent_size=3, pack=1,
                        loss=loss).double()
            model.load_state_dict(base.state_dict())
            with torch.no_grad():
                model.discriminator.head.bias += shift
            torch.manual_seed(1)
            model.zero_grad()
            value, logs = model.objectives()[1].loss(torch.zeros(1, 2, dtype=torch.float64), None)
            value.backward()
            g = torch.cat([p.grad.flatten() for p in model.generator.parameters()])
            norms[shift, loss] = (g.norm().item(), logs["d_fake_g"])
    for shift in (0.0, -10.0, -30.0):
        (mm, d), (ns, _) = norms[shift, "minimax"], norms[shift, "nonsaturating"]
        assert mm / ns == pytest.approx(d / (1 - d), rel=1e-9)
    # D(G(z)) ~ e^-30 ~ 1e-13: the minimax gradient is gone, the non-saturating one is not.
    assert norms[-30.0, "minimax"][0] < 1e-10 * norms[-30.0, "nonsaturating"][0]
    assert norms[-30.0, "nonsaturating"][0] > 0.5 * norms[0.0, "nonsaturating"][0]


def test_discriminator_loss_is_the_course_objective():
    """-[E log D(x) + E log(1 - D(G(z)))] with D = sigmoid(l), even for extreme logits."""
    real = torch.tensor([-2.0, 0.0, 3.0, 50.0], dtype=torch.float64)
    fake = torch.tensor([1.0, -1.0, -60.0, 0.5], dtype=torch.float64)
    expected = -(torch.log(torch.sigmoid(real)).mean() + torch.log(1 - torch.sigmoid(fake)).mean())
    got = losses.discriminator_loss("minimax", real, fake)
    assert got.item() == pytest.approx(expected.item(), rel=1e-12)
    huge = torch.tensor([1e4], dtype=torch.float64)  # sigmoid rounds to 1: log(1 - D) = -inf
    assert torch.isfinite(losses.discriminator_loss("minimax", -huge, huge))
    assert losses.discriminator_loss("hinge", real, fake).item() == pytest.approx(
        (torch.relu(1 - real).mean() + torch.relu(1 + fake).mean()).item())
    assert losses.discriminator_loss("wasserstein", real, fake).item() == pytest.approx(
        (fake.mean() - real.mean()).item())


# ------------------------------------------------------------------ penalties
def test_gradient_penalty_of_linear_critic():
    """A linear critic f(x) = w.x + b has grad f = w everywhere: GP = (||w|| - 1)^2 whatever
    the interpolation; with packing the gradient runs over both packed samples' coordinates,
    GP = (||(w_1, w_2)|| - 1)^2."""
    w = torch.tensor([3.0, 4.0], dtype=torch.float64)
    real = torch.randn(6, 2, dtype=torch.float64)
    fake = torch.randn(6, 2, dtype=torch.float64)
    gp = losses.gradient_penalty(lambda v: v @ w + 1.0, real, fake)
    assert gp.item() == pytest.approx(16.0, rel=1e-12)
    w2 = torch.tensor([1.0, 2.0, 2.0, 4.0], dtype=torch.float64)  # ||w2|| = 5
    gp = losses.gradient_penalty(lambda v: pack_samples(v, 2) @ w2, real, fake, pack=2)
    assert gp.item() == pytest.approx(16.0, rel=1e-12)
    # f(x) = ||x||^2 / 2 has grad x; with real = fake every interpolate is that point.
    a = torch.tensor([[0.6, 0.8], [3.0, 4.0]], dtype=torch.float64)
    gp = losses.gradient_penalty(lambda v: 0.5 * (v**2).sum(1), a, a.clone())
    assert gp.item() == pytest.approx(((1.0 - 1) ** 2 + (5.0 - 1) ** 2) / 2, rel=1e-12)


def test_r1_penalty_by_hand():
    """R1 = 1/2 E ||grad_x l(x)||^2: ||w||^2 / 2 for a linear logit, E ||x||^2 / 2 for
    l(x) = ||x||^2 / 2."""
    x = torch.tensor([[1.0, 2.0], [0.0, -3.0]], dtype=torch.float64)
    w = torch.tensor([3.0, 4.0], dtype=torch.float64)
    assert losses.r1_penalty(lambda v: v @ w, x).item() == pytest.approx(12.5, rel=1e-12)
    assert losses.r1_penalty(lambda v: 0.5 * (v**2).sum(1), x).item() == pytest.approx(
        (5.0 + 9.0) / 4, rel=1e-12)


@pytest.mark.parametrize("penalty", ["gp", "r1"])
def test_model_discriminator_loss_adds_penalties(penalty):
    """The wasserstein critic objective of a model with linear D equals, by hand,
    E f(G(z)) - E f(x) + 10 (||w|| - 1)^2, and with R1 (gamma = 2) plus gamma/2 ||w||^2."""
    kwargs = {"gp_weight": 10.0} if penalty == "gp" else {"gp_weight": 0.0, "r1_weight": 2.0}
    model = linear_gan(dim=2, loss="wasserstein", **kwargs)
    w = torch.tensor([0.6, 1.2], dtype=torch.float64)
    set_affine(model.discriminator.head, w, 0.3)
    x = torch.randn(16, 2, dtype=torch.float64)
    torch.manual_seed(3)
    loss, logs = model.objectives()[0].loss(x, None)
    torch.manual_seed(3)
    with torch.no_grad():
        fake = model.generator(model.noise(16))
    adversarial = (fake @ w).mean() - (x @ w).mean()
    extra = 10 * (w.norm() - 1) ** 2 if penalty == "gp" else 2.0 / 2 * w.norm() ** 2
    assert loss.item() == pytest.approx((adversarial + extra).item(), rel=1e-10)
    weight = 10 if penalty == "gp" else 2
    assert logs[penalty] == pytest.approx((extra / weight).item(), rel=1e-10)


# ------------------------------------------------------------------ layers and sampling
def test_minibatch_discrimination_closeness():
    """o_i = sum_{j != i} exp(-||M_i - M_j||_1): 1 for two identical samples, 0 for far ones."""
    layer = MinibatchDiscrimination(2, 3, kernel_dim=4)
    f = torch.tensor([[1.0, 2.0], [1.0, 2.0], [1e4, -1e4]])
    out = layer(f)
    assert out.shape == (3, 5)
    assert torch.equal(out[:, :2], f)
    assert (out[:2, 2:] - 1).abs().max() < 1e-6  # exp(-0) from the identical twin
    assert torch.equal(out[2, 2:], torch.zeros(3))  # exp(-huge) underflows to 0


def test_truncated_noise_moments():
    """z truncated to [-t, t] has E z^2 = 1 - 2 t phi(t) / (2 Phi(t) - 1); the mean over n
    draws is within 5 standard errors (sd of z^2 <= t^2 / 2... we use the exact variance
    E z^4 - (E z^2)^2 with E z^4 = 3 E z^2 - t^3 2 phi(t) / (2 Phi(t) - 1))."""
    model = GAN(event_shape=(2,), width=4, depth=1, latent_size=4)
    t, n = 1.0, 50_000
    z = model.noise(n // 4, generator=torch.Generator().manual_seed(0), truncation=t).double()
    assert z.abs().max() <= t
    phi = math.exp(-t * t / 2) / math.sqrt(2 * math.pi)
    mass = math.erf(t / math.sqrt(2))
    m2 = 1 - 2 * t * phi / mass
    m4 = 3 * m2 - 2 * t**3 * phi / mass
    se = math.sqrt((m4 - m2**2) / n)
    assert abs((z**2).mean().item() - m2) < 5 * se
    assert abs(z.mean().item()) < 5 * math.sqrt(m2 / n)


def test_instance_noise_schedule():
    """The instance-noise std falls linearly from its start to 0 over instance_noise_steps
    generator updates and then stays 0 (the discriminator sees the data themselves)."""
    model = GAN(event_shape=(2,), width=4, depth=1, latent_size=3,
                instance_noise=0.4, instance_noise_steps=4)
    stds = []
    for _ in range(6):
        stds.append(model.instance_noise_std())
        model.objectives()[1].loss(torch.zeros(4, 2), None)
    assert stds == pytest.approx([0.4, 0.3, 0.2, 0.1, 0.0, 0.0])
    assert model.state_dict()["generator_updates"].item() == 6
    assert "generator_updates" not in GAN(event_shape=(2,)).state_dict()


class Square(torch.nn.Module):
    def forward(self, x):
        return x**2


def test_rejection_sampling_recovers_data_distribution():
    """G(z) = z gives p_g = N(0, 1); a discriminator whose logit is the exact log ratio to
    p_data = N(0, s^2), l(x) = log(1/s) - (1/s^2 - 1) x^2 / 2, makes rejection sampling exact
    (apart from the top 1% of logits, all within |x| < 0.013, where the acceptance is ~1
    either way). The sample variance of n draws then has standard error s^2 sqrt(2 / (n - 1));
    we allow 5 of them. With pack = 2 the pack of two copies has twice the logit and the
    sampler halves it back."""
    s2 = 0.25
    for pack in (1, 2):
        model = linear_gan(pack=pack)
        set_affine(model.generator.net[0], 1.0, 0.0)
        model.discriminator.features = Square()
        head = torch.nn.Linear(pack, 1).double()
        set_affine(head, [-(1 / s2 - 1) / 2] * pack, pack * 0.5 * math.log(1 / s2))
        model.discriminator.head = head
        n = 4000
        x = model.sample(n, generator=torch.Generator().manual_seed(pack), rejection=True)
        se = s2 * math.sqrt(2 / (n - 1))
        assert abs(x.var().item() - s2) < 5 * se
        assert abs(x.mean().item()) < 5 * math.sqrt(s2 / n)
    with pytest.raises(ConfigError, match="rejection"):
        GAN(event_shape=(2,), loss="wasserstein").sample(3, rejection=True)


def test_dcgan_image_shapes():
    for shape in [(1, 8, 8), (1, 28, 28), (3, 32, 32)]:
        model = DCGAN(event_shape=shape, width=4, latent_size=8, pack=2)
        x = model.sample(4, generator=torch.Generator().manual_seed(0))
        assert x.shape == (4, *shape)
        assert model.critic(x).shape == (2,)


def test_conditional_gan_uses_labels():
    torch.manual_seed(0)
    model = DCGAN(event_shape=(1, 8, 8), num_levels=17, num_classes=3, width=4)
    gen = torch.Generator().manual_seed(0)
    x0 = model.sample(16, y=0, generator=gen)
    x1 = model.sample(16, y=1, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(x0, x1)
    assert set(x0.unique().tolist()) <= set(range(17))
    with torch.no_grad():
        model.discriminator.embed.weight.normal_()
    assert not torch.allclose(model.critic(x0, 0), model.critic(x0, 1))


def test_errors():
    with pytest.raises(ConfigError, match="loss"):
        GAN(event_shape=(2,), loss="vanilla")
    with pytest.raises(ConfigError, match="pack"):
        GAN(event_shape=(2,), pack=0)
    with pytest.raises(ConfigError, match="width"):
        GAN(event_shape=(2,), width=0)
    with pytest.raises(ConfigError, match="depth"):
        GAN(event_shape=(2,), depth=-1)
    with pytest.raises(ConfigError, match="betas"):
        DCGAN(event_shape=(1, 8, 8), betas=(0.5, 1.0))
    with pytest.raises(ConfigError, match="event_shape"):
        DCGAN(event_shape=(64,))
    model = GAN(event_shape=(2,), width=4, depth=1, pack=4)
    with pytest.raises(IntractableLikelihood):
        model.log_prob(torch.zeros(3, 2))
    with pytest.raises(ShapeError, match="pack=4"):
        model.objectives()[0].loss(torch.zeros(3, 2), None)
    with pytest.raises(ConfigError, match="truncation"):
        model.sample(3, truncation=-1.0)
    with pytest.raises(ConfigError, match="critic"):
        GAN(event_shape=(2,), loss="hinge").prob_real(torch.zeros(3, 2))
