"""Typed errors used across genlab.

Each error subclasses the builtin exception it refines, so callers that catch ``ValueError``
or ``NotImplementedError`` keep working; callers that want genlab's own errors catch
:class:`GenlabError`. Messages say what was expected and what was found.
"""

from __future__ import annotations


class GenlabError(Exception):
    """Base class of every error genlab raises on purpose."""


class ShapeError(GenlabError, ValueError):
    """An input tensor has the wrong shape for the model or function."""


class DataError(GenlabError, ValueError):
    """Input values are invalid: NaN/Inf, out of support, wrong dtype, unreadable data."""


class ConfigError(GenlabError, ValueError):
    """A hyperparameter or option is invalid (negative size, unknown choice, ...)."""


class UnknownNameError(GenlabError, KeyError):
    """A registry or data-set name is unknown."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class NotFittedError(GenlabError, RuntimeError):
    """A model whose state is learned from data was used before it was fitted."""


class IntractableLikelihood(GenlabError, NotImplementedError):
    """The family has no tractable likelihood (e.g. GANs)."""


class NoRepresentation(GenlabError, NotImplementedError):
    """The family has no learned representation to ``encode`` data with."""


class CheckpointError(GenlabError, OSError):
    """A checkpoint folder is missing, corrupt, truncated or does not match the model."""


class ResourceError(GenlabError, MemoryError):
    """A valid request needs more memory than the device has (a model's size, a number of
    samples): refused before torch allocates it, or when torch's allocator fails."""


class TrainingError(GenlabError, RuntimeError):
    """Training cannot continue (e.g. the loss became NaN or infinite)."""


class GenlabWarning(UserWarning):
    """A setting that works but is probably not what the user wants (e.g. a huge table)."""
