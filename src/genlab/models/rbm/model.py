r"""The restricted Boltzmann machine: binary hidden units over binary or level-wise visible ones.

Energy and free energy (``phi``, ``m`` and ``A`` are the visible unit type's, see
:mod:`~genlab.models.rbm.units`; ``y`` picks the class's biases of a conditional RBM):

.. math::

    E(v, h \mid y) = -a_y \cdot \phi(v) - \log m(v) - b_y \cdot h - \phi(v)^\top W h, \qquad
    F(v \mid y) = -a_y \cdot \phi(v) - \log m(v) - \sum_j \operatorname{softplus}(
        b_{y,j} + \phi(v)^\top W_{:j}),

``p(v | y) = exp(-F(v | y)) / Z_y``. Both conditionals factorise, which gives block Gibbs
sampling: ``p(h_j = 1 | v) = sigmoid(b_j + phi(v)^T W_{:j})`` and each visible unit given
``h`` has natural parameters ``a + W h``.

Training (Hinton 2002; Tieleman 2008): the log-likelihood gradient is
``-E_data[grad F] + E_model[grad F]``; contrastive divergence replaces the model expectation
by ``gibbs_steps`` Gibbs sweeps started at the data batch (``cd="cd"``), persistent CD by
sweeps that continue chains kept from the previous step (``cd="pcd"``). Written as one loss for
the common trainer, ``mean F(v_data) - mean F(v_model.detach())`` has exactly that gradient.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812

from genlab import rand
from genlab.base import GenerativeModel, Objective, ValidationMeasure
from genlab.checks import check_int
from genlab.errors import ConfigError
from genlab.models.rbm import partition
from genlab.models.rbm.partition import AISEstimate
from genlab.models.rbm.units import UNIT_TYPES, VisibleUnits
from genlab.recipes import Recipe
from genlab.registry import register
from genlab.settings import Annotated, Setting

if TYPE_CHECKING:
    from genlab.data.dataset import Dataset


class LogProbEstimate(NamedTuple):
    """An estimated log-likelihood: ``log_prob`` ``(*batch)`` in nats and ``stderr``, the
    standard error that the estimate of ``log Z`` carries into each value (shared by every
    sample of a class, so it does not average out over a test set)."""

    log_prob: Tensor
    stderr: Tensor


@register("rbm")
class RBM(GenerativeModel):
    """Restricted Boltzmann machine over discrete data (``num_levels`` set; 2 = binary).

    It has no tractable likelihood and no bound: :meth:`log_prob_estimate` gives
    ``-F(x) - log Z`` with ``log Z`` from annealed importance sampling and its standard error,
    :meth:`log_z_exact` the exact ``log Z`` of models small enough to enumerate. A conditional
    RBM (``num_classes`` set) has its own visible and hidden biases per class (the class as a
    one-hot input connected to both layers), so ``p(x | y)`` has one ``Z_y`` per class.

    Arguments:
        event_shape: Shape of one sample, e.g. ``(1, 8, 8)``.
        num_classes: Classes of a conditional RBM ``p(x | y)``; None for ``p(x)``.
        num_levels: Levels of each visible unit (required; 2 for binary data).
        width: Hidden units H.
        visible: Visible unit type for ``num_levels > 2``: ``"binomial"`` (``L - 1`` coin
            flips) or ``"categorical"`` (a softmax over the levels); both are the binary unit
            when ``num_levels = 2``.
        cd: ``"cd"`` (chains start at the data batch) or ``"pcd"`` (persistent chains).
        gibbs_steps: Gibbs sweeps k per training step (CD-k / PCD-k).
        init_scale: Standard deviation of the initial weights.

    Example:
        >>> from genlab import create, fit, load_data
        >>> digits = load_data("digits")
        >>> rbm = fit(create("rbm", data=digits, width=16), digits, steps=20, progress=False)
        >>> rbm.sample(2, steps=10).shape
        torch.Size([2, 1, 8, 8])
    """

    has_exact_likelihood = False
    has_likelihood_bound = False
    #: ``log_prob_estimate(x)`` gives an estimate of the log-likelihood with its error bar.
    has_likelihood_estimate: ClassVar[bool] = True
    #: Validation scores the pseudo-likelihood (see :meth:`validation_loss`), not the NLL.
    validation_measure: ClassVar[ValidationMeasure] = ValidationMeasure(
        "val_pseudo_nll", "val_pseudo_bpd", "pseudo-NLL bits/dim")
    has_encoder = True

    recipes: ClassVar[dict[str, Recipe]] = {
        "images": Recipe(
            params={"width": 128, "visible": "categorical", "cd": "pcd", "gibbs_steps": 1},
            train={"steps": 6000, "batch_size": 64, "lr": 1e-3, "keep": "last"},
            quick={"steps": 600},
            showcase=True,
            note="bench/bench_rbm.py: PCD-1 on the digits training split; the last weights "
                 "are kept (the validation pseudo-likelihood is reported, not ranked by)",
        ),
    }

    def __init__(
        self,
        *,
        event_shape: Sequence[int],
        num_classes: int | None = None,
        num_levels: int | None = None,
        width: Annotated[int, Setting("hidden units H", ge=1)] = 128,
        visible: Annotated[str, Setting(
            "visible units for more than 2 levels: binomial (L-1 coin flips) or categorical "
            "(softmax over the levels)", choices=UNIT_TYPES)] = "categorical",
        cd: Annotated[str, Setting(
            "contrastive divergence from the data (cd) or from persistent chains (pcd)",
            choices=("cd", "pcd"))] = "pcd",
        gibbs_steps: Annotated[int, Setting("Gibbs sweeps k per training step", ge=1)] = 1,
        init_scale: Annotated[float, Setting("std of the initial weights", gt=0)] = 0.01,
    ) -> None:
        super().__init__(event_shape=event_shape, num_classes=num_classes, num_levels=num_levels)
        if num_levels is None:
            raise ConfigError(
                "Expected discrete data (num_levels set, 2 for binary) for an RBM, whose "
                "visible units are binary or level-wise, but found continuous data."
            )
        self.width = width
        self.cd = cd
        self.gibbs_steps = gibbs_steps
        self.units = VisibleUnits(visible, num_levels)
        self.visible_units = self.event_dim  # D
        classes, size = num_classes or 1, self.units.size
        self.weight = nn.Parameter(init_scale * torch.randn(self.event_dim, size, width))
        self.visible_bias = nn.Parameter(torch.zeros(classes, self.event_dim, size))
        self.hidden_bias = nn.Parameter(torch.zeros(classes, width))
        # The base-rate model of AIS and of the sampler's first state (set by initialize).
        self.register_buffer("base_logits", torch.zeros(self.event_dim, size))
        # Persistent chains of PCD, levels (m, D); sized by the first training batch.
        self.register_buffer("chains", torch.zeros(0, self.event_dim, dtype=torch.long))

    # ------------------------------------------------------------------ the two layers
    def _flat(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], -1)  # (n, D)

    def _bias(self, bias: Tensor, y: Tensor | None, n: int) -> Tensor:
        return bias[y] if y is not None else bias[0].expand(n, *bias.shape[1:])

    def hidden_input(self, v: Tensor, y: Tensor | None) -> Tensor:
        """``b_y + phi(v)^T W`` of levels ``v`` ``(n, D)``: shape ``(n, H)``."""
        return self._bias(self.hidden_bias, y, len(v)) + self.units.project(v, self.weight)

    def interaction(self, h: Tensor) -> Tensor:
        """``W h`` for hidden states ``h`` ``(n, H)``: shape ``(n, D, K)``."""
        return (h @ self.weight.flatten(0, 1).T).reshape(len(h), *self.weight.shape[:2])

    def visible_field(self, h: Tensor, y: Tensor | None) -> Tensor:
        """Natural parameters ``a_y + W h`` of ``p(v | h)``: shape ``(n, D, K)``."""
        return self._bias(self.visible_bias, y, len(h)) + self.interaction(h)

    def _free_energy(self, v: Tensor, y: Tensor | None) -> Tensor:
        a = self._bias(self.visible_bias, y, len(v))  # (n, D, K)
        linear = self.units.dot(a, v) + self.units.log_base(v)
        return -linear - F.softplus(self.hidden_input(v, y)).sum(1)  # (n,)

    def gibbs(self, v: Tensor, y: Tensor | None, steps: int,
              generator: torch.Generator | None = None) -> Tensor:
        """Run ``steps`` block Gibbs sweeps (h ~ p(h | v), then v ~ p(v | h)) from levels
        ``v`` ``(n, D)``; returns the last levels ``(n, D)``."""
        for _ in range(steps):
            h = rand.bernoulli(torch.sigmoid(self.hidden_input(v, y)), generator=generator)
            v = self.units.sample(self.visible_field(h, y), generator)
        return v

    def base_sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Levels ``(n, D)`` from the base-rate model (independent units, the data's level
        frequencies): where the sampler's and AIS's chains start."""
        field = self.base_logits.expand(n, *self.base_logits.shape)
        return self.units.sample(field, generator)

    # ------------------------------------------------------------------ public, validated
    def free_energy(self, x: Tensor | np.ndarray, y: Tensor | np.ndarray | int | None = None
                    ) -> Tensor:
        """``F(x | y)`` in nats, shape ``(*batch)``: ``log p(x | y) = -F(x | y) - log Z_y``."""
        x, batch_shape = self._check_x(x)
        y = self._check_y(y, x.shape[0])
        return self._free_energy(self._flat(x), y).reshape(batch_shape)

    def log_z_exact(self) -> Tensor:
        """Exact ``log Z`` by enumerating the smaller layer (at most 2^20 configurations;
        :func:`~genlab.models.rbm.partition.exact_log_z`). Shape ``()`` or ``(num_classes,)``.

        Raises:
            ConfigError: the model is too large to enumerate (use :meth:`log_z_estimate`).
        """
        return partition.exact_log_z(self)

    def log_z_estimate(self, *, chains: int = 100, temperatures: int = 1000,
                       generator: torch.Generator | None = None) -> AISEstimate:
        """An AIS estimate of ``log Z`` with its standard error and effective sample size
        (:func:`~genlab.models.rbm.partition.ais_log_z`: ``chains`` runs per class through
        ``temperatures`` intermediate distributions); shapes ``()`` or ``(num_classes,)``."""
        check_int("chains", chains, ge=2)
        check_int("temperatures", temperatures, ge=3)
        was_training = self.training
        self.eval()
        try:
            return partition.ais_log_z(self, chains=chains, temperatures=temperatures,
                                       generator=generator)
        finally:
            self.train(was_training)

    def log_prob_estimate(self, x: Tensor | np.ndarray, y: Tensor | np.ndarray | int | None = None,
                          *, log_z: AISEstimate | None = None, chains: int = 100,
                          temperatures: int = 1000,
                          generator: torch.Generator | None = None) -> LogProbEstimate:
        """An estimate of ``log p(x | y) = -F(x | y) - log Z_y`` in nats, with ``log Z`` from
        AIS (``log_z``, or a new estimate with ``chains`` and ``temperatures``).

        Arguments:
            x: Levels of shape ``(*batch, *event_shape)``.
            y: Labels of shape ``batch`` (conditional RBM only).
            log_z: A :meth:`log_z_estimate` to reuse (AIS is the expensive part).
            chains, temperatures, generator: Settings of a new AIS run.

        Returns:
            :class:`LogProbEstimate`: the estimate and its standard error, each ``(*batch)``.
        """
        x, batch_shape = self._check_x(x)
        y = self._check_y(y, x.shape[0])
        if log_z is None:
            log_z = self.log_z_estimate(chains=chains, temperatures=temperatures,
                                        generator=generator)
        with torch.no_grad():
            free = self._free_energy(self._flat(x), y)
        value, stderr = log_z.log_z.to(free.device), log_z.stderr.to(free.device)
        if y is not None:
            value, stderr = value[y], stderr[y]
        return LogProbEstimate((-free - value).reshape(batch_shape),
                               (stderr * torch.ones_like(free)).reshape(batch_shape))

    # ------------------------------------------------------------------ sampling, features
    def _sample(self, n: int, y: Tensor | None, *, generator: torch.Generator | None = None,
                steps: Annotated[int, Setting(
                    "Gibbs sweeps from the base-rate model before the sample is taken",
                    ge=1)] = 1000) -> Tensor:
        """The last state of ``n`` independent Gibbs chains after ``steps`` sweeps."""
        v = self.gibbs(self.base_sample(n, generator), y, steps, generator)
        return v.reshape(n, *self.event_shape)

    def _encode(self, x: Tensor, y: Tensor | None) -> Tensor:
        """Hidden probabilities ``p(h_j = 1 | x, y)``, shape ``(n, H)``."""
        return torch.sigmoid(self.hidden_input(self._flat(x), y))

    # ------------------------------------------------------------------ training
    def initialize(self, data: Dataset) -> None:
        """Set the base-rate model and the visible biases to the data's level frequencies
        (per class for a conditional RBM): Hinton's recommended start, and AIS's base."""
        v = self._flat(data.x.to(self.device, self.dtype))
        with torch.no_grad():
            self.base_logits.copy_(self.units.marginal_logits(v))
            self.visible_bias.copy_(self.base_logits.expand_as(self.visible_bias))
            if self.conditional and data.y is not None:
                for c in range(self.num_classes):
                    rows = v[data.y.to(self.device) == c]
                    if len(rows):
                        self.visible_bias[c] = self.units.marginal_logits(rows)

    def objectives(self) -> list[Objective]:
        return [Objective(self.cd, self.cd_loss, list(self.parameters()))]

    def negative_phase(self, v: Tensor, y: Tensor | None) -> Tensor:
        """The model's samples for the gradient's second term, levels ``(n, D)``:
        ``gibbs_steps`` sweeps from the batch (CD) or from the persistent chains (PCD)."""
        with torch.no_grad():
            if self.cd == "cd":
                return self.gibbs(v, y, self.gibbs_steps)
            if self.chains.shape[0] != len(v):  # first step (or a new batch size)
                self.chains = v.long().clone()
            negative = self.gibbs(self.chains.to(v.dtype), y, self.gibbs_steps)
            self.chains.copy_(negative.long())
            return negative

    def cd_loss(self, x: Tensor, y: Tensor | None) -> tuple[Tensor, dict[str, float]]:
        """The CD objective, per dimension: its gradient is the CD(-k) / PCD(-k) estimate
        of the negative log-likelihood gradient.

        Its *value* is the one-site pseudo-likelihood NLL of the batch (a random unit per
        sample, nats per dimension: a number comparable with the validation loss), while the
        gradient is that of ``mean F(v_data) - mean F(v_model)``: the loss is
        ``pseudo_nll + gap - gap.detach()``.
        """
        v = self._flat(x)
        gap = (self._free_energy(v, y).mean()
               - self._free_energy(self.negative_phase(v, y), y).mean()) / self.event_dim
        with torch.no_grad():
            unit = torch.randint(0, self.event_dim, (len(v),), device=v.device)
            pseudo = -self.conditional_log_probs(v, y, unit).gather(
                1, v.gather(1, unit[:, None]).long()).mean()  # one site, nats
        loss = pseudo + gap - gap.detach()
        return loss, {"pseudo_nll": pseudo.item(), "free_energy_gap": gap.item()}

    def conditional_log_probs(self, v: Tensor, y: Tensor | None, unit: Tensor | None = None
                              ) -> Tensor:
        """``log p(v_d = l | v_{-d}, y)`` of levels ``v`` ``(n, D)``: shape ``(n, D, L)`` for
        every unit, or ``(n, L)`` for one unit per sample (``unit`` of shape ``(n,)``).

        Setting unit d to level l changes the hidden input by ``W_d (psi(l) - phi(v_d))``, so
        every alternative costs one ``(H,)`` update, not a new free energy.
        """
        psi = self.units.level_features(v)  # (L, K)
        level_weight = self.units.level_weight(self.weight)  # (D, L, H)
        a = self._bias(self.visible_bias, y, len(v))  # (n, D, K)
        s = self.hidden_input(v, y)  # (n, H)
        if unit is not None:
            n = torch.arange(len(v), device=v.device)
            current = level_weight[unit, v[n, unit].long()]  # (n, H): W_d phi(v_d)
            inputs = (s - current)[:, None] + level_weight[unit]  # (n, L, H)
            level_bias = a[n, unit] @ psi.T + self.units.level_log_base(v)  # (n, L)
        else:
            rows = torch.arange(self.event_dim, device=v.device)
            current = level_weight[rows, v.long()]  # (n, D, H)
            inputs = (s[:, None] - current)[:, :, None] + level_weight  # (n, D, L, H)
            level_bias = a @ psi.T + self.units.level_log_base(v)  # (n, D, L)
        logits = level_bias + F.softplus(inputs).sum(-1)
        return torch.log_softmax(logits, dim=-1)

    def pseudo_log_likelihood(self, v: Tensor, y: Tensor | None) -> Tensor:
        """``sum_d log p(v_d | v_{-d}, y)`` of levels ``(n, D)``, shape ``(n,)`` (Besag)."""
        levels = self.num_levels
        chunk = max(1, 2**22 // (self.event_dim * levels * self.width))  # ~16 MB of inputs
        out = []
        for i in range(0, len(v), chunk):
            vb = v[i:i + chunk]
            yb = None if y is None else y[i:i + chunk]
            log_probs = self.conditional_log_probs(vb, yb)  # (b, D, L)
            out.append(log_probs.gather(2, vb.long()[..., None])[..., 0].sum(1))
        return torch.cat(out)

    def validation_loss(self, x: Tensor, y: Tensor | None) -> Tensor:
        """The negative log pseudo-likelihood per dimension: cheap and deterministic, but not
        the NLL, so the trainer names it ``val_pseudo_nll`` (:attr:`validation_measure`)."""
        return -self.pseudo_log_likelihood(self._flat(x), y) / self.event_dim

    # ------------------------------------------------------------------ pictures, tests
    @classmethod
    def figures(cls) -> dict[str, str]:
        return {
            "filters": "each hidden unit's weights as an image (level-wise units: their pull "
            "towards higher levels)",
            "chains": "Gibbs chains from the base-rate model, one per row, at growing sweeps",
        }

    def plot(self, kind: str, run_dir: Path, out: Path) -> list[Path]:
        """Draw ``filters`` or ``chains`` (:mod:`genlab.viz.rbm`)."""
        from genlab.viz.rbm import plot_chains, plot_filters

        drawers = {"filters": plot_filters, "chains": plot_chains}
        if kind not in drawers:
            return super().plot(kind, run_dir, out)
        return [drawers[kind](self, out)]

    @classmethod
    def tiny_configs(cls) -> list[dict]:
        return [
            {"event_shape": (6,), "num_levels": 2, "width": 4, "cd": "cd"},
            {"event_shape": (1, 8, 8), "num_levels": 17, "width": 8},
            {"event_shape": (1, 3, 3), "num_levels": 4, "width": 3, "visible": "categorical",
             "num_classes": 2, "gibbs_steps": 2},
        ]
