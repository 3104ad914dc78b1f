"""Normalizing flows: a base Gaussian pushed through a chain of invertible maps.

Direction: ``forward`` maps latent z to data x = f(z) (sampling); ``inverse`` maps data to
latent (``log_prob`` runs it and adds its log-determinant). Importing this package registers
the models ``realnvp``, ``maf``, ``nsf``, ``glow`` (the multi-scale image flow) and
``cond_realnvp`` (couplings that read sketches, prompts and other conditions).
"""

from genlab.models.flows.autoregressive import MaskedAutoregressive
from genlab.models.flows.bijections import Bijection, Compose, Inverse
from genlab.models.flows.conditional import ConditionalRealNVP
from genlab.models.flows.coupling import (
    AffineCoupling,
    MaskedAffineCoupling,
    Partition,
    alternating_mask,
    channel_mask,
    checkerboard_mask,
    random_mask,
)
from genlab.models.flows.flow import Flow
from genlab.models.flows.glow import Glow
from genlab.models.flows.linear import LULinear, Permutation
from genlab.models.flows.maf import MAF
from genlab.models.flows.nets import MADE, ConvNet
from genlab.models.flows.normalization import ActNorm
from genlab.models.flows.nsf import NSF
from genlab.models.flows.preprocess import Logit
from genlab.models.flows.realnvp import RealNVP
from genlab.models.flows.reshape import FactorOut, Reshape, Squeeze
from genlab.models.flows.spline import SplineCoupling, rational_quadratic_spline
from genlab.nn.mlp import MLP

__all__ = [
    "MADE",
    "MAF",
    "MLP",
    "NSF",
    "ActNorm",
    "AffineCoupling",
    "Bijection",
    "Compose",
    "ConditionalRealNVP",
    "ConvNet",
    "FactorOut",
    "Flow",
    "Glow",
    "Inverse",
    "LULinear",
    "Logit",
    "MaskedAffineCoupling",
    "MaskedAutoregressive",
    "Partition",
    "Permutation",
    "RealNVP",
    "Reshape",
    "SplineCoupling",
    "Squeeze",
    "alternating_mask",
    "channel_mask",
    "checkerboard_mask",
    "random_mask",
    "rational_quadratic_spline",
]
