"""The global minimum of the profiled criterion over theta (diagonal entries >= 0).

The criterion can have several local minima on unbalanced data and its minimum can lie on
the boundary (a zero variance, or a correlation of +-1: a singular fit).  So:

1. the criterion is evaluated at a spread of starting points (lme4's identity start,
   scaled copies of it from 1e-2 to 1e2, theta = 0, and for q > 1 two seeded random
   points);
2. L-BFGS-B with the analytic gradient and bounds (diagonal >= 0) runs from the best of
   them, with tolerances at the level of rounding; when that run ends on the boundary,
   also from every other start (two boundary runs that agree can both miss a lower
   interior minimum: seen on 3000 rows with q = 3, where rounding-level changes of the
   cross-products decided which of them L-BFGS-B reached), and with ``thorough`` from the
   next best start and, if the two disagree, from every start; the lowest end is kept;
3. that minimum is polished by Newton steps on the free entries (those not held at a
   bound), with a Hessian from forward differences of the analytic gradient;
4. a diagonal entry below ``SINGULAR_TOL`` is reported as a boundary fit (lme4's
   isSingular rule, tolerance 1e-4 as in lme4).

Each evaluation costs O(J q^3 + p^3); the data are never touched again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

from ._blas import one_thread as _one_thread
from .objective import Problem, _deviance, _gradient, deviance_and_gradient, deviances, evaluate, gradient

__all__ = ["Optimum", "minimise", "SINGULAR_TOL"]

SINGULAR_TOL = 1e-4
_SCALES = (1.0, 1e-2, 0.1, 10.0, 100.0)
_RANDOM_STARTS = 2
_STEP = 1e-10  # Newton stops when its next step is below this (relative to max |theta|, at least 1)
_AGREE = 1e-9  # two runs agree when their criteria differ by less than this (relative)


@dataclass(frozen=True)
class Optimum:
    """theta_hat, the criterion there, the number of L-BFGS-B runs, the local minima they
    found (distinct criterion values), and the projected gradient's largest entry."""

    theta: np.ndarray
    value: float
    runs: int
    local_minima: int
    gradient: float


def moment_start(pr: Problem) -> np.ndarray | None:
    """theta from a method-of-moments estimate of D / sigma^2: per-group least-squares
    b_j = (Z_j'Z_j)^-1 Z_j'(y_j - X_j beta_OLS) over the groups where Z_j'Z_j is
    invertible, D ~ cov(b_j) - sigma^2 mean((Z_j'Z_j)^-1), sigma^2 from the within-group
    residuals; made positive definite and restricted to the block pattern.  A starting
    point only (it lands near the optimum, so fewer iterations), never an estimate."""
    from .pls_kernels import pls_kernels

    q, J = pr.layout.q, pr.ZtZ.shape[2]
    try:
        beta = np.linalg.solve(pr.XtX, pr.Xty)
        n = pr.cp.n
        ok, b, inv_sum, b_sum, bb_sum = (np.empty(J, dtype=np.bool_), np.empty((J, q)), np.empty((q, q)),
                                         np.empty(q), np.empty((q, q)))
        fitted = pls_kernels(q, pr.p)[2](pr.ZtZ_g, pr.ZtXy_g, beta, n, ok, b, inv_sum, b_sum, bb_sum)
        m = int(np.count_nonzero(ok))
        if m < max(q + 1, 3):
            return None
        rss = pr.yty - 2 * beta @ pr.Xty + beta @ pr.XtX @ beta  # total residual SS after OLS
        dof = n.sum() - pr.p - q * m
        sigma2 = max((rss - fitted) / dof, 1e-12 * rss / n.sum()) if dof > 0 else rss / n.sum()
        cov_b = (bb_sum - np.outer(b_sum, b_sum) / m) / (m - 1)  # cov(b_j) over the ok groups
        D = cov_b - sigma2 * inv_sum / m
        mask = pr.layout.rows, pr.layout.cols
        keep = np.zeros((q, q), dtype=bool)
        keep[mask] = True
        D = np.where(keep | keep.T, D, 0.0)
        w, V = np.linalg.eigh(D)
        D = (V * np.maximum(w, 1e-4 * max(w.max(), sigma2 * 1e-4))) @ V.T
        lam = np.linalg.cholesky(D / sigma2)
    except (np.linalg.LinAlgError, ValueError, FloatingPointError):
        return None
    theta = lam[mask]
    return theta if np.all(np.isfinite(theta)) else None


