"""Output heads: the distribution of one dimension given the network's parameters for it.

An autoregressive network emits, for every dimension i, a parameter vector ``theta_i`` of
``num_params`` numbers; a head turns it into the one-dimensional distribution
``p(x_i | x_<i) = p(x_i; theta_i)``:

* :class:`CategoricalHead` for discrete data, a softmax over ``num_levels``:
  ``p(x_i = k | x_<i) = exp(theta_ik) / sum_j exp(theta_ij)`` (an exact probability mass);
* :class:`MixtureGaussianHead` for continuous data, a mixture of K Gaussians:
  ``p(x_i | x_<i) = sum_k pi_k N(x_i; mu_k, sigma_k^2)`` with ``pi = softmax(logits)``
  (a log density).

Temperature ``T`` sharpens (``T < 1``) or flattens (``T > 1``) what ``sample`` draws:
logits are divided by ``T`` and Gaussian scales multiplied by ``T``; ``T = 1`` is the model.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab import rand

# Gaussian log-scales are squashed softly into this range: wide enough for standardised data,
# narrow enough that a collapsing component cannot drive the density to infinity.
LOG_SCALE_MIN, LOG_SCALE_MAX = -7.0, 5.0


class CategoricalHead(nn.Module):
    """Softmax over ``num_levels`` levels; parameters are the logits."""

    def __init__(self, num_levels: int) -> None:
        super().__init__()
        self.num_levels = num_levels
        self.num_params = num_levels

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        """``log p(x_i | x_<i)`` for each dimension.

        Arguments:
            params: Logits of shape ``(..., num_levels)``.
            x: Integer-valued floats of shape ``(...)``.

        Returns:
            Log-probabilities of shape ``(...)``.
        """
        log_p = F.log_softmax(params, dim=-1)
        return log_p.gather(-1, x.long().unsqueeze(-1)).squeeze(-1)

    def probs(self, params: Tensor) -> Tensor:
        """The probability table ``(..., num_levels)`` (used by the entropy coder)."""
        return F.softmax(params, dim=-1)

    def sample(
        self, params: Tensor, *, generator: torch.Generator | None, temperature: float
    ) -> Tensor:
        """Draw one level per row of ``params`` ``(n, num_levels)``; returns floats ``(n,)``."""
        probs = F.softmax(params / temperature, dim=-1)
        return rand.multinomial(probs, 1, generator=generator).squeeze(-1).to(params.dtype)


class MixtureGaussianHead(nn.Module):
    """Mixture of ``components`` Gaussians per dimension; parameters are
    ``(logits, means, raw log-scales)``, each of size K."""

    def __init__(self, components: int) -> None:
        super().__init__()
        self.components = components
        self.num_params = 3 * components

    def _split(self, params: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        logits, means, raw = params.chunk(3, dim=-1)  # each (..., K)
        # Soft clamp: log sigma = MIN + (MAX - MIN) * sigmoid(raw - offset) never leaves
        # [MIN, MAX]; the offset makes raw = 0 give log sigma = 0 (sigma = 1).
        span = LOG_SCALE_MAX - LOG_SCALE_MIN
        offset = math.log(LOG_SCALE_MAX / -LOG_SCALE_MIN)  # sigmoid(-offset) = -MIN / span
        log_scales = LOG_SCALE_MIN + span * torch.sigmoid(raw - offset)
        return logits, means, log_scales

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        """``log p(x_i | x_<i) = logsumexp_k [log pi_k + log N(x_i; mu_k, sigma_k^2)]``.

        Arguments:
            params: Shape ``(..., 3K)``.
            x: Values of shape ``(...)``.

        Returns:
            Log densities of shape ``(...)``.
        """
        logits, means, log_scales = self._split(params)
        z = (x.unsqueeze(-1) - means) * torch.exp(-log_scales)
        log_normal = -0.5 * z.square() - log_scales - 0.5 * math.log(2 * math.pi)
        return torch.logsumexp(F.log_softmax(logits, dim=-1) + log_normal, dim=-1)

    def sample(
        self, params: Tensor, *, generator: torch.Generator | None, temperature: float
    ) -> Tensor:
        """Pick a component ``k ~ softmax(logits / T)``, then ``mu_k + T sigma_k eps``."""
        logits, means, log_scales = self._split(params)  # each (n, K)
        probs = F.softmax(logits / temperature, dim=-1)
        k = rand.multinomial(probs, 1, generator=generator)  # (n, 1)
        eps = rand.randn(k.shape, generator=generator, device=params.device, dtype=params.dtype)
        mean = means.gather(-1, k)
        scale = torch.exp(log_scales.gather(-1, k))
        return (mean + temperature * scale * eps).squeeze(-1)
