"""DDIM inversion (``encode(x, method="ddim_inversion")``) against the exact noise predictor of
Gaussian data, where the probability-flow ODE is linear and every step is an affine bijection.

* With ``refine`` fixed-point iterations the inversion solves each implicit DDIM step, so
  decoding the latent with the same steps gives x back to rounding error (float64).
* With the explicit steps alone the round-trip error is that of a first-order method: it
  halves when the steps double.
"""

from __future__ import annotations

import pytest
import torch

from genlab import create
from genlab.errors import ConfigError
from genlab.models.diffusion.inversion import ddim_decode
from test_diffusion_gaussian import MU, SIGMA, gaussian_model


def gaussian_data(n: int = 200) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return MU + torch.randn(n, 2, generator=g, dtype=torch.float64) @ torch.linalg.cholesky(
        SIGMA).T


def round_trip_error(model, x, steps: int, refine: int) -> float:
    z = model.encode(x, method="ddim_inversion", steps=steps, refine=refine)
    assert z.shape == (x.shape[0], 2)
    return (ddim_decode(model, z, steps=steps) - x).abs().max().item()


@pytest.mark.parametrize("steps", [20, 50])
def test_refined_inversion_is_the_exact_inverse_of_ddim_sampling(steps):
    model, x = gaussian_model(), gaussian_data()
    # Each step's fixed-point map contracts (c * Lipschitz(eps) < 1 for this linear schedule),
    # so 40 iterations reach rounding error; float64 rounding over 2 x 50 steps is ~1e-13.
    assert round_trip_error(model, x, steps, refine=40) < 1e-10
    # More iterations, smaller error: the iteration converges rather than stalls.
    assert round_trip_error(model, x, steps, refine=2) < round_trip_error(model, x, steps, 0)


def test_explicit_inversion_error_is_first_order_in_the_step_size():
    # The explicit step evaluates eps one step early: local error O(h^2), global O(h), so the
    # round-trip error at N steps is about twice that at 2N (a second-order error would give
    # 4x, no convergence 1x).
    model, x = gaussian_model(), gaussian_data()
    errors = [round_trip_error(model, x, steps, refine=0) for steps in (20, 40, 80)]
    for coarse, fine in zip(errors, errors[1:], strict=False):
        assert 1.6 < coarse / fine < 2.4
    # The latent of the explicit inversion is close to N(0, I)-scaled: not a copy of x.
    z = model.encode(x, method="ddim_inversion", steps=80)
    assert (z - x).abs().mean() > 0.1


def test_inversion_options_are_declared_and_checked():
    model, x = gaussian_model(), gaussian_data(5)
    options = model.encode_options()
    assert options["method"].default == "features"  # denoiser features stay the default
    assert set(options) >= {"t", "method", "steps", "refine"}
    bad = [{"method": "pca"}, {"method": "ddim_inversion", "steps": 0},
           {"method": "ddim_inversion", "steps": model.schedule.num_timesteps + 1},
           {"method": "ddim_inversion", "refine": -1},
           {"method": "ddim_inversion", "t": 3}, {"steps": 10}, {"refine": 2}]
    for option in bad:
        with pytest.raises(ConfigError, match="Expected"):
            model.encode(x, **option)
    with pytest.raises(ConfigError, match="Expected latents"):
        ddim_decode(model, torch.zeros(5, 3))


def test_inversion_of_discrete_images_returns_flat_latents_that_decode_to_data():
    torch.manual_seed(0)
    model = create("ddpm", event_shape=(1, 8, 8), num_levels=17, num_timesteps=20, width=8,
                   depth=1, denoiser="mlp")
    x = torch.randint(0, 17, (3, 1, 8, 8))
    assert torch.equal(model.encode(x), model.encode(x, method="features"))
    z = model.encode(x, method="ddim_inversion", steps=5)
    assert z.shape == (3, 64) and torch.isfinite(z).all()
    back = ddim_decode(model, z, steps=5)
    assert back.shape == (3, 1, 8, 8)
    assert ((back >= 0) & (back <= 16)).all() and torch.equal(back, back.round())