def _starts(pr: Problem) -> tuple[list[np.ndarray], int | None]:
    """The starting points, and the index of the moment start among them (or None)."""
    lay = pr.layout
    base = lay.start()
    starts = [base * s for s in _SCALES] + [np.zeros(lay.size)]
    moment = moment_start(pr)
    if moment is not None:
        starts.insert(0, moment)
    rng = np.random.default_rng(20261125)
    for _ in range(_RANDOM_STARTS if lay.size > 1 else 0):
        t = rng.normal(size=lay.size) * 10 ** rng.uniform(-1, 1)
        t[lay.diagonal] = np.abs(t[lay.diagonal])
        starts.append(t)
    return starts, (0 if moment is not None else None)


def _projected(theta, g, lower) -> np.ndarray:
    """The gradient with entries at a bound and pointing outward set to 0."""
    out = g.copy()
    out[(theta <= lower) & (g > 0)] = 0.0
    return out


def _lbfgsb(pr: Problem, method: str, start: np.ndarray):
    """(theta, value, gradient at theta) at the end of one L-BFGS-B run (scipy imported
    here: a fit whose Newton steps converge from the moment start never loads it, which
    keeps an out-of-core fit's memory down by ~50 MB)."""
    from scipy.optimize import minimize

    lower = pr.layout.lower
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    res = minimize(deviance_and_gradient, start, args=(pr, method), jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"ftol": 1e-15, "gtol": 1e-11, "maxiter": 20000, "maxfun": 40000, "maxls": 60})
    theta = np.maximum(res.x, lower)
    return theta, float(res.fun), (np.asarray(res.jac, dtype=float) if np.array_equal(theta, res.x) else None)


def _runs(pr: Problem, method: str, starts) -> list:
    """The further L-BFGS-B runs of a search for a lower minimum; a run that wanders
    where the criterion cannot be evaluated in floating point is dropped (the runs
    already found stand)."""
    found = []
    for start in starts:
        try:
            found.append(_lbfgsb(pr, method, start))
        except InputError:
            continue
    return found


def _hessian(pr: Problem, method: str, theta: np.ndarray, g: np.ndarray, idx: np.ndarray):
    """Forward differences of the analytic gradient on the entries idx, symmetrised;
    None unless positive definite."""
    H = np.empty((idx.size, idx.size))
    for a, i in enumerate(idx):
        h = 1e-6 * max(abs(theta[i]), 1e-2)
        tp = theta.copy()
        tp[i] += h
        H[:, a] = (gradient(tp, pr, method) - g)[idx] / h
    H = 0.5 * (H + H.T)
    try:
        return H if np.linalg.eigvalsh(H).min() > 0 else None
    except np.linalg.LinAlgError:
        return None


def _newton(pr: Problem, method: str, theta: np.ndarray, value: float, g: np.ndarray | None = None):
    """Newton steps on the entries not held at a bound: (theta, value, gradient, converged).
    A step is kept only if it shrinks the projected gradient and does not raise the
    criterion beyond its rounding level (near the minimum the criterion is flat to
    rounding, the gradient is not).  The Hessian is reused while its steps are kept (the
    chord method: each further step costs one evaluation) and rebuilt when one is not.
    ``converged``: stopped because the next step is below 1e-10 relative in theta."""
    lower = pr.layout.lower
    if g is None:
        g = gradient(theta, pr, method)
    H, held = None, None
    for _ in range(12):
        free = ~((theta <= lower) & (g >= 0))
        if not free.any():
            return theta, value, g, True
        idx = np.flatnonzero(free)
        fresh = H is None or not np.array_equal(idx, held)
        if fresh:
            H, held = _hessian(pr, method, theta, g, idx), idx
            if H is None:
                break
        try:
            step = np.linalg.solve(H, g[idx])
        except np.linalg.LinAlgError:
            break
        if np.max(np.abs(step)) <= _STEP * max(1.0, float(np.max(np.abs(theta)))):
            return theta, value, g, True  # the next step is below the accuracy theta is reported to
        trial = theta.copy()
        trial[idx] -= step
        trial = np.maximum(trial, lower)
        try:
            v, gt = deviance_and_gradient(trial, pr, method)
        except InputError:
            break
        size = np.max(np.abs(_projected(theta, g, lower)))
        if not (v <= value + 64 * np.finfo(float).eps * abs(value)
                and np.max(np.abs(_projected(trial, gt, lower))) < size):
            if fresh:
                break
            H = None  # the reused Hessian is stale: rebuild it here
            continue
        theta, value, g = trial, min(v, value), gt
    return theta, value, g, False


