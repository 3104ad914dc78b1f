r"""Gaussian-mixture math on plain tensors: component log densities and EM.

A mixture of K Gaussians in D dimensions,

.. math::

    p(x) = \sum_{k=1}^K w_k \, \mathcal N(x; \mu_k, \Sigma_k), \qquad \Sigma_k = L_k L_k^\top,

with :math:`L_k` the lower Cholesky factor (full covariance) or a diagonal of standard
deviations (diagonal covariance). Each component's log density is computed from the
*precision factor* :math:`W_k = L_k^{-\top}` (so :math:`\Sigma_k^{-1} = W_k W_k^\top`):

.. math::

    \log \mathcal N(x; \mu_k, \Sigma_k) = -\tfrac12 \left( D \log 2\pi
        + \lVert W_k^\top (x - \mu_k) \rVert^2 \right) - \sum_d \log (L_k)_{dd},

and the mixture by a stable log-sum-exp over k. Every function here works in whatever dtype
it is given; the model calls them in float64.

References:
    Dempster, Laird & Rubin (1977), "Maximum likelihood from incomplete data via the EM
    algorithm".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from genlab.errors import TrainingError

LOG_2PI = math.log(2.0 * math.pi)


@dataclass
class Mixture:
    """Parameters of one mixture.

    Attributes:
        weights: Mixing weights w_k, shape ``(K,)``, summing to 1.
        means: Component means mu_k, shape ``(K, D)``.
        scale: Lower Cholesky factors L_k ``(K, D, D)`` (full) or standard deviations
            ``(K, D)`` (diagonal).
    """

    weights: Tensor
    means: Tensor
    scale: Tensor

    @property
    def full(self) -> bool:
        return self.scale.dim() == 3


def precision_factor(scale: Tensor, *, full: bool) -> tuple[Tensor, Tensor]:
    """``W = L^{-T}`` and ``log det L = sum_d log L_dd`` for each component.

    Arguments:
        scale: ``(..., K, D, D)`` lower Cholesky factors, or ``(..., K, D)`` standard deviations.
        full: Whether ``scale`` holds Cholesky factors (else standard deviations).

    Returns:
        ``(W, log_det)``: ``W`` of the same shape as ``scale`` (``1 / std`` when diagonal), and
        ``log_det`` of shape ``(..., K)``.
    """
    if full:
        eye = torch.eye(scale.shape[-1], dtype=scale.dtype, device=scale.device)
        inverse = torch.linalg.solve_triangular(scale, eye.expand_as(scale), upper=False)
        log_det = scale.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        return inverse.transpose(-1, -2), log_det
    return scale.reciprocal(), scale.log().sum(-1)


def component_log_prob(
    x: Tensor, means: Tensor, factor: Tensor, log_det: Tensor, *, full: bool
) -> Tensor:
    """``log N(x_n; mu_k, Sigma_k)`` for every point and component.

    Arguments:
        x: Points, ``(n, D)``.
        means: ``(K, D)``.
        factor: Precision factors ``W_k = L_k^{-T}``, ``(K, D, D)``, or ``1 / std``, ``(K, D)``.
        log_det: ``sum_d log L_dd``, ``(K,)``.
        full: Whether ``factor`` holds full matrices.

    Returns:
        ``(n, K)`` log densities.
    """
    n, dims = x.shape
    k = means.shape[0]
    if full:
        # One GEMM for all components: x @ [W_1 | ... | W_K], then subtract W_k^T mu_k.
        stacked = factor.permute(1, 0, 2).reshape(dims, k * dims)  # (D, K*D)
        shift = torch.einsum("kd,kde->ke", means, factor)  # (K, D)
        z = (x @ stacked).view(n, k, dims) - shift  # (n, K, D)
        maha = z.square().sum(-1)  # (n, K)
    else:
        precision = factor.square()  # (K, D)
        # |(x - mu) / std|^2 expanded into GEMMs: x^2 . p - 2 x . (mu p) + mu^2 . p
        maha = (
            x.square() @ precision.T
            - 2.0 * x @ (means * precision).T
            + (means.square() * precision).sum(-1)
        )  # (n, K)
    return -0.5 * (dims * LOG_2PI + maha) - log_det


def mixture_log_prob(x: Tensor, mixture: Mixture) -> Tensor:
    """``log p(x_n) = logsumexp_k (log w_k + log N(x_n; mu_k, Sigma_k))``, shape ``(n,)``."""
    factor, log_det = precision_factor(mixture.scale, full=mixture.full)
    comp = component_log_prob(x, mixture.means, factor, log_det, full=mixture.full)
    return torch.logsumexp(comp + mixture.weights.log(), dim=-1)


# ---------------------------------------------------------------------------- EM
# A Gaussian is an exponential family: log w_k N(x; mu_k, Sigma_k) = eta_k . phi(x) with the
# sufficient statistics phi(x) = [x_d x_e (d <= e), x, 1]. So the E-step is one GEMM
# phi @ eta, and the M-step needs only the weighted sums resp^T @ phi. phi is computed once
# per fit (or per chunk of rows when it would not fit in memory).
_STATISTICS_BUDGET = 2**24  # elements of phi kept for the whole fit (128 MiB in float64)
_CACHE_ELEMENTS = 2**17  # elements of a (K, block) responsibility block (1 MiB in float64)
_LOG_TINY = -300.0  # log-ratios below this are set to it before exp (e^-300 ~ 1e-130)
_STATISTICS_MAX_DIM = 16  # full covariances in more dimensions: per-component iterations
_NEGLIGIBLE = 1e-12  # responsibilities below this are left out of a scatter matrix


def sufficient_statistics(x: Tensor, *, full: bool) -> Tensor:
    """``phi(x) = [quadratic terms, x, 1]``, shape ``(n, F)``.

    Quadratic terms: ``x_d x_e`` for ``d <= e`` (full, ``D(D+1)/2`` of them, in
    ``torch.triu_indices`` order) or ``x_d^2`` (diagonal).
    """
    if full:
        rows, cols = torch.triu_indices(x.shape[1], x.shape[1], device=x.device)
        quad = x[:, rows] * x[:, cols]
    else:
        quad = x.square()
    return torch.cat([quad, x, x.new_ones(x.shape[0], 1)], dim=1)


def natural_parameters(mixture: Mixture) -> Tensor:
    r"""``eta`` of shape ``(F, K)`` with ``phi(x) @ eta = log w_k + log N(x; mu_k, Sigma_k)``.

    From :math:`-\frac12 (x-\mu)^\top P (x-\mu) = -\frac12 x^\top P x + x^\top P\mu
    - \frac12 \mu^\top P \mu` with the precision :math:`P = \Sigma^{-1} = W W^\top`.
    """
    factor, log_det = precision_factor(mixture.scale, full=mixture.full)
    means = mixture.means  # (K, D)
    dims = means.shape[1]
    if mixture.full:
        precision = factor @ factor.transpose(-1, -2)  # (K, D, D)
        rows, cols = torch.triu_indices(dims, dims, device=means.device)
        # x^T P x counts each off-diagonal pair twice.
        quad = -0.5 * precision[:, rows, cols] * torch.where(rows == cols, 1.0, 2.0).to(means)
        linear = (precision @ means[:, :, None]).squeeze(-1)  # (K, D): P mu
    else:
        precision = factor.square()  # (K, D)
        quad = -0.5 * precision
        linear = precision * means
    const = (
        -0.5 * (linear * means).sum(-1) - 0.5 * dims * LOG_2PI - log_det + mixture.weights.log()
    )
    return torch.cat([quad, linear, const[:, None]], dim=1).T


def _finish_m_step(
    nk: Tensor, means: Tensor, scatter: Tensor, n: int, *, full: bool, reg_covar: float
) -> Mixture:
    r"""Mixture from ``N_k`` ``(K,)`` (already made positive, see :func:`_counts`), means
    ``(K, D)`` and the scatter about them, ``sum_n r_nk (x_n - mu_k)(x_n - mu_k)^T``
    ``(K, D, D)`` (or its diagonal ``(K, D)``).

    .. math::

        w_k = \frac{N_k}{n}, \quad \mu_k = \frac{1}{N_k}\sum_n r_{nk} x_n, \quad
        \Sigma_k = \frac{1}{N_k}\sum_n r_{nk} (x_n - \mu_k)(x_n - \mu_k)^\top + \epsilon I,

    with :math:`\epsilon` = ``reg_covar`` keeping each covariance positive definite.

    Raises:
        TrainingError: a covariance is not positive definite even after regularisation.
    """
    if full:
        cov = scatter / nk[:, None, None]  # (K, D, D)
        cov.diagonal(dim1=-2, dim2=-1).add_(reg_covar)
        scale, info = torch.linalg.cholesky_ex(cov)
        bad = info != 0
    else:
        var = scatter / nk[:, None] + reg_covar  # (K, D)
        bad = (var <= 0).any(-1)
        scale = var.clamp(min=torch.finfo(var.dtype).tiny).sqrt()
    if bad.any():
        raise TrainingError(
            f"Expected positive-definite covariances, but found ill-conditioned ones for "
            f"components {bad.nonzero().squeeze(1).tolist()} (too few or duplicated points). "
            f"Increase reg_covar (now {reg_covar:g}) or use fewer components."
        )
    return Mixture(weights=nk / n, means=means, scale=scale)


def _counts(nk: Tensor) -> Tensor:
    """``N_k + 10 eps``: an empty component keeps finite means (as scikit-learn does)."""
    return nk + 10 * torch.finfo(nk.dtype).eps


def _from_raw_moments(
    nk: Tensor, sums: Tensor, squares: Tensor, n: int, *, full: bool, reg_covar: float
) -> Mixture:
    """M-step from ``N_k``, ``sum r x`` and ``sum r x x^T`` (or ``sum r x^2``): the scatter is
    ``sum r x x^T - N_k mu_k mu_k^T`` (the data are centred once per fit, so this loses no
    precision worth having in float64)."""
    nk = _counts(nk)
    means = sums / nk[:, None]  # (K, D)
    if full:
        scatter = squares - nk[:, None, None] * means[:, :, None] * means[:, None, :]
    else:
        scatter = squares - nk[:, None] * means.square()
    return _finish_m_step(nk, means, scatter, n, full=full, reg_covar=reg_covar)


def m_step_from_statistics(
    stats: Tensor, n: int, dims: int, *, full: bool, reg_covar: float
) -> Mixture:
    """The M-step from weighted statistics ``T = resp^T @ phi`` of shape ``(K, F)``."""
    nk, sums, quad = stats[:, -1], stats[:, -1 - dims : -1], stats[:, : -1 - dims]
    if full:
        rows, cols = torch.triu_indices(dims, dims, device=stats.device)
        squares = stats.new_zeros(stats.shape[0], dims, dims)
        squares[:, rows, cols] = quad
        squares[:, cols, rows] = quad  # sum_n r_nk x_n x_n^T, (K, D, D)
        quad = squares
    return _from_raw_moments(nk, sums, quad, n, full=full, reg_covar=reg_covar)


def scatter(x: Tensor, resp_t: Tensor, centres: Tensor, *, threshold: float = 0.0) -> Tensor:
    """``sum_n r_kn (x_n - c_k)(x_n - c_k)^T`` over the rows with ``r_kn > threshold``.

    Each component gathers only the points it is responsible for, so the cost is about
    ``(points kept) * D^2`` instead of ``K n D^2``: EM responsibilities in many dimensions are
    nearly hard (a point belongs to one component up to ``1e-12``), and k-means ones exactly.

    Arguments:
        x: Points, ``(n, D)``.
        resp_t: Responsibilities, ``(K, n)``.
        centres: ``c_k``, ``(K, D)``.
        threshold: Rows with a smaller responsibility are left out.

    Returns:
        ``(K, D, D)``, in ``x``'s dtype.
    """
    comp, rows = (resp_t > threshold).nonzero().unbind(1)  # (P,) each, sorted by component
    weighted = (x[rows] - centres[comp]) * resp_t[comp, rows].sqrt()[:, None]  # (P, D)
    out = x.new_zeros(resp_t.shape[0], x.shape[1], x.shape[1])
    start = 0
    for k, count in enumerate(torch.bincount(comp, minlength=resp_t.shape[0]).tolist()):
        part = weighted[start : start + count]  # the rows of component k
        torch.mm(part.T, part, out=out[k])
        start += count
    return out


def m_step(x: Tensor, resp: Tensor, *, full: bool, reg_covar: float) -> Mixture:
    """M-step from points ``(n, D)`` and responsibilities ``(n, K)`` (e.g. hard k-means ones)."""
    nk = _counts(resp.sum(0))  # (K,)
    means = (resp.T @ x) / nk[:, None]  # (K, D)
    if full:
        spread = scatter(x, resp.T, means)  # (K, D, D)
    else:
        spread = resp.T @ x.square() - nk[:, None] * means.square()  # (K, D)
    return _finish_m_step(nk, means, spread, x.shape[0], full=full, reg_covar=reg_covar)


def _rows_per_block(dims: int, k: int) -> int:
    """Rows per block so that a ``(rows, K * D)`` temporary holds about 4M elements."""
    return max(256, 2**22 // max(1, k * dims))


@dataclass
class EMResult:
    """Outcome of :func:`em`: the fitted mixture and how the run went."""

    mixture: Mixture
    log_likelihood: float  # mean log p(x) at the last E-step
    iterations: int
    converged: bool


def em(x: Tensor, init: Mixture, *, reg_covar: float, max_iter: int, tol: float) -> EMResult:
    r"""Expectation-maximisation from ``init`` until the mean log-likelihood changes by < tol.

    E-step: :math:`r_{nk} = w_k \mathcal N(x_n;\mu_k,\Sigma_k) / p(x_n)`, in log space;
    M-step: the weighted sums of :func:`_finish_m_step`. Each iteration cannot lower the mean
    log-likelihood :math:`\frac1n\sum_n \log p(x_n)`, which the stopping rule tracks (as
    scikit-learn's ``GaussianMixture`` does, so ``tol`` means the same thing in both).

    Two equivalent ways to compute an iteration, chosen by size: with the sufficient
    statistics ``phi`` (one GEMM each way; best for few dimensions or diagonal covariances),
    or per component (``x @ W_k`` and ``x^T diag(r_k) x``; best for full covariances in many
    dimensions, where ``phi`` with its D(D+1)/2 columns would not stay in cache).

    Arguments:
        x: Points, ``(n, D)`` (float64 recommended; centring them helps rounding).
        init: Starting mixture.
        reg_covar: Added to every variance in the M-step.
        max_iter: Maximum number of EM iterations.
        tol: Convergence threshold on the change of the mean log-likelihood.
    """
    n, dims = x.shape
    full = init.full
    step = _statistics_step if not full or dims <= _STATISTICS_MAX_DIM else _direct_step
    cache: dict[str, Tensor] = {}
    mixture, lower, converged, iterations = init, -math.inf, False, 0
    for iteration in range(1, max_iter + 1):
        iterations, previous = iteration, lower
        mixture, total = step(x, mixture, reg_covar, cache)
        lower = total / n
        if abs(lower - previous) < tol:
            converged = True
            break
    return EMResult(mixture, lower, iterations, converged)


def _statistics_step(
    x: Tensor, mixture: Mixture, reg_covar: float, cache: dict[str, Tensor]
) -> tuple[Mixture, float]:
    """One EM iteration through ``phi``: ``log_joint = eta^T phi^T``, ``T = resp phi``."""
    n, dims = x.shape
    full, k = mixture.full, mixture.weights.numel()
    if "phi" not in cache and n * _features(dims, full) <= _STATISTICS_BUDGET:
        cache["phi"] = sufficient_statistics(x, full=full)  # kept for the whole fit
    phi = cache.get("phi")
    block = max(256, _CACHE_ELEMENTS // k)  # (K, block) blocks stay in cache between passes
    eta_t = natural_parameters(mixture).T  # (K, F)
    stats = x.new_zeros(eta_t.shape)  # (K, F): sum_n r_nk phi(x_n)
    total = x.new_zeros(())
    for start in range(0, n, block):
        part = (
            phi[start : start + block]
            if phi is not None
            else sufficient_statistics(x[start : start + block], full=full)
        )  # (m, F)
        log_joint = eta_t @ part.T  # (K, m): log w_k N(x_n | k)
        peak = log_joint.amax(0)  # (m,), for a stable log-sum-exp
        # (K, m): w_k N(x_n | k) / exp(peak), in place. Terms below e^-300 are negligible next
        # to the peak's 1, and exp is orders of magnitude slower on subnormal results.
        joint = log_joint.sub_(peak).clamp_(min=_LOG_TINY).exp_()
        norm = joint.sum(0)  # (m,): p(x_n) / exp(peak)
        total += (norm.log() + peak).sum()  # sum_n log p(x_n)
        # resp = joint / norm; scale whichever operand of the GEMM is smaller.
        if part.shape[1] < k:
            stats += joint @ (part / norm[:, None])
        else:
            stats += joint.div_(norm) @ part
    new = m_step_from_statistics(stats, n, dims, full=full, reg_covar=reg_covar)
    return new, total.item()


def _direct_step(
    x: Tensor, mixture: Mixture, reg_covar: float, cache: dict[str, Tensor]
) -> tuple[Mixture, float]:
    """One EM iteration component by component (full covariances in many dimensions).

    E-step: one float32 GEMM for all components, ``z = x [W_1 | ... | W_K] - [mu_k W_k]``
    (``x`` is centred once per fit, so rounding is relative to values of order the data's
    spread). M-step: ``N_k`` and ``sum_n r_nk x_n`` in float64 from all points, and the scatter
    about the old means (:func:`scatter`, float64) from the points with ``r_nk > 1e-12``,
    whose left-out weight changes no covariance by more than ``n * 1e-12`` of a data variance;
    the shift to the new means is applied exactly afterwards.
    """
    n, dims = x.shape
    if "x32" not in cache:
        cache["x32"] = x.float()
    factor, log_det = precision_factor(mixture.scale, full=True)
    const = mixture.weights.log() - log_det - 0.5 * dims * LOG_2PI  # (K,)
    old_means = mixture.means
    k = const.numel()
    stacked = factor.permute(1, 0, 2).reshape(dims, k * dims).float()  # (D, K*D)
    shift = torch.einsum("kd,kde->ke", old_means, factor).reshape(-1).float()  # (K*D,)
    block = _rows_per_block(dims, k)
    nk, sums = x.new_zeros(k), x.new_zeros(k, dims)
    spread, total = x.new_zeros(k, dims, dims), x.new_zeros(())
    for start in range(0, n, block):
        part = x[start : start + block]  # (m, D)
        z = torch.addmm(shift, cache["x32"][start : start + block], stacked, alpha=1, beta=-1)
        maha = z.square_().view(-1, k, dims).sum(-1).T  # (K, m): |W_k^T (x - mu_k)|^2
        log_joint = const[:, None] - 0.5 * maha.to(x.dtype)  # (K, m): log w_k N(x | k)
        peak = log_joint.amax(0)  # (m,)
        joint = log_joint.sub_(peak).clamp_(min=_LOG_TINY).exp_()  # (K, m), see _statistics_step
        norm = joint.sum(0)  # (m,)
        total += (norm.log() + peak).sum()  # sum_n log p(x_n)
        resp = joint.div_(norm)  # (K, m)
        nk += resp.sum(1)
        sums += resp @ part
        spread += scatter(part, resp, old_means, threshold=_NEGLIGIBLE)  # about the old means
    nk = _counts(nk)
    means = sums / nk[:, None]
    move = means - old_means  # (K, D)
    # sum r (x - a)(x - a)^T = sum r (x - mu)(x - mu)^T + N (mu - a)(mu - a)^T
    spread -= nk[:, None, None] * move[:, :, None] * move[:, None, :]
    return _finish_m_step(nk, means, spread, n, full=True, reg_covar=reg_covar), total.item()


def _features(dims: int, full: bool) -> int:
    """F, the length of phi(x)."""
    return (dims * (dims + 1) // 2 if full else dims) + dims + 1
