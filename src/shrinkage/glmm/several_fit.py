"""glmer for any random-effects structure (Laplace): the terms coded by shrinkage.lmm's
several-term coder, the optimum of :mod:`.several`'s objective over (theta, beta) by
:mod:`.optimise`'s Newton iteration with a central-difference gradient.

The objective is unchanged when a column of T_k changes sign (u's matching entries change
sign with it, and u's prior is symmetric), so theta runs free and each column is turned to
a positive diagonal at the end, where lme4's bounds put it.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..lmm._blas import one_thread
from .optimise import _hessian_of_value, _newton, glm_start
from .several import TermsProblem, laplace

__all__ = ["TermsOptimum", "optimise_terms", "check_terms", "NAGQ_REFUSAL"]

NAGQ_REFUSAL = "nAGQ > 1 is only available for models with a single, scalar random-effects term"
GRAD_STEP = 1e-5  # central differences relative to max(1, |x|): error ~1e-10 h^2 + 1e-16 / h


class _Objective:
    """The Laplace deviance with the last conditional modes kept as PIRLS's next start."""

    def __init__(self, pr: TermsProblem):
        self.pr, self.u, self.nth = pr, None, pr.layout.size

    def value(self, x) -> float:
        with np.errstate(over="ignore", invalid="ignore"):
            try:
                v, md = laplace(self.pr, x[:self.nth], x[self.nth:], self.u)
            except (InputError, np.linalg.LinAlgError):
                return np.inf
        if not np.isfinite(v) or not np.all(np.isfinite(md.u)):
            return np.inf
        self.u = md.u
        return v

    def gradient(self, x) -> np.ndarray:
        h = GRAD_STEP * np.maximum(1.0, np.abs(x))
        return np.array([(self.value(x + h[k] * e) - self.value(x - h[k] * e)) / (2 * h[k])
                         for k, e in enumerate(np.eye(x.size))])


class TermsOptimum:
    """(theta, beta) at the optimum, the deviance there, its Hessian, the modes."""

    def __init__(self, x, value, hessian, modes, nth):
        self.x, self.value, self.hessian, self.modes, self.nth = x, value, hessian, modes, nth

    @property
    def theta(self) -> np.ndarray:
        return self.x[:self.nth]

    @property
    def beta(self) -> np.ndarray:
        return self.x[self.nth:]


def _positive_columns(pr: TermsProblem, theta: np.ndarray) -> np.ndarray:
    """theta with each column of each T_k signed so its diagonal entry is >= 0."""
    theta = theta.copy()
    at = 0
    for k, size in enumerate(pr.layout.sizes):
        rows, cols = pr.layout.tri(k)
        for c in range(pr.layout.q[k]):
            diag = at + int(np.flatnonzero((rows == c) & (cols == c))[0])
            if theta[diag] < 0:
                theta[at + np.flatnonzero(cols == c)] *= -1
        at += size
    return theta


def _polish(obj, x, H, steps: int = 3):
    """Newton steps with the finite-difference Hessian at the end (BFGS's matrix, built
    from noisy gradients, can stop the iteration ~1e-7 above the minimum): each kept only
    where it lowers the deviance."""
    f = obj.value(x)
    for _ in range(steps):
        trial = x - np.linalg.solve(H, obj.gradient(x))
        ft = obj.value(trial)
        if not ft < f:
            break
        x, f = trial, ft
    return x


def optimise_terms(pr: TermsProblem, start=None) -> TermsOptimum:
    """The minimum of the Laplace deviance from lme4's start (T_k = I, beta of the GLM)."""
    nth = pr.layout.size
    x = np.concatenate([pr.layout.start(), glm_start(pr)]) if start is None else np.array(start, dtype=float)
    obj = _Objective(pr)
    with one_thread():  # small dense factors: BLAS threads cost more than they give (x1000 on a busy machine)
        x, f, _ = _newton(obj, x, _hessian_of_value)
        if not np.all(np.isfinite(x)):
            raise InputError("the fit left the finite numbers: the data may be separated")
        x = np.concatenate([_positive_columns(pr, x[:nth]), x[nth:]])
        obj.u = None
        H = _hessian_of_value(obj, x)
        x = _polish(obj, x, H)
        value, md = laplace(pr, x[:nth], x[nth:])
    return TermsOptimum(x, value, H, md, nth)


def check_terms(terms, N: int) -> None:
    """lme4's glmer checks of the grouping factors (levels >= 2; at most one level and one
    random effect a row: glmer allows an observation-level term)."""
    for t in terms:
        if t.levels < 2:
            raise InputError(f"the grouping factor {t.factor!r} has a single level: its variance cannot be "
                             "estimated; need at least 2 levels")
        if t.levels > N:
            raise InputError(f"number of levels of each grouping factor must be <= number of observations "
                             f"({t.factor}: {t.levels} levels, {N} observations)")
        if t.levels * t.q > N:
            raise InputError(f"number of observations (={N}) < number of random effects (={t.levels * t.q}) for "
                             f"the term ({', '.join(t.z_names)} | {t.factor}); the random-effects parameters are "
                             "probably unidentifiable")
