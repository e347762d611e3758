"""The global minimum of :mod:`.blocked`'s criterion over theta (diagonal entries >= 0):

0. where an evaluation is costly (a dense block of hundreds of levels) and every term is
   scalar: Newton steps from the moment start (:mod:`.blocked_start`) with the exact
   gradient (:mod:`.blocked_gradient`; the Hessian by second differences once, then BFGS
   updates), 8 factorisations on InstEval; kept unless it ends near a zero variance or
   fails, then as below;
1. the criterion at lme4's start (T_k = I) and scaled copies of it (1e-2 .. 1e2), and at
   theta = 0;
2. COBYQA (derivative-free, bounds as lme4's: 0 below on the diagonal) from the best
   start, or where an evaluation is cheap L-BFGS-B with forward-difference gradients
   (less overhead per iteration); when it ends on the boundary (a zero variance, a
   correlation of +-1), or an evaluation is cheap, from the other starts too; the
   lowest end is kept;
3. where an evaluation is cheap, Newton steps on the entries not held at a bound,
   gradient and Hessian by central differences, each step kept only if the criterion
   does not rise (a polish to the accuracy of lme4's bobyqa with rhoend 1e-12);
4. isSingular as lme4's: a diagonal entry of theta below 1e-4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ._blas import one_thread
from .blocked import BlockedProblem, deviance, evaluate

__all__ = ["minimise", "Optimum", "SINGULAR_TOL"]

SINGULAR_TOL = 1e-4
_SCALES = (1.0, 0.1, 10.0, 1e-2, 1e2)
_CHEAP = 0.02  # seconds per evaluation below which every start's run is compared


@dataclass(frozen=True)
class Optimum:
    """theta_hat, the criterion there, the optimiser runs made, the distinct minima they ended in."""

    theta: np.ndarray
    value: float
    runs: int
    local_minima: int
    pieces: object = None  # the blocked factor at theta, where the optimiser ends with it


def _value(theta, pr, method) -> float:
    try:
        return deviance(theta, pr, method)
    except (InputError, np.linalg.LinAlgError, FloatingPointError):
        return np.inf


def _steps(theta: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Central-difference steps, kept off the bound (a one-sided step at it)."""
    return 1e-5 * np.maximum(np.abs(theta), 1e-2)


def _gradient(theta, pr, method, lower, central: bool = True):
    """Central differences (forward ones at a bound, or unless ``central``)."""
    h = _steps(theta, lower)
    f0 = _value(theta, pr, method)
    g = np.empty(theta.size)
    for i in range(theta.size):
        tp, tm = theta.copy(), theta.copy()
        tp[i] += h[i]
        tm[i] -= h[i]
        if tm[i] < lower[i] or not central:
            g[i] = (_value(tp, pr, method) - f0) / h[i]
        else:
            g[i] = (_value(tp, pr, method) - _value(tm, pr, method)) / (2 * h[i])
    return f0, g


def _cobyqa(pr, method, start):
    """(theta, value) at the end of one run of COBYQA (scipy's successor of Powell's
    BOBYQA, which lme4 and MixedModels.jl use), bounds as lme4's."""
    from scipy.optimize import minimize

    lower = pr.layout.lower
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    res = minimize(lambda t: min(_value(np.maximum(t, lower), pr, method), _HUGE), start, method="COBYQA",
                   bounds=bounds, options={"final_tr_radius": 1e-10, "maxfev": 1000 * max(start.size, 1)})
    theta = np.maximum(res.x, lower)
    return theta, _value(theta, pr, method)


def _lbfgsb(pr, method, start):
    """(theta, value) at the end of one L-BFGS-B run, forward-difference gradients (for
    cheap evaluations: fewer iterations' overhead than COBYQA's)."""
    from scipy.optimize import minimize

    lower = pr.layout.lower
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    res = minimize(lambda t: _gradient(np.maximum(t, lower), pr, method, lower, central=False), start, jac=True,
                   method="L-BFGS-B", bounds=bounds, options={"ftol": 1e-13, "gtol": 1e-7, "maxiter": 500})
    theta = np.maximum(res.x, lower)
    return theta, _value(theta, pr, method)


_HUGE = 1e300  # where the criterion cannot be evaluated: a value the optimiser can compare


def _hessian(theta, pr, method, idx, f0):
    """Second differences of the criterion on the entries idx."""
    h = _steps(theta, None)
    H = np.empty((idx.size, idx.size))

    def f(shift):
        t = theta.copy()
        for i, s in shift:
            t[i] += s
        return _value(t, pr, method)

    for a, i in enumerate(idx):
        H[a, a] = (f([(i, h[i])]) - 2 * f0 + f([(i, -h[i])])) / h[i] ** 2
        for b in range(a):
            j = idx[b]
            H[a, b] = H[b, a] = (f([(i, h[i]), (j, h[j])]) - f([(i, h[i]), (j, -h[j])])
                                 - f([(i, -h[i]), (j, h[j])]) + f([(i, -h[i]), (j, -h[j])])) / (4 * h[i] * h[j])
    return H


def _newton(pr, method, theta, value):
    """Newton steps on the free entries (see the module docstring)."""
    lower = pr.layout.lower
    for _ in range(8):
        f0, g = _gradient(theta, pr, method, lower)
        free = ~((theta <= lower + 1e-12) & (g >= 0))
        idx = np.flatnonzero(free)
        if idx.size == 0 or np.any(theta[idx] - 2 * _steps(theta, lower)[idx] < lower[idx]):
            return theta, value  # too near the bound for central differences: the optimiser's end stands
        H = _hessian(theta, pr, method, idx, f0)
        try:
            if np.linalg.eigvalsh(H).min() <= 0:
                return theta, value
            step = np.linalg.solve(H, g[idx])
        except np.linalg.LinAlgError:
            return theta, value
        trial = theta.copy()
        trial[idx] -= step
        trial = np.maximum(trial, lower)
        v = _value(trial, pr, method)
        if not v <= value + 1e-13 * abs(value):
            return theta, value
        theta, value = trial, min(v, value)
        if np.max(np.abs(step)) <= 1e-10 * max(1.0, float(np.max(np.abs(theta)))):
            break
    return theta, value


