"""Exact conditional likelihoods: the conditional PixelCNN and the conditional RealNVP.

* cond_pixelcnn: p(x | y) sums to 1 over every image of a tiny event space for several
  conditions; the factor of pixel d has no gradient from pixels d, d+1, ... (x causal) but
  has one from the sketch's last pixel (y global).
* cond_realnvp: with the condition held fixed, the log-determinant equals autograd's
  log |det J| of the inverse map, and the forward map inverts it (float64).
"""

from __future__ import annotations

import itertools

import torch

from genlab import create
from genlab.nn.text import Tokenizer


def condition(n: int, size: tuple[int, int], seed: int) -> dict[str, torch.Tensor]:
    """Random sketches and prompts for ``n`` samples."""
    g = torch.Generator().manual_seed(seed)
    prompts = [["a thin 3", "seven, bold", "a wide 1 leaning left"][i % 3] for i in range(n)]
    ids, mask = Tokenizer().encode(prompts)
    sketch = (torch.rand(n, 1, *size, generator=g) < 0.4).float()
    return {"sketch": sketch, "prompt": ids, "prompt_mask": mask}


def every_image(levels: int, shape: tuple[int, ...]) -> torch.Tensor:
    d = torch.Size(shape).numel()
    grid = torch.tensor(list(itertools.product(range(levels), repeat=d)), dtype=torch.float64)
    return grid.reshape(-1, *shape)  # (levels^d, *shape)


def trained_a_little(model: torch.nn.Module) -> torch.nn.Module:
    """Random non-zero weights everywhere, so no factor is trivially uniform."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model.eval()


def test_conditional_pixelcnn_normalises_over_every_image():
    shape, levels = (1, 2, 2), 3
    model = create("cond_pixelcnn", event_shape=shape, num_levels=levels,
                   conditions=("sketch", "prompt"), width=4, depth=1, kernel_size=3,
                   condition_size=4).double()
    model = trained_a_little(model)
    x = every_image(levels, shape)  # (81, 1, 2, 2)
    for seed in range(3):
        y = {k: v.expand(len(x), *v.shape[1:]) for k, v in condition(1, shape[1:], seed).items()}
        with torch.no_grad():
            total = model.log_prob(x, y).exp().sum()
        # 81 terms in float64: rounding error ~1e-15 each
        assert abs(total.item() - 1.0) < 1e-10


def test_conditional_pixelcnn_is_causal_in_x_and_global_in_y():
    shape, levels = (1, 4, 4), 3
    model = trained_a_little(create(
        "cond_pixelcnn", event_shape=shape, num_levels=levels,
        conditions=("sketch", "prompt"), width=4, depth=2, kernel_size=3,
        condition_size=4).double())
    x = torch.randint(0, levels, (2, 16), generator=torch.Generator().manual_seed(1)).double()
    y = condition(2, shape[1:], 2)
    y["sketch"] = y["sketch"].double().requires_grad_()
    features = model.features(x).requires_grad_()  # (2, 16, E)
    params = model.network(features, y)  # (2, 16, P)
    for d in range(16):
        grad_x, grad_y = torch.autograd.grad(params[:, d].sum(), (features, y["sketch"]),
                                             retain_graph=True)
        assert grad_x[:, d:].abs().max() == 0, f"factor {d} sees pixels at or after {d}"
        # the sketch reaches every factor, the last sketch pixel included (global condition)
        assert grad_y[:, 0, -1, -1].abs().min() > 0, f"factor {d} misses the sketch's end"


def test_conditional_flow_log_det_matches_autograd_and_inverts():
    shape = (1, 4, 4)
    flow = trained_a_little(create(
        "cond_realnvp", event_shape=shape, conditions=("sketch", "prompt"), transforms=4,
        width=4, depth=1, condition_size=4).double())
    y = condition(3, shape[1:], 3)
    u = torch.rand(3, *shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    with torch.no_grad():
        context = flow.context(y)  # the condition, held fixed
        z, ladj = flow.transform.inverse_and_ladj(u, context)
        back = flow.transform.forward(z, context)
    assert torch.allclose(back, u, atol=1e-10)
    for i in range(3):
        def inverse(v, i=i):
            return flow.transform.inverse(v.reshape(1, *shape), context[i:i + 1]).reshape(-1)

        jacobian = torch.autograd.functional.jacobian(inverse, u[i].reshape(-1))  # (16, 16)
        assert torch.allclose(ladj[i], torch.linalg.slogdet(jacobian).logabsdet, atol=1e-9)
    # the condition matters: another sketch gives another density
    other = dict(y, sketch=1.0 - y["sketch"])
    assert not torch.allclose(flow.log_prob(u, y), flow.log_prob(u, other))
