"""Autoregressive models: p(x | y) = prod_t p(x_{o_t} | x_{o_<t}, y), exact likelihood.

Importing this package registers ``"made"``, ``"pixelcnn"``, ``"rnn"``, ``"transformer"`` and
``"ar_mixture"`` (a mixture of discrete models sharing one order), and ``"cond_pixelcnn"``
(a gated PixelCNN of p(x | y) for sketches, prompts and other conditions).
"""

from genlab.models.autoregressive.conditional import ConditionalPixelCNN
from genlab.models.autoregressive.core import AutoregressiveModel, raster_order
from genlab.models.autoregressive.made import MADE
from genlab.models.autoregressive.mixture import AutoregressiveMixture
from genlab.models.autoregressive.pixelcnn import PixelCNN
from genlab.models.autoregressive.rnn import RNN
from genlab.models.autoregressive.transformer import Transformer

__all__ = [
    "MADE",
    "RNN",
    "AutoregressiveMixture",
    "AutoregressiveModel",
    "ConditionalPixelCNN",
    "PixelCNN",
    "Transformer",
    "raster_order",
]
