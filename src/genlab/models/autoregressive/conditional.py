"""``cond_pixelcnn``: a gated PixelCNN of p(x | y) for sketches, prompts and other conditions.

The gated PixelCNN (van den Oord et al. 2016) conditions each layer on a spatial map
``s = m(y)`` as well as on a vector:

    v' = tanh(W_{v,f} * v + V_f s + b_f(y)) . sigmoid(W_{v,g} * v + V_g s + b_g(y))

and the same for the horizontal stack, with ``V s`` a 1 x 1 convolution. The masks keep x
causal -- the factor of pixel d sees only the pixels before d in raster order -- while the
condition is global: ``m`` (:class:`~genlab.nn.condition_encoder.ConditionMaps`) is an
unmasked net over the image conditions (sketch, low-resolution or masked image) with a term
that sees all of them, so every factor may read the whole sketch, and the vector (label
embedding plus pooled text, :class:`~genlab.nn.condition_encoder.ConditionEncoder`) is a
bias of every layer. So

    log p(x | y) = sum_d log p(x_d | x_<d, y)

stays exact, and bits/dim are conditional bits/dim.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

from torch import Tensor, nn

from genlab.conditioning import CONDITION_KINDS
from genlab.models.autoregressive.core import Components, State
from genlab.models.autoregressive.made import InputEncoding
from genlab.models.autoregressive.pixelcnn import GatedLayer, PixelCNN
from genlab.nn.condition_encoder import (
    ConditionEncoder,
    ConditionMaps,
    ConditionSize,
    model_conditions,
)
from genlab.recipes import Recipe
from genlab.registry import register
from genlab.settings import Annotated, Setting


class Conditioning(NamedTuple):
    """The condition as the layers read it: maps ``s = m(y)`` ``(n, F, h, w)`` and the
    vector ``(n, d)`` (None where the model has none)."""

    maps: Tensor | None
    vector: Tensor | None


@register("cond_pixelcnn")
class ConditionalPixelCNN(PixelCNN):
    """Gated PixelCNN whose every layer reads conditioning maps and a condition vector.

    Arguments:
        event_shape: ``(c, h, w)``.
        num_classes: Labels (with the ``"label"`` condition, or alone).
        num_levels: Discrete levels (softmax outputs) or None (mixture of Gaussians).
        conditions: Any of ``label, sketch, lowres, mask, prompt``.
        width: Feature channels of each layer (a multiple of c).
        depth: Gated layers after the first.
        kernel_size: Odd size of every masked kernel.
        components: Gaussians per dimension for continuous data.
        input_encoding: ``"auto"``, ``"onehot"`` or ``"value"``.
        dropout: Dropout probability inside each gated layer.
        condition_size: Size of the condition vector.

    Example:
        >>> import torch
        >>> from genlab import create
        >>> model = create("cond_pixelcnn", event_shape=(1, 4, 4), num_levels=3,
        ...                num_classes=2, width=4, depth=1, kernel_size=3)
        >>> model.log_prob(torch.zeros(2, 1, 4, 4), torch.tensor([0, 1])).shape
        torch.Size([2])
    """

    supported_conditions: ClassVar[tuple[str, ...]] = CONDITION_KINDS

    recipes: ClassVar[dict[str, Recipe]] = {
        "images": Recipe(
            params={"width": 32, "depth": 3, "kernel_size": 3, "dropout": 0.1},
            train={"steps": 800, "batch_size": 64, "lr": 2e-3, "warmup_steps": 50,
                   "patience": 8},
            quick={"steps": 40},
            quick_params={"width": 16, "depth": 2},
            note="bench/bench_conditional.py (conditional bits/dim, obedience)",
        ),
    }

    def __init__(
        self,
        *,
        event_shape: tuple[int, ...],
        num_classes: int | None = None,
        num_levels: int | None = None,
        conditions: Sequence[str] | None = None,
        width: Annotated[int, Setting(
            "feature channels of each layer (a multiple of the image channels)", ge=1)] = 64,
        depth: Annotated[int, Setting("gated layers after the first", ge=0)] = 4,
        kernel_size: Annotated[int, Setting("odd size of every masked kernel", ge=1)] = 5,
        components: Components = 5,
        input_encoding: InputEncoding = "auto",
        dropout: Annotated[float, Setting(
            "dropout probability inside each gated layer", ge=0, lt=1)] = 0.0,
        condition_size: ConditionSize = 32,
    ) -> None:
        # The label reaches the layers through the condition vector, not PixelCNN's own
        # per-layer embedding: the parent's stack is built again below.
        super().__init__(event_shape=event_shape, num_classes=num_classes,
                         num_levels=num_levels, width=width, depth=depth,
                         kernel_size=kernel_size, gated=True, components=components,
                         input_encoding=input_encoding, dropout=dropout,
                         conditions=model_conditions(conditions, num_classes))
        self.condition = ConditionEncoder(self.conditions, size=condition_size,
                                          event_shape=self.event_shape,
                                          num_classes=num_classes, num_levels=num_levels)
        maps = self.condition.map_channels
        # m(y): an unmasked net over the image conditions, shared by every layer.
        self.condition_net = (ConditionMaps(maps, width, self.event_shape[1:]) if maps
                              else None)
        c = self.event_shape[0]
        e = num_levels if self.encoding == "onehot" else 1
        self.stack = nn.ModuleList(
            GatedLayer(c * e if i == 0 else width, width, kernel_size, first=i == 0, groups=c,
                       num_classes=None, dropout=dropout, map_channels=width if maps else 0,
                       vector_size=self.condition.vector_size)
            for i in range(depth + 1)
        )

    def encode_condition(self, y: Mapping[str, Any] | Tensor | None, n: int) -> Conditioning:
        """The conditioning maps ``s = m(y)`` and the condition vector of ``n`` rows."""
        y = self.condition(y, n)
        maps = None if self.condition_net is None else self.condition_net(y.maps)
        return Conditioning(maps, y.vector)

    def _trunk(self, features: Tensor, y: Any) -> Tensor:
        """The gated stack on the input features with the condition: ``(n, F, h, w)``."""
        if not isinstance(y, Conditioning):  # else encoded once per sampling run
            y = self.encode_condition(y, features.shape[0])
        v = h = self._as_image(features)
        for layer in self.stack:
            v, h = layer(v, h, None, y.maps, y.vector)
        return h

    def init_state(self, n: int, y: Any) -> State:
        """The condition encoded once; each sampling step re-runs only the masked stack."""
        return {"y": self.encode_condition(y, n)}

    @classmethod
    def tiny_configs(cls) -> list[dict]:
        small = {"event_shape": (1, 8, 8), "num_levels": 17, "width": 8, "depth": 1,
                 "kernel_size": 3, "condition_size": 4}
        return [
            {**small, "num_classes": 3},
            {**small, "conditions": ("sketch", "prompt")},
            {"event_shape": (2, 4, 4), "width": 8, "depth": 1, "kernel_size": 3,
             "components": 2, "num_classes": 3, "condition_size": 4},
        ]

