"""Flow models: a normalised density, samples that follow it, honest discrete bounds, stability.

Tolerances come from standard errors (written next to each check) or from quadrature error
estimated by halving the grid step (Richardson: the midpoint rule's error is O(h^2), so the
error of the finer grid is about |I_h - I_{h/2}| / 3; we allow the full difference).
"""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from genlab import Dataset, fit, load_data
from genlab.errors import ConfigError, DataError
from genlab.models.flows import (
    MAF,
    NSF,
    ActNorm,
    AffineCoupling,
    Flow,
    Glow,
    Inverse,
    LULinear,
    MaskedAutoregressive,
    RealNVP,
    alternating_mask,
)
from genlab.train.checkpoint import load as load_run
from genlab.train.checkpoint import save_model

BOX = 4.0  # integration box [-BOX, BOX]^2 for standardised moons


@pytest.fixture(scope="module")
def moons() -> Dataset:
    return load_data("moons", n=4000, seed=0)


@pytest.fixture(scope="module")
def trained(moons) -> RealNVP:
    torch.manual_seed(0)
    model = RealNVP(event_shape=(2,), transforms=4, width=32, depth=2)
    fit(model, moons, steps=300, batch_size=256, lr=3e-3, seed=0, progress=False)
    return model.eval()


def _grid(k: int) -> tuple[torch.Tensor, float]:
    h = 2 * BOX / k
    centres = -BOX + h * (torch.arange(k, dtype=torch.float64) + 0.5)
    gx, gy = torch.meshgrid(centres, centres, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1), h


def _log_prob64(model: Flow, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model.log_prob(b.float()).double() for b in x.split(40_000)])


def test_density_integrates_to_one(trained) -> None:
    # Mass inside the box by the midpoint rule at two resolutions, mass outside by the
    # fraction of the flow's own samples that land outside (binomial standard error).
    integrals = []
    for k in (200, 400):
        points, h = _grid(k)
        integrals.append(_log_prob64(trained, points).exp().sum().item() * h * h)
    n = 100_000
    samples = trained.sample(n, generator=torch.Generator().manual_seed(1))
    p_out = (samples.abs() > BOX).any(dim=1).double().mean().item()
    se = math.sqrt(max(p_out * (1 - p_out), 1.0 / n) / n)
    quad_err = abs(integrals[1] - integrals[0])
    tol = 4 * se + quad_err
    assert tol < 0.01  # the check is sharp enough to catch a wrong log-det (O(0.1) errors)
    assert abs(integrals[1] + p_out - 1.0) < tol, (integrals, p_out, tol)


def test_samples_follow_log_prob(trained) -> None:
    """Chi-square of sample counts in grid cells against the integrated density, and the
    entropy: mean -log p over samples equals -int p log p by quadrature."""
    n = 20_000
    samples = trained.sample(n, generator=torch.Generator().manual_seed(2)).double()
    # Cell probabilities: 8 x 8 cells of the box, each integrated with 25 x 25 midpoints.
    points, h = _grid(200)
    density = _log_prob64(trained, points).exp()
    cells = 8
    cell_of = lambda x: ((x + BOX) / (2 * BOX) * cells).floor().clamp(0, cells - 1).long()  # noqa: E731
    idx_p = cell_of(points)
    probs = torch.zeros(cells * cells, dtype=torch.float64)
    probs.index_add_(0, idx_p[:, 0] * cells + idx_p[:, 1], density * h * h)
    inside = (samples.abs() <= BOX).all(dim=1)
    idx_s = cell_of(samples[inside])
    counts = torch.bincount(idx_s[:, 0] * cells + idx_s[:, 1], minlength=cells * cells).double()
    expected = probs * n
    keep = expected >= 5  # chi-square approximation needs >= 5 expected per cell
    chi2 = (((counts - expected) ** 2) / expected)[keep].sum().item()
    dof = int(keep.sum()) - 1
    assert chi2 < stats.chi2.ppf(0.999, dof), (chi2, dof)

    # Entropy restricted to the box: E_samples[-log p 1(inside)] vs -int_box p log p.
    lp = _log_prob64(trained, samples)
    terms = torch.where(inside, -lp, torch.zeros_like(lp))
    mc, se = terms.mean().item(), terms.std().item() / math.sqrt(n)
    quad = [
        (-(lq.exp() * lq)).sum().item() * hq * hq
        for lq, hq in ((_log_prob64(trained, _grid(k)[0]), _grid(k)[1]) for k in (100, 200))
    ]
    tol = 4 * se + abs(quad[1] - quad[0])
    assert abs(mc - quad[1]) < tol, (mc, quad, tol)


