r"""GAN losses and discriminator penalties, written on logits.

The discriminator network returns a *logit* ``l(x)``; the course's discriminator is the
probability ``D(x) = Pr(real | x) = sigmoid(l(x))``. Every log-probability is written with
softplus so it never takes the log of a rounded 0 or 1::

    log D(x)       = log sigmoid(l)  = -softplus(-l)
    log (1 - D(x)) = log sigmoid(-l) = -softplus(l)

Losses (all *minimised*; ``l_r`` = logits on real data, ``l_f`` = logits on G(z)):

=================  ==========================================  ================================
``loss=``          discriminator                               generator
=================  ==========================================  ================================
``minimax``        -E log D(x) - E log(1 - D(G(z)))            E log(1 - D(G(z)))
``nonsaturating``  same as minimax                             -E log D(G(z))
``wasserstein``    E f(G(z)) - E f(x)  (+ gradient penalty)    -E f(G(z))
``hinge``          E relu(1 - f(x)) + E relu(1 + f(G(z)))      -E f(G(z))
``rpgan``          E softplus(-(l(x_i) - l(G(z_i))))           E softplus(-(l(G(z_i)) - l(x_i)))
=================  ==========================================  ================================

For the Wasserstein and hinge losses the network output ``f`` is a critic score, not a logit.

``rpgan`` is the relativistic pairing GAN: the i-th real sample of a batch is paired with the
i-th generated one, and ``sigmoid(l(x_i) - l(G(z_i)))`` is the probability that ``x_i`` is the
more realistic of the two. Only differences of logits enter, so ``l`` alone is no probability
of being real. On its own it does not converge to the data (the discriminator can grow without
bound near the data); with the zero-centred penalties on both real data (R1) and generated
data (R2),

.. math::

    L_D = E_{i}\, \mathrm{softplus}(l(G(z_i)) - l(x_i))
          + \tfrac{\gamma_1}{2} E_x \lVert \nabla_x l(x) \rVert^2
          + \tfrac{\gamma_2}{2} E_z \lVert \nabla_{\tilde x} l(\tilde x)
            \rVert^2_{\tilde x = G(z)},
    \qquad L_G = E_{i}\, \mathrm{softplus}(l(x_i) - l(G(z_i))),

it is locally convergent and covers every mode (Huang, Gokaslan, Kuleshov & Tompkin, "The GAN
is dead; long live the GAN! A modern baseline GAN", 2025, who use one ``gamma`` for both
penalties, ``gamma_1 = gamma_2``).

References:
    Goodfellow et al., "Generative Adversarial Nets", 2014 (minimax and non-saturating).
    Gulrajani et al., "Improved Training of Wasserstein GANs", 2017 (gradient penalty).
    Lim & Ye, "Geometric GAN", 2017; Miyato et al., 2018 (hinge loss).
    Mescheder et al., "Which Training Methods for GANs do actually Converge?", 2018 (R1, R2).
    Jolicoeur-Martineau, "The relativistic discriminator", 2019 (relativistic pairing).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from genlab import rand

LOSSES = ("minimax", "nonsaturating", "wasserstein", "hinge", "rpgan")
#: Losses whose discriminator output is a logit of Pr(real | x).
PROBABILISTIC_LOSSES = ("minimax", "nonsaturating")
#: Losses that compare real and generated samples in pairs: the generator's loss reads both.
PAIRED_LOSSES = ("rpgan",)

Critic = Callable[[Tensor], Tensor]


def discriminator_loss(loss: str, real: Tensor, fake: Tensor) -> Tensor:
    """The discriminator's loss (to minimise) from its outputs on real and generated data.

    For ``minimax`` and ``nonsaturating`` this is the negative of the course's objective

    .. math:: \\max_{\\theta_d} E_{x \\sim p_{data}} \\log D(x) + E_z \\log(1 - D(G(z))),

    i.e. the binary cross-entropy with label 1 for real data and 0 for generated data. For
    ``rpgan`` it is ``E_i softplus(-(real_i - fake_i))``: output i on real data is paired with
    output i on generated data.

    Arguments:
        loss: One of :data:`LOSSES`.
        real: Discriminator outputs on real data, shape ``(b,)``.
        fake: Discriminator outputs on generated data, shape ``(b,)``.

    Returns:
        Scalar loss.
    """
    if loss in PROBABILISTIC_LOSSES:
        # -log D(x) = softplus(-l);  -log(1 - D(G(z))) = softplus(l)
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if loss == "wasserstein":
        return fake.mean() - real.mean()
    if loss == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    if loss == "rpgan":
        return F.softplus(fake - real).mean()  # -log sigmoid(real_i - fake_i), paired
    raise ValueError(f"Expected loss in {LOSSES}, but found {loss!r}.")


def generator_loss(loss: str, fake: Tensor, real: Tensor | None = None) -> Tensor:
    """The generator's loss (to minimise) from the discriminator's outputs on G(z).

    * ``minimax``: :math:`\\min_{\\theta_g} E_z \\log(1 - D(G(z)))`, computed as
      ``-softplus(l)``; its gradient in ``l`` is ``-D(G(z))``, which vanishes when the
      discriminator confidently rejects the samples (D(G(z)) -> 0), early in training.
    * ``nonsaturating``: :math:`\\max_{\\theta_g} E_z \\log D(G(z))`, i.e. minimise
      ``softplus(-l)``; its gradient in ``l`` is ``-(1 - D(G(z)))``, close to -1 exactly
      where the minimax gradient vanishes.
    * ``wasserstein`` and ``hinge``: ``-E f(G(z))``.
    * ``rpgan``: ``E_i softplus(-(fake_i - real_i))``, the discriminator's loss with the roles
      swapped: each generated sample is pushed to look more real than its paired real one.
      Its gradient in ``fake_i`` is ``-sigmoid(real_i - fake_i)``, near -1 while the pair is
      told apart, so it does not saturate.

    Arguments:
        loss: The loss name (see :func:`discriminator_loss`).
        fake: Discriminator outputs on generated data, shape ``(b,)``.
        real: Outputs on real data ``(b,)``, paired with ``fake``; needed by ``rpgan`` only.

    Returns:
        Scalar loss.
    """
    if loss == "minimax":
        return -F.softplus(fake).mean()  # E log(1 - D(G(z)))
    if loss == "nonsaturating":
        return F.softplus(-fake).mean()  # -E log D(G(z))
    if loss in ("wasserstein", "hinge"):
        return -fake.mean()
    if loss == "rpgan":
        if real is None or real.shape != fake.shape:
            shape = None if real is None else tuple(real.shape)
            raise ValueError(f"Expected outputs on real data of shape {tuple(fake.shape)} for "
                             f"the paired rpgan loss, but found {shape}.")
        return F.softplus(real - fake).mean()
    raise ValueError(f"Expected loss in {LOSSES}, but found {loss!r}.")


def _squared_gradient_norms(out: Tensor, x: Tensor, pack: int) -> Tensor:
    """``||d out_j / d x||^2`` for each output ``out_j`` ``(b // pack,)`` of inputs ``x``
    ``(b, ...)`` that require grad, with a graph for backprop.

    With packing, one output sees ``pack`` samples, so its gradient is taken over all of their
    coordinates together.
    """
    # Outputs depend on disjoint inputs (without minibatch features), so the gradient of their
    # sum holds every output's own gradient.
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    grad = grad[: out.shape[0] * pack].reshape(out.shape[0], -1)  # (b // pack, pack * D)
    return grad.square().sum(dim=1)


def _input_gradient_norms(critic: Critic, x: Tensor, pack: int) -> Tensor:
    """Euclidean norm of d critic / d input for each critic output, shape ``(b // pack,)``."""
    x = x.detach().requires_grad_(True)
    return _squared_gradient_norms(critic(x), x, pack).sqrt()


def gradient_penalty(
    critic: Critic,
    real: Tensor,
    fake: Tensor,
    *,
    pack: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP penalty :math:`E_{\\hat x} (\\lVert \\nabla_{\\hat x} f(\\hat x) \\rVert_2 - 1)^2`.

    :math:`\\hat x = \\epsilon x + (1 - \\epsilon) G(z)` with :math:`\\epsilon \\sim U[0, 1]`
    drawn per sample (per pack when packing), on straight lines between real and generated
    points where the optimal critic has unit gradient norm.

    Arguments:
        critic: Maps a batch ``(b, *event_shape)`` to outputs ``(b // pack,)``.
        real: Real samples, shape ``(b, *event_shape)``.
        fake: Generated samples, same shape.
        pack: Samples per critic output (PacGAN packing).
        generator: Source of the interpolation weights.

    Returns:
        Scalar penalty (not yet multiplied by its weight).
    """
    groups = real.shape[0] // pack
    eps = rand.rand(groups, generator=generator, device=real.device, dtype=real.dtype)
    eps = eps.repeat_interleave(pack).reshape(-1, *([1] * (real.dim() - 1)))  # (b', 1, ...)
    n = groups * pack
    x_hat = eps * real[:n] + (1.0 - eps) * fake[:n]
    return ((_input_gradient_norms(critic, x_hat, pack) - 1.0) ** 2).mean()


def zero_centred_penalty(out: Tensor, x: Tensor, *, pack: int = 1) -> Tensor:
    r""":math:`\tfrac12 E \lVert \nabla_x l(x) \rVert_2^2` from outputs ``out = l(x)`` already
    computed on inputs ``x`` that require grad (no second forward pass).

    On real data this is R1, on generated data R2 (Mescheder et al. 2018): both pull the
    discriminator's gradient towards 0 where it is evaluated, so at the equilibrium
    ``p_g = p_data`` the discriminator is flat and stays there. The caller multiplies by
    ``gamma``.

    Arguments:
        out: Outputs ``(b // pack,)`` computed from ``x``.
        x: Inputs ``(b, *event_shape)`` with ``requires_grad``.
        pack: Samples per output.

    Returns:
        Scalar penalty (not yet multiplied by ``gamma``).
    """
    return 0.5 * _squared_gradient_norms(out, x, pack).mean()


def r1_penalty(critic: Critic, real: Tensor, *, pack: int = 1) -> Tensor:
    r"""R1 penalty :math:`\tfrac12 E_{x \sim p_{data}} \lVert \nabla_x l(x) \rVert_2^2`.

    Penalising the discriminator's gradient on real data only keeps it from pushing generated
    points past the data (Mescheder et al. 2018). The caller multiplies by ``gamma``.

    Arguments:
        critic: Maps a batch ``(b, *event_shape)`` to outputs ``(b // pack,)``.
        real: Real samples, shape ``(b, *event_shape)``.
        pack: Samples per critic output.

    Returns:
        Scalar penalty (not yet multiplied by ``gamma``).
    """
    real = real.detach().requires_grad_(True)
    return zero_centred_penalty(critic(real), real, pack=pack)
