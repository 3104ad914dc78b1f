"""Network blocks that more than one family uses.

* :mod:`~genlab.nn.masked` -- masked linear and convolution layers, MADE and PixelCNN masks;
* :mod:`~genlab.nn.mlp` -- a fully connected network with an optional context input, and
  :func:`~genlab.nn.mlp.zero_init` for output layers that start at zero;
* :mod:`~genlab.nn.embedding` -- sinusoidal time/position embeddings.
"""

from genlab.nn.embedding import sinusoidal_embedding
from genlab.nn.masked import MaskedConv2d, MaskedLinear, conv_mask, made_mask
from genlab.nn.mlp import ACTIVATIONS, MLP, zero_init

__all__ = ["ACTIVATIONS", "MLP", "MaskedConv2d", "MaskedLinear", "conv_mask", "made_mask",
           "sinusoidal_embedding", "zero_init"]
