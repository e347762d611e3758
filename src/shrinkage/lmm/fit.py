"""lmer's four stages chained: formula -> cross-products -> theta_hat -> result.

``lmer(formula, data, method)`` is what :func:`shrinkage.fit` calls for a formula;
:func:`fit_cross_products` fits from statistics alone (chunked or out-of-core data).
"""

from __future__ import annotations

from dataclasses import replace


import numpy as np

from ..errors import InputError
from ..sources._kinds import describe
from .centring import Centring
from .crossprod import CrossProducts, cross_products
from .formula import design, parse
from .objective import Layout, blups_at, evaluate, prepare
from .optimise import is_singular, minimise
from ._blas import one_thread
from .result import LmmResult
from .rank import RankDeficiencyWarning, kept_columns  # noqa: F401 (RankDeficiencyWarning re-exported)

__all__ = ["lmer", "fit_cross_products", "fit_formula", "full_rank", "RankDeficiencyWarning"]

METHODS = ("REML", "ML")


def _method(method) -> str:
    m = str(method).upper()
    if m not in METHODS:
        raise InputError(f"method must be 'REML' or 'ML', got {method!r}")
    return m


def _check(cp: CrossProducts, blocks: tuple) -> None:
    """Refuse what lme4 refuses (lmerControl's check.nlev.gtr.1, check.nobs.vs.nlev and
    check.nobs.vs.nRE, errors by default): one group; as many groups as rows (every row
    its own group); a bar term with as many random effects J q_k as rows.  Either way the
    random effects and the residual cannot be told apart: a fit would split the variance
    arbitrarily.  Here, after the cross-products, where in-memory and out-of-core data meet."""
    J, N, p = cp.n_groups, cp.n_obs, cp.p
    if J < 2:
        raise InputError(f"a single group ({cp.labels[0]!r}): the random-effect covariance cannot be "
                         "estimated from one group; need at least 2 groups")
    if J >= N:
        raise InputError(f"number of levels of each grouping factor must be < number of observations "
                         f"({J} groups, {N} observations: every row its own group); the random effects "
                         "cannot be told apart from the residual")
    start = 0
    for size in blocks:
        if N <= J * size:
            names = ", ".join(cp.z_names[start:start + size])
            raise InputError(f"number of observations (={N}) <= number of random effects (={J * size}) for the "
                             f"term ({names}); the random-effects parameters and the residual variance are "
                             "probably unidentifiable")
        start += size
    if N - p <= 0:
        raise InputError(f"{N} observations for {p} fixed effects: nothing left to estimate the variances")


def full_rank(cp: CrossProducts) -> tuple[CrossProducts, tuple]:
    """X's columns as lme4 keeps them (chkRank.drop.cols: a pivoted QR, the earlier
    columns kept): column k is dropped when its residual on the earlier kept columns is
    below RANK_TOL times its norm (LINPACK's dqrdc2 rule).  Computed from X'X: a Cholesky
    that skips a column whose pivot is too small (the residual sum of squares of the
    column on the kept ones).  The centred X'X gives the residuals (the intercept's span
    holds the centres), the raw norms come back from the centres.  A warning names the
    dropped columns.  Returns the statistics without them and the kept indices."""
    A = np.array(cp.XtX, dtype=float)
    norm2 = np.diag(A).copy()
    if cp.intercept is not None:  # raw X_k = X_c,k + c_k 1: |X_k|^2 = |X_c,k|^2 + 2 c_k 1'X_c,k + N c_k^2
        c = cp.x_centre
        norm2 += 2 * c * A[cp.intercept] + cp.n_obs * c * c
    keep = kept_columns(A, norm2, cp.x_names)
    if len(keep) == cp.p:
        return cp, keep
    ix = np.array(keep)
    reduced = replace(cp, XtX=cp.XtX[np.ix_(ix, ix)], XtZ=cp.XtZ[:, ix, :], Xty=cp.Xty[ix],
                      x_names=tuple(cp.x_names[k] for k in keep), x_centre=cp.x_centre[ix],
                      intercept=None if cp.intercept is None else keep.index(cp.intercept))
    return reduced, keep


