"""The optimum of glmer's objective over (theta, beta) jointly, as glmer's second stage
(nAGQ > 0) optimises it, but to the precision of the arithmetic: Newton's method from
glm's estimates (theta = 1, as lme4 starts).  The objective is even in theta (u -> -u), so
theta runs over the real line and |theta| is reported; theta = 0 is always stationary and
is the answer when the objective rises from it (a singular fit).

Laplace (nagq = 1): the gradient is exact (objective.laplace), the Hessian its central
difference.  Adaptive quadrature: from the Laplace optimum, the gradient a central
difference of the objective and the Newton matrix the Laplace Hessian (close to the
quadrature's: the iteration contracts fast); the Hessian at the end, for vcov, a second
difference.  lme4's vcov uses the Hessian of the deviance in (theta, beta).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .objective import Problem, agq, laplace

__all__ = ["Optimum", "optimise", "glm_start"]

STEP_TOL = 1e-10   # Newton stops when every step is below this, relative to max(1, |x|)
SAMPLE_ROWS = 100_000  # a problem of 4 times this many rows starts from a sample of its groups this large
DECREMENT = 1e-10  # Laplace: g'H^-1 g below this is within 1e-5 standard errors of the optimum (vcov = 2 H^-1)
MAXIT = 100


@dataclass(frozen=True)
class Optimum:
    x: np.ndarray          # (theta, beta), theta >= 0
    value: float           # the objective (-2 loglik on lme4's scale for this nAGQ) at x
    hessian: np.ndarray    # of the objective in (theta, beta)
    modes: object          # objective.Modes at x
    iterations: int


def glm_start(pr: Problem) -> np.ndarray:
    """beta of the GLM without random effects (IRLS), glmer's starting values."""
    fam = pr.family
    if fam.name == "binomial":
        mean = np.clip((pr.m * pr.y + 0.5) / (pr.m + 1), 1e-3, 1 - 1e-3)
    else:
        mean = pr.y + 0.1
    eta = fam.eta_of(mean)
    beta = np.zeros(pr.X.shape[1])
    for _ in range(100):
        s, w, _ = fam.pieces(eta, pr.y, pr.m)
        z = eta - pr.offset + s / np.maximum(w, 1e-300)
        sw = np.sqrt(w)
        new = np.linalg.lstsq(pr.X * sw[:, None], z * sw, rcond=None)[0]
        done = np.max(np.abs(new - beta)) < 1e-10 * (1 + np.max(np.abs(new)))
        beta, eta = new, pr.X @ new + pr.offset
        if done:
            break
    return beta


class _Objective:
    """The objective with the last conditional modes kept as the next Newton start."""

    def __init__(self, pr: Problem, nagq: int):
        self.pr, self.nagq, self.u, self.calls = pr, nagq, None, 0
        self.both = nagq == 1 and pr.compiled is not None  # the compiled pass gives the gradient with the value
        self.kept = None  # (x, gradient there) from the last value
        self.md = None  # the modes of the last finite value

    def value(self, x) -> float:
        """The objective; +inf where it overflows (a line search's trial far out)."""
        self.calls += 1
        theta, beta = float(x[0]), np.asarray(x[1:])
        with np.errstate(over="ignore", invalid="ignore"):
            try:
                if self.both:
                    v, md, g = laplace(self.pr, theta, beta, self.u, gradient=True)
                    self.kept = (np.array(x, dtype=float), g)
                elif self.nagq == 1:
                    v, md = laplace(self.pr, theta, beta, self.u)
                else:
                    v, md = agq(self.pr, theta, beta, self.nagq, self.u)
            except InputError:
                return np.inf
        if not np.isfinite(v) or not np.all(np.isfinite(md.u)):
            return np.inf
        self.u, self.md = md.u, md
        return v

    def gradient(self, x) -> np.ndarray:
        if self.kept is not None and np.array_equal(self.kept[0], x):
            return self.kept[1]
        if self.nagq == 1:
            v, md, g = laplace(self.pr, float(x[0]), np.asarray(x[1:]), self.u, gradient=True)
            self.u = md.u
            return g
        h = 1e-5 * np.maximum(1.0, np.abs(x))
        return np.array([(self.value(x + h[k] * e) - self.value(x - h[k] * e)) / (2 * h[k])
                         for k, e in enumerate(np.eye(x.size))])


def _hessian_of_gradient(obj, x, h_rel=1e-6) -> np.ndarray:
    n = x.size
    H = np.zeros((n, n))
    h = h_rel * np.maximum(1.0, np.abs(x))
    for k in range(n):
        e = np.zeros(n)
        e[k] = h[k]
        H[:, k] = (obj.gradient(x + e) - obj.gradient(x - e)) / (2 * h[k])
    return (H + H.T) / 2


def _hessian_of_value(obj, x, h_rel=1e-4) -> np.ndarray:
    """Second differences of the objective (for the quadrature, whose gradient is itself
    a difference)."""
    n = x.size
    h = h_rel * np.maximum(1.0, np.abs(x))
    f0 = obj.value(x)
    H = np.zeros((n, n))
    for i in range(n):
        ei = np.eye(n)[i] * h[i]
        H[i, i] = (obj.value(x + ei) - 2 * f0 + obj.value(x - ei)) / h[i] ** 2
        for j in range(i):
            ej = np.eye(n)[j] * h[j]
            H[i, j] = H[j, i] = (obj.value(x + ei + ej) - obj.value(x + ei - ej) - obj.value(x - ei + ej)
                                 + obj.value(x - ei - ej)) / (4 * h[i] * h[j])
    return H


