"""A mixture of discrete autoregressive models that share one order: an ensemble that is
still an autoregressive model, so it samples, completes and drives the entropy coder.

For members ``p_1..p_K`` with weights ``pi_k``, ``p(x | y) = sum_k pi_k p_k(x | y)``. Because
every member factorises in the same order ``o``, so does the mixture:

    p(x_{o_t} | x_{o_<t}, y) = sum_k w_k(x_{o_<t}) p_k(x_{o_t} | x_{o_<t}, y),
    w_k(x_{o_<t}) = pi_k p_k(x_{o_<t} | y) / sum_j pi_j p_j(x_{o_<t} | y),

the posterior weight of member k after the prefix. The product of these conditionals
telescopes back to ``sum_k pi_k p_k(x | y)``, so ``log_prob`` is exact and the coder spends
``-log2 sum_k pi_k p_k(x)`` bits, never more than the best member's plus ``log2 K``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.errors import ConfigError
from genlab.models.autoregressive.core import AutoregressiveModel, State
from genlab.recipes import Recipe
from genlab.registry import get, register
from genlab.settings import Annotated, Setting

_DATA_KEYS = ("event_shape", "num_levels", "num_classes")


@register("ar_mixture")
class AutoregressiveMixture(AutoregressiveModel):
    """Mixture of discrete autoregressive models sharing one order.

    Arguments:
        event_shape: Shape of one sample (given to every member).
        num_classes: Labels for p(x | y), or None (given to every member).
        num_levels: Discrete levels (required; given to every member).
        members: One ``{"model": name, "config": {...}}`` per member (``config`` without the
            data keys above), e.g. ``{"model": "pixelcnn", "config": {"gated": True}}``.
        learn_weights: Learn the mixture weights ``pi`` (else they stay uniform).

    Example:
        >>> from genlab import create
        >>> model = create("ar_mixture", event_shape=(4,), num_levels=3, members=[
        ...     {"model": "made", "config": {"width": 8, "depth": 1}},
        ...     {"model": "rnn", "config": {"width": 8}}])
        >>> model.sample(2).shape
        torch.Size([2, 4])
    """

    recipes: ClassVar[dict[str, Recipe]] = {}

    def __init__(
        self,
        *,
        event_shape: tuple[int, ...],
        num_classes: int | None = None,
        num_levels: int | None = None,
        members: Annotated[list[dict[str, Any]], Setting(
            "one {'model': name, 'config': {...}} per member, config without the data keys")],
        learn_weights: Annotated[bool, Setting(
            "learn the mixture weights (else they stay uniform)")] = False,
    ) -> None:
        if num_levels is None:
            raise ConfigError(
                "Expected num_levels for ar_mixture (discrete data), but found None."
            )
        super().__init__(event_shape=event_shape, num_classes=num_classes,
                         num_levels=num_levels, components=1)
        if not members:
            raise ConfigError("Expected a non-empty list of members, but found none.")
        data = {"event_shape": self.event_shape, "num_levels": num_levels,
                "num_classes": num_classes}
        built = []
        for spec in members:
            if not isinstance(spec, dict) or "model" not in spec:
                raise ConfigError(
                    f"Expected each member as {{'model': name, 'config': {{...}}}}, but found "
                    f"{spec!r}."
                )
            config = dict(spec.get("config", {}))
            for key in _DATA_KEYS:
                if key in config and _norm(config[key]) != _norm(data[key]):
                    raise ConfigError(
                        f"Expected member {key}={data[key]!r} like the mixture, but found "
                        f"{config[key]!r}."
                    )
                config[key] = data[key]
            member = get(spec["model"])(**config)
            if not isinstance(member, AutoregressiveModel):
                raise ConfigError(
                    f"Expected autoregressive members, but {spec['model']!r} is not one."
                )
            built.append(member)
        for member in built[1:]:
            if not torch.equal(member.order, built[0].order):
                raise ConfigError("Expected members that share one order, but found different "
                                  "orders (use order='natural' or the same order_seed).")
        self.members = nn.ModuleList(built)
        self.order.copy_(built[0].order)
        self.rank.copy_(built[0].rank)
        logits = torch.zeros(len(built))
        if learn_weights:
            self.weight_logits = nn.Parameter(logits)
        else:
            self.register_buffer("weight_logits", logits)

    @classmethod
    def from_models(cls, models: list[AutoregressiveModel], *, learn_weights: bool = False
                    ) -> AutoregressiveMixture:
        """An equal-weight mixture of trained models (their weights are copied)."""
        first = models[0]
        members = [{"model": m.name, "config": {k: v for k, v in m.config.items()
                                                 if k not in _DATA_KEYS}} for m in models]
        mixture = cls(event_shape=first.event_shape, num_classes=first.num_classes,
                      num_levels=first.num_levels, members=members, learn_weights=learn_weights)
        for target, source in zip(mixture.members, models, strict=True):
            target.load_state_dict(source.state_dict())
        return mixture.to(first.device)

    @torch.no_grad()
    def fit_weights(self, x: Tensor, y: Tensor | None = None, *, iterations: int = 200
                    ) -> AutoregressiveMixture:
        """Set the weights ``pi`` by EM on (held-out) data, members fixed; returns ``self``.

        E-step: ``r_ik = pi_k p_k(x_i) / sum_j pi_j p_j(x_i)``; M-step: ``pi_k = mean_i r_ik``.
        Each step cannot lower the likelihood of ``x``.
        """
        x, _ = self._check_x(x)
        y = self._check_y(y, x.shape[0])
        was_training = self.training
        self.eval()
        log_p = torch.stack([m._log_prob(x, y) for m in self.members]).double()  # (K, n)
        self.train(was_training)
        log_pi = self._log_weights().double()
        for _ in range(iterations):
            joint = log_pi[:, None] + log_p
            resp = joint - torch.logsumexp(joint, dim=0, keepdim=True)
            log_pi = torch.logsumexp(resp, dim=1) - torch.log(torch.tensor(float(x.shape[0])))
        self.weight_logits.copy_(log_pi.to(self.weight_logits.dtype))
        return self

    def _log_weights(self) -> Tensor:
        return F.log_softmax(self.weight_logits, dim=0)  # (K,) log pi

    def features(self, x: Tensor) -> Tensor:
        return x.unsqueeze(-1)  # (n, D, 1): members encode the values themselves

    def network(self, features: Tensor, y: Tensor | None) -> Tensor:
        """Mixture conditionals ``log p(x_d | x_<d, y)`` ``(n, D, L)`` (normalised logits)."""
        x = features[..., 0]  # (n, D)
        log_p = torch.stack([F.log_softmax(m.network(m.features(x), y), dim=-1)
                             for m in self.members])  # (K, n, D, L)
        observed = log_p.gather(-1, x.long()[None, ..., None].expand(len(self.members), -1, -1, 1))
        seq = observed[..., 0][:, :, self.order]  # (K, n, D) in order
        prefix = torch.cumsum(seq, dim=-1) - seq  # log p_k(x_{o_<t}), exclusive
        log_w = self._log_weights()[:, None, None] + prefix[:, :, self.rank]  # (K, n, D)
        log_w = log_w - torch.logsumexp(log_w, dim=0, keepdim=True)  # posterior weights
        return torch.logsumexp(log_w[..., None] + log_p, dim=0)  # (n, D, L)

    def init_state(self, n: int, y: Tensor | None) -> State:
        return {"y": y, "members": [m.init_state(n, y) for m in self.members],
                "log_w": self._log_weights()[:, None].expand(-1, n).clone(), "last": None}

    def next_params(self, state: State, t: int, x: Tensor) -> Tensor:
        if t > 0:  # condition the weights on the dimension just fixed
            prev = x[:, int(self.order[t - 1])].long()  # (n,)
            state["log_w"] = state["log_w"] + state["last"].gather(
                -1, prev[None, :, None].expand(len(self.members), -1, 1))[..., 0]
        log_p = torch.stack([F.log_softmax(m.next_params(s, t, x), dim=-1)
                             for m, s in zip(self.members, state["members"], strict=True)])
        state["last"] = log_p  # (K, n, L)
        log_w = state["log_w"] - torch.logsumexp(state["log_w"], dim=0, keepdim=True)
        return torch.logsumexp(log_w[..., None] + log_p, dim=0)  # (n, L)

    @classmethod
    def tiny_configs(cls) -> list[dict]:
        return [
            {"event_shape": (1, 8, 8), "num_levels": 17, "members": [
                {"model": "made", "config": {"width": 16, "depth": 1}},
                {"model": "rnn", "config": {"width": 8, "embedding_size": 4}}]},
            {"event_shape": (1, 8, 8), "num_levels": 17, "num_classes": 3, "learn_weights": True,
             "members": [
                 {"model": "pixelcnn", "config": {"width": 8, "depth": 1, "kernel_size": 3,
                                                  "gated": True}},
                 {"model": "transformer", "config": {"width": 8, "heads": 2, "depth": 1}}]},
        ]


def _norm(value: Any) -> Any:
    return list(value) if isinstance(value, (tuple, list)) else value