def fit_cross_products(cp: CrossProducts, method: str = "REML", blocks=None, *, formula: str | None = None,
                       group: str = "group", design_=None, dropped: int = 0, data: str | None = None,
                       x_dropped: tuple = ()) -> LmmResult:
    """Fit from per-group cross-products: theta_hat by :func:`~.optimise.minimise`, then
    beta_hat, sigma^2, the BLUPs and their conditional covariances at theta_hat.  The fit
    runs in centred random-effect columns (:mod:`.centring`: the same likelihood, better
    conditioned) and theta, Lambda, ranef and condVar are mapped back to the user's."""
    if not isinstance(cp, CrossProducts):
        raise InputError("stats must be a shrinkage.lmm.CrossProducts")
    method = _method(method)
    blocks = tuple(blocks) if blocks is not None else (cp.q,)
    full = cp.x_names
    cp, _ = full_rank(cp)
    x_dropped = tuple(x_dropped) + tuple(name for name in full if name not in cp.x_names)
    _check(cp, blocks)
    layout = Layout.of(blocks)
    centring = Centring.of(cp, layout)
    pr = prepare(cp, layout, centring.c)
    opt = minimise(pr, method)
    pc = evaluate(opt.theta, pr)
    lam = centring.lam(pc.lam)
    theta = layout.from_lambda(lam)
    nu = pr.N - pr.p if method == "REML" else pr.N
    sigma2 = pc.r2 / nu
    beta, vcov = cp.uncentre(pc.beta, sigma2 * np.linalg.inv(pc.A))
    b, cv = blups_at(pc, sigma2, transform=centring.Tinv)  # at theta_hat (the evaluation above), in Z's columns
    return LmmResult(method=method, formula=formula, group=group, labels=cp.labels, x_names=cp.x_names,
                     z_names=cp.z_names, blocks=layout.blocks, theta=theta, beta=beta, vcov_matrix=vcov,
                     sigma2=float(sigma2), deviance=float(opt.value), nobs=pr.N,
                     singular=is_singular(theta, pr), lam=lam, b=b, cond=cv, optimum=opt,
                     stats=cp, problem=pr, design=design_, dropped=dropped, centring=centring,
                     data=data, x_dropped=x_dropped, refit=fit_cross_products)


def lmer(formula: str, data, method: str = "REML", *, na_action: str = "omit", centre: bool = True) -> LmmResult:
    """Fit an lme4 formula to a pandas/polars DataFrame (several grouping factors: :mod:`.blocked_fit`)."""
    method = _method(method)
    f = parse(formula)
    if f.several:  # several grouping factors (or an interaction): the blocked fit
        from .blocked_fit import fit_several  # here: scipy.sparse, never loaded by a one-factor fit
        from .terms import several_design

        return fit_several(several_design(f, data, na_action), method, formula=formula, data=describe(data))

    def coded_and_summed(floats: bool):
        d = design(f, data, na_action, floats=floats)
        return d, cross_products(d.y, d.x_cols, d.z_cols, d.codes, d.labels, d.x_names, d.z_names, centre=centre)

    with one_thread():
        try:  # float columns not searched for NaN first: a NaN or an infinity makes the pass's sums non-finite
            d, cp = coded_and_summed(floats=False)
        except InputError:  # then again with every column searched: rows dropped, or the error that names them
            d, cp = coded_and_summed(floats=True)
    full = d.x_names
    cp, keep = full_rank(cp)
    d = d.full_rank(keep)
    if cp.n_groups < len(d.labels):  # labels of the codes' range that have no rows: the codes renumbered
        seen = np.isin(d.labels, cp.labels)
        d = replace(d, codes=(np.cumsum(seen) - 1)[d.codes], labels=cp.labels)
    return fit_cross_products(cp, method, d.blocks, formula=formula, group=f.group, design_=d, dropped=d.dropped,
                              data=describe(data), x_dropped=tuple(n for n in full if n not in d.x_names))


def _is_frame(data) -> bool:
    module = type(data).__module__.split(".")[0]
    return module in ("pandas", "polars") or isinstance(data, dict)


def fit_formula(formula: str, data, method: str = "REML", *, na_action: str = "omit", **options) -> LmmResult:
    """What shrinkage.fit does with a formula: an in-memory DataFrame goes to
    :func:`lmer`; any other source (a file path, a DuckDB relation, a Dask or Spark
    frame) is summarised where it lives by shrinkage.sources.formula_cross_products
    (``y ~ 1 + (1 | g)`` too: rows with a missing value dropped, or refused, per
    ``na_action``, as in memory)."""
    crossed = {k: options.pop(k) for k in ("tol", "max_sweeps", "variances", "progress") if k in options}
    if options:
        raise InputError(f"unknown option(s) for a formula fit: {', '.join(sorted(options))}")
    if data is None:
        raise InputError("a formula needs data=: a pandas or polars DataFrame (or a path / relation for y ~ 1 + (1 | g))")
    if _is_frame(data):
        if crossed:
            raise InputError(f"option(s) {', '.join(sorted(crossed))} are for crossed factors out of core only")
        return lmer(formula, data, method, na_action=na_action)
    from ..sources import formula_cross_products  # computed by the engine, rows dropped as lmer drops them

    f = parse(formula)
    if f.several:  # crossed random intercepts by passes over the rows: moments + backfitting, not REML
        from ..sources.crossed import fit_crossed

        if str(method).upper() != "REML":
            raise InputError(f"method={method!r}: out of core, crossed factors are fitted by the method of moments "
                             "and backfitting (the result's method says so); ML is not available")
        return fit_crossed(data, f, na_action=na_action, **crossed)
    if crossed:
        raise InputError(f"option(s) {', '.join(sorted(crossed))} are for crossed factors out of core only")
    cp, blocks, dropped = formula_cross_products(data, f, na_action=na_action)
    return fit_cross_products(cp, method, blocks, formula=formula, group=f.group, dropped=dropped,
                              data=describe(data))
