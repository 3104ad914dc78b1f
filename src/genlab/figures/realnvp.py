r"""RealNVP on moons: the inverse flow to a Gaussian and sampling through the flow, stage by stage.

A RealNVP (affine couplings :math:`y_{d+1:D} = x_{d+1:D} \odot \exp(s(x_{1:d})) +
t(x_{1:d})`) is trained on moons with its recipe into a run folder, which keeps the weights
before training (``init.safetensors``) and after. The pictures are
:func:`genlab.viz.flows.plot_flow_stages` (``realnvp-inverse.png``: test points through
:math:`f_k^{-1}, \dots, f_1^{-1}` to z, before and after training) and
:func:`genlab.viz.flows.plot_flow_sampling` (``realnvp-sampling.png``: base draws z through
:math:`f_1, \dots, f_k` to x), the same ones ``genlab plot RUN --kind stages|sampling`` draws.
"""

from __future__ import annotations

from pathlib import Path

from genlab.data import load_data
from genlab.registry import create
from genlab.train import fit
from genlab.viz.flows import plot_flow_sampling, plot_flow_stages

POINTS, DPI = 1000, 60  # a small PNG still shows every stage


def draw_realnvp(out: Path, work: Path, *, steps: int = 2000, progress: bool = False
                 ) -> list[Path]:
    """Train RealNVP on moons for ``steps`` steps; write the inverse and sampling pictures."""
    data, val = load_data("moons"), load_data("moons", split="val")
    run = work / "moons-realnvp"
    model = create("realnvp", data=data)
    fit(model, data, val_data=val, out=run, steps=steps, progress=progress)
    test = load_data("moons", split="test").x[:POINTS]
    return [plot_flow_stages(run, out / "realnvp-inverse.png", data=test, dpi=DPI),
            plot_flow_sampling(run, out / "realnvp-sampling.png", n=POINTS, dpi=DPI)]
