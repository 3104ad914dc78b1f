"""The course's figures: each runs on a tiny budget, writes its PNGs, and draws the right math."""

from __future__ import annotations

import inspect
import math
import re
from pathlib import Path

import pytest
import torch
from matplotlib.image import imread

from genlab import create, load_data
from genlab.errors import UnknownNameError
from genlab.figures import (
    FIGURES,
    conditional,
    diffusion,
    gans,
    histograms,
    make_figures,
    mixtures,
    realnvp,
)
from genlab.figures import autoregressive as ar_fig
from genlab.figures import change_of_variables as cov
from genlab.figures.posterior import (
    gaussian_step,
    gmm_denoised_mean,
    gmm_reverse_posterior,
    mixture_log_density,
)
from genlab.models.diffusion.schedule import NoiseSchedule
from genlab.viz.gan import architecture_figure, generator_loss_curves, gradient_shapes_figure

ROOT = Path(__file__).resolve().parents[1]


def _png(path: Path, width: int, height: int) -> None:
    """A readable PNG of the size its figure was made at (within a pixel of rounding)."""
    image = imread(str(path))
    assert abs(image.shape[1] - width) <= 1 and abs(image.shape[0] - height) <= 1, image.shape


# ------------------------------------------------------------------------------ pure math
def test_generator_loss_curves_at_known_points():
    d = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    curves = generator_loss_curves(d)
    assert torch.allclose(curves["minimax"], torch.log1p(-d), atol=1e-12)
    assert torch.allclose(curves["nonsaturating"], -torch.log(d), atol=1e-12)
    # the slide's point: near D(G(z)) = 0 the minimax slope is about -1, the other's -1 / D
    eps = 1e-6
    for loss, slope in (("minimax", -1.0 / (1 - 0.01)), ("nonsaturating", -1.0 / 0.01)):
        pair = generator_loss_curves(torch.tensor([0.01 - eps, 0.01 + eps],
                                                  dtype=torch.float64))[loss]
        assert (pair[1] - pair[0]).item() / (2 * eps) == pytest.approx(slope, rel=1e-5)
    fig = gradient_shapes_figure(points=50)
    assert len(fig.axes) == 1 and len(fig.axes[0].get_lines()) == 3  # two curves + the zero


def test_change_of_variables_density_integrates_to_one_and_matches_the_derivative():
    x = torch.linspace(-10, 10, 40001, dtype=torch.float64)
    p = cov.pushed_forward_log_density(x).exp()
    assert torch.trapezoid(p, x).item() == pytest.approx(1.0, abs=1e-6)
    # |df^-1/dx| by central differences of the inverse map, against the spline's own log-det
    z, log_jac = cov.monotone_map(x, inverse=True)
    numeric = torch.gradient(z, spacing=(x,))[0]
    error = (numeric - log_jac.exp()).abs()[x.abs() < 9.9]
    # central differences err by O(h^2) = 1e-6 where f is smooth and by O(h) = 1e-3 at the
    # knots, where the spline's second derivative jumps
    assert error.max() < 1e-3 and error.median() < 1e-6
    assert (torch.diff(z) > 0).all()  # monotone
    fz, _ = cov.monotone_map(z)
    assert torch.allclose(fz, x, atol=1e-8)  # f(f^-1(x)) = x


def test_change_of_variables_figure(tmp_path):
    (path,) = cov.draw_change_of_variables(tmp_path, tmp_path, n_samples=2000)
    _png(path, 1100, 330)


def test_gmm_reverse_posterior_is_bayes_rule_on_a_grid():
    """q(x_{t-1} | x_t) from the closed form against q(x_{t-1}) q(x_t | x_{t-1}) normalised on
    a grid; q(x_{t-1}) is the schedule's own diffused mixture (another code path)."""
    schedule = NoiseSchedule.linear(50, 1e-3, 0.2)
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 2, generator=g, dtype=torch.float64)
    weights = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    std = 0.3
    grid_1d = torch.linspace(-4, 4, 401, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(grid_1d, grid_1d, indexing="xy"), -1).reshape(-1, 2)
    cell = (grid_1d[1] - grid_1d[0]).item() ** 2
    for t, s in ((0, None), (10, None), (30, None), (30, 5), (30, -1)):
        x_t = torch.randn(2, generator=g, dtype=torch.float64)
        r, means, var = gmm_reverse_posterior(x_t, t, schedule, weights, centres, std, s)
        exact = mixture_log_density(grid, r, means, var).exp()
        s_ = t - 1 if s is None else s
        prior_means, prior_std = schedule.diffused_gaussian(centres, std, s_)
        prior = mixture_log_density(grid, weights, prior_means, prior_std**2).exp()
        alpha = schedule.alpha_bar_at(t) / schedule.alpha_bar_at(s_)
        like = torch.exp(-0.5 * ((x_t - math.sqrt(alpha) * grid) ** 2).sum(1) / (1 - alpha))
        bayes = prior * like / (prior * like).sum() / cell
        assert exact.sum().item() * cell == pytest.approx(1.0, abs=1e-3)
        assert (exact - bayes).abs().max().item() < 2e-3 * bayes.max().item(), (t, s)