@pytest.mark.parametrize("cls", [RealNVP, MAF, NSF])
def test_extreme_inputs_are_finite_or_a_clear_error(cls, moons) -> None:
    torch.manual_seed(0)
    model = cls(event_shape=(2,), transforms=4, width=32, depth=2)
    fit(model, moons, steps=100, batch_size=256, progress=False)
    model.eval()
    angles = torch.linspace(0, 2 * math.pi, 17)[:-1]
    x = 1e4 * torch.stack([angles.cos(), angles.sin()], dim=1)  # |x| = 1e4, 16 directions
    x = torch.cat([x, torch.tensor([[1e4, 1e4], [-1e4, 0.0], [0.0, 0.0]])])
    try:
        lp = model.log_prob(x)
    except DataError as err:
        assert "Expected a finite log_prob" in str(err)
    else:
        assert torch.isfinite(lp).all(), lp
        assert (lp[:-1] < lp[-1]).all()  # far away is less likely than the centre


def test_nsf_out_of_domain_is_finite_with_finite_gradients() -> None:
    torch.manual_seed(0)
    model = NSF(event_shape=(2,), transforms=2, width=16, depth=1, bins=4, bound=3.0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * torch.randn_like(p))  # a non-identity spline
    cases = [
        torch.full((4, 2), 50.0),  # the whole batch outside the domain (right tail)
        torch.full((4, 2), -1e4),  # far in the left tail
        torch.tensor([[3.0, -3.0], [2.999999, -3.000001], [0.0, 1.0], [7.0, 0.5]]),  # edges
    ]
    for x in cases:
        model.zero_grad()
        lp = model.log_prob(x)
        assert torch.isfinite(lp).all(), (x, lp)
        lp.sum().backward()
        for name, p in model.named_parameters():
            assert torch.isfinite(p.grad).all(), name


def test_actnorm_flag_survives_save_and_load(moons, tmp_path) -> None:
    torch.manual_seed(0)
    model = RealNVP(event_shape=(2,), transforms=2, width=8, depth=1, actnorm=True)
    model.initialize(moons)
    actnorms = [m for m in model.modules() if isinstance(m, ActNorm)]
    assert actnorms and all(bool(m.initialized) for m in actnorms)
    with torch.no_grad():
        for m in actnorms:
            m.shift.add_(0.3)  # as after training: no longer the data statistics
    save_model(model, tmp_path / "run")
    again = load_run(tmp_path / "run")
    assert all(bool(m.initialized) for m in again.modules() if isinstance(m, ActNorm))
    # In training mode a fresh batch must NOT re-initialise the loaded layers.
    again.train()
    shifted = moons.x[:256] * 3.0 + 1.0
    before = [m.shift.clone() for m in again.modules() if isinstance(m, ActNorm)]
    again.training_loss(shifted, None)
    after = [m.shift for m in again.modules() if isinstance(m, ActNorm)]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    again.eval()
    assert torch.allclose(model.eval().log_prob(moons.x[:64]), again.log_prob(moons.x[:64]))


