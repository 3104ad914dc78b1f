"""Plots, written as PNG files (matplotlib, headless, written atomically).

Core plots: :func:`plot_density_2d` (data | model density | samples),
:func:`plot_image_grid` (image samples), :func:`plot_training_curves` (from
``metrics.jsonl``). Each ``plot_*`` function returns the path it wrote; the matching
``*_figure`` function returns the :class:`matplotlib.figure.Figure` for further editing, and
:func:`save_figure` writes any figure atomically. Family plots live in ``viz/<family>.py``.
"""

from genlab.viz.core import new_figure, save_figure
from genlab.viz.curves import plot_training_curves, read_metrics, training_curves_figure
from genlab.viz.density import density_2d_figure, plot_density_2d
from genlab.viz.grid import image_grid_figure, plot_image_grid

__all__ = [
    "density_2d_figure", "image_grid_figure", "new_figure", "plot_density_2d",
    "plot_image_grid", "plot_training_curves", "read_metrics", "save_figure",
    "training_curves_figure",
]
