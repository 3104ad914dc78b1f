"""What every autoregressive model shares: the chain rule, the sampling loop, completion.

The chain rule writes any distribution over D dimensions, taken in an order ``o``, as

    p(x | y) = prod_{t=1..D} p(x_{o_t} | x_{o_1}, ..., x_{o_{t-1}}, y),

so ``log p(x | y) = sum_t log p(x_{o_t} | x_{o_<t}, y)`` is exact. A network emits the
parameters of every factor; an output head (:mod:`.heads`) turns them into a softmax over
pixel levels or a mixture of Gaussians. Training evaluates all D factors in one pass (masks or
causal shifts keep factor t blind to ``x_{o_t}, ..., x_{o_D}``); sampling draws one dimension
at a time, ``x_{o_t} ~ p(. | x_{o_<t}, y)``, feeding each draw back in.

A family implements three things (all on flat data ``x`` of shape ``(n, D)``):

* ``features(x) -> (n, D, E)``: per-position input features (one-hot, embedding or value);
* ``network(features, y) -> (n, D, P)``: the parameters of every factor, where row ``d``
  may depend only on the features of positions before ``d`` in the order;
* optionally ``init_state`` / ``next_params`` to sample faster than re-running the network
  (a recurrent hidden state, a transformer's key/value cache).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from genlab import rand
from genlab.base import GenerativeModel
from genlab.errors import ConfigError, DataError, NoRepresentation, ShapeError
from genlab.models.autoregressive.heads import CategoricalHead, MixtureGaussianHead
from genlab.settings import Annotated, Setting

State = dict[str, Any]

# Settings every family declares on its own constructor (the registered class's signature is
# the config), written once here.
Components = Annotated[int, Setting("Gaussians per dimension for continuous data", ge=1)]
Order = Annotated[str, Setting(
    "order of the dimensions: raster scan, or a fixed permutation drawn from order_seed",
    choices=("natural", "random"))]
OrderSeed = Annotated[int, Setting("seed of the random order (saved with the model)")]
Temperature = Annotated[float, Setting(
    "divides the logits and multiplies the Gaussian scales: < 1 sharper, > 1 flatter", gt=0)]


def raster_order(event_shape: tuple[int, ...]) -> Tensor:
    """Positions of the flattened ``event_shape`` in raster-scan order.

    For images ``(c, h, w)`` that is row by row, left to right, and the c channels of a pixel
    one after another (R, then G given R, then B given R and G). For any other shape it is
    the flattened order ``0, 1, ..., D-1``.
    """
    if len(event_shape) == 3:
        c, h, w = event_shape
        # position of (channel k, pixel p) in the (c, h, w) flattening is k * h * w + p
        return (torch.arange(c)[None, :] * (h * w) + torch.arange(h * w)[:, None]).reshape(-1)
    d = 1
    for s in event_shape:
        d *= s
    return torch.arange(d)


class AutoregressiveModel(GenerativeModel):
    """Base class of the autoregressive families (MADE, PixelCNN, RNN, transformer).

    Arguments:
        event_shape: Shape of one sample.
        num_classes: Number of labels for p(x | y), or None.
        num_levels: Discrete levels (softmax head), or None for continuous data (mixture of
            Gaussians head).
        components: Gaussians per dimension for continuous data (ignored when discrete).
        order: ``"natural"`` (raster scan) or ``"random"`` (a fixed permutation drawn from
            ``order_seed``).
        order_seed: Seed of the random order; the order is also saved as a buffer.
    """

    #: With discrete data (``num_levels`` set) the head is a softmax, so :meth:`autoregress`
    #: hands out exact conditionals in the fixed order ``order`` (:meth:`conditional_probs`
    #: turns them into probability tables): what ``genlab compress`` needs. Continuous data
    #: have densities instead, so a coder also asks for :attr:`discrete`.
    has_ordered_conditionals: ClassVar[bool] = True

    def __init__(
        self,
        *,
        event_shape: tuple[int, ...],
        num_classes: int | None,
        num_levels: int | None,
        components: int,
        order: str = "natural",
        order_seed: int = 0,
        conditions: Sequence[str] | None = None,
    ) -> None:
        super().__init__(event_shape=event_shape, num_classes=num_classes, num_levels=num_levels,
                         conditions=conditions)
        if num_levels is None:
            self.head: CategoricalHead | MixtureGaussianHead = MixtureGaussianHead(components)
        else:
            self.head = CategoricalHead(num_levels)
        if order == "random":
            g = torch.Generator().manual_seed(int(order_seed))
            perm = rand.randperm(self.event_dim, generator=g)
        else:
            perm = raster_order(self.event_shape)
        # order[t] = position drawn t-th; rank[d] = step at which position d is drawn.
        self.register_buffer("order", perm.clone())
        self.register_buffer("rank", torch.argsort(perm))

    # ------------------------------------------------------------------ family hooks
    def features(self, x: Tensor) -> Tensor:
        """Per-position input features ``(n, D, E)`` of flat data ``x`` ``(n, D)``."""
        raise NotImplementedError

    def network(self, features: Tensor, y: Tensor | None) -> Tensor:
        """Parameters ``(n, D, P)`` of every factor; row ``d`` sees positions before ``d``."""
        raise NotImplementedError

    def hidden_state(self, features: Tensor, y: Tensor | None) -> Tensor:
        """The network's last hidden features, pooled to one vector ``(n, k)`` per sample:
        what :meth:`encode` returns. Families with ``has_encoder = True`` implement it."""
        raise NoRepresentation(f"{type(self).__name__} has no learned representation.")

    def _encode(self, x: Tensor, y: Tensor | None) -> Tensor:
        """The hidden state of the network reading the whole of ``x`` (:meth:`hidden_state`)."""
        return self.hidden_state(self.features(self._flat(x)), y)  # (n, k)

    def init_state(self, n: int, y: Tensor | None) -> State:
        """Sampling state before the first step (default: just the labels)."""
        return {"y": y}

    def next_params(self, state: State, t: int, x: Tensor) -> Tensor:
        """Parameters ``(n, P)`` of ``p(x_{o_t} | x_{o_<t}, y)``.

        ``x`` ``(n, D)`` holds the dimensions drawn so far at positions ``order[:t]`` (zeros
        elsewhere). The default re-runs the whole network; families with a recurrent state or
        a cache override it. Called with ``t = 0, 1, ..., D-1`` in turn.
        """
        params = self.network(self.features(x), state["y"])  # (n, D, P)
        return params[:, int(self.order[t])]

    # ------------------------------------------------------------------ likelihood
    def _flat(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], self.event_dim)  # (n, D)

    def _log_prob(self, x: Tensor, y: Tensor | None) -> Tensor:
        """``log p(x | y) = sum_d log p(x_d | x_<d, y)``, one pass for all D factors."""
        x = self._flat(x)  # (n, D)
        params = self.network(self.features(x), y)  # (n, D, P)
        return self.head.log_prob(params, x).sum(-1)

    # ------------------------------------------------------------------ sampling
    def autoregress(
        self,
        n: int,
        y: Tensor | None,
        choose: Callable[[int, Tensor], Tensor],
        *,
        state: State | None = None,
    ) -> Tensor:
        """The sampling loop: for t = 0..D-1, compute the parameters of factor t and let
        ``choose(t, params (n, P)) -> values (n,)`` fix dimension ``order[t]``.

        Sampling draws from the head; completion keeps given values; the entropy decoder
        decodes a symbol. All three run this same loop, so they see the same probabilities.

        Returns:
            Flat data ``(n, D)``.
        """
        x = torch.zeros(n, self.event_dim, device=self.device, dtype=self.dtype)
        state = self.init_state(n, y) if state is None else state
        for t in range(self.event_dim):
            params = self.next_params(state, t, x)  # (n, P)
            x[:, int(self.order[t])] = choose(t, params)
        return x

    def conditional_probs(self, params: Tensor) -> Tensor:
        """The probabilities ``(n, L)`` of the L levels of one dimension, from the parameters
        ``(n, P)`` that :meth:`autoregress` hands its ``choose`` (discrete data only).

        Raises:
            ConfigError: the model is continuous (its conditionals are densities).
        """
        if not isinstance(self.head, CategoricalHead):
            raise ConfigError(
                f"Expected a discrete {type(self).__name__} (num_levels set) for probability "
                "tables, but found a continuous one."
            )
        return self.head.probs(params)

    def _sample(
        self,
        n: int,
        y: Tensor | None,
        *,
        generator: torch.Generator | None = None,
        temperature: Temperature = 1.0,
    ) -> Tensor:
        """Ancestral sampling ``x_{o_t} ~ p(. | x_{o_<t}, y)``, one dimension per step."""
        return self._ancestral(n, y, self.init_state(n, y), generator, temperature)

    def _ancestral(self, n: int, y: Tensor | None, state: State,
                   generator: torch.Generator | None, temperature: float) -> Tensor:
        """The sampling loop from ``state``, drawing each dimension from the head."""

        def draw(t: int, params: Tensor) -> Tensor:
            return self.head.sample(params, generator=generator, temperature=temperature)

        return self.autoregress(n, y, draw, state=state).reshape(n, *self.event_shape)

    def complete(
        self,
        x: Tensor | np.ndarray,
        mask: Tensor | np.ndarray,
        y: Tensor | np.ndarray | int | None = None,
        *,
        generator: torch.Generator | None = None,
        temperature: Temperature = 1.0,
    ) -> Tensor:
        """Fill in the dimensions of ``x`` where ``mask`` is False, keeping the given ones.

        Runs the sampling loop in the model's order; at a given position the known value is
        kept instead of a draw. When every given dimension comes before every missing one in
        the order (the top half of an image under the raster order), the result is an exact
        sample of ``p(x_missing | x_given, y)``. Otherwise each missing dimension is drawn
        given only the dimensions before it, which ignores later given ones.

        Arguments:
            x: Data of shape ``(n, *event_shape)``; values where ``mask`` is False are ignored.
            mask: Booleans, True where ``x`` is given, of shape ``(n, *event_shape)`` or
                ``event_shape``.
            y: Labels (conditional models only).
            generator: Source of randomness.
            temperature: Sampling temperature for the missing dimensions.

        Returns:
            Completed data of shape ``(n, *event_shape)``.

        Raises:
            ConfigError: ``temperature`` is not a positive number.
            ShapeError, DataError: ``x``, ``mask`` or ``y`` do not fit the model.

        Example:
            >>> import torch
            >>> from genlab import create
            >>> model = create("made", event_shape=(1, 4, 4), num_levels=3, width=8, depth=1)
            >>> top = torch.zeros(2, 1, 4, 4, dtype=torch.bool); top[:, :, :2] = True
            >>> out = model.complete(torch.ones(2, 1, 4, 4), top)
            >>> bool((out[:, :, :2] == 1).all())
            True
        """
        self.sample_options()["temperature"].check(temperature)
        x = torch.as_tensor(x)
        mask = torch.as_tensor(mask)
        if mask.dtype != torch.bool:
            if ((mask != 0) & (mask != 1)).any():
                raise DataError("Expected mask of booleans (or 0/1), but found other values.")
            mask = mask.bool()
        if tuple(x.shape[1:]) != self.event_shape or x.dim() != len(self.event_shape) + 1:
            raise ShapeError(
                f"Expected x of shape (n, {', '.join(map(str, self.event_shape))}) for "
                f"{type(self).__name__}.complete, but found {tuple(x.shape)}."
            )
        try:
            mask = torch.broadcast_to(mask, x.shape)
        except RuntimeError:
            raise ShapeError(
                f"Expected mask of shape {tuple(x.shape)} or {self.event_shape}, but found "
                f"{tuple(mask.shape)}."
            ) from None
        # Values at missing positions are ignored: zero them so they pass validation.
        x = torch.where(mask, x.to(torch.get_default_dtype()), 0.0)
        x, _ = self._check_x(x)
        n = x.shape[0]
        y = self._check_y(y, n)
        given = self._flat(mask.to(x.device))  # (n, D)
        known = self._flat(x)  # (n, D)

        def keep_or_draw(t: int, params: Tensor) -> Tensor:
            d = int(self.order[t])
            draw = self.head.sample(params, generator=generator, temperature=temperature)
            return torch.where(given[:, d], known[:, d], draw)

        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                out = self.autoregress(n, y, keep_or_draw)
        finally:
            self.train(was_training)
        return out.reshape(n, *self.event_shape)