def test_uninitialised_actnorm_initialises_from_first_training_batch() -> None:
    layer = ActNorm(2)
    x = torch.randn(512, 2) * torch.tensor([3.0, 0.5]) + torch.tensor([1.0, -2.0])
    z = layer.inverse(x)  # training mode: data-dependent initialisation
    # z is standardised exactly on this batch (population std, denominator n - 1).
    assert torch.allclose(z.mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(z.std(0), torch.ones(2), atol=1e-5)
    assert bool(layer.initialized)


def test_discrete_bound_is_honest() -> None:
    """Sum over all integer x of E_u[exp(log_prob)] is the flow's mass on the unit cube.

    For discrete data log_prob(x) = log p_u((x + u)/L) - D log L with u uniform: averaged over
    u, exp of it integrates p_u over the cell of x, so summing over the L^D cells gives
    P(u in [0, 1)^D), which we also estimate from the flow's own continuous samples.
    """
    torch.manual_seed(0)
    levels = 4
    model = RealNVP(event_shape=(2,), num_levels=levels, transforms=2, width=8, depth=1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    grid = torch.cartesian_prod(torch.arange(levels), torch.arange(levels)).float()  # (16, 2)
    reps = 4000
    model.train()  # fresh dequantization noise per evaluation
    with torch.no_grad():
        lp = model._log_prob(grid.repeat(reps, 1), None).reshape(reps, -1)  # (reps, 16)
    per_cell = lp.exp()
    mass = per_cell.mean(0).sum().item()
    se_mass = math.sqrt((per_cell.var(0) / reps).sum().item())
    # Mass of the continuous flow inside the cube, from samples before quantization.
    n = 200_000
    z = model.base_sample(n, None, torch.Generator().manual_seed(1))
    with torch.no_grad():
        u = model.transform.forward(z)
    inside = ((u >= 0) & (u < 1)).all(dim=1).double().mean().item()
    se_inside = math.sqrt(inside * (1 - inside) / n)
    assert 0.5 < inside < 1.0
    assert abs(mass - inside) < 4 * (se_mass + se_inside), (mass, inside, se_mass, se_inside)


def test_conditional_flow_uses_the_label() -> None:
    torch.manual_seed(0)
    n = 4000
    y = torch.arange(n) % 2
    x = torch.randn(n, 2) * 0.3 + torch.where(y[:, None] == 0, -2.0, 2.0)
    data = Dataset(x=x, y=y, num_classes=2, name="two-blobs")
    model = RealNVP(event_shape=(2,), num_classes=2, transforms=4, width=32, depth=2)
    fit(model, data, steps=300, batch_size=256, lr=3e-3, progress=False)
    for label, centre in ((0, -2.0), (1, 2.0)):
        s = model.sample(2000, label, generator=torch.Generator().manual_seed(label))
        # The class mean is +-2 with std 0.3 per axis: standard error 0.3 / sqrt(2000) = 0.007;
        # an unconditional fit would put the mean near 0, 2 away.
        assert (s.mean(0) - centre).abs().max() < 0.25, (label, s.mean(0))
    right = model.log_prob(x[:500], y[:500]).mean()
    wrong = model.log_prob(x[:500], 1 - y[:500]).mean()
    assert right > wrong + 5.0


def test_sampling_options_and_determinism(trained) -> None:
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    assert torch.equal(trained.sample(10, generator=g()), trained.sample(10, generator=g()))
    cold = trained.sample(4000, generator=g(), temperature=0.5)
    warm = trained.sample(4000, generator=g(), temperature=1.0)
    assert cold.std() < warm.std()
    with pytest.raises(ConfigError):
        trained.sample(3, temperature=0.0)


def test_flow_composed_from_python() -> None:
    torch.manual_seed(0)
    bijections = [
        AffineCoupling(alternating_mask(3, 0), width=16, depth=1),
        LULinear(3),
        Inverse(MaskedAutoregressive(3, width=16, depth=1)),  # an IAF layer: fast sampling
        ActNorm(3),
    ]
    flow = Flow(event_shape=(3,), bijections=bijections)
    # Log-normal coordinates: the best Gaussian is 0.77 nats/dim worse than the truth
    # (entropy 1.42 vs 0.5 log(2 pi e (e - 1) e) = 2.19), so a working flow gains clearly.
    x = torch.randn(512, 3).exp()
    opt = torch.optim.Adam(flow.parameters(), lr=1e-2)
    first = None
    for _ in range(80):
        loss, _ = flow.training_loss(x, None)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first - 0.2  # closes over a quarter of the 0.77 nats/dim gap
    assert flow.sample(4).shape == (4, 3)


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="Expected transforms to be an int >= 1, but found 0"):
        RealNVP(event_shape=(2,), transforms=0)
    with pytest.raises(ConfigError, match="Expected mask to be one of 'alternating', 'random'"):
        RealNVP(event_shape=(2,), mask="diagonal")
    with pytest.raises(ConfigError):
        RealNVP(event_shape=(1,))  # nothing to couple
    with pytest.raises(ConfigError, match="Expected bins to be an int >= 2, but found 1"):
        NSF(event_shape=(2,), bins=1)
    with pytest.raises(ConfigError):
        Glow(event_shape=(1, 6, 6), scales=2)  # 6 is not divisible by 4
    with pytest.raises(ConfigError):
        Glow(event_shape=(64,))
    with pytest.raises(ConfigError, match="Expected depth to be an int >= 1, but found 0"):
        RealNVP(event_shape=(2,), depth=0)
    with pytest.raises(ConfigError, match="Expected alpha to be a number in"):
        MAF(event_shape=(2,), alpha=0.5)
    with pytest.raises(ConfigError, match="Expected condition_size to be an int >= 1 or None"):
        NSF(event_shape=(2,), num_classes=2, condition_size=0)
    with pytest.raises(ConfigError):
        MAF(event_shape=(2,), order="sideways")
    with pytest.raises(ConfigError):
        RealNVP(event_shape=(2,), conditional_base=True)


def _randomised(model: Flow) -> Flow:
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))  # away from the identity start
    return model.eval()


