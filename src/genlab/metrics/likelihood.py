r"""Test negative log-likelihood in nats and in bits per dimension, on one scale for all families.

Training maximises the likelihood, ``argmin_theta -(1/n) sum_i log p_theta(x^(i))``; on held-out
data the same number measures how well the model generalizes. genlab reports it three ways:

* ``nll_nats``: the mean of ``-log p(x)`` over samples, in nats;
* ``nll_nats_per_dim``: the same divided by the number of dimensions D;
* ``bits_per_dim``: ``-log p(x) / (D ln 2)``, the rate an entropy coder driven by the model
  would achieve, comparable across data sets and families.

For discrete data (digits, 17 levels) every genlab model already returns a log *mass*:
discrete families exactly, continuous families as the uniform-dequantization bound
``log p_c((x + u) / L) - D log L`` (see ``genlab.data.transforms``). So bits/dim is simply
``-log_prob / (D ln 2)`` here. A user who brings their own continuous density on the unit
cube uses :func:`bits_per_dim_from_density`, which adds the ``D log L`` correction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from genlab.checks import check_int
from genlab.errors import DataError, IntractableLikelihood


def nll(model: Any, data: Any, *, y: Tensor | np.ndarray | None = None,
        batch_size: int = 1024) -> dict[str, Any]:
    r"""Mean negative log-likelihood of ``data`` under ``model``, in nats and bits per dim.

    Uses ``model.log_prob_bound``, which equals ``log_prob`` for exact families and is a
    variational lower bound (so the NLL is an upper bound) for diffusion.

    .. math::
        \mathrm{nll\_nats} = -\frac{1}{n}\sum_i \log p(x_i), \qquad
        \mathrm{bits\_per\_dim} = \frac{\mathrm{nll\_nats}}{D \ln 2}.

    Arguments:
        model: A :class:`~genlab.base.GenerativeModel` (anything with ``log_prob_bound``,
            ``event_dim`` and the capability flags).
        data: A :class:`~genlab.data.Dataset` or a tensor of shape ``(n, *event_shape)``.
        y: Class labels of shape ``(n,)`` for a conditional model; by default the data set's
            labels when the model is conditional.
        batch_size: Samples scored at once.

    Returns:
        ``{"nll_nats", "nll_nats_per_dim", "bits_per_dim", "nll_nats_stderr",
        "bits_per_dim_stderr", "n", "bound"}``; ``bound`` is True when the model gives only
        a bound (``has_exact_likelihood`` False). Standard errors are ``std / sqrt(n)``.

    Raises:
        IntractableLikelihood: the model has neither a likelihood nor a bound (GANs).
        ConfigError: ``batch_size`` is not a positive int.

    Example:
        >>> from genlab import create, fit, load_data
        >>> model = fit(create("histogram", event_shape=(2,), bins=16), load_data("moons", n=500))
        >>> result = nll(model, load_data("moons", split="test", n=500))
        >>> result["bound"], result["n"]
        (False, 500)
    """
    check_int("batch_size", batch_size)
    exact = bool(getattr(model, "has_exact_likelihood", True))
    has_bound = bool(getattr(model, "has_likelihood_bound", False))
    if not exact and not has_bound:
        raise IntractableLikelihood(
            f"{type(model).__name__} has no tractable likelihood or bound, so its test NLL is "
            "undefined; score its samples with genlab.metrics.sample_metrics instead."
        )
    x = getattr(data, "x", data)
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, Tensor) or x.dim() < 1 or x.shape[0] < 1:
        raise DataError(f"Expected data to be a Dataset or a tensor of shape (n, ...), but "
                        f"found {type(x).__name__}.")
    if y is None and (getattr(model, "num_classes", None) is not None
                      or getattr(model, "y_is_conditions", False)):
        y = getattr(data, "y", None)
    if y is not None and not isinstance(y, Mapping):  # a Conditions is sliced by rows as is
        y = torch.as_tensor(y)

    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    parts = []
    try:
        with torch.no_grad():
            for start in range(0, x.shape[0], batch_size):
                yb = None if y is None else y[start:start + batch_size]
                lp = model.log_prob_bound(x[start:start + batch_size], yb)
                parts.append(lp.detach().reshape(-1).double().cpu())
    finally:
        if was_training and hasattr(model, "train"):
            model.train(True)
    nats = -torch.cat(parts)  # (n,) NLL of each sample
    return {**_summary(nats, int(model.event_dim)), "bound": not exact}


def _summary(nats: Tensor, dims: int) -> dict[str, Any]:
    """Mean NLL of ``nats`` ``(n,)`` in nats, per dimension and in bits per dimension, with
    the standard error of the mean over samples."""
    n = nats.numel()
    mean = nats.mean().item()
    spread = nats.std().item() / math.sqrt(n) if n > 1 else float("nan")
    return {
        "nll_nats": mean,
        "nll_nats_per_dim": mean / dims,
        "bits_per_dim": mean / (dims * math.log(2.0)),
        "nll_nats_stderr": spread,
        "bits_per_dim_stderr": spread / (dims * math.log(2.0)),
        "n": n,
    }


def nll_estimate(model: Any, data: Any, *, y: Tensor | np.ndarray | None = None,
                 generator: torch.Generator | None = None, **options: Any) -> dict[str, Any]:
    r"""Test NLL of a model whose likelihood is only *estimated* (``has_likelihood_estimate``:
    an RBM, ``log p(x) = -F(x) - log Z`` with ``log Z`` from annealed importance sampling).

    One estimate of ``log Z`` serves the whole set (``model.log_z_estimate``), so its error
    does not average out: it is reported apart, as ``estimate_stderr_nats`` (and in bits per
    dimension), beside the spread over test samples (``nll_nats_stderr``).

    Arguments:
        model: A model with ``log_z_estimate(generator=, **options)`` and
            ``log_prob_estimate(x, y, log_z=)``.
        data: A :class:`~genlab.data.Dataset` or a tensor of shape ``(n, *event_shape)``.
        y: Class labels (by default the data set's, for a conditional model).
        generator: Source of the estimate's randomness.
        **options: Options of ``log_z_estimate`` (``chains``, ``temperatures``).

    Returns:
        The keys of :func:`nll`, with ``"estimate": True``, ``"bound": False``,
        ``"estimate_stderr_nats"`` and ``"bits_per_dim_estimate_stderr"``.
    """
    x = getattr(data, "x", data)
    if y is None and getattr(model, "num_classes", None) is not None:
        y = getattr(data, "y", None)
    log_z = model.log_z_estimate(generator=generator, **options)
    estimate = model.log_prob_estimate(x, y, log_z=log_z)
    nats = -estimate.log_prob.detach().reshape(-1).double().cpu()  # (n,)
    stderr = estimate.stderr.detach().reshape(-1).double().cpu()  # (n,) log Z error per sample
    if y is None:
        shared = stderr[0].item()
    else:  # independent estimates per class: Var(mean) = sum_c (n_c / n)^2 se_c^2
        labels = torch.as_tensor(y).reshape(-1).cpu()
        shared = math.sqrt(sum((labels == c).double().mean().item() ** 2
                               * stderr[labels == c][0].item() ** 2
                               for c in labels.unique().tolist()))
    dims = int(model.event_dim)
    return {
        **_summary(nats, dims),
        "estimate_stderr_nats": shared,
        "bits_per_dim_estimate_stderr": shared / (dims * math.log(2.0)),
        "bound": False,
        "estimate": True,
    }


def bits_per_dim_from_density(log_density_unit: Tensor | float, event_dim: int,
                              num_levels: int) -> Tensor | float:
    r"""Bits per dimension of discrete data from a continuous density on the unit cube.

    If ``x`` holds integers in ``[0, L)^D`` and a continuous model gives the density
    ``p_c(v)`` of the dequantized points ``v = (x + u) / L``, ``u ~ U[0, 1)^D``, then
    ``log P(x) >= E_u[log p_c(v)] - D log L`` (Theis et al. 2016), so

    .. math::
        \mathrm{bpd} = \frac{-\log p_c(v) + D \log L}{D \ln 2}.

    A uniform density (``log p_c = 0``) gives ``log2 L`` bits per dimension: no better than
    storing each pixel raw. For data scaled to [0, 1] with 256 levels the correction is the
    familiar "+8 bits".

    Arguments:
        log_density_unit: ``log p_c(v)`` in nats, a float or a tensor of any shape (one value
            per sample).
        event_dim: D, the number of dimensions of one sample.
        num_levels: L, the number of discrete levels (17 for digits, 256 for 8-bit images).

    Returns:
        Bits per dimension, same type and shape as ``log_density_unit``.

    References:
        Theis, van den Oord, Bethge, "A note on the evaluation of generative models", ICLR
        2016; Dinh, Sohl-Dickstein, Bengio, "Density estimation using Real NVP", ICLR 2017.

    Example:
        >>> round(bits_per_dim_from_density(0.0, event_dim=64, num_levels=256), 6)
        8.0
    """
    check_int("event_dim", event_dim)
    check_int("num_levels", num_levels, ge=2)
    return (-log_density_unit + event_dim * math.log(num_levels)) / (event_dim * math.log(2.0))
