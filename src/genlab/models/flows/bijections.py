r"""Bijections: the invertible building blocks of a normalizing flow.

Direction (the course's convention, the same as ``torch.distributions.TransformedDistribution``):

* ``forward`` maps a **latent** :math:`z` to **data** :math:`x = f(z)`; sampling runs it.
* ``inverse`` maps data to latent, :math:`z = f^{-1}(x)`; ``log_prob`` runs it and adds its
  log-determinant:

.. math::
    \log p(x) = \log \pi(f^{-1}(x)) + \log \left| \det \frac{\partial f^{-1}}{\partial x} \right|.

A bijection writes one method, :meth:`Bijection.forward_and_ladj` (and
:meth:`Bijection.inverse_and_ladj` where it has a closed-form inverse); ``forward``,
``inverse`` and ``log_abs_det_jacobian`` are derived from them. ``ladj`` is the log absolute
determinant of the Jacobian of the map that was run, summed over the event, one value per
sample. Inverting a bijection negates it: ``ladj_inverse(x) = -ladj_forward(f^{-1}(x))``.

Every bijection acts on tensors of shape ``(n, *event_shape)`` and may take a ``context`` of
shape ``(n, context_dim)`` (an embedded class label) that it feeds to its conditioner.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn


class Bijection(nn.Module):
    r"""An invertible map :math:`x = f(z)` with a tractable log-determinant.

    Subclasses implement :meth:`forward_and_ladj` and :meth:`inverse_and_ladj`.

    Example:
        >>> import torch
        >>> from genlab.models.flows.bijections import Bijection
        >>> class Shift(Bijection):
        ...     def forward_and_ladj(self, z, context=None):
        ...         return z + 1.0, z.new_zeros(z.shape[0])
        ...     def inverse_and_ladj(self, x, context=None):
        ...         return x - 1.0, x.new_zeros(x.shape[0])
        >>> Shift()(torch.zeros(2, 3)).sum().item()
        6.0
    """

    def forward_and_ladj(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        r"""Map latent to data.

        Arguments:
            z: Latent tensor of shape ``(n, *event_shape)``.
            context: Conditioning tensor of shape ``(n, context_dim)`` or None.

        Returns:
            ``x = f(z)`` of shape ``(n, *event_shape)`` and
            :math:`\log |\det \partial f / \partial z|` of shape ``(n,)``.
        """
        raise NotImplementedError

    def inverse_and_ladj(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        r"""Map data to latent.

        Arguments:
            x: Data tensor of shape ``(n, *event_shape)``.
            context: Conditioning tensor of shape ``(n, context_dim)`` or None.

        Returns:
            ``z = f^{-1}(x)`` of shape ``(n, *event_shape)`` and
            :math:`\log |\det \partial f^{-1} / \partial x|` of shape ``(n,)``.
        """
        raise NotImplementedError

    def forward(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        """``x = f(z)``."""
        return self.forward_and_ladj(z, context)[0]

    def inverse(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """``z = f^{-1}(x)``."""
        return self.inverse_and_ladj(x, context)[0]

    def log_abs_det_jacobian(self, z: Tensor, context: Tensor | None = None) -> Tensor:
        r""":math:`\log |\det \partial f / \partial z|` at ``z``, shape ``(n,)``."""
        return self.forward_and_ladj(z, context)[1]


class Inverse(Bijection):
    """The inverse of a bijection: swaps its forward and inverse directions.

    Useful to flip a fast-density layer (MAF) into a fast-sampling one (IAF).
    """

    def __init__(self, bijection: Bijection) -> None:
        super().__init__()
        self.bijection = bijection

    def forward_and_ladj(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.bijection.inverse_and_ladj(z, context)

    def inverse_and_ladj(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.bijection.forward_and_ladj(x, context)


class Compose(Bijection):
    r"""The chain :math:`x = f_k(f_{k-1}(\dots f_1(z)))`, log-determinants added.

    ``bijections[0]`` is :math:`f_1`, applied first to the latent; the inverse runs the list
    backwards, :math:`z = f_1^{-1}(\dots f_k^{-1}(x))`.

    Arguments:
        bijections: The maps :math:`f_1, \dots, f_k`, in the order applied to the latent.
    """

    def __init__(self, bijections: Iterable[Bijection]) -> None:
        super().__init__()
        self.bijections = nn.ModuleList(bijections)

    def __len__(self) -> int:
        return len(self.bijections)

    def forward_and_ladj(self, z: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        ladj = z.new_zeros(z.shape[0])
        for f in self.bijections:
            z, l_i = f.forward_and_ladj(z, context)
            ladj = ladj + l_i
        return z, ladj

    def inverse_and_ladj(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        ladj = x.new_zeros(x.shape[0])
        for f in reversed(self.bijections):
            x, l_i = f.inverse_and_ladj(x, context)
            ladj = ladj + l_i
        return x, ladj

    @torch.no_grad()
    def inverse_stages(self, x: Tensor, context: Tensor | None = None) -> list[Tensor]:
        """Data pushed through :math:`f_k^{-1}, \\dots, f_1^{-1}` one map at a time.

        Returns:
            ``k + 1`` tensors: ``x`` itself, then the output of each inverse map, the last
            one being the latent ``z``. Used by the inverse-flow picture.
        """
        stages = [x]
        for f in reversed(self.bijections):
            x = f.inverse(x, context)
            stages.append(x)
        return stages

    @torch.no_grad()
    def forward_stages(self, z: Tensor, context: Tensor | None = None) -> list[Tensor]:
        """Latents pushed through :math:`f_1, \\dots, f_k` one map at a time.

        Returns:
            ``k + 1`` tensors: ``z`` itself, then the output of each map, the last one being
            the data-space sample. Used by the sampling picture.
        """
        stages = [z]
        for f in self.bijections:
            z = f(z, context)
            stages.append(z)
        return stages


def sum_except_batch(t: Tensor) -> Tensor:
    """Sum a tensor of shape ``(n, ...)`` over all but the first dimension; shape ``(n,)``."""
    return t.reshape(t.shape[0], -1).sum(dim=1)