def _exact(theta, pr, method):
    """(criterion, gradient, factor), or (_HUGE, 0, None) where it cannot be evaluated."""
    from .blocked_gradient import value_and_gradient

    try:
        pc = evaluate(theta, pr)
        return (*value_and_gradient(theta, pr, method, pc), pc)
    except (InputError, np.linalg.LinAlgError, FloatingPointError):
        return _HUGE, np.zeros(theta.size), None


def _hessian_exact(theta, value, g, pr, method):
    """Second differences of the criterion about theta, where the gradient g is exact:
    H_ii = 2 (f(theta + h e_i) - f - h g_i) / h^2, H_ij from f(theta + h e_i + h e_j);
    K (K + 1) / 2 factorisations without the inverse a gradient needs (h = 1e-3 theta:
    the relative error ~1e-3 the BFGS updates then correct)."""
    h = 1e-3 * np.maximum(theta, 1e-2)
    K = theta.size
    single = np.empty(K)
    H = np.empty((K, K))
    for i in range(K):
        t = theta.copy()
        t[i] += h[i]
        single[i] = _value(t, pr, method)
        H[i, i] = 2 * (single[i] - value - h[i] * g[i]) / h[i] ** 2
    for i in range(K):
        for j in range(i):
            t = theta.copy()
            t[i] += h[i]
            t[j] += h[j]
            H[i, j] = H[j, i] = (_value(t, pr, method) - single[i] - single[j] + value) / (h[i] * h[j])
    return H


def _quasi_newton(pr, method, start, first):
    """(theta, value, factor) by Newton steps from ``start`` (the moment start; ``first``
    its _exact): the Hessian by second differences once, then BFGS updates; a step that
    raises the criterion is halved; entries kept >= 0.  A step below 1e-6 of theta ends
    it, taken (the error after it is of the order of its square) where the criterion does
    not rise, by a factorisation without the gradient.  None where the Hessian at the
    start is not positive definite (too far from a minimum: the caller searches instead)."""
    theta = start
    value, g, pc = first
    H = _hessian_exact(theta, value, g, pr, method)
    if pc is None or not np.all(np.isfinite(H)) or np.linalg.eigvalsh(H).min() <= 0:
        return None
    for _ in range(50):
        step = -np.linalg.solve(H, g)
        step[(theta <= 0) & (step < 0)] = 0.0  # held at the bound
        if np.max(np.abs(step)) <= 1e-6 * max(1.0, float(np.max(theta))):
            last = np.maximum(theta + step, 0.0)
            try:
                pl = evaluate(last, pr)
                vl = deviance(last, pr, method, pl)
            except (InputError, np.linalg.LinAlgError, FloatingPointError):
                break
            if vl <= value:
                theta, value, pc = last, vl, pl
            break
        for _ in range(30):
            trial = np.maximum(theta + step, 0.0)
            v, gt, pt = _exact(trial, pr, method)
            if v <= value + 1e-14 * abs(value):
                break
            step /= 2
        else:
            break
        s, yv = trial - theta, gt - g
        if s @ yv > 1e-300:
            Hs = H @ s
            H = H + np.outer(yv, yv) / (s @ yv) - np.outer(Hs, Hs) / (s @ Hs)
        theta, value, g, pc = trial, v, gt, pt
    return theta, value, pc


def minimise(pr: BlockedProblem, method: str = "REML") -> Optimum:
    """The global minimum of the criterion over theta (see the module docstring), on one
    BLAS thread (small dense factorisations: threads cost more than they bring, the more
    so on a busy machine)."""
    with one_thread():
        return _minimise(pr, method)


def _minimise(pr: BlockedProblem, method: str) -> Optimum:
    import time

    from .blocked_gradient import scalar_terms

    lay = pr.layout
    starts = [lay.start() * s for s in _SCALES] + [np.zeros(lay.size)]
    moments = None
    if scalar_terms(pr):  # the exact gradient applies: time an evaluation with it at the moment start
        from .blocked_start import moment_start

        moments = moment_start(pr)
    clock = time.perf_counter()
    if moments is not None:
        at_moments = _exact(moments, pr, method)
    first = _value(starts[0], pr, method) if moments is None else None
    cheap = time.perf_counter() - clock < _CHEAP
    if moments is not None and not cheap:  # a costly criterion: Newton from the moments
        end = _quasi_newton(pr, method, moments, at_moments)
        if end is not None and np.all(end[0] >= SINGULAR_TOL):
            return Optimum(end[0], end[1], 1, 1, end[2])
    if first is None:
        first = _value(starts[0], pr, method)
    values = [first] + [_value(t, pr, method) for t in starts[1:]]
    order = [i for i in np.argsort(values, kind="stable") if np.isfinite(values[i])]
    if not order:
        raise InputError("the criterion cannot be evaluated in floating point at any starting point")
    run = _lbfgsb if cheap else _cobyqa
    found = [run(pr, method, starts[order[0]])]
    if cheap or np.any(found[0][0][lay.diagonal] < SINGULAR_TOL):
        found += [run(pr, method, starts[i]) for i in order[1:]]
    theta, value = min(found, key=lambda tv: tv[1])
    if cheap:
        theta, value = _newton(pr, method, theta, value)
    return Optimum(theta, value, len(found), len({round(v, 6) for _, v in found}))
