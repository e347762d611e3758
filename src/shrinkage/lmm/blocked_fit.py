"""Fit a formula with several random-effect terms: theta_hat of :mod:`.blocked`'s criterion
(:mod:`.blocked_optimise`), then beta, sigma^2, the BLUPs per term and their conditional
variances, packaged as :class:`~.several_result.SeveralResult`.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .blocked import centred, evaluate, prepare, solution
from .blocked_optimise import SINGULAR_TOL, minimise
from .rank import kept_columns
from .several_result import SeveralResult
from .terms import SeveralDesign

__all__ = ["fit_several"]


def _full_rank(d: SeveralDesign) -> SeveralDesign:
    """X's columns as lme4 keeps them (:func:`.fit.kept_columns`), centred where X has an
    intercept."""
    X = d.X
    norm2 = (X * X).sum(axis=0)
    if "(Intercept)" in d.x_names:
        i = d.x_names.index("(Intercept)")
        Xc = X - X.mean(axis=0)
        Xc[:, i] = 1.0
        X = Xc
    return d.full_rank(kept_columns(X.T @ X, norm2, d.x_names))


def _check(d: SeveralDesign, N: int, p: int) -> None:
    """lme4's checks (check.nlev.gtr.1, check.nobs.vs.nlev, check.nobs.vs.nRE) per term."""
    for t in d.terms:
        if t.levels < 2:
            raise InputError(f"the grouping factor {t.factor!r} has a single level: its variance cannot be "
                             "estimated; need at least 2 levels")
        if t.levels >= N:
            raise InputError(f"number of levels of each grouping factor must be < number of observations "
                             f"({t.factor}: {t.levels} levels, {N} observations)")
        if N <= t.levels * t.q:
            raise InputError(f"number of observations (={N}) <= number of random effects (={t.levels * t.q}) for "
                             f"the term ({', '.join(t.z_names)} | {t.factor}); the random-effects parameters and "
                             "the residual variance are probably unidentifiable")
    if N - p <= 0:
        raise InputError(f"{N} observations for {p} fixed effects: nothing left to estimate the variances")


def fit_several(d: SeveralDesign, method: str, *, formula: str, data: str | None) -> SeveralResult:
    """Fit a coded design with several terms (:func:`.fit.lmer` sends them here)."""
    full = d.x_names
    d = _full_rank(d)
    X, N = d.X, d.y.size
    _check(d, N, X.shape[1])
    Xc, yc, M, shift = centred(X, d.y, d.x_names)
    pr = prepare([t.codes for t in d.terms], [t.Z for t in d.terms], Xc, yc)
    opt = minimise(pr, method)
    pc = evaluate(opt.theta, pr) if opt.pieces is None else opt.pieces
    beta, b, r2, XtVX_inv = solution(pc, pr)
    sigma2 = r2 / (N - pr.p if method == "REML" else N)
    return SeveralResult(method=method, formula=formula, design=d, theta=opt.theta, T=pc.T, beta=M @ beta + shift,
                         vcov_matrix=sigma2 * M @ XtVX_inv @ M.T, sigma2=float(sigma2), deviance=float(opt.value),
                         nobs=N,
                         singular=bool(np.any(opt.theta[pr.layout.diagonal] < SINGULAR_TOL)), b=b, optimum=opt,
                         problem=pr, data=data, x_dropped=tuple(n for n in full if n not in d.x_names))
