r"""The flow model: a base distribution pushed through a chain of bijections.

.. math::
    z \sim \pi(z) = \mathcal N(0, I), \qquad x = f(z) = f_k(\dots f_1(z)),

    \log p(x) = \log \pi(f^{-1}(x)) + \log\left|\det \frac{\partial f^{-1}}{\partial x}\right|.

:meth:`Flow._log_prob` runs the inverse chain and adds its log-determinant (change of
variables); :meth:`Flow._sample` draws :math:`z` and runs the forward chain. Training
maximises :math:`\sum_i \log p(x^{(i)})` through the default objective of
:class:`~genlab.base.GenerativeModel`.

Discrete data (``num_levels = L``): the integers are dequantized, :math:`u = (x + \epsilon)/L`,
and a :class:`~.preprocess.Logit` bijection is appended to the chain, so

.. math::
    \log P(x) \ge \mathbb E_\epsilon[\log p_u((x + \epsilon)/L)] - D \log L,

the honest bound of ``genlab.data.transforms``; samples are quantized back to integers.

:meth:`Flow.rsample` draws reparameterised samples: the same computation as ``sample`` with
gradients kept, so a loss on the samples trains the flow's parameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab import rand
from genlab.base import GenerativeModel
from genlab.data.transforms import dequantization_log_det, quantize, uniform_dequantize
from genlab.errors import ConfigError, DataError
from genlab.models.flows.bijections import Bijection, Compose
from genlab.models.flows.normalization import ActNorm
from genlab.models.flows.preprocess import Logit
from genlab.settings import Annotated, Setting

#: Settings every registered flow takes, declared once (:mod:`genlab.settings`).
ConditionSize = Annotated[int | None, Setting(
    "size of a learned class embedding given to every conditioner (None: one-hot labels)",
    ge=1)]
ConditionalBase = Annotated[bool, Setting("a diagonal Gaussian base per class (needs labels)")]
Alpha = Annotated[float, Setting(
    "margin of the logit preprocessing of discrete data", ge=0, lt=0.5)]

# Dequantization noise in eval mode comes from this fixed seed, so log_prob(x) of the same
# batch is reproducible (still an unbiased one-sample estimate of the bound).
EVAL_DEQUANTIZATION_SEED = 0
SAMPLE_CHUNK = 4096


class Flow(GenerativeModel):
    r"""A normalizing flow :math:`x = f_k(\dots f_1(z))`, :math:`z \sim \mathcal N(0, I)`.

    Compose new flows from Python by passing any list of bijections. To make one loadable
    with ``genlab.load``, register a subclass whose constructor builds the list from JSON-able
    arguments (see ``docs/flows.md`` and :class:`~.realnvp.RealNVP`).

    Arguments:
        event_shape: Shape of one sample.
        bijections: The maps :math:`f_1, \dots, f_k`, in the order applied to the latent
            (the last one produces the data); each acts on ``(n, *event_shape)``.
        num_classes: Number of class labels for p(x | y); the label is turned into a context
            vector passed to every bijection (which must have been built with
            ``context_dim = Flow.context_dim(num_classes, condition_size)``).
        num_levels: Number of levels of discrete data (adds dequantization and logit).
        condition_size: Size of a learned label embedding; None uses a one-hot label.
        conditional_base: Give each class its own diagonal Gaussian base (mean, log-std).
        alpha: Margin of the logit preprocessing for discrete data.
        conditions: Condition kinds (:mod:`genlab.conditioning`); ``("label",)`` is
            ``num_classes``, other kinds need a flow that reads them (``cond_realnvp``).

    Example:
        >>> import torch
        >>> from genlab.models.flows import AffineCoupling, Flow, alternating_mask
        >>> flow = Flow(event_shape=(2,), bijections=[
        ...     AffineCoupling(alternating_mask(2, i % 2), width=16, depth=1) for i in range(4)])
        >>> flow.log_prob(torch.zeros(5, 2)).shape
        torch.Size([5])
        >>> flow.sample(3).shape
        torch.Size([3, 2])
        >>> flow.rsample(3).requires_grad
        True
    """

    has_encoder: ClassVar[bool] = True

    def __init__(
        self,
        *,
        event_shape: Sequence[int],
        bijections: Annotated[list[Bijection], Setting(
            "the maps f_1, ..., f_k in the order applied to the latent (Python only)")],
        num_classes: int | None = None,
        num_levels: int | None = None,
        condition_size: ConditionSize = None,
        conditional_base: ConditionalBase = False,
        alpha: Alpha = 0.05,
        conditions: Sequence[str] | None = None,
    ) -> None:
        super().__init__(event_shape=event_shape, num_classes=num_classes, num_levels=num_levels,
                         conditions=conditions)
        if conditional_base and num_classes is None:
            raise ConfigError("Expected num_classes with conditional_base=True, but found None.")
        chain = list(bijections)
        if num_levels is not None:
            chain.append(Logit(alpha))  # last map: R^D -> unit cube, data side
        self.transform = Compose(chain)
        self.embedding = None
        if num_classes is not None and condition_size is not None:
            self.embedding = nn.Embedding(num_classes, condition_size)
        if conditional_base:
            d = self.event_dim
            self.base_loc = nn.Parameter(torch.zeros(num_classes, d))
            self.base_log_scale = nn.Parameter(torch.zeros(num_classes, d))
        self.conditional_base = bool(conditional_base)

    @staticmethod
    def context_dim(num_classes: int | None, condition_size: int | None = None) -> int:
        """Size of the context vector the bijections receive (0 for unconditional flows)."""
        if num_classes is None:
            return 0
        return int(condition_size) if condition_size is not None else int(num_classes)

    # ------------------------------------------------------------------ pieces
    def context(self, y: Tensor | None) -> Tensor | None:
        """Class labels ``(n,)`` to the context ``(n, context_dim)`` (embedding or one-hot)."""
        if y is None:
            return None
        if self.embedding is not None:
            return self.embedding(y)
        return F.one_hot(y, self.num_classes).to(self.dtype)

    def base_log_prob(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        r""":math:`\log \pi(z)` for latents ``(n, *event_shape)``; shape ``(n,)``."""
        z = z.reshape(z.shape[0], -1)  # (n, D)
        if self.conditional_base:
            loc, log_scale = self.base_loc[y], self.base_log_scale[y]
            z = (z - loc) * torch.exp(-log_scale)
            return (
                -0.5 * (z**2).sum(-1)
                - log_scale.sum(-1)
                - 0.5 * z.shape[1] * math.log(2 * math.pi)
            )
        return -0.5 * (z**2).sum(-1) - 0.5 * z.shape[1] * math.log(2 * math.pi)

    def base_sample(
        self, n: int, y: Tensor | None, generator: torch.Generator | None, temperature: float = 1.0
    ) -> Tensor:
        """Draw ``n`` latents ``(n, *event_shape)`` from the base, scaled by ``temperature``."""
        eps = rand.randn(
            (n, self.event_dim), generator=generator, device=self.device, dtype=self.dtype
        )
        z = temperature * eps
        if self.conditional_base:
            z = self.base_loc[y] + torch.exp(self.base_log_scale[y]) * z
        return z.reshape(n, *self.event_shape)

    def _dequantize(self, x: Tensor) -> tuple[Tensor, float]:
        """Integers to the unit cube, with the ``-D log L`` term of the bound."""
        if self.num_levels is None:
            return x, 0.0
        generator = None
        if not self.training:
            generator = torch.Generator(device=x.device).manual_seed(EVAL_DEQUANTIZATION_SEED)
        u = uniform_dequantize(x, self.num_levels, generator=generator)
        return u, dequantization_log_det(self.event_dim, self.num_levels)

    # ------------------------------------------------------------------ the model
    def _log_prob(self, x: Tensor, y: Tensor | None) -> Tensor:
        u, log_det_dequant = self._dequantize(x)
        z, ladj = self.transform.inverse_and_ladj(u, self.context(y))  # z = f^{-1}(x)
        log_prob = self.base_log_prob(z, y) + ladj + log_det_dequant
        # The training loss is left to the trainer's NaN guard; every other call is checked.
        checked = not (self.training and torch.is_grad_enabled())
        if checked and not torch.isfinite(log_prob).all():
            bad = (~torch.isfinite(log_prob)).nonzero()[0, 0].item()
            raise DataError(
                f"Expected a finite log_prob, but found {log_prob[bad].item()} for sample {bad} "
                f"(max |x| = {x[bad].abs().max().item():.3g}): the flow maps it beyond the "
                f"range of {x.dtype}. Standardise the data or evaluate in float64."
            )
        return log_prob

    def _sample(
        self,
        n: int,
        y: Tensor | None,
        *,
        generator: torch.Generator | None = None,
        temperature: Annotated[float, Setting(
            "scale of the base noise (below 1: samples nearer the modes)", gt=0)] = 1.0,
    ) -> Tensor:
        x = self._push_forward(n, y, generator, temperature)
        if self.num_levels is not None:
            x = quantize(x, self.num_levels)
        return x

    def rsample(
        self,
        n: int,
        y: Tensor | int | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Draw ``n`` reparameterised samples, shape ``(n, *event_shape)``.

        ``x = f(z)`` with ``z`` from the base, computed with gradients (as
        ``torch.distributions`` ``rsample``): a loss on the samples back-propagates to the
        flow's parameters. With the same seeded ``generator`` the values equal ``sample``'s.

        For discrete data (``num_levels = L``) the samples are the continuous values before
        quantization, on the data scale: ``L u``, with ``u`` the flow's point of the unit cube
        (the logit margin ``alpha`` lets it reach ``alpha / (1 - 2 alpha)`` beyond either
        face); ``sample`` returns ``floor(L u)`` clamped to ``[0, L - 1]``.

        Arguments:
            n: Number of samples (positive int).
            y: Class labels, an int or a tensor of shape ``(n,)`` (conditional models only).
            generator: Source of the base noise.
        """
        n = self._check_n(n)
        x = self._push_forward(n, self._check_y(y, n), generator, 1.0)
        if self.num_levels is not None:
            x = x * self.num_levels
        return x

    def _push_forward(
        self, n: int, y: Tensor | None, generator: torch.Generator | None, temperature: float
    ) -> Tensor:
        """Base samples pushed through the chain: ``(n, *event_shape)``, before quantization."""
        z = self.base_sample(n, y, generator, temperature)
        context = self.context(y)
        # x = f(z), in chunks: the activations of a chunk stay in cache and memory is bounded.
        x = torch.cat(
            [
                self.transform.forward(
                    z[i : i + SAMPLE_CHUNK],
                    None if context is None else context[i : i + SAMPLE_CHUNK],
                )
                for i in range(0, n, SAMPLE_CHUNK)
            ]
        )
        return x

    def _encode(self, x: Tensor, y: Tensor | None) -> Tensor:
        """The latent ``z = f^{-1}(x)``, flattened to ``(n, D)`` (discrete data at the level
        centres)."""
        if self.num_levels is not None:
            x = (x + 0.5) / self.num_levels
        return self.transform.inverse(x, self.context(y)).reshape(x.shape[0], -1)

    def interpolate(self, x0: Tensor, x1: Tensor, steps: int = 8,
                    y: Tensor | int | None = None) -> Tensor:
        """Data-space paths between ``x0`` and ``x1`` ``(n, *event_shape)`` through the latent
        space: ``z_i = f^-1(x_i)``, a spherical path between them (the base is Gaussian,
        :func:`~genlab.viz.interpolation.slerp`), pushed forward by ``f`` (and quantized for
        discrete data). The ends give back ``x0`` and ``x1``.

        Returns:
            Shape ``(n, steps, *event_shape)``.
        """
        from genlab.viz.interpolation import slerp

        x0, _ = self._check_x(x0)
        x1, _ = self._check_x(x1)
        n = x0.shape[0]
        y = self._check_y(y, n)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                z0, z1 = (self._encode(x, y).reshape(n, *self.event_shape) for x in (x0, x1))
                path = slerp(z0, z1, steps).reshape(n * steps, *self.event_shape)
                # Each path keeps its own condition: row i of y for its ``steps`` points.
                rows = torch.arange(n, device=self.device).repeat_interleave(steps)
                context = self.context(None if y is None else y[rows])
                x = self.transform.forward(path, context)
        finally:
            self.train(was_training)
        if self.num_levels is not None:
            x = quantize(x, self.num_levels)
        return x.reshape(n, steps, *self.event_shape)

    @torch.no_grad()
    def initialize(self, data: Any, *, batch: int = 1024) -> None:
        """Data-dependent initialisation of every ActNorm: one inverse pass over a batch.

        Arguments:
            data: A :class:`~genlab.data.dataset.Dataset` (or anything with ``.x``, ``.y``).
            batch: Number of leading samples used for the statistics.
        """
        if not any(isinstance(m, ActNorm) for m in self.modules()):
            return
        x = data.x[:batch].to(device=self.device, dtype=self.dtype)
        y = None
        if self.num_classes is not None:
            labels = getattr(data, "y", None)
            # Without labels the statistics are still those of the data; use class 0.
            y = torch.zeros(len(x), dtype=torch.long) if labels is None else labels[:batch]
            y = y.to(self.device)
        was_training = self.training
        self.train()
        try:
            u, _ = self._dequantize(x)
            self.transform.inverse_and_ladj(u, self.context(y))
        finally:
            self.train(was_training)

    # ------------------------------------------------------------------ pictures
    @classmethod
    def figures(cls) -> dict[str, str]:
        return {
            "stages": "the inverse flow carrying data to the base distribution layer by "
            "layer, before and after training",
            "sampling": "base samples z pushed through the flow layer by layer to data, "
            "before and after training",
            "interpolation": "test points' latents z = f^-1(x) joined by spherical paths "
            "and pushed forward: one strip per pair",
        }

    def plot(self, kind: str, run_dir: Path, out: Path) -> list[Path]:
        """Draw ``stages``, ``sampling`` (:mod:`genlab.viz.flows`) or ``interpolation``
        (:mod:`genlab.viz.interpolation`) of the run in ``run_dir``."""
        from genlab.viz.flows import plot_flow_sampling, plot_flow_stages
        from genlab.viz.interpolation import plot_data_interpolation

        drawers = {"stages": plot_flow_stages, "sampling": plot_flow_sampling,
                   "interpolation": lambda run, png: plot_data_interpolation(self, run, png)}
        if kind not in drawers:
            return super().plot(kind, run_dir, out)
        return [drawers[kind](run_dir, out)]
