r"""The histogram slides: counts as a density, samples drawn from it, and the curse of dimension.

* :func:`draw_histograms` -- ``histogram.png``: a 1-D histogram (its bars are the estimated
  density :math:`p_i / \text{width}`) with a histogram of samples drawn from it, and a 2-D
  histogram of moons with its samples.
* :func:`draw_dimension_sweep` -- ``histogram-dimension.png``: a joint histogram of D-dim
  standard Gaussian data, with 10 bins per dimension, for D = 1, 2, ...: test NLL per dimension
  against the true entropy, and the fraction of its :math:`10^D` bins that no training point
  fell in.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from genlab.data import load_data
from genlab.errors import ConfigError
from genlab.models.histogram import Histogram
from genlab.viz.core import new_figure, save_figure

#: Entropy per dimension of a standard Gaussian, 0.5 log(2 pi e) nats: the best possible NLL.
GAUSSIAN_ENTROPY = 0.5 * math.log(2 * math.pi * math.e)


def empty_bin_fraction(model: Histogram) -> float:
    """Fraction of a fitted joint histogram's cells that hold no training point."""
    if model.factorized:
        raise ConfigError("Expected a joint histogram, but found a factorized one.")
    occupied = model.keys.numel() if model.sparse else int((model.counts > 0).sum())
    return 1.0 - occupied / (model.num_cells * (model.num_classes or 1))


def draw_histograms(out: Path, work: Path, *, bins_1d: int = 20, bins_2d: int = 32,
                    n_samples: int = 5000, progress: bool = False) -> list[Path]:
    """Write ``histogram.png``: 1-D bars with samples, and 2-D moons with samples."""
    g = torch.Generator().manual_seed(0)
    data = load_data("moons")
    x1 = data.x[:, :1].double()  # (n, 1): the first coordinate of moons
    h1 = Histogram(event_shape=(1,), bins=bins_1d, alpha=0.0).fit_closed_form(x1)
    h2 = Histogram(event_shape=(2,), bins=bins_2d, alpha=0.0).fit_closed_form(data.x.double())

    fig = new_figure(1200, 320, dpi=80)
    axes = fig.subplots(1, 4)
    edges = h1.edges[0, : bins_1d + 1]
    centres = (edges[:-1] + edges[1:]) / 2
    density = h1.log_prob(centres[:, None]).exp().numpy()  # (bins,) p_i / width_i
    widths, centres = (edges[1:] - edges[:-1]).numpy(), centres.numpy()
    axes[0].bar(centres, density, width=widths, color="tab:blue", alpha=0.6,
                edgecolor="white", label="histogram p(x)")
    axes[0].set_title(f"1-D: {bins_1d} bins counted from {len(x1)} points", fontsize=9)
    s1 = h1.sample(n_samples, generator=g)[:, 0]
    axes[1].bar(centres, density, width=widths, color="tab:blue", alpha=0.3,
                edgecolor="white", label="p(x)")
    axes[1].hist(s1.numpy(), bins=60, density=True, histtype="step", color="tab:red",
                 label=f"{n_samples} samples")
    axes[1].set_title("sampling: pick bin i w.p. p_i, then uniform in it", fontsize=9)
    axes[1].legend(fontsize=7)

    e2 = h2.edges[:, : bins_2d + 1]
    box = (float(e2[0, 0]), float(e2[0, -1]), float(e2[1, 0]), float(e2[1, -1]))
    table = h2.counts[0].reshape(bins_2d, bins_2d).double()  # (bins_x, bins_y), row-major
    axes[2].imshow(table.T.numpy(), origin="lower", extent=box, aspect="auto", cmap="viridis")
    axes[2].set_title(f"2-D: {bins_2d}x{bins_2d} bin counts (moons)", fontsize=9)
    s2 = h2.sample(n_samples, generator=g)
    axes[3].scatter(s2[:, 0], s2[:, 1], s=1, alpha=0.4, linewidths=0, c="tab:red")
    axes[3].set_xlim(*box[:2])
    axes[3].set_ylim(*box[2:])
    axes[3].set_title(f"{n_samples} samples from the 2-D histogram", fontsize=9)
    for ax in axes:
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return [save_figure(fig, out / "histogram.png")]


def dimension_sweep(*, n_train: int = 20000, n_test: int = 5000, bins: int = 10,
                    max_dim: int = 8, seed: int = 0) -> dict[str, list[float]]:
    """Joint histograms of standard Gaussian data in D = 1..max_dim dimensions.

    Each histogram has ``bins`` equal bins per dimension on [-6, 6] and Laplace smoothing 1
    (so unseen test cells keep a finite likelihood); the table is stored sparsely.

    Returns:
        Lists over D: ``dims``, ``train_nll`` and ``test_nll`` (nats per dimension) and
        ``empty`` (fraction of the ``bins^D`` cells with no training point).
    """
    g = torch.Generator().manual_seed(seed)
    out: dict[str, list[float]] = {"dims": [], "train_nll": [], "test_nll": [], "empty": []}
    train = torch.randn(n_train, max_dim, generator=g, dtype=torch.float64)
    test = torch.randn(n_test, max_dim, generator=g, dtype=torch.float64)
    for d in range(1, max_dim + 1):
        model = Histogram(event_shape=(d,), bins=bins, range=[-6.0, 6.0], alpha=1.0,
                          sparse=True).fit_closed_form(train[:, :d])
        out["dims"].append(d)
        out["train_nll"].append(-model.log_prob(train[:, :d]).mean().item() / d)
        out["test_nll"].append(-model.log_prob(test[:, :d]).mean().item() / d)
        out["empty"].append(empty_bin_fraction(model))
    return out


def draw_dimension_sweep(out: Path, work: Path, *, n_train: int = 20000, max_dim: int = 8,
                         progress: bool = False) -> list[Path]:
    """Write ``histogram-dimension.png``: NLL and empty-bin fraction against dimension."""
    sweep = dimension_sweep(n_train=n_train, max_dim=max_dim)
    fig = new_figure(800, 320, dpi=80)
    ax, bx = fig.subplots(1, 2)
    ax.plot(sweep["dims"], sweep["test_nll"], "o-", label="test")
    ax.plot(sweep["dims"], sweep["train_nll"], "s--", label="train")
    ax.axhline(GAUSSIAN_ENTROPY, color="0.4", ls=":", label="true entropy")
    ax.set_xlabel("dimension D")
    ax.set_ylabel("NLL, nats per dimension")
    ax.set_title(f"histogram, 10 bins per dimension, n = {n_train}", fontsize=9)
    ax.legend(fontsize=7)
    bx.plot(sweep["dims"], sweep["empty"], "o-", color="tab:red")
    bx.set_xlabel("dimension D")
    bx.set_ylabel("fraction of empty bins")
    bx.set_ylim(-0.02, 1.02)
    bx.set_title("10^D bins, almost all empty", fontsize=9)
    for a in (ax, bx):
        a.grid(alpha=0.3)
        a.tick_params(labelsize=7)
    fig.tight_layout()
    return [save_figure(fig, out / "histogram-dimension.png")]
