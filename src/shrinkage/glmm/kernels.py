"""glmer's Laplace objective and its exact gradient in one compiled pass over the rows.

The numpy path (objective.laplace) sweeps all N rows once per Newton step of the
conditional modes and sums per group with np.bincount: a dozen sweeps an evaluation,
each with its own transcendental calls and memory traffic.  Here the rows are sorted by
group once (:class:`Pass`), so each group's rows sit together and stay in the cache:
Newton's iteration for u_j runs on them to convergence, then one more sweep at the mode
gives the group's share of the objective and of its gradient in (theta, beta).  One pass
over the data per evaluation, in numba, on the worker threads of :mod:`shrinkage.passes`
(groups in chunks, the chunks' sums added in chunk order: the same numbers with any
number of threads).

The row pieces are the derivation's exports (derivations/glmm_pirls.py, via
:mod:`shrinkage.numeric`), compiled here, not copies: the working weight and its slope.
The score m (y - mu) and the log-likelihood kernel are the family's definitions (as
family.py writes them).  The Newton iteration, its step halving and the gradient are
objective.py's, per group (tests/test_glmm_kernels.py holds the two to 1e-12).
numba is imported with this module: by the first fit large enough to use it.
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np
from numba import njit

from .. import numeric
from ..errors import InputError
from ..passes import chunk_results

__all__ = ["Pass", "KernelModes"]

ROWS_PER_CHUNK = 1 << 16  # rows a chunk of groups holds on average: the unit the threads share
CODES = {"binomial": 0, "poisson": 1}

_binomial_weight = njit(inline="always", cache=True)(numeric._glmm_binomial_weight)
_binomial_dweight = njit(inline="always", cache=True)(numeric._glmm_binomial_dweight)
_poisson_weight = njit(inline="always", cache=True)(numeric._glmm_poisson_weight)
_poisson_dweight = njit(inline="always", cache=True)(numeric._glmm_poisson_dweight)


@njit(inline="always", cache=True)
def _score_weight(fam, eta, y, m):
    """The row's score m (y - mu) and working weight at eta."""
    if fam == 0:
        return m * (y - 1.0 / (1.0 + math.exp(-eta))), _binomial_weight(eta, m)
    w = _poisson_weight(eta, m)
    return m * y - w, w


@njit(inline="always", cache=True)
def _kernel(fam, eta, y, m):
    """The log-likelihood's part that depends on eta (family.kernel): binomial
    m (y eta - log(1 + e^eta)) with neither tail overflowing; Poisson m (y eta - e^eta)."""
    if fam == 0:
        return m * (y * eta - (max(eta, 0.0) + math.log1p(math.exp(-abs(eta)))))
    return m * (y * eta - math.exp(eta))


@njit(inline="always", cache=True)
def _dweight(fam, eta, m):
    if fam == 0:
        return _binomial_dweight(eta, m)
    return _poisson_dweight(eta, m)


@njit(nogil=True, cache=True)
def _f(fam, eta0, y, m, a, b, theta, u):
    """f_j(u) = -2 sum_i kernel + u^2 over the group's rows [a, b)."""
    k = 0.0
    for i in range(a, b):
        k += _kernel(fam, eta0[i] + theta * u, y[i], m[i])
    return -2.0 * k + u * u


@njit(nogil=True, cache=True)
def _mode(fam, eta0, y, m, a, b, theta, u, tol, safe, maxit):
    """The conditional mode of one group from u, as objective.modes iterates it: Newton's
    step, a long one (> safe) halved while f_j rises; done when a step is below tol.  NaN
    if that took more than maxit steps.  (objective's constants come in as arguments:
    numba's cache would keep a changed global's old value.)"""
    t2 = theta * theta
    have_f, f = False, 0.0
    for _ in range(maxit):
        S, W = 0.0, 0.0
        for i in range(a, b):
            s, w = _score_weight(fam, eta0[i] + theta * u, y[i], m[i])
            S += s
            W += w
        step = (u - theta * S) / (1.0 + t2 * W)
        size = abs(step)
        if size > safe:
            if not have_f:
                f = _f(fam, eta0, y, m, a, b, theta, u)
            f_new = _f(fam, eta0, y, m, a, b, theta, u - step)
            for _ in range(60):
                if not f_new > f + 1e-12 * (1.0 + abs(f)):
                    break
                step = step / 2
                f_new = _f(fam, eta0, y, m, a, b, theta, u - step)
            f, have_f = f_new, True
        else:
            have_f = False
        u = u - step
        if size < tol:
            return u
    return np.nan


