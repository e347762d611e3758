"""Crossed random intercepts past memory: ``y ~ x1 + ... + (1 | a) + (1 | b)`` by passes
over the rows that an engine runs (DuckDB on files, relations and SQL; Dask; Spark).

Crossed factors have no per-group sufficient statistics, so the exact REML fit needs
every row in memory.  Here the work is a few GROUP BYs, each returning per-level tables:

1. the means of the covariates and y (and the missing-value counts);
2. per level of a, then of b: n, the sums of w = [1, x - mu, y - mu] and of w w';
3. the cells: sum_j n_ij^2 per level of a and per level of b (GROUP BY a, b, then a or b);
4. with covariates, the per-a means of x summed over each level of b (and vice versa);
5. backfitting sweeps, each two joins of a per-level table to the rows and a GROUP BY,
   until the distance to the fixed point is below ``tol`` (relative to each column's scale).

The variances are moment estimates (:mod:`.moments`: unbiased, not REML); beta and the
BLUPs are then the exact GLS/BLUP solution for those variances, to ``tol``.  The result's
``method`` says so (``"moments+backfitting"``).  A pandas or polars DataFrame runs the
same passes with numpy (the reference the engines are checked against).
"""

from __future__ import annotations

import numpy as np

from ...errors import InputError
from ...progress import progress_bar
from .._kinds import kind_of
from .._lmm import Plan, _simple, check_counts
from .engines import ENGINES
from .moments import Level, backfit, gls, moment_system, solve_variances
from .result import METHOD, CrossedResult

__all__ = ["fit_crossed", "CrossedResult", "METHOD"]


def _model(f):
    """(response, covariates, (a, b)) of ``y ~ [1 +] x1 + ... + (1 | a) + (1 | b)``; anything else refused."""
    fixed = _simple(f.fixed) if f.fixed.strip() else (True, [])
    terms = f.terms
    if (len(terms) != 2 or any(t.expr.strip() != "1" or len(t.factors) != 1 for t in terms)
            or terms[0].factors == terms[1].factors):
        raise InputError(f"{f.text}: out of core, several grouping factors are fitted for two crossed random "
                         "intercepts, y ~ x + (1 | a) + (1 | b); fit other models in memory (data= a DataFrame)")
    if fixed is None or not fixed[0] or not f.response_is_column:
        raise InputError(f"{f.text}: out of core, the crossed fit takes a response column and a fixed part of "
                         "numeric columns with an intercept (y ~ 1 + x1 + x2); compute transforms in the source")
    a, b = terms[0].factors[0], terms[1].factors[0]
    for v in (f.response, *fixed[1]):
        if v in (a, b):
            raise InputError(f"the grouping factor {v!r} is also used as a covariate or the response")
    return f.response, list(fixed[1]), (a, b)


def _level(got) -> Level:
    """An engine's (labels, n, sums, prods) as a :class:`Level` sorted by label."""
    labels, n, sums, prods = got
    labels = np.asarray(labels)
    order = np.argsort(labels, kind="stable")
    m = sums.shape[1]
    C = np.empty((labels.size, m + 1, m + 1))
    C[:, 0, 0] = n
    C[:, 0, 1:] = C[:, 1:, 0] = sums
    for (i, j), v in prods.items():
        C[:, i, j] = C[:, j, i] = v
    n = np.asarray(n, dtype=float)[order]
    if not np.isfinite(C).all():
        raise InputError("the cross-products overflow (values too large to square in floating point)")
    return Level(labels[order], n, C[order, 0, :].copy(), C[order])


def _align(level: Level, labels, values) -> np.ndarray:
    """Per-level values returned in any order -> in the order of ``level.labels``."""
    labels = np.asarray(labels if level.labels.dtype == object else np.asarray(labels).tolist(),
                        dtype=level.labels.dtype)
    at = np.searchsorted(level.labels, labels)
    if labels.size != level.size or (level.labels[np.minimum(at, level.size - 1)] != labels).any():
        raise InputError("a pass returned levels that the first pass did not see (did the data change?)")
    out = np.zeros((level.size,) + np.shape(values)[1:])
    out[at] = values
    return out


def _given(variances, a: str, b: str):
    """The given variances (s_A, s_B, s_E), refused before any pass if malformed; None if not given."""
    if variances is None:
        return None
    try:
        est = np.array([float(variances[k]) for k in (a, b, "Residual")])
    except (KeyError, TypeError, ValueError):
        raise InputError(f"variances must map {a!r}, {b!r} and 'Residual' to numbers, got {variances!r}") from None
    if not (np.isfinite(est).all() and (est >= 0).all() and est[2] > 0):
        raise InputError(f"variances must be finite and >= 0 (the residual's > 0), got {variances!r}")
    return est


def _check(levels: dict, N: int, p: int) -> None:
    for f, lev in levels.items():
        if lev.size < 2 or lev.size >= N:
            raise InputError(f"the grouping factor {f!r} has {lev.size} levels for {N} observations: need at least 2 "
                             "levels and fewer levels than observations")
    if N - p <= 0:
        raise InputError(f"{N} observations for {p} fixed effects: nothing left to estimate the variances")


