"""Every technical figure of the course, regenerated from models trained here.

``genlab figures --out DIR [--only NAME]`` (or :func:`make_figures`) trains what each figure
needs on a small budget and writes its PNGs; ``docs/course.md`` lists, slide by slide, the
equation, the function that computes it, the test that checks it and the figure's name. Each
figure is one function in this package whose training budgets are keyword arguments, so the
tests run every figure on a tiny budget.
"""

from genlab.figures.registry import FIGURES, FigureSpec, make_figures

__all__ = ["FIGURES", "FigureSpec", "make_figures"]