def _direction(H, g) -> np.ndarray:
    """-H^-1 g with H's eigenvalues made positive (a descent direction away from the optimum)."""
    vals, vecs = np.linalg.eigh(H)
    floor = 1e-8 * max(np.max(np.abs(vals)), 1e-300)
    vals = np.maximum(np.abs(vals), floor)
    return -vecs @ ((vecs.T @ g) / vals)


def _newton(obj, x, hess, fixed_hessian=None, decrement=0.0):
    """Newton's method with a line search; the Hessian (``hess`` or ``fixed_hessian``) at
    the start only, then BFGS updates of it (each finite-difference Hessian costs
    2 (p + 1) gradients, a pass over the rows each).  Stops when a step no longer lowers
    the objective, or is below STEP_TOL, or (``decrement`` > 0) when the Newton decrement
    g'H^-1 g, twice the decrease the next step promises, is below ``decrement``."""
    f = obj.value(x)
    H = hess(obj, x) if fixed_hessian is None else fixed_hessian.copy()
    g = obj.gradient(x)
    for it in range(1, MAXIT + 1):
        step = _direction(H, g)
        if -(g @ step) < decrement:
            return x, f, it
        t = 1.0
        while True:
            trial = x + t * step
            ft = obj.value(trial)
            if ft <= f + 1e-4 * t * (g @ step) or t < 1e-10:
                break
            t /= 2
        small = np.max(np.abs(t * step) / np.maximum(1.0, np.abs(x))) < STEP_TOL
        if ft > f or small or t < 1e-10:
            return x, f, it
        g_new = obj.gradient(trial)
        s_, y_ = trial - x, g_new - g
        if s_ @ y_ > 1e-300:
            Hs = H @ s_
            H = H + np.outer(y_, y_) / (y_ @ s_) - np.outer(Hs, Hs) / (s_ @ Hs)
        x, f, g = trial, ft, g_new
    raise InputError(f"the fit did not converge in {MAXIT} Newton steps; the data may be separated "
                     "(a fixed effect running off to infinity)")


def _polish(obj, x, f, H):
    """One Newton step with the Hessian vcov needs anyway (central differences of the exact
    gradient): from within DECREMENT of the optimum it lands within rounding of it (the
    objective's own noise leaves the BFGS iteration there, steps of 1e-9 that neither
    lower the objective visibly nor stop).  So short a step is taken as it is (the
    decrease it promises is below the objective's rounding); a longer one if it lowers
    the objective."""
    g = obj.gradient(x)
    step = _direction(H, g)
    if -(g @ step) < 10 * DECREMENT:
        return x + step
    return x + step if obj.value(x + step) <= f else x


def _sample_start(pr: Problem):
    """(x, Hessian) to start a large problem from: the fit of every k-th group (about
    SAMPLE_ROWS rows), its Hessian scaled by N / N_sample; None for a small problem, or
    when the sample's fit fails or is singular (theta = 0 is stationary: no start)."""
    k = -(-pr.y.size // SAMPLE_ROWS)
    if k < 4 or pr.J < 4 * k:
        return None
    rows = np.flatnonzero(pr.codes % k == 0)
    sub = Problem(pr.family, pr.y[rows], pr.m[rows], pr.offset[rows], pr.X[rows], pr.codes[rows] // k,
                  -(-pr.J // k))
    try:
        opt = optimise(sub, 1)
    except InputError:
        return None
    if opt.x[0] < 1e-3:
        return None
    return opt.x, opt.hessian * (pr.y.size / rows.size)


def optimise(pr: Problem, nagq: int, start=None) -> Optimum:
    """The minimum of the objective over theta (>= 0) and beta; a large problem from a
    sample's optimum (:func:`_sample_start`: the first Newton steps there cost a tenth)."""
    sample = _sample_start(pr) if start is None else None
    lap = _Objective(pr, 1)
    if sample is not None:
        x, f, its = _newton(lap, sample[0], None, fixed_hessian=sample[1], decrement=DECREMENT)
    else:
        x = np.concatenate([[1.0], glm_start(pr)]) if start is None else np.array(start, dtype=float)
        x, f, its = _newton(lap, x, _hessian_of_gradient, decrement=DECREMENT)
    H = _hessian_of_gradient(lap, x)
    if nagq == 1:
        x, obj = _polish(lap, x, f, H), lap
    else:
        obj = _Objective(pr, nagq)
        obj.u = lap.u
        x, f, more = _newton(obj, x, None, fixed_hessian=H)
        its += more
        H = _hessian_of_value(obj, x)
    if not np.all(np.isfinite(x)):
        raise InputError("the fit left the finite numbers: the data may be separated")
    if x[0] < 0:  # the mirror image: the same fit with u -> -u
        x[0] = -x[0]
        S = np.ones(x.size)
        S[0] = -1
        H = H * np.outer(S, S)
        obj.u = None if obj.u is None else -obj.u
    value = obj.value(x)  # and the modes there
    if not np.isfinite(value):
        raise InputError("the objective is not finite at the fit's optimum: the data may be separated")
    return Optimum(x, float(value), H, obj.md, its)
