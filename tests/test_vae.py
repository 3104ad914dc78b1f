"""The VAE: its bounds against a closed-form marginal, the importance-weighted bound's growth
with K, the conditional model's use of y, its likelihoods and its pictures."""

from __future__ import annotations

import math

import pytest
import torch

from genlab import Dataset, create, fit, load_data
from genlab.errors import ConfigError, DataError, ShapeError
from genlab.models.vae import VAE, likelihoods
from genlab.train.checkpoint import save_model

D, K = 3, 2  # data and latent sizes of the linear-Gaussian model


def linear_gaussian(seed: int = 0, *, exact_posterior: bool = False):
    """x = W z + b + s * eps: a VAE whose decoder is linear with a constant noise scale,
    so p(x) = N(b, W W^T + s^2 I) in closed form. W has orthogonal columns, so the true
    posterior N(A (x - b), S) is diagonal and the encoder (also linear) can equal it."""
    g = torch.Generator().manual_seed(seed)
    model = VAE(event_shape=(D,), latent_size=K, depth=0, width=1).double()
    q, _ = torch.linalg.qr(torch.randn(D, K, generator=g, dtype=torch.float64))
    w = q * torch.tensor([1.5, 0.8], dtype=torch.float64)  # (D, K), orthogonal columns
    b = torch.randn(D, generator=g, dtype=torch.float64)
    s = 0.5
    with torch.no_grad():
        model.decoder.net[0].weight.copy_(w)
        model.decoder.net[0].bias.copy_(b)
        model.log_sigma.fill_(math.log(s))
        enc = model.encoder.net[0]
        if exact_posterior:
            # p(z | x) = N(S W^T (x - b) / s^2, S), S = (I + W^T W / s^2)^-1 (diagonal)
            cov = torch.linalg.inv(torch.eye(K, dtype=torch.float64) + w.T @ w / s**2)
            a = cov @ w.T / s**2
            enc.weight.copy_(torch.cat([a, torch.zeros(K, D, dtype=torch.float64)]))
            enc.bias.copy_(torch.cat([-a @ b, torch.log(torch.diagonal(cov))]))
        else:
            enc.weight.mul_(0.3)
            enc.bias.copy_(torch.tensor([0.3, -0.2, -1.0, 0.5], dtype=torch.float64))
    cov = w @ w.T + s**2 * torch.eye(D, dtype=torch.float64)
    marginal = torch.distributions.MultivariateNormal(b, cov)
    eps = torch.randn(200, D, generator=g, dtype=torch.float64)
    x = b + eps @ torch.linalg.cholesky(cov).T  # (200, D) draws of p(x)
    return model.eval(), marginal, x


def mean_and_se(values: torch.Tensor) -> tuple[float, float]:
    return values.mean().item(), (values.std() / math.sqrt(values.numel())).item()


def test_elbo_is_below_the_exact_log_likelihood_and_tight_at_the_true_posterior():
    model, marginal, x = linear_gaussian()
    exact = marginal.log_prob(x)  # (200,)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        # The ELBO with a closed-form KL is E_q[log p(x|z)] - KL: its z-average
        # estimates it (100 draws); the gap KL(q || p(z|x)) must be positive beyond sampling error.
        elbo = torch.stack([model.elbo(x, generator=g) for _ in range(100)]).mean(0)
        gap, se = mean_and_se(exact - elbo)
        assert gap > 3 * se
        tight, _, _ = linear_gaussian(exact_posterior=True)
        # at q = p(z|x), log p(x, z) - log q(z|x) = log p(x) for every z: no noise at all
        assert torch.allclose(tight.iwae_bound(x, k=7, generator=g), exact, atol=1e-9)
        # and the ELBO (closed-form KL, sampled reconstruction) is log p(x) in expectation
        elbo = torch.stack([tight.elbo(x, generator=g) for _ in range(100)]).mean(0)
        gap, se = mean_and_se(exact - elbo)
        assert abs(gap) < 4 * se


def test_iwae_bound_grows_with_k_toward_the_log_likelihood():
    model, marginal, x = linear_gaussian()
    exact = marginal.log_prob(x).mean().item()
    g = torch.Generator().manual_seed(2)
    means, ses = [], []
    for k in (1, 10, 100, 1000):
        # 8 independent estimates per point: mean over points and repeats, with its SE
        bounds = torch.stack([model.iwae_bound(x, k=k, generator=g) for _ in range(8)])
        mean, se = mean_and_se(bounds.mean(1))
        means.append(mean)
        ses.append(se)
    for i in range(len(means) - 1):  # never decreases beyond noise
        assert means[i + 1] > means[i] - 3 * math.hypot(ses[i], ses[i + 1])
    assert means[-1] > means[0] + 3 * math.hypot(ses[0], ses[-1])  # it does tighten
    assert means[-1] <= exact + 3 * ses[-1]
    assert exact - means[-1] < 0.1 * (exact - means[0])  # most of the gap is closed


