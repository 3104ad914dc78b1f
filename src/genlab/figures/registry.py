"""The course's figures by name, and :func:`make_figures`, which draws them one after another.

Each :class:`FigureSpec` names a function ``draw(out, work, *, progress, **budget) ->
list[Path]``: ``out`` is the folder of PNGs, ``work`` a scratch folder for run folders, and
``budget`` the training steps or epochs (full by default, ``quick`` for a first look).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genlab.errors import UnknownNameError
from genlab.figures import (
    autoregressive,
    change_of_variables,
    conditional,
    diffusion,
    gans,
    histograms,
    mixtures,
    realnvp,
)


@dataclass(frozen=True)
class FigureSpec:
    """One figure of the course.

    Attributes:
        name: Its name (``--only NAME``); its PNGs are ``NAME.png`` or ``NAME-PART.png``.
        slide: The lecture slide it illustrates.
        draw: ``draw(out, work, *, progress, **budget) -> list[Path]``.
        quick: Smaller budgets for ``quick=True`` (a first look in seconds).
    """

    name: str
    slide: str
    draw: Callable[..., list[Path]]
    quick: Mapping[str, Any] = field(default_factory=dict)


FIGURES: dict[str, FigureSpec] = {spec.name: spec for spec in (
    FigureSpec("histogram", "Goal: learn a distribution (histogram; inference and samples)",
               histograms.draw_histograms),
    FigureSpec("histogram-dimension", "Histograms: inefficient in high dimensions",
               histograms.draw_dimension_sweep, {"n_train": 2000, "max_dim": 4}),
    FigureSpec("gmm-sgd-em", "Parametrizing distributions: maximum likelihood with SGD",
               mixtures.draw_sgd_versus_em, {"steps": 60}),
    FigureSpec("autoregressive", "Autoregressive models: p(x) = prod_i p(x_i | x_<i)",
               autoregressive.draw_autoregressive, {"steps": 60}),
    FigureSpec("change-of-variables", "Flow models: how to train? (change of variables)",
               change_of_variables.draw_change_of_variables),
    FigureSpec("realnvp", "Flows: example (inverse flow) and how to sample",
               realnvp.draw_realnvp, {"steps": 100}),
    FigureSpec("gan", "GAN training: issues, architectures, example after 5 epochs",
               gans.draw_gan, {"epochs": (1, 2, 3)}),
    FigureSpec("diffusion", "Diffusion models: forward kernel, q(x_t), denoising",
               diffusion.draw_diffusion, {"steps": 200}),
    FigureSpec("conditional", "Generative models: optionally condition on y, x ~ p(x | y)",
               conditional.draw_conditional, {"steps": 20}),
)}


def make_figures(
    out: str | os.PathLike[str],
    only: str | Sequence[str] | None = None,
    quick: bool = False,
    *,
    progress: bool = True,
    work: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """Train what the course's figures need and write their PNGs into ``out``.

    Arguments:
        out: Folder of the PNGs (created).
        only: A figure name or names (:data:`FIGURES`); None draws every figure.
        quick: Use each figure's small budgets instead of the full ones.
        progress: Say on standard error which figure is being made and how long it took,
            and show the trainer's progress bars.
        work: Folder for the run folders trained on the way; None uses a temporary folder
            removed at the end.

    Returns:
        The PNG paths written, in figure order.

    Raises:
        UnknownNameError: a name in ``only`` is not a figure.
    """
    names = list(FIGURES) if only is None else ([only] if isinstance(only, str) else list(only))
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise UnknownNameError(f"Expected a figure in {', '.join(FIGURES)}, but found "
                               f"{', '.join(map(repr, unknown))}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="genlab-figures-") as scratch:
        root = Path(work) if work is not None else Path(scratch)
        written: list[Path] = []
        for i, name in enumerate(names, 1):
            spec = FIGURES[name]
            start = time.perf_counter()
            if progress:
                print(f"[{i}/{len(names)}] {name}: {spec.slide}", file=sys.stderr, flush=True)
            budget = dict(spec.quick) if quick else {}
            paths = spec.draw(out, root / name, progress=progress, **budget)
            written.extend(paths)
            if progress:
                print(f"[{i}/{len(names)}] {name}: {len(paths)} PNG(s) in "
                      f"{time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    return written
