"""Restricted Boltzmann machines: CD / PCD training, Gibbs sampling, AIS estimates of log Z."""

from genlab.models.rbm.model import RBM, LogProbEstimate
from genlab.models.rbm.partition import AISEstimate, ais_log_z, exact_log_z
from genlab.models.rbm.units import VisibleUnits

__all__ = ["RBM", "AISEstimate", "LogProbEstimate", "VisibleUnits", "ais_log_z", "exact_log_z"]
