r"""Change of variables in one dimension, the identity a flow is trained with.

.. math::
    z \sim \pi(z), \quad x = f(z), \qquad
    p(x) = \pi(f^{-1}(x)) \left| \frac{d f^{-1}}{dx} \right|.

``change-of-variables.png``: a standard normal base density, a monotone map f (a
rational-quadratic spline, the bijection of the neural spline flow, with fixed knots), and the
pushed-forward density. Equal-probability slices of z (between its deciles) are carried to x:
where f stretches (f' > 1) the same probability spreads thinner, where it compresses it
piles up; the Jacobian factor :math:`|df^{-1}/dx| = 1 / f'(z)` is drawn beside the density.
A histogram of f(z) for base samples z checks the formula by sampling.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor

from genlab.models.flows.spline import rational_quadratic_spline
from genlab.viz.core import new_figure, save_figure

#: The spline's unnormalised bin widths, heights and interior derivatives (5 bins on [-3, 3]).
WIDTHS = torch.tensor([0.0, 0.4, -0.6, 0.2, 0.0], dtype=torch.float64)
HEIGHTS = torch.tensor([-0.4, 0.6, -0.7, 0.5, -0.2], dtype=torch.float64)
DERIVATIVES = torch.tensor([0.3, -0.3, 0.4, -0.2], dtype=torch.float64)
BOUND = 3.0


def monotone_map(z: Tensor, *, inverse: bool = False) -> tuple[Tensor, Tensor]:
    """The figure's f (or f^-1 with ``inverse``) and its log-derivative, elementwise ``(m,)``."""
    shape = (*z.shape, -1)
    return rational_quadratic_spline(
        z, WIDTHS.expand(shape), HEIGHTS.expand(shape), DERIVATIVES.expand(shape),
        bound=BOUND, inverse=inverse,
    )


def pushed_forward_log_density(x: Tensor) -> Tensor:
    """``log p(x) = log pi(f^-1(x)) + log |d f^-1 / dx|`` with pi = N(0, 1); shape of ``x``."""
    z, log_jac = monotone_map(x, inverse=True)
    return -0.5 * z**2 - 0.5 * math.log(2 * math.pi) + log_jac


def draw_change_of_variables(out: Path, work: Path, *, n_samples: int = 20000,
                             progress: bool = False) -> list[Path]:
    """Write ``change-of-variables.png``: base density, monotone map, pushed-forward density."""
    z = torch.linspace(-4, 4, 801, dtype=torch.float64)
    x = torch.linspace(-4, 4, 801, dtype=torch.float64)
    fz, _ = monotone_map(z)
    log_p = pushed_forward_log_density(x)
    _, log_jac = monotone_map(x, inverse=True)
    deciles = torch.special.ndtri(torch.linspace(0.1, 0.9, 9, dtype=torch.float64))
    f_deciles, _ = monotone_map(deciles)
    samples, _ = monotone_map(torch.randn(n_samples, generator=torch.Generator().manual_seed(0),
                                          dtype=torch.float64))
    colours = [f"C{i % 10}" for i in range(10)]
    edges_z = [-4.0, *deciles.tolist(), 4.0]
    edges_x = [float(monotone_map(torch.tensor([-4.0], dtype=torch.float64))[0]),
               *f_deciles.tolist(), float(monotone_map(torch.tensor([4.0],
                                                                    dtype=torch.float64))[0])]
    base = torch.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)

    fig = new_figure(1100, 330, dpi=80)
    ax, mx, px = fig.subplots(1, 3)
    for i in range(10):  # each slice holds 10% of the probability, before and after f
        zs = (z >= edges_z[i]) & (z <= edges_z[i + 1])
        ax.fill_between(z[zs], base[zs], color=colours[i], alpha=0.5, lw=0)
        xs = (x >= edges_x[i]) & (x <= edges_x[i + 1])
        px.fill_between(x[xs], log_p[xs].exp(), color=colours[i], alpha=0.5, lw=0)
    ax.plot(z, base, "k", lw=1)
    ax.set_title("base density pi(z) = N(0, 1), deciles", fontsize=9)
    ax.set_xlabel("z")
    mx.plot(z, fz, "k", lw=1.2)
    for dz, dx in zip(deciles.tolist(), f_deciles.tolist(), strict=True):
        mx.plot([dz, dz, -4], [-4, dx, dx], color="0.6", lw=0.6)
    mx.set_xlim(-4, 4)
    mx.set_ylim(-4, 4)
    mx.set_aspect("equal")
    mx.set_xlabel("z")
    mx.set_ylabel("x = f(z)")
    mx.set_title("monotone map f (rational-quadratic spline)", fontsize=9)
    px.hist(samples.numpy(), bins=120, range=(-4, 4), density=True, histtype="step",
            color="0.3", lw=0.8, label="histogram of f(z), z ~ pi")
    px.plot(x, log_p.exp(), "k", lw=1, label="pi(f^-1(x)) |df^-1/dx|")
    jx = px.twinx()
    jx.plot(x, log_jac.exp(), color="tab:red", lw=1, ls="--")
    jx.set_ylabel("|df^-1/dx| (red)", fontsize=8, color="tab:red")
    jx.tick_params(labelsize=7, colors="tab:red")
    px.set_title("pushed-forward density p(x)", fontsize=9)
    px.set_xlabel("x")
    px.legend(fontsize=6, loc="upper left")
    for a in (ax, mx, px):
        a.tick_params(labelsize=7)
    fig.tight_layout()
    return [save_figure(fig, out / "change-of-variables.png")]
