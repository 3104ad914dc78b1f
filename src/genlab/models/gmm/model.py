r"""Gaussian mixture and Gaussian models, fit by EM or by maximum likelihood with SGD.

.. math::

    p_\theta(x) = \sum_{k=1}^K w_k \, \mathcal N(x; \mu_k, L_k L_k^\top)

Two routes to the same maximum-likelihood problem
:math:`\arg\min_\theta -\frac1n \sum_i \log p_\theta(x^{(i)})`:

* ``method="em"`` (default): closed-form E and M steps (:mod:`genlab.models.gmm.em`),
  float64 wherever precision matters, started from k-means centres (k-means++ seeds,
  :mod:`genlab.models.gmm.init`); ``genlab.fit`` calls :meth:`fit_closed_form`.
* ``method="sgd"``: the common trainer minimises the NLL over unconstrained parameters —
  ``logits`` (``w = softmax(logits)``), ``means``, ``log_scale`` (log of the Cholesky
  diagonal, so it stays positive) and ``scale_offdiag`` (the strictly lower triangle); it
  starts from the same k-means initialisation (:meth:`initialize`).

Both routes store their result in those same parameters, so saving, loading, ``log_prob``
and ``sample`` do not care which route was taken.

Discrete data (``num_levels = L``): the mixture lives on the unit cube; data are uniformly
dequantized, ``v = (x + u) / L``, and ``log_prob`` returns the bound
``log p(v) - D log L`` on the log mass. Samples are quantized back to levels.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from genlab import rand
from genlab.base import GenerativeModel
from genlab.data.dataset import Dataset
from genlab.data.transforms import dequantization_log_det, quantize, uniform_dequantize
from genlab.errors import ConfigError, DataError, GenlabWarning, NotFittedError
from genlab.models.gmm.em import Mixture, component_log_prob, em, m_step, precision_factor
from genlab.models.gmm.init import hard_responsibilities, kmeans, kmeans_plusplus
from genlab.recipes import Recipe
from genlab.registry import register
from genlab.settings import Annotated, Setting

__all__ = ["GaussianMixture"]

# The settings both models take, declared once (a Gaussian is a one-component mixture).
Covariance = Annotated[str, Setting(
    "full (a Cholesky factor per component) or diag (independent dimensions)",
    choices=("full", "diag"))]
Method = Annotated[str, Setting(
    "em (closed form) or sgd (maximum likelihood with the common trainer)",
    choices=("em", "sgd"))]
RegCovar = Annotated[float, Setting(
    "added to every variance in the EM M-step (keeps covariances invertible)", ge=0)]
MaxIter = Annotated[int, Setting("maximum EM iterations", ge=1)]
Tol = Annotated[float, Setting(
    "EM stops when the mean training log-likelihood changes by less (nats)", ge=0)]
Init = Annotated[str, Setting(
    "initial centres: kmeans (k-means++ seeds refined by Lloyd), kmeans++ or random points",
    choices=("kmeans", "kmeans++", "random"))]
SeedCandidates = Annotated[int | None, Setting(
    "k-means++ draws per centre, the best kept (None: 2 + log K, as scikit-learn; 1: the "
    "original k-means++)", ge=1)]
InitSeed = Annotated[int, Setting(
    "seed of the initial centres and of the dequantization noise of discrete data", ge=0)]


@register("gmm")
class GaussianMixture(GenerativeModel):
    r"""Mixture of Gaussians with full or diagonal covariances, optionally one per class.

    Arguments:
        event_shape: Shape of one sample; the mixture is over its D = prod(event_shape) values.
        num_classes: One mixture per class label (p(x | y)) when set.
        num_levels: Discrete data with L levels (dequantized to the unit cube, see module doc).
        components: Number of components K per mixture.
        covariance: ``"full"`` (Cholesky factor per component) or ``"diag"``.
        method: ``"em"`` (closed form, default) or ``"sgd"`` (maximum likelihood with the
            common trainer).
        reg_covar: Added to every variance in the EM M-step (keeps covariances invertible).
        max_iter: Maximum EM iterations.
        tol: EM stops when the mean training log-likelihood changes by less than this (nats).
        init: ``"kmeans"`` (k-means++ seeds refined by Lloyd's k-means), ``"kmeans++"`` (the
            seeds alone) or ``"random"`` (centres drawn uniformly from the data); each
            component then takes the points nearest its centre for one M-step.
        seed_candidates: Points drawn per k-means++ centre, the one that lowers the total
            squared distance most kept; None: ``2 + floor(log K)`` (the greedy variant, as
            scikit-learn), 1: the original k-means++, whose more varied seeds can lead EM to
            a mixture that generalises better (bench/bench_gmm.py, digits).
        init_seed: Seed of the generator used for initialisation and for the dequantization
            noise of discrete data (``log_prob`` uses ``init_seed + 1``).

    Example:
        >>> import torch
        >>> from genlab.models.gmm import GaussianMixture
        >>> x = torch.randn(500, 2, generator=torch.Generator().manual_seed(0))
        >>> model = GaussianMixture(event_shape=(2,), components=3).fit_closed_form(x)
        >>> model.log_prob(x[:4]).shape
        torch.Size([4])
    """

    recipes: ClassVar[dict[str, Recipe]] = {
        "points": Recipe(params={"components": 16}, showcase=True),
        "images": Recipe(params={"components": 10, "covariance": "full", "reg_covar": 1e-3},
                         showcase=True,
                         note="bench/bench_gmm.py (digits, EM)"),
    }

    def __init__(
        self,
        *,
        event_shape: Sequence[int],
        num_classes: int | None = None,
        num_levels: int | None = None,
        components: Annotated[int, Setting("Gaussian components K per mixture", ge=1)] = 8,
        covariance: Covariance = "full",
        method: Method = "em",
        reg_covar: RegCovar = 1e-6,
        max_iter: MaxIter = 100,
        tol: Tol = 1e-3,
        init: Init = "kmeans",
        seed_candidates: SeedCandidates = None,
        init_seed: InitSeed = 0,
    ) -> None:
        super().__init__(event_shape=event_shape, num_classes=num_classes, num_levels=num_levels)
        self.components, self.covariance, self.method = components, covariance, method
        self.init, self.init_seed, self.seed_candidates = init, init_seed, seed_candidates
        self.reg_covar, self.max_iter, self.tol = float(reg_covar), max_iter, float(tol)
        classes, dims = num_classes or 1, self.event_dim
        # Unconstrained parameters (the SGD route trains them; EM writes its result into them).
        self.logits = nn.Parameter(torch.zeros(classes, components))  # w = softmax(logits)
        self.means = nn.Parameter(torch.zeros(classes, components, dims))
        self.log_scale = nn.Parameter(torch.zeros(classes, components, dims))  # log diag L
        self.full = covariance == "full" and dims > 1
        if self.full:
            self.scale_offdiag = nn.Parameter(
                torch.zeros(classes, components, dims * (dims - 1) // 2)
            )
        self.register_buffer("fitted", torch.tensor(False))
        # EM diagnostics per class: mean train log-likelihood (of the data EM saw), iterations.
        self.register_buffer(
            "em_log_likelihood", torch.full((classes,), float("nan"), dtype=torch.float64)
        )
        self.register_buffer("em_iterations", torch.zeros(classes, dtype=torch.long))

    @property
    def closed_form(self) -> bool:
        return self.method == "em"

    # ------------------------------------------------------------------ parameters -> mixture
    def scale_tril(self) -> Tensor:
        """Cholesky factors ``L = tril(offdiag) + diag(exp(log_scale))``, ``(C, K, D, D)``
        (full), or standard deviations ``exp(log_scale)``, ``(C, K, D)`` (diagonal)."""
        diag = self.log_scale.exp()
        if not self.full:  # diagonal, or one dimension where full and diagonal coincide
            return diag
        rows, cols = torch.tril_indices(self.event_dim, self.event_dim, -1, device=diag.device)
        tril = torch.diag_embed(diag)
        off = torch.zeros_like(tril)
        off[..., rows, cols] = self.scale_offdiag
        return tril + off

    def _store(self, cls: int, mixture: Mixture) -> None:
        """Write one class's mixture (float64) into the unconstrained parameters."""
        with torch.no_grad():
            self.logits[cls] = mixture.weights.log()
            self.means[cls] = mixture.means
            if self.full:
                rows, cols = torch.tril_indices(self.event_dim, self.event_dim, -1)
                self.log_scale[cls] = mixture.scale.diagonal(dim1=-2, dim2=-1).log()
                self.scale_offdiag[cls] = mixture.scale[:, rows, cols]
            else:
                self.log_scale[cls] = mixture.scale.log()

    def _continuous_log_prob(self, v: Tensor, c: Tensor | None) -> Tensor:
        """``log p(v | class)`` in float64 for points ``(n, D)`` on the continuous scale."""
        log_w = torch.log_softmax(self.logits.double(), dim=-1)  # (C, K)
        factor, log_det = precision_factor(self.scale_tril().double(), full=self.full)
        means, v = self.means.double(), v.double()
        if c is None:
            comp = component_log_prob(v, means[0], factor[0], log_det[0], full=self.full)
            return torch.logsumexp(comp + log_w[0], dim=-1)
        out = v.new_zeros(v.shape[0])
        for cls in c.unique().tolist():
            rows = (c == cls).nonzero().squeeze(1)
            comp = component_log_prob(
                v[rows], means[cls], factor[cls], log_det[cls], full=self.full
            )
            out = out.index_put((rows,), torch.logsumexp(comp + log_w[cls], dim=-1))
        return out

    def _require_fitted(self) -> None:
        if self.method == "em" and not bool(self.fitted):
            raise NotFittedError(
                f"Expected a fitted {type(self).__name__} (method='em'), but found an unfitted "
                "one: call fit_closed_form(data) or genlab.fit(model, data) first."
            )

    # ------------------------------------------------------------------ likelihood
    def _log_prob(self, x: Tensor, y: Tensor | None) -> Tensor:
        """Exact log density; for discrete data the dequantization bound on the log mass.

        The dequantization noise comes from a generator seeded with ``init_seed + 1``, so the same
        batch always gets the same value (the training objective draws fresh noise instead).
        """
        self._require_fitted()
        v = x.reshape(x.shape[0], -1)  # (n, D)
        if not self.discrete:
            return self._continuous_log_prob(v, y).to(x.dtype)
        generator = torch.Generator(device=v.device).manual_seed(self.init_seed + 1)
        v = uniform_dequantize(v.double(), self.num_levels, generator)
        shift = dequantization_log_det(self.event_dim, self.num_levels)
        return (self._continuous_log_prob(v, y) + shift).to(x.dtype)

    def training_loss(self, x: Tensor, y: Tensor | None) -> tuple[Tensor, dict[str, float]]:
        """NLL in nats per dimension; discrete data get fresh dequantization noise each call."""
        v = x.reshape(x.shape[0], -1)  # (b, D)
        shift = 0.0
        if self.discrete:
            v = uniform_dequantize(v, self.num_levels)
            shift = dequantization_log_det(self.event_dim, self.num_levels)
        loss = -(self._continuous_log_prob(v, y) + shift).mean() / self.event_dim
        loss = loss.to(self.dtype)
        return loss, {"nll": loss.item()}

    # ------------------------------------------------------------------ sampling
    def _draw(self, n: int, y: Tensor | None, generator: torch.Generator | None) -> Tensor:
        """Pick component k with probability w_k, then ``x = mu_k + L_k eps``, eps ~ N(0, I).

        Returns float64 points ``(n, D)`` on the continuous scale, differentiable in the
        means and scales (not in the weights: the choice of k is discrete).
        """
        self._require_fitted()
        c = torch.zeros(n, dtype=torch.long, device=self.device) if y is None else y
        scale = self.scale_tril().double()
        out = torch.empty(n, self.event_dim, dtype=torch.float64, device=self.device)
        for cls in c.unique().tolist():
            rows = (c == cls).nonzero().squeeze(1)
            weights = torch.softmax(self.logits[cls].detach().double(), dim=-1)
            k = rand.multinomial(weights, rows.numel(), replacement=True, generator=generator)
            eps = rand.randn(
                rows.numel(),
                self.event_dim,
                generator=generator,
                dtype=torch.float64,
                device=self.device,
            )
            x = self.means[cls].double()[k]  # (m, D)
            for comp in k.unique().tolist():
                pick = k == comp
                s = scale[cls, comp]  # L_k (D, D) or std (D,)
                x[pick] += eps[pick] @ s.T if self.full else eps[pick] * s
            out[rows] = x
        return out

    def _sample(
        self, n: int, y: Tensor | None, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """Pick component k with probability w_k, then ``x = mu_k + L_k eps``, eps ~ N(0, I)."""
        out = self._draw(n, y, generator)
        if self.discrete:
            out = quantize(out, self.num_levels)
        return out.to(self.dtype).reshape(n, *self.event_shape)

    def rsample(
        self,
        n: int,
        y: Tensor | int | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        r"""Reparameterised samples: ``x = mu_k + L_k eps``, differentiable in the parameters.

        The same draws as :meth:`sample` with the same generator, but with the autograd graph
        kept, as ``torch.distributions``' ``rsample``: the gradient of a function of the
        samples flows into ``means``, ``log_scale`` and ``scale_offdiag`` of the chosen
        components. The component choice k ~ Categorical(w) is discrete, so no gradient
        reaches ``logits`` (the weights).

        Arguments:
            n: Number of samples (positive int).
            y: Class labels, an int or a tensor of shape ``(n,)`` (conditional models only).
            generator: Source of randomness; the same seeded generator gives the same samples.

        Returns:
            Tensor of shape ``(n, *event_shape)`` with a gradient.

        Raises:
            ConfigError: ``n`` is not a positive int, or the data are discrete
                (``num_levels`` set: quantized samples are piecewise constant in the
                parameters, so they have no useful gradient).
        """
        n = self._check_n(n)
        if self.discrete:
            raise ConfigError(
                f"Expected continuous data (num_levels=None) for rsample, but found "
                f"num_levels={self.num_levels}: quantized samples have no gradient. Use sample."
            )
        y = self._check_y(y, n)
        return self._draw(n, y, generator).to(self.dtype).reshape(n, *self.event_shape)

    # ------------------------------------------------------------------ fitting
    def _training_points(
        self, data: Dataset | Tensor, generator: torch.Generator
    ) -> tuple[Tensor, Tensor | None]:
        """Validated float64 points ``(n, D)`` on the continuous scale, and labels."""
        x_raw = data.x if isinstance(data, Dataset) else data
        # Labels matter only to a conditional model; toy sets carry them regardless.
        y_raw = data.y if isinstance(data, Dataset) and self.conditional else None
        x, _ = self._check_x(x_raw)
        y = self._check_y(y_raw, x.shape[0])
        v = x.reshape(x.shape[0], -1).double()  # (n, D)
        if self.discrete:
            v = uniform_dequantize(v, self.num_levels, generator)
        return v, y

    def _class_points(self, v: Tensor, y: Tensor | None) -> list[tuple[int, Tensor]]:
        classes = self.num_classes or 1
        groups = [(0, v)] if y is None else [(c, v[y == c]) for c in range(classes)]
        for c, points in groups:
            if points.shape[0] < self.components:
                raise DataError(
                    f"Expected at least components={self.components} training points"
                    f"{f' of class {c}' if y is not None else ''}, but found {points.shape[0]}."
                )
        return groups

    def _initial_mixture(self, v: Tensor, generator: torch.Generator) -> Mixture:
        """k-means, k-means++ or random centres; each point goes to its nearest; one M-step."""
        if self.init in ("kmeans", "kmeans++"):
            centres = kmeans_plusplus(v, self.components, generator,
                                      candidates=self.seed_candidates)
            if self.init == "kmeans":
                centres = kmeans(v, centres)
        else:
            pick = rand.randperm(v.shape[0], generator=generator, device=v.device)[
                : self.components
            ]
            centres = v[pick]
        resp = hard_responsibilities(v, centres)
        return m_step(v, resp, full=self.full, reg_covar=self.reg_covar)

    def initialize(self, data: Dataset) -> None:
        """SGD route: start from the initial mixture EM would start from (no EM iterations)."""
        generator = torch.Generator(device=self.device).manual_seed(self.init_seed)
        v, y = self._training_points(data, generator)
        for cls, points in self._class_points(v, y):
            self._store(cls, self._initial_mixture(points, generator))
        self.fitted.fill_(True)

    def fit_closed_form(
        self, data: Dataset | Tensor, *, val_data: Dataset | None = None
    ) -> GaussianMixture:
        """Fit by EM from the ``init`` initialisation (one mixture per class).

        Arguments:
            data: A :class:`~genlab.data.dataset.Dataset`, or a tensor ``(n, *event_shape)``
                for an unconditional model.
            val_data: Unused (EM has no validation-driven choices); accepted for the trainer.

        Returns:
            ``self``, fitted. A GenlabWarning says when EM stopped at ``max_iter`` before
            converging.
        """
        if self.method != "em":
            raise ConfigError(
                "Expected method='em' for fit_closed_form, but found method='sgd': train it "
                "with genlab.fit(model, data)."
            )
        generator = torch.Generator(device=self.device).manual_seed(self.init_seed)
        v, y = self._training_points(data, generator)
        for cls, points in self._class_points(v, y):
            centre = points.mean(0)  # EM is translation-equivariant; centring helps rounding
            start = self._initial_mixture(points - centre, generator)
            result = em(
                points - centre,
                start,
                reg_covar=self.reg_covar,
                max_iter=self.max_iter,
                tol=self.tol,
            )
            result.mixture.means += centre
            self._store(cls, result.mixture)
            self.em_log_likelihood[cls] = result.log_likelihood
            self.em_iterations[cls] = result.iterations
            if not result.converged:
                warnings.warn(
                    f"EM did not converge in max_iter={self.max_iter} iterations (last change "
                    f"above tol={self.tol:g}). Increase max_iter or tol.",
                    GenlabWarning,
                    stacklevel=2,
                )
        self.fitted.fill_(True)
        return self

    # ------------------------------------------------------------------ registry hooks
    @classmethod
    def tiny_configs(cls) -> list[dict[str, Any]]:
        """Small configurations covering the variants (for the contract tests)."""
        return [
            {"event_shape": (2,), "components": 3},
            {"event_shape": (2,), "components": 2, "covariance": "diag"},
            {"event_shape": (2,), "components": 2, "method": "sgd"},
            {"event_shape": (3,), "components": 2, "covariance": "diag", "method": "sgd"},
            {"event_shape": (2,), "components": 2, "num_classes": 3},
            {"event_shape": (1, 8, 8), "num_levels": 17, "components": 2, "covariance": "diag"},
            {"event_shape": (1, 2, 2), "num_levels": 17, "components": 2, "method": "sgd"},
        ]

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, components={self.components}, "
            f"covariance={self.covariance!r}, method={self.method!r}"
        )
