r"""Maximum likelihood with SGD, on the course's example: a Gaussian mixture.

``gmm-sgd-em.png``: the mean training log-likelihood :math:`\frac1n\sum_i \log p_\theta(x^{(i)})`
of an 8-component mixture on 8gaussians, trained by Adam on minibatches
(``GaussianMixture(method="sgd")`` through :func:`genlab.fit`) beside EM from the same
random start, against passes over the data (one EM iteration reads the data once; an SGD
step reads one batch). Both climb the same objective; EM gets there in a few passes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from genlab.data import load_data
from genlab.models.gmm import GaussianMixture
from genlab.models.gmm.em import em, mixture_log_prob
from genlab.train import fit
from genlab.train.callbacks import Callback
from genlab.viz.core import new_figure, save_figure


class TrainLogLikelihood(Callback):
    """Records the mean log-likelihood of ``x`` every ``every`` steps (and at step 0)."""

    def __init__(self, x: torch.Tensor, every: int) -> None:
        self.x, self.every = x, every
        self.steps: list[int] = []
        self.values: list[float] = []

    def _record(self, trainer: Any, step: int) -> None:
        with torch.no_grad():
            self.values.append(trainer.model.log_prob(self.x).mean().item())
        self.steps.append(step)

    def on_train_start(self, trainer: Any) -> None:
        self._record(trainer, 0)

    def on_step_end(self, trainer: Any, step: int, logs: dict[str, Any]) -> None:
        if step % self.every == 0:
            self._record(trainer, step)


def em_curve(model: GaussianMixture, x: torch.Tensor, iterations: int) -> list[float]:
    """Mean log-likelihood of ``x`` before each of ``iterations`` EM iterations and after the
    last, from the start ``model.initialize`` gives (``iterations + 1`` values)."""
    generator = torch.Generator().manual_seed(model.init_seed)
    v, _ = model._training_points(x, generator)
    mixture = model._initial_mixture(v, generator)
    curve = []
    for _ in range(iterations):
        result = em(v, mixture, reg_covar=model.reg_covar, max_iter=1, tol=0.0)
        curve.append(result.log_likelihood)  # at the mixture before this M-step
        mixture = result.mixture
    curve.append(mixture_log_prob(v, mixture).mean().item())
    return curve


def draw_sgd_versus_em(out: Path, work: Path, *, steps: int = 1500, batch_size: int = 256,
                       em_iterations: int = 30, progress: bool = False) -> list[Path]:
    """Write ``gmm-sgd-em.png``: the log-likelihood curves of SGD and EM."""
    data = load_data("8gaussians")
    x = data.x.double()
    settings = {"event_shape": (2,), "components": 8, "init": "random"}
    sgd = GaussianMixture(**settings, method="sgd")
    every = max(1, steps // 60)
    record = TrainLogLikelihood(data.x, every)
    fit(sgd, data, steps=steps, batch_size=batch_size, lr=0.02, callbacks=[record],
        progress=progress)
    em_ll = em_curve(GaussianMixture(**settings), x, em_iterations)

    fig = new_figure(900, 340, dpi=80)
    ax, bx = fig.subplots(1, 2)
    passes = [s * batch_size / len(x) for s in record.steps]
    ax.plot(passes, record.values, "-", label=f"SGD (Adam, batch {batch_size})")
    ax.plot(range(len(em_ll)), em_ll, "o-", ms=3, label="EM")
    ax.set_xlabel("passes over the data")
    ax.set_ylabel("mean log-likelihood (nats)")
    ax.set_title("max_theta (1/n) sum_i log p_theta(x_i)", fontsize=9)
    ax.set_ylim(min(em_ll[0], record.values[0]) - 0.1, max(em_ll + record.values) + 0.1)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    step = max(1, len(x) // 3000)
    bx.scatter(x[::step, 0], x[::step, 1], s=1, c="0.7", linewidths=0)
    means = sgd.means.detach()[0]  # (K, 2)
    bx.scatter(means[:, 0], means[:, 1], marker="+", s=60, c="tab:blue", label="SGD means")
    bx.set_aspect("equal", adjustable="datalim")
    bx.set_title("8gaussians and the SGD mixture's means", fontsize=9)
    bx.legend(fontsize=7)
    for a in (ax, bx):
        a.tick_params(labelsize=7)
    fig.tight_layout()
    return [save_figure(fig, out / "gmm-sgd-em.png")]