@njit(nogil=True, cache=True)
def _groups(fam, theta, eta0, y, m, X, starts, u, S_out, W_out, lo, hi, acc, wx, dx, tol, safe, maxit):
    """Groups [lo, hi): u[j] <- the mode (from u[j]); S_out, W_out the sums there; acc <-
    [sum kernel, sum u^2, sum log H, d/dtheta, d/dbeta (p)] of the Laplace objective
    without its -2 sum kernel (the row scores' -2 X'score goes into the beta part).
    Returns -1, or the first group whose mode did not converge."""
    p = X.shape[1]
    t2 = theta * theta
    acc[:] = 0.0
    for j in range(lo, hi):
        a, b = starts[j], starts[j + 1]
        uj = _mode(fam, eta0, y, m, a, b, theta, u[j], tol, safe, maxit)
        if not math.isfinite(uj):
            return j
        u[j] = uj
        S, W, D, K = 0.0, 0.0, 0.0, 0.0
        wx[:] = 0.0
        dx[:] = 0.0
        for i in range(a, b):
            eta = eta0[i] + theta * uj
            s, w = _score_weight(fam, eta, y[i], m[i])
            dw = _dweight(fam, eta, m[i])
            K += _kernel(fam, eta, y[i], m[i])
            S += s
            W += w
            D += dw
            for k in range(p):
                x = X[i, k]
                wx[k] += w * x
                dx[k] += dw * x
                acc[4 + k] -= 2.0 * s * x
        H = 1.0 + t2 * W
        S_out[j], W_out[j] = S, W
        acc[0] += K
        acc[1] += uj * uj
        acc[2] += math.log(H)
        c = t2 / H
        du_dt = (S - theta * uj * W) / H
        acc[3] += -2.0 * S * uj + c * D * (uj + theta * du_dt) + 2.0 * theta * W / H
        for k in range(p):
            acc[4 + k] += c * (dx[k] - theta * theta * wx[k] * D / H)
    return -1


@njit(nogil=True, cache=True)
def _order(codes, starts):
    """The rows sorted by group, each group's rows in their order (a counting sort)."""
    at = starts[:-1].copy()
    order = np.empty(codes.size, np.int64)
    for i in range(codes.size):
        c = codes[i]
        order[at[c]] = i
        at[c] += 1
    return order


class KernelModes:
    """objective.Modes from the compiled pass: u, S, W, H per group; the row pieces (in
    the problem's row order) computed when asked."""

    def __init__(self, pr, theta, beta, u, S, W):
        self._pr, self._theta, self._beta = pr, theta, np.asarray(beta, dtype=float)
        self.u, self.S, self.W = u, S, W
        self.H = 1 + theta * theta * W

    @cached_property
    def eta(self) -> np.ndarray:
        return self._pr.eta0(self._beta) + self._theta * self.u[self._pr.codes]

    @cached_property
    def _pieces(self):
        return self._pr.family.pieces(self.eta, self._pr.y, self._pr.m)

    score = property(lambda self: self._pieces[0])
    weight = property(lambda self: self._pieces[1])
    dweight = property(lambda self: self._pieces[2])


class Pass:
    """A problem's rows sorted by group (once), and the compiled evaluations on them."""

    def __init__(self, pr, tol: float, safe: float, maxit: int):
        self.pr, self.tol, self.safe, self.maxit = pr, tol, safe, maxit
        self.fam = CODES[pr.family.name]
        counts = np.bincount(pr.codes, minlength=pr.J)
        self.starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        order = _order(pr.codes, self.starts)
        self.X = np.ascontiguousarray(pr.X[order], dtype=float)
        self.y = np.ascontiguousarray(pr.y[order], dtype=float)
        self.m = np.ascontiguousarray(pr.m[order], dtype=float)
        self.offset = np.ascontiguousarray(pr.offset[order], dtype=float)
        self.chunk = max(1, int(pr.J * ROWS_PER_CHUNK / max(1, pr.y.size)))

    def evaluate(self, theta: float, beta, u0=None):
        """(value, gradient, modes) of the Laplace objective at (theta, beta), the modes
        from u0 (zeros if None)."""
        pr, p = self.pr, self.X.shape[1]
        theta = float(theta)
        beta = np.asarray(beta, dtype=float)
        eta0 = self.X @ beta + self.offset
        u = np.zeros(pr.J) if u0 is None else np.array(u0, dtype=float)
        S, W = np.empty(pr.J), np.empty(pr.J)

        def work(lo, hi, buffer):
            acc = np.empty(4 + p)
            bad = _groups(self.fam, theta, eta0, self.y, self.m, self.X, self.starts, u, S, W, lo, hi, acc,
                          np.empty(p), np.empty(p), self.tol, self.safe, self.maxit)
            return bad, acc

        total = np.zeros(4 + p)
        for bad, acc in chunk_results(work, pr.J, self.chunk):
            if bad >= 0:
                raise InputError(f"the conditional modes did not converge in {self.maxit} Newton steps "
                                 f"(theta = {theta:.6g}); the data may be separated")
            total += acc
        value = -2 * (total[0] + pr.constant) + total[1] + total[2]
        return value, total[3:], KernelModes(pr, theta, beta, u, S, W)

    def laplace(self, theta: float, beta, u0=None, gradient: bool = False):
        """As objective.laplace."""
        value, g, md = self.evaluate(theta, beta, u0)
        return (value, md, g) if gradient else (value, md)