def test_iwae_with_one_sample_is_the_elbo_in_expectation():
    model, _, x = linear_gaussian()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        one = torch.stack([model.iwae_bound(x, k=1, generator=g) for _ in range(100)]).mean(0)
        elbo = torch.stack([model.elbo(x, generator=g) for _ in range(100)]).mean(0)
    diff, se = mean_and_se(one - elbo)
    assert abs(diff) < 4 * se + 1e-9


def test_conditional_vae_uses_the_label():
    torch.manual_seed(0)
    n = 512
    y = torch.arange(n) % 2
    x = (y.float() * 8 - 4)[:, None] + 0.3 * torch.randn(n, 2)  # two classes far apart
    data = Dataset(x=x, y=y, kind="continuous", num_classes=2, name="two", split="train")
    model = create("vae", data=data, num_classes=2, latent_size=1, width=16, depth=1)
    fit(model, data, steps=200, batch_size=64, lr=5e-3, progress=False)
    g = torch.Generator().manual_seed(0)
    samples = model.sample(400, torch.tensor([0, 1]).repeat(200), generator=g)
    centre0, centre1 = samples[0::2, 0].mean().item(), samples[1::2, 0].mean().item()
    assert centre0 < -2 and centre1 > 2  # each label's samples sit at its class
    test = x[:64]
    right = model.log_prob_bound(test, y[:64]).mean()
    wrong = model.log_prob_bound(test, 1 - y[:64]).mean()
    assert right > wrong + 5


@pytest.mark.parametrize("likelihood,levels", [("categorical", 5), ("logistic", 5),
                                               ("bernoulli", 2)])
def test_discrete_likelihood_tables_are_distributions(likelihood, levels):
    g = torch.Generator().manual_seed(0)
    params = 3 * torch.randn(4, likelihoods.num_params(likelihood, levels), 6, generator=g)
    table = likelihoods.probs(likelihood, params, levels)  # (4, 6, L)
    assert table.shape == (4, 6, levels) and (table >= 0).all()
    assert torch.allclose(table.sum(-1), torch.ones(4, 6), atol=1e-5)
    x = torch.randint(0, levels, (4, 6), generator=g).float()
    direct = likelihoods.log_prob(likelihood, params, x, levels)
    log_table = likelihoods.log_probs(likelihood, params, levels)  # (4, L, 6)
    looked_up = log_table.gather(1, x.long()[:, None]).sum((1, 2))
    assert torch.allclose(direct, looked_up)


def test_logistic_matches_its_cdf_differences():
    mean, log_scale = torch.tensor([0.3]), torch.tensor([-0.4])
    params = torch.stack([mean, log_scale], dim=1)[..., None]  # (1, 2, 1)
    table = likelihoods.probs("logistic", params, 4)[0, 0]  # (4,)
    mu, s = 1.5 * (1 + 0.3), math.exp(-0.4)
    cdf = [0.0] + [1 / (1 + math.exp(-(k + 0.5 - mu) / s)) for k in range(3)] + [1.0]
    expected = torch.tensor([cdf[k + 1] - cdf[k] for k in range(4)])
    assert torch.allclose(table, expected, atol=1e-6)


def test_encode_is_the_posterior_mean_and_settings_are_checked():
    model = create("vae", event_shape=(1, 4, 4), num_levels=3, width=4, depth=1,
                   latent_size=5)
    x = torch.randint(0, 3, (2, 3, 1, 4, 4)).float()
    assert model.encode(x).shape == (2, 3, 5)
    assert torch.equal(model.encode(x[0]), model.posterior(x[0])[0].detach())
    with pytest.raises(ConfigError, match="Expected likelihood 'gaussian'"):
        create("vae", event_shape=(2,), likelihood="categorical")
    with pytest.raises(ConfigError, match="num_levels=2"):
        create("vae", event_shape=(2,), num_levels=3, likelihood="bernoulli")
    with pytest.raises(ConfigError, match="divisible"):
        create("vae", event_shape=(1, 6, 6), num_levels=3, network="conv", depth=2)
    with pytest.raises(ConfigError):
        model.iwae_bound(x[0], k=0)
    with pytest.raises(ShapeError):
        model.iwae_bound(torch.zeros(2, 4, 4))
    with pytest.raises(DataError):
        model.iwae_bound(x[0] + 0.5)


@pytest.mark.parametrize("name,classes", [("digits", 10), ("moons", None)])
def test_pictures(tmp_path, name, classes):
    data = load_data(name, split="test")
    model = create("vae", data=data, num_classes=classes, width=4, depth=1, latent_size=2)
    save_model(model, tmp_path / "run", data=data.describe())
    for kind in VAE.figures():
        out = tmp_path / f"{kind}.png"
        assert model.plot(kind, tmp_path / "run", out) == [out] and out.stat().st_size > 0
