"""The RBM against what can be computed exactly on RBMs small enough to enumerate.

* ``log Z`` by enumeration equals a brute-force sum over every joint state (v, h);
* the AIS estimate of ``log Z`` is within 4 of its own standard errors of the exact value;
* Gibbs samples follow the exact ``p(v)`` (chi-square test at level 1e-4);
* the CD-1 gradient points along the exact log-likelihood gradient, and with many Gibbs sweeps
  its model term agrees with the exact expectation within 5 Monte Carlo standard errors;
* training raises the exact log-likelihood above that of the best factorial model.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from scipy import stats

from genlab import Dataset, create, fit, load_data
from genlab.errors import ConfigError, IntractableLikelihood
from genlab.metrics.likelihood import nll_estimate
from genlab.report.evaluate import format_table


def random_rbm(d: int, levels: int, width: int, *, visible: str = "binomial", scale: float = 1.0,
               num_classes: int | None = None, seed: int = 0):
    """An RBM with random weights and biases of standard deviation ``scale``."""
    torch.manual_seed(seed)
    model = create("rbm", event_shape=(d,), num_levels=levels, width=width, visible=visible,
                   num_classes=num_classes, init_scale=scale)
    with torch.no_grad():
        model.visible_bias.normal_(0.0, scale)
        model.hidden_bias.normal_(0.0, scale)
    return model.eval()


def all_levels(d: int, levels: int) -> torch.Tensor:
    """Every visible state, ``(levels^d, d)``, in lexicographic order."""
    return torch.tensor(list(itertools.product(range(levels), repeat=d)), dtype=torch.float32)


def exact_probs(model, y=None) -> torch.Tensor:
    """``p(v)`` of every state of :func:`all_levels`."""
    v = all_levels(model.visible_units, model.num_levels)
    log_z = model.log_z_exact() if y is None else model.log_z_exact()[y]
    with torch.no_grad():
        return torch.exp(-model.free_energy(v, y) - log_z).double()


CASES = [  # (D, levels, H, visible): enumerated over hidden, over visible, level-wise units
    (10, 2, 8, "binomial"),
    (3, 4, 12, "categorical"),
    (4, 5, 6, "binomial"),
]


@pytest.mark.parametrize("d,levels,width,visible",
                         [(4, 2, 3, "binomial"), (2, 3, 5, "categorical"), (3, 4, 2, "binomial")])
def test_exact_log_z_is_the_sum_over_every_joint_state(d, levels, width, visible):
    model = random_rbm(d, levels, width, visible=visible)
    v = all_levels(d, levels)  # (V, d)
    h = all_levels(width, 2)  # (2^H, H)
    phi = model.units.features(v).flatten(1)  # (V, d K)
    w = model.weight.detach().flatten(0, 1)  # (d K, H)
    log_base = model.units.log_base(v)  # (V,) binomial: log C(L-1, v)
    energy = -(phi @ model.visible_bias[0].detach().flatten())[:, None] \
        - (h @ model.hidden_bias[0].detach())[None, :] - phi @ w @ h.T - log_base[:, None]
    expected = torch.logsumexp((-energy).flatten().double(), 0)
    assert torch.isclose(model.log_z_exact().double(), expected, rtol=1e-5)


@pytest.mark.parametrize("d,levels,width,visible", CASES)
def test_ais_estimate_matches_exact_log_z_within_its_error_bar(d, levels, width, visible):
    model = random_rbm(d, levels, width, visible=visible)
    exact = model.log_z_exact()
    estimate = model.log_z_estimate(chains=200, temperatures=300,
                                    generator=torch.Generator().manual_seed(0))
    assert 0 < estimate.stderr < 0.1  # a meaningful error bar
    assert abs(estimate.log_z - exact) < 4 * estimate.stderr


def test_conditional_rbm_has_one_log_z_per_class():
    model = random_rbm(4, 3, 5, num_classes=3)
    exact = model.log_z_exact()
    estimate = model.log_z_estimate(chains=200, temperatures=300,
                                    generator=torch.Generator().manual_seed(0))
    assert exact.shape == estimate.log_z.shape == (3,)
    assert ((estimate.log_z - exact).abs() < 4 * estimate.stderr).all()
    # log p(x | y) = -F(x | y) - log Z_y, each sample with its own class's Z
    x, y = all_levels(4, 3)[:6], torch.tensor([0, 1, 2, 0, 1, 2])
    out = model.log_prob_estimate(x, y, log_z=estimate)
    assert torch.allclose(out.log_prob, -model.free_energy(x, y) - estimate.log_z[y])
    assert torch.equal(out.stderr, estimate.stderr[y])
    assert torch.isclose(exact_probs(model, 1).sum(), torch.tensor(1.0, dtype=torch.float64))


def test_exact_log_z_refuses_models_too_large_to_enumerate():
    model = create("rbm", event_shape=(1, 8, 8), num_levels=17, width=21)
    with pytest.raises(ConfigError, match="at most 20 hidden units"):
        model.log_z_exact()


@pytest.mark.parametrize("d,levels,width,visible", [(6, 2, 5, "binomial"),
                                                    (3, 4, 4, "categorical"),
                                                    (4, 3, 3, "binomial")])
def test_gibbs_samples_follow_the_exact_distribution(d, levels, width, visible):
    model = random_rbm(d, levels, width, visible=visible, scale=0.7)
    n = 20_000
    samples = model.sample(n, steps=30, generator=torch.Generator().manual_seed(0))
    index = (samples.long() * levels ** torch.arange(d - 1, -1, -1)).sum(1)  # lexicographic
    observed = torch.bincount(index, minlength=levels**d).double()
    expected = n * exact_probs(model)
    # Pearson's chi-square over the cells expecting >= 5 samples, the others pooled in one.
    big = expected >= 5
    obs = torch.cat([observed[big], observed[~big].sum()[None]])
    exp = torch.cat([expected[big], expected[~big].sum()[None]])
    keep = exp > 0
    chi2 = (((obs - exp) ** 2)[keep] / exp[keep]).sum().item()
    assert chi2 < stats.chi2.ppf(1 - 1e-4, df=int(keep.sum()) - 1)


def prototypes_data(n: int = 400, d: int = 8, flip: float = 0.05, seed: int = 0) -> Dataset:
    """Binary vectors near one of two complementary prototypes (strongly correlated bits)."""
    g = torch.Generator().manual_seed(seed)
    proto = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0], dtype=torch.float32)[:d]
    which = torch.rand(n, 1, generator=g) < 0.5
    x = torch.where(which, proto, 1 - proto)
    x = torch.where(torch.rand(n, d, generator=g) < flip, 1 - x, x)
    return Dataset(x=x, kind="discrete", num_levels=2, name="prototypes")


def mean_log_likelihood(model, x) -> float:
    with torch.no_grad():
        return (-model.free_energy(x) - model.log_z_exact()).mean().item()


def test_cd_gradient_against_the_exact_gradient():
    data = prototypes_data(64)
    model = random_rbm(8, 2, 5, scale=0.5).train()
    v = data.x

    def flat_grad(loss):
        model.zero_grad(set_to_none=True)
        loss.backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    exact = flat_grad(model._free_energy(v, None).mean() + model.log_z_exact())  # -d mean log p
    torch.manual_seed(0)
    repeats = v.repeat(200, 1)  # many CD chains per data point: the expected CD gradient
    cd1 = flat_grad(model._free_energy(repeats, None).mean()
                    - model._free_energy(model.gibbs(repeats, None, 1), None).mean())
    assert torch.cosine_similarity(cd1, exact, dim=0) > 0.5

    # With many sweeps the chains reach p(v): the model term E[grad F(v)] (closed form per
    # chain: -v s(h), -v, -s(h)) equals grad of -log Z, coordinate by coordinate.
    with torch.no_grad():
        chains = model.gibbs(repeats, None, 100)
        p_h = torch.sigmoid(model.hidden_input(chains, None))  # (n, H)
        per_chain = -torch.cat([(chains[:, :, None] * p_h[:, None, :]).flatten(1), chains,
                                p_h], 1)  # (n, D H + D + H): weight, visible bias, hidden bias
    mean, stderr = per_chain.mean(0), per_chain.std(0) / math.sqrt(len(per_chain))
    model.zero_grad(set_to_none=True)
    (-model.log_z_exact()).backward()  # grad of -log Z = E_model[grad F]
    truth = torch.cat([model.weight.grad.flatten(), model.visible_bias.grad.flatten(),
                       model.hidden_bias.grad.flatten()])
    assert ((mean - truth).abs() < 5 * stderr + 1e-6).all()


@pytest.mark.parametrize("cd", ["cd", "pcd"])
def test_training_raises_the_exact_log_likelihood(cd):
    data = prototypes_data()
    torch.manual_seed(0)
    model = create("rbm", data=data, width=4, cd=cd)
    before = mean_log_likelihood(model, data.x)
    fit(model, data, steps=150, batch_size=50, lr=0.02, progress=False)
    after = mean_log_likelihood(model, data.x)
    p = data.x.mean(0).double()  # the best model with independent bits
    factorial = (p * p.log() + (1 - p) * (1 - p).log()).sum().item()
    assert before < factorial < after
    if cd == "pcd":
        assert model.chains.shape == (50, 8)  # the persistent chains are kept with the model


def test_estimate_is_reported_as_an_estimate():
    model = random_rbm(6, 2, 4)
    data = Dataset(x=all_levels(6, 2)[::3], kind="discrete", num_levels=2, name="s")
    result = nll_estimate(model, data, chains=200, temperatures=300,
                          generator=torch.Generator().manual_seed(0))
    exact = -mean_log_likelihood(model, data.x)
    assert result["estimate"] and not result["bound"]
    assert abs(result["nll_nats"] - exact) < 4 * result["estimate_stderr_nats"] + 1e-6
    assert "≈" in format_table({"model": "rbm", **result})
    with pytest.raises(IntractableLikelihood):
        model.log_prob(data.x)


def test_encode_gives_hidden_probabilities_and_continuous_data_is_refused():
    model = random_rbm(6, 2, 4)
    x = all_levels(6, 2)[:5]
    features = model.encode(x)
    assert features.shape == (5, 4)
    assert torch.allclose(features, torch.sigmoid(model.hidden_input(x, None)))
    with pytest.raises(ConfigError, match="Expected discrete data"):
        create("rbm", data=load_data("moons", n=50))


def test_pictures(tmp_path):
    digits = load_data("digits").subset(slice(0, 64))
    for visible in ("binomial", "categorical"):
        model = create("rbm", data=digits, width=6, visible=visible)
        for kind in model.figures():
            (path,) = model.plot(kind, tmp_path, tmp_path / f"{visible}-{kind}.png")
            assert path.stat().st_size > 0
