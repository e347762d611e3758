"""lmer's four stages chained: formula -> cross-products -> theta_hat -> result.

``lmer(formula, data, method)`` is what :func:`shrinkage.fit` calls for a formula;
:func:`fit_cross_products` fits from statistics alone (chunked or out-of-core data).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import InputError
from .centring import Centring
from .crossprod import CrossProducts, cross_products
from .formula import design, parse
from .objective import Layout, blups_at, evaluate, prepare
from .optimise import is_singular, minimise
from ._blas import one_thread
from .result import LmmResult

__all__ = ["lmer", "fit_cross_products", "fit_formula"]

METHODS = ("REML", "ML")


def _method(method) -> str:
    m = str(method).upper()
    if m not in METHODS:
        raise InputError(f"method must be 'REML' or 'ML', got {method!r}")
    return m


def _check(cp: CrossProducts, method: str) -> None:
    J, N, p = cp.n_groups, cp.n_obs, cp.p
    if J < 2:
        raise InputError(f"a single group ({cp.labels[0]!r}): the random-effect covariance cannot be "
                         "estimated from one group; need at least 2 groups")
    tot = cp.XtX
    for k in range(1, p + 1):
        if np.linalg.matrix_rank(tot[:k, :k], tol=1e-10 * max(1.0, float(np.max(np.abs(np.diag(tot)))))) < k:
            raise InputError(f"the fixed-effect column {cp.x_names[k - 1]!r} is a linear combination of the "
                             "columns before it (rank-deficient X); drop it from the formula")
    if N - p <= 0:
        raise InputError(f"{N} observations for {p} fixed effects: nothing left to estimate the variances")


def fit_cross_products(cp: CrossProducts, method: str = "REML", blocks=None, *, formula: str | None = None,
                       group: str = "group", design_=None, dropped: int = 0) -> LmmResult:
    """Fit from per-group cross-products: theta_hat by :func:`~.optimise.minimise`, then
    beta_hat, sigma^2, the BLUPs and their conditional covariances at theta_hat.  The fit
    runs in centred random-effect columns (:mod:`.centring`: the same likelihood, better
    conditioned) and theta, Lambda, ranef and condVar are mapped back to the user's."""
    if not isinstance(cp, CrossProducts):
        raise InputError("stats must be a shrinkage.lmm.CrossProducts")
    method = _method(method)
    _check(cp, method)
    layout = Layout.of(tuple(blocks) if blocks is not None else (cp.q,))
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
                     stats=cp, problem=pr, design=design_, dropped=dropped, centring=centring)


def lmer(formula: str, data, method: str = "REML", *, na_action: str = "omit", centre: bool = True) -> LmmResult:
    """Fit an lme4 formula with one grouping factor to a pandas/polars DataFrame."""
    method = _method(method)
    f = parse(formula)
    def coded_and_summed(floats: bool):
        d = design(f, data, na_action, floats=floats)
        return d, cross_products(d.y, d.x_cols, d.z_cols, d.codes, d.labels, d.x_names, d.z_names, centre=centre)

    with one_thread():
        try:  # float columns not searched for NaN first: a NaN or an infinity makes the pass's sums non-finite
            d, cp = coded_and_summed(floats=False)
        except InputError:  # then again with every column searched: rows dropped, or the error that names them
            d, cp = coded_and_summed(floats=True)
    if cp.n_groups < len(d.labels):  # labels of the codes' range that have no rows: the codes renumbered
        seen = np.isin(d.labels, cp.labels)
        d = replace(d, codes=(np.cumsum(seen) - 1)[d.codes], labels=cp.labels)
    return fit_cross_products(cp, method, d.blocks, formula=formula, group=f.group, design_=d, dropped=d.dropped)


def _is_frame(data) -> bool:
    module = type(data).__module__.split(".")[0]
    return module in ("pandas", "polars") or isinstance(data, dict)


def fit_formula(formula: str, data, method: str = "REML", *, na_action: str = "omit", **options) -> LmmResult:
    """What shrinkage.fit does with a formula: an in-memory DataFrame goes to
    :func:`lmer`; any other source (a file path, a DuckDB relation, a Dask or Spark
    frame) is summarised where it lives: shrinkage.sources.group_stats for
    ``y ~ 1 + (1 | g)``, shrinkage.sources.formula_cross_products for covariates and
    slopes (numeric columns and their products)."""
    if options:
        raise InputError(f"unknown option(s) for a formula fit: {', '.join(sorted(options))}")
    if data is None:
        raise InputError("a formula needs data=: a pandas or polars DataFrame (or a path / relation for y ~ 1 + (1 | g))")
    if _is_frame(data):
        return lmer(formula, data, method, na_action=na_action)
    f = parse(formula)
    if f.fixed.replace(" ", "") not in ("1", "") or [(e.replace(" ", ""), c) for e, c in f.blocks] != [("1", True)]:
        from ..sources import formula_cross_products  # covariates and slopes, computed by the engine
        cp, blocks, dropped = formula_cross_products(data, f, na_action=na_action)
        return fit_cross_products(cp, method, blocks, formula=formula, group=f.group, dropped=dropped)
    try:
        from ..sources import group_stats
    except ImportError:
        raise InputError(f"data of type {type(data).__name__} needs shrinkage.sources (not available)") from None
    stats = group_stats(data, f.response, f.group)
    cp = CrossProducts.from_group_stats(stats)
    return fit_cross_products(cp, method, formula=formula, group=f.group)