@pytest.mark.parametrize(
    "make",
    [
        lambda: RealNVP(event_shape=(2,), transforms=2, width=8, depth=1, actnorm=True),
        lambda: MAF(event_shape=(3,), num_classes=2, transforms=2, width=8, depth=1,
                    condition_size=2, conditional_base=True),
        lambda: NSF(event_shape=(2,), transforms=2, width=8, depth=1, bins=4, lu=True),
        lambda: Glow(event_shape=(1, 4, 4), scales=2, transforms=1, width=4, depth=1),
    ],
    ids=["realnvp", "maf-conditional", "nsf", "glow"],
)
def test_rsample_is_sample_with_gradients(make) -> None:
    torch.manual_seed(0)
    model = _randomised(make())
    y = torch.arange(16) % 2 if model.conditional else None
    g = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    x = model.rsample(16, y, generator=g())
    assert x.shape == (16, *model.event_shape) and x.requires_grad
    assert torch.allclose(x, model.sample(16, y, generator=g()), rtol=1e-6, atol=1e-6)
    (x**2).sum().backward()  # a loss on the samples reaches every parameter
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_rsample_of_discrete_data_is_the_sample_before_quantization() -> None:
    torch.manual_seed(0)
    levels = 17
    model = _randomised(RealNVP(event_shape=(1, 4, 4), num_levels=levels, transforms=2,
                                width=4, depth=1))
    g = lambda: torch.Generator().manual_seed(6)  # noqa: E731
    x = model.rsample(32, generator=g())
    reach = levels * 0.05 / 0.9  # the logit margin alpha = 0.05 reaches past the cube's faces
    assert x.requires_grad and x.min() >= -reach and x.max() <= levels + reach
    assert not torch.equal(x, x.round())  # continuous values on the data scale
    quantized = x.detach().floor().clamp(0, levels - 1)
    assert torch.equal(quantized, model.sample(32, generator=g()))
    x.sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    with pytest.raises(ConfigError):
        model.rsample(0)


def test_digits_flow_reports_bits_per_dim_and_integer_samples() -> None:
    torch.manual_seed(0)
    digits = load_data("digits")
    model = Glow(event_shape=(1, 8, 8), num_levels=17, scales=2, transforms=1, width=8, depth=1)
    fit(model, digits, steps=30, batch_size=64, progress=False)
    model.eval()
    bpd = model.bits_per_dim(digits.x[:100]).mean().item()
    # Uniform over 17 levels is log2(17) = 4.09 bits/dim; a flow after a few steps is near it.
    assert 1.0 < bpd < 6.0
    s = model.sample(8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s, s.round()) and s.min() >= 0 and s.max() <= 16