def fit_crossed(data, formula, *, na_action: str = "omit", tol: float = 1e-8, max_sweeps: int = 1000,
                variances: dict | None = None, progress=None, connection=None, sql=None) -> CrossedResult:
    """Fit ``y ~ x + (1 | a) + (1 | b)`` where ``data`` live (see the module).  ``variances``:
    {a: s_A, b: s_B, "Residual": s_E} to skip the moments and solve GLS/BLUP at them.
    ``progress``: a bar counting the passes (see :mod:`shrinkage.progress`)."""
    from .._kinds import describe
    from ...lmm.formula import parse

    if na_action not in ("omit", "raise"):
        raise InputError(f"na_action must be 'omit' or 'raise', got {na_action!r}")
    if not (isinstance(tol, float) and 0 < tol < 1) or not (isinstance(max_sweeps, int) and max_sweeps > 0):
        raise InputError(f"tol must be a float in (0, 1) and max_sweeps a positive int, got {tol!r}, {max_sweeps!r}")
    text = formula if isinstance(formula, str) else formula.text
    f = parse(formula) if isinstance(formula, str) else formula
    y, xs, (a, b) = _model(f)
    given = _given(variances, a, b)
    engine = ENGINES[kind_of(data)](data, connection=connection, sql=sql, progress=False)
    try:
        names = engine.open(a)
        for v in (y, *xs, a, b):
            if names.count(v) != 1:
                raise InputError(f"column {v!r} is {'not in' if v not in names else 'repeated in'} the data "
                                 f"(columns: {', '.join(map(str, names))})")
        numeric = engine.numeric()
        for v in (y, *xs):
            if v not in numeric:
                raise InputError(f"column {v!r} is not numeric: out of core, the crossed fit's response and "
                                 "covariates are numeric columns")
        plan = Plan(y, a, (y, *xs), tuple((x,) for x in xs), tuple(range(len(xs) + 1)), (0,),
                    ("(Intercept)", *xs), ("(Intercept)",), (1,), (b,))
        engine.start(plan)
        with progress_bar(None, "crossed fit: passes", progress) as bar:
            fit = _passes(engine, plan, (a, b), na_action, given, tol, max_sweeps, bar)
    finally:
        engine.close()
    return CrossedResult(method=METHOD if variances is None else "backfitting", formula=text,
                         data=describe(data), tol=tol, **fit)


def _passes(engine, plan, factors, na_action, variances, tol, max_sweeps, bar) -> dict:
    """Every pass of the fit, in order; returns the result's fields."""
    a, b = factors
    rows, kept, missing, infinite, mu = engine.means(plan)
    bar.update(1)
    check_counts(missing, infinite, na_action)
    if kept == 0:
        raise InputError(f"no complete rows: every one of the {rows} rows has a missing value in a column "
                         "the formula uses")
    engine.mu, engine.kept = mu, kept
    la = _level(engine.level(a))
    bar.update(1)
    lb = _level(engine.level(b))
    bar.update(1)
    p = len(plan.x_names)
    _check({a: la, b: lb}, kept, p)

    def cross(by: str, V):
        own, other = (la, lb) if by == "a" else (lb, la)
        got, sums = engine.cross(a if by == "a" else b, other.labels, V)
        bar.update(1)
        return _align(own, got, sums)

    system = None
    if variances is None:
        (ga, na2), (gb, nb2) = engine.cells()
        bar.update(1)
        d_ba, d_ab = lb.n[:, None], la.n[:, None]  # the constant's: every row of a level counted once
        if p > 1:
            d_ba = np.column_stack([d_ba, cross("b", la.means(p)[:, 1:])])
            d_ab = np.column_stack([d_ab, cross("a", lb.means(p)[:, 1:])])
        system = moment_system(la, lb, _align(la, ga, na2), _align(lb, gb, nb2), d_ba, d_ab)
        est = solve_variances(system)
    else:
        est = variances
    bf = backfit(la, lb, est, cross, tol=tol, max_sweeps=max_sweeps)
    beta_c, XVX, ra, rb = gls(la, lb, bf)
    M = np.eye(p)
    M[0, 1:] = -mu[:-1]  # y - mu_y = b0c + sum_k b_k (x_k - mu_k): b0 = mu_y + b0c - sum_k b_k mu_k
    beta = M @ beta_c
    beta[0] += mu[-1]
    vcov = est[2] * M @ np.linalg.inv(XVX) @ M.T
    if not bf.converged:
        import warnings

        warnings.warn(f"backfitting stopped after {bf.sweeps} sweeps, {bf.step:.2g} from the last step "
                      f"(tolerance {tol:g}): raise max_sweeps", RuntimeWarning, stacklevel=3)
    return dict(factors=(a, b), variances=est, beta=beta, vcov_matrix=0.5 * (vcov + vcov.T), x_names=plan.x_names,
                labels=(la.labels, lb.labels), b=(ra, rb), nobs=kept, dropped=rows - kept, sweeps=bf.sweeps,
                converged=bf.converged, moments=system)
