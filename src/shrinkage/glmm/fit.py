"""glmer for one grouping factor with a random intercept: formula -> data -> optimum ->
result.  The fixed and random parts are coded by shrinkage.lmm's formula coder (the same
names, factors, missing rows); the response and offsets by :mod:`.response`."""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import InputError
from ..lmm.fit import RankDeficiencyWarning
from ..lmm.formula import design, parse
from ..lmm.summary import rank_note
from ..sources._kinds import describe
from .family import family_of
from .frames import _frame
from .objective import Problem
from .optimise import optimise
from .separation import separated_or
from .response import RESPONSE, evaluate, response_arrays, split
from .result import GlmmResult
from .several_fit import NAGQ_REFUSAL, check_terms, optimise_terms

__all__ = ["glmer"]

NAGQ_MAX = 25


def _weights(weights, frame):
    if weights is None:
        return None
    if isinstance(weights, str):
        if weights not in frame.columns:
            raise InputError(f"weights: column {weights!r} not in the data")
        weights = frame[weights].to_numpy(dtype=float, na_value=np.nan)
    w = np.asarray(weights, dtype=float)
    if w.shape != (len(frame),):
        raise InputError(f"weights must be a column name or {len(frame)} numbers (one a row), got shape {w.shape}")
    return w


def _full_rank(X, names):
    """lme4's chkRank.drop.cols on X itself: a column whose residual on the earlier kept
    ones is below 1e-7 of its norm is dropped, with lme4's warning."""
    keep = []
    for k in range(X.shape[1]):
        col = X[:, k]
        r = col - X[:, keep] @ np.linalg.lstsq(X[:, keep], col, rcond=None)[0] if keep else col
        if np.linalg.norm(r) > 1e-7 * np.linalg.norm(col):
            keep.append(k)
    if len(keep) < X.shape[1]:
        dropped = [names[k] for k in range(X.shape[1]) if k not in keep]
        warnings.warn(f"{rank_note(len(dropped))}: {', '.join(dropped)}", RankDeficiencyWarning, stacklevel=4)
    return tuple(keep)


def glmer(formula: str, data, family="binomial", nagq: int = 1, *, weights=None, na_action: str = "omit"):
    """Fit a binomial-logit or Poisson-log GLMM with a random intercept, as lme4's glmer
    (nAGQ = ``nagq``: 1 the Laplace approximation, up to 25 adaptive Gauss-Hermite nodes)."""
    fam = family_of(family)
    if isinstance(nagq, bool) or not isinstance(nagq, (int, np.integer)) or not 1 <= nagq <= NAGQ_MAX:
        raise InputError(f"nagq must be a whole number from 1 to {NAGQ_MAX} (1: Laplace), got {nagq!r}")
    if data is None:
        raise InputError("a formula needs data=: a pandas or polars DataFrame")
    lhs, rhs, offsets = split(formula)
    frame = _frame(data)
    w = _weights(weights, frame)
    y, m = response_arrays(lhs, frame, fam, w)
    off = np.zeros(len(frame))
    for text in offsets:
        off = off + evaluate(text, frame)
    y = np.where(np.isfinite(off) & np.isfinite(m), y, np.nan)
    f = parse(f"`{RESPONSE}` ~ {rhs}")
    aug = frame.assign(**{RESPONSE: y})
    d = None if f.several else design(f, aug, na_action)
    if d is None or d.blocks != (1,) or d.z_names != ("(Intercept)",):
        if nagq > 1:
            raise InputError(NAGQ_REFUSAL)
        return _fit_terms(fam, f, aug, m, off, na_action, formula=formula, offsets=tuple(offsets), data=data)
    rows = np.arange(len(frame)) if d.kept is None else d.kept
    keep = _full_rank(d.X, d.x_names)
    d = d.full_rank(keep)
    X = d.X
    J = len(d.labels)
    seen = np.bincount(d.codes, minlength=J) > 0
    if not seen.all():
        d_codes = (np.cumsum(seen) - 1)[d.codes]
        labels, J = d.labels[seen], int(seen.sum())
    else:
        d_codes, labels = d.codes, d.labels
    if J < 2:
        raise InputError(f"a single group ({labels[0]!r}): the random-intercept variance cannot be estimated "
                         "from one group; need at least 2 groups")
    pr = Problem(fam, d.y, m[rows], off[rows], X, d_codes, J)
    opt = separated_or(lambda: optimise(pr, int(nagq)), pr, d.x_names)
    return GlmmResult(family=fam, nagq=int(nagq), formula=formula, group=f.group, labels=labels,
                      x_names=d.x_names, problem=pr, optimum=opt, design=d, offsets=tuple(offsets),
                      dropped=d.dropped, data=describe(data))


def _terms_vcov(H, theta, diag):
    """lme4's vcov for a GLMM: the beta block of 2 H^-1, H the Hessian of the deviance in
    (theta, beta); a zero theta's row is decoupled (the deviance is even in it), and is left
    out where H is singular there."""
    nth = theta.size
    V = 2 * np.linalg.inv(H)
    if np.all(np.isfinite(V)) and np.all(np.linalg.eigvalsh(V) > 0):
        return V[nth:, nth:]
    keep = np.concatenate([~(diag & (np.abs(theta) < 1e-4)), np.ones(H.shape[0] - nth, dtype=bool)])
    return (2 * np.linalg.inv(H[np.ix_(keep, keep)]))[-(H.shape[0] - nth):, -(H.shape[0] - nth):]


def _fit_terms(fam, f, aug, m, off, na_action, *, formula, offsets, data):
    """A vector or several random-effect terms: the Laplace fit of :mod:`.several_fit`."""
    from ..lmm.terms import several_design
    from .several import TermsProblem, b_of
    from .several_result import GlmmTermsResult

    d = several_design(f, aug, na_action)
    rows = np.arange(len(aug)) if d.kept is None else d.kept
    full = d.x_names
    d = d.full_rank(_full_rank(d.X, d.x_names))
    check_terms(d.terms, d.y.size)
    pr = TermsProblem(fam, d.y, m[rows], off[rows], d.X, tuple(t.codes for t in d.terms),
                      tuple(t.Z for t in d.terms), tuple(t.levels for t in d.terms))
    opt = separated_or(lambda: optimise_terms(pr), pr, d.x_names)
    theta, diag = opt.theta, pr.layout.diagonal
    singular = bool(np.any(theta[diag] < 1e-4))
    vcov = _terms_vcov(opt.hessian, theta, diag)
    md = opt.modes
    return GlmmTermsResult(method="Laplace", formula=formula, design=d, theta=theta, T=md.T, beta=opt.beta,
                           vcov_matrix=vcov, sigma2=1.0,
                           deviance=float(np.sum(fam.devres(md.eta, pr.y, pr.m))), nobs=int(pr.y.size),
                           singular=singular, b=b_of(pr, md), optimum=opt, problem=pr, data=describe(data),
                           x_dropped=tuple(n for n in full if n not in d.x_names), family=fam, offsets=offsets)
