"""The trainer's step without clipping: the gradient norm alone, the same updates."""

from __future__ import annotations

import torch

from genlab import fit, load_data
from genlab.models.flows import RealNVP
from genlab.train import Callback


class Norms(Callback):
    def __init__(self) -> None:
        self.norms: list[float] = []

    def on_step_end(self, trainer, step, logs) -> None:
        self.norms.append(logs["grad_norm_nll"])


def _run(clip_grad: float | None) -> tuple[list[float], dict[str, torch.Tensor]]:
    data = load_data("moons", n=256)
    torch.manual_seed(0)
    model = RealNVP(event_shape=(2,), transforms=2, width=8, depth=1)
    norms = Norms()
    fit(model, data, steps=5, batch_size=64, seed=0, progress=False, callbacks=[norms],
        clip_grad=clip_grad)
    return norms.norms, model.state_dict()


def test_no_clipping_logs_the_norm_and_leaves_the_gradients_as_clipping_above_it_would():
    # A clip far above every norm scales each gradient by exactly 1: same norms, same bytes.
    free_norms, free = _run(None)
    clip_norms, clipped = _run(1e30)
    assert all(n > 0 for n in free_norms)
    assert free_norms == clip_norms
    assert all(torch.equal(free[k], clipped[k]) for k in free)
