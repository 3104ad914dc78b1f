"""A single Gaussian: the one-component case of :class:`~genlab.models.gmm.GaussianMixture`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from genlab.models.gmm.model import (
    Covariance,
    GaussianMixture,
    Init,
    InitSeed,
    MaxIter,
    Method,
    RegCovar,
    Tol,
)
from genlab.recipes import Recipe
from genlab.registry import register

__all__ = ["Gaussian"]


@register("gaussian")
class Gaussian(GaussianMixture):
    r"""A single Gaussian (full covariance by default): a one-component :class:`GaussianMixture`.

    Takes the same arguments except ``components``; EM converges in one step (the M-step from
    all points is the maximum-likelihood mean and covariance). :meth:`rsample` is the
    reparameterisation :math:`x = \mu + L\varepsilon`, :math:`\varepsilon \sim \mathcal N(0, I)`
    with :math:`L` = ``scale_tril()`` (standard deviations for ``covariance="diag"``),
    differentiable in the mean and scale.

    Example:
        >>> import torch
        >>> from genlab.models.gmm import Gaussian
        >>> x = torch.randn(200, 2, generator=torch.Generator().manual_seed(0))
        >>> model = Gaussian(event_shape=(2,)).fit_closed_form(x)
        >>> model.rsample(3, generator=torch.Generator().manual_seed(0)).requires_grad
        True
    """

    recipes: ClassVar[dict[str, Recipe]] = {
        "points": Recipe(),
        "images": Recipe(params={"reg_covar": 1e-3}),
    }

    def __init__(
        self,
        *,
        event_shape: Sequence[int],
        num_classes: int | None = None,
        num_levels: int | None = None,
        covariance: Covariance = "full",
        method: Method = "em",
        reg_covar: RegCovar = 1e-6,
        max_iter: MaxIter = 100,
        tol: Tol = 1e-3,
        init: Init = "kmeans",
        init_seed: InitSeed = 0,
    ) -> None:
        super().__init__(
            event_shape=event_shape,
            num_classes=num_classes,
            num_levels=num_levels,
            components=1,
            covariance=covariance,
            method=method,
            reg_covar=reg_covar,
            max_iter=max_iter,
            tol=tol,
            init=init,
            init_seed=init_seed,
        )

    @classmethod
    def tiny_configs(cls) -> list[dict[str, Any]]:
        return [
            {"event_shape": (2,)},
            {"event_shape": (3,), "method": "sgd", "num_classes": 3},
            {"event_shape": (1, 8, 8), "num_levels": 17, "covariance": "diag"},
        ]