def test_the_best_denoisers_gaussian_step_has_the_posteriors_mean():
    schedule = NoiseSchedule.cosine(100)
    g = torch.Generator().manual_seed(1)
    centres = 2 * torch.randn(5, 2, generator=g, dtype=torch.float64)
    weights = torch.full((5,), 0.2, dtype=torch.float64)
    for t in (0, 1, 40, 99):
        x_t = torch.randn(2, generator=g, dtype=torch.float64)
        r, means, _ = gmm_reverse_posterior(x_t, t, schedule, weights, centres, 0.4)
        best = gmm_denoised_mean(x_t, t, schedule, weights, centres, 0.4)
        mean, var = gaussian_step(best, x_t, t, schedule)
        assert torch.allclose(mean, r @ means, atol=1e-10)
        q_mean, q_var = schedule.q_posterior(best[None], x_t[None], t)  # the DDPM step
        assert torch.allclose(mean, q_mean[0], atol=1e-12)
        assert var == pytest.approx(float(q_var), rel=1e-9, abs=1e-15)


# ------------------------------------------------------------------------------ trained ones
def test_histogram_figures(tmp_path):
    sweep = histograms.dimension_sweep(n_train=500, n_test=200, max_dim=3)
    assert sweep["dims"] == [1, 2, 3]
    assert all(a < b for a, b in zip(sweep["empty"], sweep["empty"][1:], strict=False))
    # D = 1: the empty bins counted directly
    x = torch.randn(500, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    counts = torch.histc(x[:, 0], bins=10, min=-6, max=6)
    assert sweep["empty"][0] == pytest.approx((counts == 0).double().mean().item())
    (a,) = histograms.draw_histograms(tmp_path, tmp_path, n_samples=500)
    (b,) = histograms.draw_dimension_sweep(tmp_path, tmp_path, n_train=500, max_dim=2)
    _png(a, 1200, 320)
    _png(b, 800, 320)


def test_em_curve_never_decreases_and_sgd_figure(tmp_path):
    data = load_data("8gaussians", n=2000)
    model = create("gmm", event_shape=(2,), components=8, init="random")
    curve = mixtures.em_curve(model, data.x, 10)
    assert len(curve) == 11
    assert all(b >= a - 1e-9 for a, b in zip(curve, curve[1:], strict=False))
    (path,) = mixtures.draw_sgd_versus_em(tmp_path, tmp_path, steps=10, em_iterations=3)
    _png(path, 900, 340)


def test_conditional_chain_is_the_chain_rule_and_autoregressive_figures(tmp_path):
    model = create("made", event_shape=(1, 4, 4), num_levels=5, width=16, depth=1)
    probs, x = ar_fig.conditional_chain(model, generator=torch.Generator().manual_seed(0))
    assert probs.shape == (16, 5)
    assert torch.allclose(probs.sum(1), torch.ones(16), atol=1e-6)
    # log p(x) = sum_i log p(x_i | x_<i): the product of the drawn values' probabilities
    chosen = probs[torch.arange(16), x[model.order].long()]
    assert chosen.log().sum().item() == pytest.approx(
        model.log_prob(x.reshape(1, 1, 4, 4)).item(), abs=1e-4)
    paths = ar_fig.draw_autoregressive(tmp_path, tmp_path, steps=2, n_samples=4,
                                       n_completions=2)
    assert [p.name for p in paths] == ["autoregressive-chain.png", "autoregressive-samples.png",
                                       "autoregressive-completions.png"]
    _png(paths[0], 880, 420)


def test_realnvp_figures(tmp_path):
    paths = realnvp.draw_realnvp(tmp_path, tmp_path, steps=3)
    transforms = 8  # the moons recipe: data + 8 stages in each row, before and after training
    for path in paths:
        _png(path, round(2.2 * realnvp.DPI) * (transforms + 1),
             2 * round(2.2 * realnvp.DPI) + round(0.4 * realnvp.DPI))


def test_gan_figures(tmp_path):
    paths = gans.draw_gan(tmp_path, tmp_path, epochs=(1, 2), batch_size=64,
                          n_train=128)
    assert [p.name for p in paths] == ["gan-gradient.png", "gan-architecture.png",
                                       "gan-epochs.png", "gan-training.png"]
    _png(paths[2], 2 * 200, 220)  # one panel per kept epoch
    model = create("dcgan", data=load_data("digits", n=64))
    from genlab.viz.gan import layer_shapes

    shapes = layer_shapes(model.generator, model.noise(2))
    assert shapes[0] == ("input", (model.latent_size,)) and shapes[-1] == ("output", (1, 8, 8))
    assert any(name == "ConvTranspose2d" for name, _ in shapes)
    fig = architecture_figure([("G", shapes), ("G again", shapes)])
    assert len(fig.axes) == 2


def test_diffusion_figures(tmp_path):
    paths = diffusion.draw_diffusion(tmp_path, tmp_path, steps=3, n_reverse=50)
    assert [p.name for p in paths] == ["diffusion-forward.png", "diffusion-marginals.png",
                                       "diffusion-reverse.png", "diffusion-posterior.png"]
    _png(paths[3], 4 * 220, 280)  # three one-step panels and the jump


def test_posterior_panels_of_a_model():
    data = load_data("8gaussians", n=500)
    model = create("ddpm", data=data, num_timesteps=20, width=16, depth=1)
    model.initialize(data)
    centres = torch.tensor(data.info["centers"], dtype=torch.float64)
    panels = diffusion.posterior_panels(model, centres, float(data.info["std"]))
    assert len(panels) == len(diffusion.POSTERIOR_SIGMAS) + 1
    for panel in panels:
        (_, model_mean, model_var, _), (_, best_mean, _, _) = panel["gaussians"]
        assert model_mean.shape == best_mean.shape == (2,) and model_var >= 0  # 0 at t = 1
        # the panel is centred on the true posterior's mean
        assert panel["log_density"](panel["centre"][None]).isfinite().all()


def test_conditional_figure(tmp_path):
    (path,) = conditional.draw_conditional(tmp_path, tmp_path, steps=1, per_class=1)
    _png(path, 900, 85 * len(conditional.STEPS) + 40)
    model = create("gmm", data=load_data("digits", n=300), conditional=True, components=1,
                   covariance="diag").fit_closed_form(load_data("digits", n=300))
    samples = conditional.class_samples(model, 2, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (20, 1, 8, 8)


# ------------------------------------------------------------------------------ the command
def test_registry_budgets_are_parameters_and_unknown_names_fail(tmp_path):
    for spec in FIGURES.values():
        params = inspect.signature(spec.draw).parameters
        assert set(spec.quick) <= set(params), spec.name
        assert "progress" in params
    with pytest.raises(UnknownNameError, match="Expected a figure in"):
        make_figures(tmp_path, only="nope")


def test_cli_figures_only(tmp_path, capsys):
    from genlab.cli import main

    assert main(["figures", "--only", "change-of-variables", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "change-of-variables.png").is_file()
    assert "wrote" in capsys.readouterr().out


# ------------------------------------------------------------------------------ the course page
def test_course_page_names_importable_functions_and_existing_tests():
    import importlib

    text = (ROOT / "docs" / "course.md").read_text()
    names = set(re.findall(r"`(genlab(?:\.\w+)+)`", text))
    assert len(names) > 20
    for dotted in sorted(names):  # the longest importable module, then attributes
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ModuleNotFoundError:
                continue
            break
        for attr in parts[cut:]:
            assert hasattr(obj, attr), dotted
            obj = getattr(obj, attr)
    tests = set(re.findall(r"`(tests/test_\w+\.py)::(\w+)`", text))
    assert len(tests) > 10
    for file, name in sorted(tests):
        assert re.search(rf"^def {name}\(", (ROOT / file).read_text(), re.M), (file, name)
    figures = set(re.findall(r"genlab figures --only ([\w-]+)", text))
    assert figures == set(FIGURES)
    for png in re.findall(r"\((figures/course/[\w-]+\.png)\)", text):
        assert (ROOT / "docs" / png).is_file(), png
