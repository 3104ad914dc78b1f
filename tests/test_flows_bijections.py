"""Every bijection: inverse(forward(z)) == z and log-det == log|det| of the autograd Jacobian.

All checks run in float64 with randomised parameters (the layers start as the identity, which
would make the checks trivially true). Tolerances: float64 round-off is ~1e-16 relative; the
maps chain at most a few dozen operations on O(1..100) values, so errors stay below ~1e-12.
We use atol = 1e-8 on values and log-determinants, far above round-off and far below any real
bug (a wrong log-det term is O(0.01..1)).
"""

from __future__ import annotations

import math

import pytest
import torch

from genlab.models.flows import (
    ActNorm,
    AffineCoupling,
    Compose,
    FactorOut,
    Glow,
    Inverse,
    Logit,
    LULinear,
    MaskedAffineCoupling,
    MaskedAutoregressive,
    Partition,
    Permutation,
    RealNVP,
    Reshape,
    SplineCoupling,
    Squeeze,
    alternating_mask,
    channel_mask,
    checkerboard_mask,
    random_mask,
)

ATOL = 1e-8
CTX = 3  # context size of the conditional variants


def _randomise(module: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.4 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
        for name, b in module.named_buffers():
            if name.endswith("initialized"):
                b.fill_(True)


def _cases() -> list[tuple[str, callable, tuple[int, ...], int]]:
    g = torch.Generator().manual_seed(0)

    def glow_transform():
        return Glow(event_shape=(1, 4, 4), scales=2, transforms=1, width=4, depth=1).transform

    def realnvp_image_transform():
        flow = RealNVP(event_shape=(1, 4, 4), transforms=4, width=4, depth=1, actnorm=True)
        return flow.transform

    return [
        (
            "affine-alternating",
            lambda: AffineCoupling(alternating_mask(5, 0), width=8, depth=1),
            (5,),
            0,
        ),
        (
            "affine-alternating-odd",
            lambda: AffineCoupling(alternating_mask(5, 1), width=8, depth=1),
            (5,),
            0,
        ),
        ("affine-2d", lambda: AffineCoupling(alternating_mask(2, 1), width=8, depth=1), (2,), 0),
        (
            "affine-interleaved",
            lambda: AffineCoupling(alternating_mask(6, 1), width=8, depth=1),
            (6,),
            0,
        ),
        ("affine-halves", lambda: AffineCoupling(torch.arange(5) >= 2, width=8, depth=1), (5,), 0),
        (
            "affine-random-ctx",
            lambda: AffineCoupling(random_mask(5, g), width=8, depth=1, context_dim=CTX),
            (5,),
            CTX,
        ),
        (
            "checkerboard",
            lambda: MaskedAffineCoupling(checkerboard_mask((2, 4, 4), 0), width=4),
            (2, 4, 4),
            0,
        ),
        (
            "checkerboard-ctx",
            lambda: MaskedAffineCoupling(
                checkerboard_mask((1, 4, 4), 1), width=4, context_dim=CTX
            ),
            (1, 4, 4),
            CTX,
        ),
        (
            "channel",
            lambda: MaskedAffineCoupling(channel_mask((4, 2, 2), 1), width=4),
            (4, 2, 2),
            0,
        ),
        ("actnorm-vector", lambda: ActNorm(4), (4,), 0),
        ("actnorm-image", lambda: ActNorm(3), (3, 2, 2), 0),
        ("permutation", lambda: Permutation(torch.tensor([2, 0, 3, 1])), (4,), 0),
        ("lu-vector", lambda: LULinear(4), (4,), 0),
        ("lu-1x1-conv", lambda: LULinear(3), (3, 2, 2), 0),
        ("maf", lambda: MaskedAutoregressive(4, width=8, depth=1, order=[2, 0, 3, 1]), (4,), 0),
        ("maf-ctx", lambda: MaskedAutoregressive(4, width=8, depth=1, context_dim=CTX), (4,), CTX),
        (
            "spline",
            lambda: SplineCoupling(alternating_mask(4, 0), bins=5, bound=2.0, width=8, depth=1),
            (4,),
            0,
        ),
        (
            "spline-ctx",
            lambda: SplineCoupling(
                random_mask(4, g), bins=4, bound=2.0, width=8, depth=1, context_dim=CTX
            ),
            (4,),
            CTX,
        ),
        ("logit", lambda: Logit(0.05), (3,), 0),
        ("reshape", lambda: Reshape((1, 2, 2), (4,)), (1, 2, 2), 0),
        ("squeeze", lambda: Squeeze(), (4, 1, 2), 0),
        ("factor-out", lambda: FactorOut(LULinear(2), 2), (3, 2, 2), 0),
        ("inverse-maf", lambda: Inverse(MaskedAutoregressive(3, width=8, depth=1)), (3,), 0),
        (
            "compose",
            lambda: Compose(
                [ActNorm(3), LULinear(3), AffineCoupling(alternating_mask(3, 0), width=8, depth=1)]
            ),
            (3,),
            0,
        ),
        ("realnvp-image", realnvp_image_transform, (1, 4, 4), 0),
        ("glow", glow_transform, (1, 4, 4), 0),
    ]


CASES = _cases()


def _jacobian_ladj(fn, v: torch.Tensor, shape: tuple[int, ...]) -> float:
    def flat(u: torch.Tensor) -> torch.Tensor:
        return fn(u.reshape(1, *shape)).reshape(-1)

    jac = torch.autograd.functional.jacobian(flat, v.reshape(-1))  # (D, D)
    return torch.linalg.slogdet(jac).logabsdet.item()


@pytest.mark.parametrize(("name", "make", "shape", "ctx"), CASES, ids=[c[0] for c in CASES])
def test_bijection_roundtrip_and_log_det(name, make, shape, ctx) -> None:
    torch.manual_seed(1)
    bij = make().double().eval()
    _randomise(bij, seed=2)
    n = 3
    gen = torch.Generator().manual_seed(3)
    z = 1.5 * torch.randn(n, *shape, generator=gen, dtype=torch.float64)
    if name == "spline" or name == "spline-ctx":
        z[0, 0] = 3.0  # one coordinate in the linear tail (bound 2)
    c = torch.randn(n, ctx, generator=gen, dtype=torch.float64) if ctx else None

    x, ladj_f = bij.forward_and_ladj(z, c)
    z_back, ladj_i = bij.inverse_and_ladj(x, c)
    assert x.shape[0] == n and x[0].numel() == z[0].numel() and ladj_f.shape == (n,)
    assert torch.allclose(z_back, z, atol=ATOL, rtol=0), name
    assert torch.allclose(ladj_i, -ladj_f, atol=ATOL, rtol=0), name
    assert torch.allclose(bij.inverse(bij.forward(z, c), c), z, atol=ATOL, rtol=0)
    assert torch.allclose(bij.log_abs_det_jacobian(z, c), ladj_f, atol=ATOL, rtol=0)

    for i in range(n):
        ci = None if c is None else c[i : i + 1]
        fwd = _jacobian_ladj(lambda u, ci=ci: bij.forward(u, ci), z[i], shape)
        inv = _jacobian_ladj(lambda u, ci=ci: bij.inverse(u, ci), x[i], tuple(x.shape[1:]))
        assert math.isclose(fwd, ladj_f[i].item(), abs_tol=ATOL), (name, fwd, ladj_f[i])
        assert math.isclose(inv, ladj_i[i].item(), abs_tol=ATOL), (name, inv, ladj_i[i])


def test_context_changes_the_map() -> None:
    # A conditional layer that ignored its context would pass the tests above; this one fails it.
    torch.manual_seed(0)
    bij = AffineCoupling(alternating_mask(4, 0), width=8, depth=1, context_dim=2).double()
    _randomise(bij, seed=1)
    z = torch.randn(2, 4, dtype=torch.float64)
    c0 = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    c1 = torch.tensor([[0.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    assert (bij.forward(z, c0) - bij.forward(z, c1)).abs().max() > 1e-3


def test_squeeze_moves_each_patch_to_channels() -> None:
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    z = Squeeze().inverse(x)  # data side squeezes
    assert z.shape == (1, 4, 2, 2)
    # The top-left 2x2 patch (0, 1, 4, 5) becomes the 4 channels of pixel (0, 0).
    assert z[0, :, 0, 0].tolist() == [0.0, 1.0, 4.0, 5.0]


@pytest.mark.parametrize(
    "mask",
    [[1, 0], [0, 1], [1, 0, 1, 0], [0, 1, 0, 1, 0], [1, 1, 0, 0, 0], [0, 0, 1, 1], [1, 0, 0, 1]],
)
def test_partition_split_and_merge(mask) -> None:
    part = Partition(torch.tensor(mask, dtype=torch.bool))
    x = torch.arange(3.0 * len(mask)).reshape(3, len(mask))
    a, b = part.split(x)
    keep = torch.tensor(mask, dtype=torch.bool)
    assert torch.equal(a, x[:, keep]) and torch.equal(b, x[:, ~keep])
    assert torch.equal(part.merge(a, b), x)


def test_masks() -> None:
    assert alternating_mask(5, 0).tolist() == [True, False, True, False, True]
    cb = checkerboard_mask((1, 2, 2), 0)
    assert cb[0].tolist() == [[True, False], [False, True]]
    ch = channel_mask((4, 1, 1), 0)
    assert ch[:, 0, 0].tolist() == [True, True, False, False]
    m = random_mask(6, torch.Generator().manual_seed(0))
    assert m.sum().item() == 3