def minimise(pr: Problem, method: str = "REML", thorough: bool = False) -> Optimum:
    """The global minimum of :func:`~shrinkage.lmm.objective.deviance` over theta.

    When the best start is the moment start and lies inside the bounds, Newton steps from
    it usually converge at once (it lands near the optimum); L-BFGS-B runs only when they
    do not, or end near the boundary (then a second start is compared, as below).  The
    other starts are evaluated on a worker thread while those Newton steps run: the steps
    are kept only once the values show the moment start the best, so the result is the
    one of evaluating every start first."""
    from ..passes import in_background

    starts, moment = _starts(pr)

    with _one_thread():  # the other starts in one sweep over the groups, on a worker thread
        others = in_background(lambda: deviances([t for i, t in enumerate(starts) if i != moment], pr, method))
        newton, failed = None, None
        if moment is not None:
            try:  # its pieces kept: Newton steps go from it
                pc = evaluate(starts[moment], pr)
                value = _deviance(pc, pr, method)
            except InputError:
                value, pc = np.inf, None
            if not thorough and np.isfinite(value) and np.all(starts[moment][pr.layout.diagonal] > SINGULAR_TOL):
                try:  # ahead of knowing the moment start is the best: a failure counts only if it is
                    newton = _newton(pr, method, starts[moment], value, _gradient(pc, pr, method))
                except InputError as exc:
                    failed = exc
            values = others()
            values.insert(moment, value)
        else:
            values = others()
        order = [i for i in np.argsort(values, kind="stable") if np.isfinite(values[i])]
        if not order:
            raise InputError("the criterion cannot be evaluated in floating point at any starting point "
                             "(the random terms' columns are far from zero relative to their spread?)")
        found = []
        first = starts[order[0]]
        if order[0] == moment and failed is not None:
            raise failed
        if order[0] == moment and newton is not None:
            theta, value, g, done = newton
            if done and np.all(theta[pr.layout.diagonal] > SINGULAR_TOL):
                found = [(theta, value, g)]
        if not found:
            found = [_lbfgsb(pr, method, first)]
            boundary = bool(np.any(found[0][0][pr.layout.diagonal] < SINGULAR_TOL))
            if boundary:  # where local minima on the boundary hide a lower one inside: every start
                found += _runs(pr, method, [starts[i] for i in order[1:]])
            elif thorough and len(order) > 1:
                found.append(_lbfgsb(pr, method, starts[order[1]]))
                if abs(found[0][1] - found[1][1]) > _AGREE * max(1.0, abs(found[0][1])):
                    found += _runs(pr, method, [starts[i] for i in order[2:]])
            theta, value, g = min(found, key=lambda tv: tv[1])
            theta, value, g, _ = _newton(pr, method, theta, value, g)
        g = _projected(theta, g, pr.layout.lower)
    distinct = len({round(v, 6) for _, v, _ in found})
    return Optimum(theta, value, len(found), distinct, float(np.max(np.abs(g))) if g.size else 0.0)


def is_singular(theta: np.ndarray, pr: Problem) -> bool:
    """lme4's isSingular: a bounded (diagonal) entry of theta within SINGULAR_TOL of 0."""
    return bool(np.any(theta[pr.layout.diagonal] < SINGULAR_TOL))
