"""Gaussian mixture (``"gmm"``) and single Gaussian (``"gaussian"``), fit by EM or SGD.

* :mod:`~genlab.models.gmm.model` -- :class:`GaussianMixture`: the parameters, ``log_prob``,
  ``sample``, ``rsample`` and the two fitting routes.
* :mod:`~genlab.models.gmm.gaussian` -- :class:`Gaussian`, the one-component mixture.
* :mod:`~genlab.models.gmm.em` -- component log densities, the M-step, the EM loop.
* :mod:`~genlab.models.gmm.init` -- k-means++ seeding, Lloyd's k-means, hard responsibilities.
"""

from genlab.models.gmm.em import EMResult, Mixture, em, m_step
from genlab.models.gmm.gaussian import Gaussian
from genlab.models.gmm.init import kmeans, kmeans_plusplus
from genlab.models.gmm.model import GaussianMixture

__all__ = [
    "EMResult",
    "Gaussian",
    "GaussianMixture",
    "Mixture",
    "em",
    "kmeans",
    "kmeans_plusplus",
    "m_step",
]
