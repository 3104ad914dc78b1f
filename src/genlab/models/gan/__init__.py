"""Generative adversarial networks: ``gan`` (MLP, vectors) and ``dcgan`` (images).

Importing this package registers both models. The math (losses, penalties) is in
:mod:`~genlab.models.gan.losses`, the two players' training in :mod:`~genlab.models.gan.model`,
the networks in :mod:`~genlab.models.gan.networks` and :mod:`~genlab.models.gan.conv`, the
stabilisers (packing, minibatch discrimination, spectral norm, projection) in
:mod:`~genlab.models.gan.layers`, and the training diagnostics in
:mod:`~genlab.models.gan.callback`.
"""

from genlab.models.gan import losses
from genlab.models.gan.dcgan import DCGAN
from genlab.models.gan.mlp import GAN
from genlab.models.gan.model import GANModel
from genlab.models.gan.pix2pix import Pix2Pix

__all__ = ["DCGAN", "GAN", "GANModel", "Pix2Pix", "losses"]
