"""Autoregressive models: masks are autoregressive, the chain rule normalises, samples follow
the model (also with temperature and label conditioning), completion keeps the given part,
the key/value cache changes nothing but speed."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from scipy.stats import chi2

from genlab.errors import ConfigError, DataError, ShapeError
from genlab.models.autoregressive import (
    MADE,
    RNN,
    AutoregressiveMixture,
    PixelCNN,
    Transformer,
)
from genlab.train.checkpoint import load, save_model

FAMILIES = {"made": MADE, "pixelcnn": PixelCNN, "rnn": RNN, "transformer": Transformer}

# Tiny discrete models over 3 dimensions x 3 levels (27 possible x), one per family.
TINY = {
    "made": dict(event_shape=(3,), width=8, depth=1),
    "pixelcnn": dict(event_shape=(1, 1, 3), width=8, depth=1, kernel_size=3),
    "pixelcnn-gated": dict(event_shape=(1, 1, 3), width=8, depth=1, kernel_size=3,
                           gated=True),
    "rnn": dict(event_shape=(3,), width=8, embedding_size=4),
    "rnn-lstm": dict(event_shape=(3,), width=8, embedding_size=4, cell="lstm"),
    "transformer": dict(event_shape=(3,), width=8, heads=2, depth=1),
}


def build(key: str, seed: int = 0, **extra) -> torch.nn.Module:
    torch.manual_seed(seed)
    cls = FAMILIES[key.split("-")[0]]
    return cls(**{**TINY[key], "num_levels": 3, **extra}).eval()


def all_x(model) -> torch.Tensor:
    """Every x in {0, 1, 2}^D, shape (3^D, *event_shape)."""
    grid = torch.tensor(list(itertools.product(range(3), repeat=model.event_dim)))
    return grid.float().reshape(-1, *model.event_shape)


def jacobian_cases():
    cases = []
    for name, cls in FAMILIES.items():
        for i, config in enumerate(cls.tiny_configs()):
            cases.append(pytest.param(cls, config, id=f"{name}-{i}"))
    # Three image channels: the centre tap of every mask must also respect R -> G -> B.
    for gated in (False, True):
        config = dict(event_shape=(3, 3, 3), num_levels=4, width=12, depth=2,
                      kernel_size=3, gated=gated, num_classes=2)
        cases.append(pytest.param(PixelCNN, config, id=f"pixelcnn-rgb-gated={gated}"))
    return cases


@pytest.mark.parametrize("cls,config", jacobian_cases())
def test_output_t_depends_only_on_inputs_before_t(cls, config):
    """d theta_{o_t} / d e(x_{o_s}) == 0 exactly for every s >= t (autograd, all t)."""
    torch.manual_seed(0)
    model = cls(**config).eval()
    # 32 samples: a ReLU path that is dead for every one of them is then vanishingly unlikely
    n, d = 32, model.event_dim
    if model.num_levels:
        x = torch.randint(0, model.num_levels, (n, d)).float()
    else:
        x = torch.randn(n, d)
    y = torch.arange(n) % model.num_classes if model.conditional else None
    features = model.features(x).detach().requires_grad_(True)  # (n, D, E)
    params = model.network(features, y)  # (n, D, P)
    order = model.order
    dep = torch.zeros(d, d)  # dep[t, s]: how much factor t depends on the s-th drawn position
    for t in range(d):
        (grad,) = torch.autograd.grad(params[:, order[t]].sum(), features, retain_graph=True)
        dep[t] = grad.abs().sum(dim=(0, 2))[order]
    # Masks and causal attention give exact zeros: no tolerance.
    assert torch.all(torch.triu(dep) == 0), "a factor depends on its own or a later dimension"
    # Not vacuous: every factor after the first depends on some earlier dimension.
    assert torch.all(torch.tril(dep, -1).sum(1)[1:] > 0)
    if cls in (RNN, Transformer) or (cls is MADE and config.get("direct", True)):
        # No blind spot: factor t depends on every earlier dimension.
        assert torch.all(torch.tril(dep, -1)[torch.tril(torch.ones(d, d), -1).bool()] > 0)


@pytest.mark.parametrize("key", list(TINY))
@pytest.mark.parametrize("conditional", [False, True])
def test_probabilities_sum_to_one(key, conditional):
    """sum_x p(x | y) = 1 over all 27 x, for each y. In float64 every factor is normalised to
    ~1e-16 and the sum has 27 terms, so 1e-12 is generous yet catches any leaked input."""
    model = build(key, num_classes=2 if conditional else None).double()
    x = all_x(model).double()
    for y in [None] if not conditional else [0, 1]:
        labels = None if y is None else torch.full((len(x),), y)
        total = model.log_prob(x, labels).exp().sum().item()
        assert abs(total - 1.0) < 1e-12


def exact_tempered(model, x, y, temperature):
    """log prod_t softmax(theta_t / T)[x_t], the distribution tempered sampling follows."""
    flat = x.reshape(len(x), -1)
    params = model.network(model.features(flat), y) / temperature
    return model.head.log_prob(params, flat).sum(-1)


def chi_square_pvalue(samples: torch.Tensor, log_p: torch.Tensor) -> float:
    """Pearson chi-square of sample counts over the 3^D cells against N p(x)."""
    flat = samples.reshape(len(samples), -1).long()
    index = (flat * 3 ** torch.arange(flat.shape[1] - 1, -1, -1)).sum(-1)
    counts = torch.bincount(index, minlength=len(log_p)).double()
    expected = len(samples) * log_p.double().exp()
    stat = ((counts - expected) ** 2 / expected).sum().item()
    return float(chi2.sf(stat, df=len(log_p) - 1))


@pytest.mark.parametrize("key", list(TINY))
@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_samples_follow_the_model(key, temperature):
    """Ancestral samples against the exact (tempered) probabilities of all 27 x. With fixed
    seeds the test is deterministic; a correct sampler fails it with probability 1e-4."""
    model = build(key, num_classes=2)
    n = 6000
    y = torch.ones(n, dtype=torch.long)
    samples = model.sample(n, y, generator=torch.Generator().manual_seed(1),
                           temperature=temperature)
    assert samples.shape == (n, *model.event_shape)
    x = all_x(model)
    with torch.no_grad():
        log_p = exact_tempered(model, x, torch.ones(len(x), dtype=torch.long), temperature)
    log_p = log_p - torch.logsumexp(log_p, 0)  # tempering the factors changes the joint mass
    assert chi_square_pvalue(samples, log_p) > 1e-4


@pytest.mark.parametrize("key", ["made", "pixelcnn-gated", "rnn", "transformer"])
def test_completion_samples_the_conditional(key):
    """Given the first dimension, completion samples p(x_2, x_3 | x_1) (9 cells)."""
    model = build(key)
    n = 4000
    x = torch.full((n, *model.event_shape), 2.0)
    given = torch.zeros(model.event_shape, dtype=torch.bool).reshape(-1)
    given[0] = True
    out = model.complete(x, given.reshape(model.event_shape),
                         generator=torch.Generator().manual_seed(2))
    flat = out.reshape(n, -1)
    assert torch.all(flat[:, 0] == 2)
    cells = all_x(model)[-9:]  # the nine x with x_1 = 2
    with torch.no_grad():
        log_p = model.log_prob(cells)
    log_p = log_p - torch.logsumexp(log_p, 0)  # p(x_2, x_3 | x_1 = 2)
    assert chi_square_pvalue(flat[:, 1:], log_p) > 1e-4


@pytest.mark.parametrize("name", list(FAMILIES))
def test_completion_keeps_the_given_top_half(name):
    # the conditional (1, 8, 8) digits-like variant of each family, in raster order
    config = next(c for c in FAMILIES[name].tiny_configs()
                  if c.get("num_levels") == 17 and c.get("num_classes"))
    config = {**config, "order": "natural"} if "order" in config else config
    torch.manual_seed(0)
    model = FAMILIES[name](**config)
    x = torch.randint(0, 17, (4, 1, 8, 8)).float()
    mask = torch.zeros(1, 8, 8, dtype=torch.bool)
    mask[:, :4] = True
    y = torch.arange(4) % 3 if model.conditional else None
    out = model.complete(x, mask, y, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[:, :, :4], x[:, :, :4])
    assert ((out >= 0) & (out < 17) & (out == out.round())).all()
    # Same seed, same completion.
    again = model.complete(x, mask, y, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


@pytest.mark.parametrize("config", Transformer.tiny_configs())
def test_cached_and_uncached_sampling_agree(config):
    torch.manual_seed(0)
    model = Transformer(**config).eval()
    y = torch.arange(16) % 3 if model.conditional else None
    a = model.sample(16, y, generator=torch.Generator().manual_seed(5))
    b = model.sample(16, y, generator=torch.Generator().manual_seed(5), use_cache=False)
    if model.discrete:
        assert torch.equal(a, b)
    else:
        # Real-valued draws inherit the float32 rounding of the two summation orders.
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # The per-step parameters agree too, up to float32 summation order.
    params = {}
    for use_cache in (True, False):
        seen = []

        def record(t, p, seen=seen):
            seen.append(p)
            return a.reshape(16, -1)[:, model.order[t]]

        with torch.no_grad():
            model.autoregress(16, y, record, state=model.init_state(16, y, use_cache=use_cache))
        params[use_cache] = torch.stack(seen)
    torch.testing.assert_close(params[True], params[False], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", list(FAMILIES.values()))
def test_mixture_density_integrates_to_one(cls):
    """Continuous 2-D models: midpoint rule on [-9, 9]^2 with h = 0.05.

    Weights are shrunk so that on the box every component has sigma in [0.5, 1.5] and
    |mean| < 2 (asserted below). Then the mass outside the box is < 4 P(z > 4.6) < 1e-5
    and the midpoint error per Gaussian is ~ h^2 / (24 sigma^2) < 4e-4, so 1e-3 holds."""
    torch.manual_seed(0)
    if cls is PixelCNN:
        model = cls(event_shape=(1, 1, 2), width=8, depth=1, kernel_size=3,
                    components=3)
    else:
        model = cls(**next(c for c in cls.tiny_configs()
                           if not c.get("num_levels") and not c.get("num_classes")))
    model.eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.03)
    h = 0.05
    g = torch.arange(-9 + h / 2, 9, h)
    grid = torch.cartesian_prod(g, g).reshape(-1, *model.event_shape)
    with torch.no_grad():
        _, means, log_scales = model.head._split(
            model.network(model.features(grid.reshape(len(grid), 2)), None))
        assert means.abs().max() < 2
        assert log_scales.min() > math.log(0.5) and log_scales.max() < math.log(1.5)
        total = model.log_prob(grid).double().exp().sum().item() * h * h
    assert abs(total - 1.0) < 1e-3


@pytest.mark.parametrize("key", ["made", "pixelcnn-gated", "rnn", "transformer"])
def test_learns_a_deterministic_chain(key):
    """x_1 uniform on {0,1,2}, then x_{t+1} = x_t + 1 mod 3: entropy log 3 = 1.10 nats. A
    model blind to x_<t cannot beat 3 log 3 = 3.30; after training the NLL must be < 1.6."""
    model = build(key).train()
    x1 = torch.randint(0, 3, (256, 1), generator=torch.Generator().manual_seed(0))
    x = ((x1 + torch.arange(3)) % 3).float().reshape(256, *model.event_shape)
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    for _ in range(100):
        loss = -model.log_prob(x).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert -model.log_prob(x).mean().item() < 1.6


def test_save_load_keeps_random_order_and_masks(tmp_path):
    torch.manual_seed(0)
    model = MADE(event_shape=(1, 8, 8), num_levels=17, width=32, depth=1, order="random",
                 order_seed=3, num_classes=3)
    assert "order" in model.state_dict() and "hidden.0.mask" in model.state_dict()
    assert not torch.equal(model.order, torch.arange(64))
    save_model(model, tmp_path / "run")
    loaded = load(tmp_path / "run")
    x = torch.randint(0, 17, (5, 1, 8, 8)).float()
    y = torch.arange(5) % 3
    assert torch.equal(loaded.order, model.order)
    assert torch.equal(loaded.log_prob(x, y), model.eval().log_prob(x, y))


def test_natural_order_is_channel_innermost_raster():
    model = MADE(event_shape=(2, 2, 2), num_levels=3, width=16, depth=1)
    # (c0,p0), (c1,p0), (c0,p1), ... where (channel c, pixel p) sits at flat index c*4 + p
    assert model.order.tolist() == [0, 4, 1, 5, 2, 6, 3, 7]
    assert torch.equal(model.rank[model.order], torch.arange(8))


@pytest.mark.parametrize(
    "cls,kwargs,error",
    [
        (MADE, dict(event_shape=(4,), depth=0), ConfigError),
        (MADE, dict(event_shape=(4,), order="backwards"), ConfigError),
        (MADE, dict(event_shape=(4,), input_encoding="onehot"), ConfigError),
        (MADE, dict(event_shape=(4,), dropout=1.5), ConfigError),
        (PixelCNN, dict(event_shape=(4,)), ConfigError),
        (PixelCNN, dict(event_shape=(3, 4, 4), width=8), ConfigError),
        (PixelCNN, dict(event_shape=(1, 4, 4), kernel_size=4), ConfigError),
        (RNN, dict(event_shape=(4,), cell="vanilla"), ConfigError),
        (RNN, dict(event_shape=(4,), width=0), ConfigError),
        (Transformer, dict(event_shape=(4,), width=10, heads=4), ConfigError),
        (Transformer, dict(event_shape=(4,), components=0), ConfigError),
        (Transformer, dict(event_shape=(4,), heads=0), ConfigError),
        (PixelCNN, dict(event_shape=(1, 4, 4), depth=-1), ConfigError),
        (AutoregressiveMixture, dict(event_shape=(4,), num_levels=3, members=[]), ConfigError),
    ],
)
def test_bad_hyperparameters_raise(cls, kwargs, error):
    with pytest.raises(error, match="Expected"):
        cls(**kwargs)


def test_declared_settings_give_one_message():
    with pytest.raises(ConfigError, match=r"^Expected width to be an int >= 1, but found 0\.$"):
        RNN(event_shape=(4,), width=0)
    with pytest.raises(ConfigError, match=r"^Expected order to be one of 'natural', 'random'"):
        Transformer(event_shape=(4,), order="backwards")
    with pytest.raises(ConfigError, match="members"):
        AutoregressiveMixture(event_shape=(4,), num_levels=3)


def test_bad_sampling_and_completion_input_raise():
    model = build("made")
    with pytest.raises(ConfigError, match="temperature"):
        model.sample(2, temperature=0.0)
    with pytest.raises(ConfigError, match="temperature"):
        model.complete(torch.zeros(2, 3), torch.ones(3, dtype=torch.bool), temperature=-1.0)
    with pytest.raises(ShapeError):
        model.complete(torch.zeros(2, 3), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ShapeError):
        model.complete(torch.zeros(2, 4), torch.ones(4, dtype=torch.bool))
    with pytest.raises(DataError):
        model.complete(torch.full((2, 3), 7.0), torch.ones(3, dtype=torch.bool))
    with pytest.raises(DataError):
        model.complete(torch.zeros(2, 3), torch.full((3,), 0.5))
    with pytest.raises(ConfigError, match="use_cache"):
        model.sample(2, use_cache=False)


MIXTURE_MEMBERS = [
    {"model": "made", "config": {"width": 8, "depth": 1}},
    {"model": "rnn", "config": {"width": 8, "embedding_size": 4}},
    {"model": "transformer", "config": {"width": 8, "heads": 2, "depth": 1}},
]


def tiny_mixture(**extra):
    torch.manual_seed(0)
    return AutoregressiveMixture(event_shape=(3,), num_levels=3, members=MIXTURE_MEMBERS,
                                 **extra).eval()


def test_mixture_is_the_weighted_sum_of_its_members():
    """log p(x) = logsumexp_k (log pi_k + log p_k(x)) in float64 (the conditionals telescope),
    and it sums to one over all 27 x."""
    model = tiny_mixture(learn_weights=True, num_classes=2).double()
    with torch.no_grad():
        model.weight_logits.copy_(torch.tensor([0.3, -1.0, 0.5]))
    x = all_x(model).double()
    y = torch.arange(27) % 2
    members = torch.stack([m.log_prob(x, y) for m in model.members])  # (K, 27)
    expected = torch.logsumexp(torch.log_softmax(model.weight_logits, 0)[:, None] + members, 0)
    torch.testing.assert_close(model.log_prob(x, y), expected, rtol=0, atol=1e-12)
    for label in (0, 1):
        assert abs(model.log_prob(x, torch.full((27,), label)).exp().sum().item() - 1) < 1e-12


def test_mixture_samples_follow_it():
    model = tiny_mixture()
    samples = model.sample(6000, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        log_p = model.log_prob(all_x(model))
    assert chi_square_pvalue(samples, log_p) > 1e-4


def test_mixture_from_trained_models_and_bad_members():
    torch.manual_seed(0)
    a = MADE(event_shape=(3,), num_levels=3, width=8, depth=1)
    b = RNN(event_shape=(3,), num_levels=3, width=8)
    mixture = AutoregressiveMixture.from_models([a, b])
    x = all_x(mixture)
    expected = torch.logsumexp(torch.stack([a.log_prob(x), b.log_prob(x)]), 0) - math.log(2)
    torch.testing.assert_close(mixture.log_prob(x), expected)
    with pytest.raises(ConfigError, match="share one order"):
        AutoregressiveMixture(event_shape=(3,), num_levels=3, members=[
            {"model": "made", "config": {"order": "random", "order_seed": 1}},
            {"model": "made", "config": {}}])
    with pytest.raises(ConfigError, match="num_levels"):
        AutoregressiveMixture(event_shape=(3,), num_levels=3, members=[
            {"model": "made", "config": {"num_levels": 4}}])
    with pytest.raises(ConfigError):
        AutoregressiveMixture(event_shape=(3,), members=MIXTURE_MEMBERS)


def test_mixture_weights_by_em_raise_the_likelihood():
    """EM never lowers the likelihood of the data it is fitted on (monotone ascent)."""
    model = tiny_mixture()
    x = torch.randint(0, 3, (200, 3), generator=torch.Generator().manual_seed(4)).float()
    before = model.log_prob(x).sum().item()
    model.fit_weights(x)
    weights = torch.softmax(model.weight_logits, 0)
    assert model.log_prob(x).sum().item() >= before - 1e-6
    assert abs(weights.sum().item() - 1) < 1e-6
    assert not torch.allclose(weights, torch.full((3,), 1 / 3))
