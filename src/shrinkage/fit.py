"""Fit the random-intercept model by ML or REML: a one-dimensional search in gamma.

    y_ij = beta0 + b_j + eps_ij,  b_j ~ N(0, sigma_b^2),  eps_ij ~ N(0, sigma^2).

Four pure stages, each callable alone (as lme4's modular fit):

1. :class:`~shrinkage.stats.GroupStats`: the sufficient statistics (n_j, ybar_j, S_j);
2. :func:`size_classes`: groups of equal size share a GLS weight, so the data reduce
   further to one row per distinct size (the identity is the step labelled
   class_sum in docs/profile.pdf); one evaluation of the criterion costs O(distinct sizes);
3. :func:`maximise`: the global maximum over gamma >= 0 of the profiled criterion
   (docs/profile.pdf, steps ml_profile, reml_profile), with its derivative (ml_slope, reml_slope) used to
   bracket every stationary point and to decide the boundary gamma = 0 exactly;
4. :func:`package`: estimates, BLUPs, shrinkage factors, conditional variances.

Every formula comes from the generated module :mod:`shrinkage.numeric`; this module
only sums elementwise terms over size classes.  numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import numeric as gen
from .errors import InputError
from .oneway_names import OneWayLme4Names
from .stats import GroupStats

__all__ = ["FitResult", "SizeClasses", "fit", "fit_stats", "size_classes", "criterion", "slope", "maximise"]

METHODS = ("REML", "ML")
_GRID_PER_DECADE = 12


@dataclass(frozen=True, eq=False)
class FitResult(OneWayLme4Names):
    """Estimates of the random-intercept model and the per-group shrinkage quantities.

    ``loglik`` is on lme4's scale: the REML log-likelihood (with its (N-1) log 2 pi
    constant) for REML, the ordinary log-likelihood for ML.  ``groups`` are the sorted
    labels; ``n``, ``ybar``, ``ss`` their statistics; ``shrinkage`` is lambda_j,
    ``blup`` the conditional mode b_hat_j, ``conditional_variance`` Var(b_j | y) with
    beta0 and the variances known (lme4's condVar).  ``singular`` is True when
    sigma_b^2 is 0 (estimated on the boundary, or given).  ``fitted`` is False when the
    variances were given rather than estimated.  lme4's names (fixef, vcov, varcorr,
    ranef, condvar, theta, deviance, aic ...) are those of a formula fit of the same model
    (:mod:`shrinkage.oneway_names`).
    """

    method: str
    beta0: float
    sigma2: float
    sigma_b2: float
    gamma: float
    loglik: float
    singular: bool
    fitted: bool
    groups: np.ndarray
    n: np.ndarray
    ybar: np.ndarray
    ss: np.ndarray
    shrinkage: np.ndarray
    blup: np.ndarray
    conditional_variance: np.ndarray
    n_obs: int
    stationary_points: int = 0

    @property
    def n_groups(self) -> int:
        return int(self.n.size)

    @property
    def group_means(self) -> np.ndarray:
        """beta0 + b_hat_j: the partially pooled mean of every group."""
        return self.beta0 + self.blup

    def __repr__(self) -> str:
        kind = "fit" if self.fitted else "evaluated"
        flag = ", singular" if self.singular else ""
        return (f"FitResult({self.method} {kind}: beta0={self.beta0:.6g}, sigma2={self.sigma2:.6g}, "
                f"sigma_b2={self.sigma_b2:.6g}, loglik={self.loglik:.6f}, {self.n_groups} groups, "
                f"{self.n_obs} observations{flag})")


@dataclass(frozen=True, eq=False)
class SizeClasses:
    """Groups pooled by size: size[k], count[k] groups of that size, the mean ``centre``
    of their group means (centred at ``offset``), ``spread`` = sum of squared deviations
    of those group means from ``centre``; ``ssw`` = sum_j S_j; N, J."""

    size: np.ndarray
    count: np.ndarray
    centre: np.ndarray
    spread: np.ndarray
    offset: float
    ssw: float
    N: int
    J: int


def size_classes(stats: GroupStats) -> SizeClasses:
    """Pool groups by size, centring the group means at their overall mean (so data far
    from zero keep their digits).  Raises InputError when the model cannot be fitted."""
    n = stats.n.copy()  # writeable: np.bincount copies a read-only input on every call
    J, N = n.size, int(n.sum())
    if J < 2:
        raise InputError(f"a single group ({stats.labels[0]!r}): sigma_b^2 cannot be estimated from one group; "
                         "need at least 2 groups")
    if N == J:
        raise InputError(f"number of levels of each grouping factor must be < number of observations ({J} groups, "
                         f"{N} observations): no group has two or more observations, so sigma^2 is not "
                         "identifiable (separately from sigma_b^2); need within-group replicates")
    centred = np.multiply(n, stats.mean)  # not np.dot: a BLAS call that spins threads on a busy machine
    offset = float(centred.sum() / N)
    np.subtract(stats.mean, offset, out=centred)
    ssw = float(np.sum(stats.ss))
    scale = max(float(stats.mean.max()), -float(stats.mean.min()), 1e-300)
    if ssw <= (N - J) * (64 * np.finfo(float).eps * scale) ** 2:
        raise InputError("no within-group variation (every group's observations are equal): the estimate of "
                         "sigma^2 is 0 and the likelihood is unbounded")
    top = int(n.max())
    if top <= 4 * J + 1024:
        count = np.bincount(n)
        size = np.flatnonzero(count)
        index = n
        total = np.bincount(n, weights=centred)[size]
        count = count[size]
        centre = total / count
        lookup = np.zeros(top + 1)
        lookup[size] = centre
        dev = np.subtract(centred, lookup[index])
        spread = np.bincount(n, weights=np.multiply(dev, dev, out=dev))[size]
    else:
        size, index, count = np.unique(n, return_inverse=True, return_counts=True)
        centre = np.bincount(index, weights=centred) / count
        dev = centred - centre[index]
        spread = np.bincount(index, weights=dev * dev)
    return SizeClasses(size.astype(float), count.astype(float), centre, spread, offset, ssw, N, J)


def _pieces(sc: SizeClasses, gamma: np.ndarray):
    """W, beta0_hat - offset, Q, D, R, U at every gamma (1-d array): sums over size
    classes of the sums defined in docs/profile.pdf (W, D, Q, R, U)."""
    g = np.asarray(gamma, dtype=float)[:, None]
    w = gen._profile_weight(sc.size[None, :], g)  # profile: weight
    cw = sc.count * w
    W = cw.sum(axis=1)
    b = (cw * sc.centre).sum(axis=1) / W  # profile: gls, over size classes
    e = sc.centre[None, :] - b[:, None]
    q = sc.spread + sc.count * e * e  # sum over a class of (ybar_j - beta0_hat)^2, profile: class_sum
    Q = sc.ssw + (w * q).sum(axis=1)
    D = (sc.count * np.log1p(sc.size * g)).sum(axis=1)
    R = (w * w * q).sum(axis=1)
    U = (cw * w).sum(axis=1)
    return W, b, Q, D, R, U


def criterion(sc: SizeClasses, gamma, method: str = "REML") -> np.ndarray:
    """The profiled criterion (profile: ml_profile, reml_profile) at each gamma."""
    W, _, Q, D, _, _ = _pieces(sc, np.atleast_1d(gamma))
    if method == "ML":
        return gen._ml_profile(sc.N, Q, D)
    return gen._reml_profile(sc.N - 1, Q, D, W)


def slope(sc: SizeClasses, gamma, method: str = "REML") -> np.ndarray:
    """Its derivative in gamma (profile: ml_slope, reml_slope) at each gamma."""
    W, _, Q, _, R, U = _pieces(sc, np.atleast_1d(gamma))
    if method == "ML":
        return gen._ml_profile_slope(sc.N, Q, W, R)
    return gen._reml_profile_slope(sc.N - 1, Q, W, R, U)


@dataclass(frozen=True)
class Maximum:
    gamma: float
    value: float
    stationary_points: int  # interior stationary points found (maxima and minima)


def maximise(sc: SizeClasses, method: str = "REML") -> Maximum:
    """The global maximum of the profiled criterion over gamma >= 0.

    The derivative is evaluated at gamma = 0 and on a logarithmic grid wide enough that
    n_j gamma runs from 1e-8 (the criterion is linear there) to past the last sign
    change; every + to - sign change is refined by safeguarded regula falsi, and the best of
    these local maxima and of gamma = 0 is returned.  gamma = 0 is a candidate exactly
    when the derivative there is <= 0, so a singular fit is found, not approached."""
    def d(g: float) -> float:
        return float(slope(sc, np.array([g]), method)[0])

    lo = 1e-8 / sc.size.max()
    hi = 1e8 / sc.size.min()
    while True:
        decades = math.log10(hi / lo)
        grid = np.geomspace(lo, hi, int(decades * _GRID_PER_DECADE) + 1)
        s = slope(sc, grid, method)
        if s[-1] < 0:
            break
        if hi > 1e250:
            raise InputError("the likelihood keeps increasing as sigma_b^2/sigma^2 grows: the within-group "
                             "variation is too small against the between-group variation to estimate sigma^2")
        hi *= 1e20
    s0 = d(0.0)
    points = np.concatenate([[0.0], grid])
    slopes = np.concatenate([[s0], s])
    candidates = [0.0] if s0 <= 0 else []
    changes = np.flatnonzero(np.sign(slopes[:-1]) != np.sign(slopes[1:]))
    for i in changes:
        a, b = points[i], points[i + 1]
        if slopes[i] > 0 and slopes[i + 1] <= 0:
            if slopes[i + 1] == 0:
                candidates.append(b)
            else:
                candidates.append(_root(d, a, b, slopes[i], slopes[i + 1]))
    values = criterion(sc, np.array(candidates), method)
    best = int(np.argmax(values))  # first of equal values: the smallest gamma
    interior = int(np.count_nonzero(slopes[1:-1] == 0) + changes.size - (1 if s0 == 0 else 0))
    return Maximum(float(candidates[best]), float(values[best]), max(interior, 0))


def _root(f, a: float, b: float, fa: float, fb: float) -> float:
    """A zero of f in [a, b] where f(a) > 0 >= f(b): the Illinois variant of regula
    falsi, with a bisection step whenever the bracket fails to halve, down to
    floating-point resolution (no scipy import on the fit path)."""
    side = 0
    for _ in range(300):
        width = b - a
        if width <= 4 * np.finfo(float).eps * max(abs(a), abs(b)):
            break
        c = b - fb * (b - a) / (fb - fa)
        if not (a < c < b):
            c = 0.5 * (a + b)
        fc = f(c)
        if fc == 0:
            return c
        if fc > 0:
            a, fa = c, fc
            if side == -1:
                fb *= 0.5
            side = -1
        else:
            b, fb = c, fc
            if side == 1:
                fa *= 0.5
            side = 1
        if b - a > 0.5 * width:  # slow progress: bisect
            m = 0.5 * (a + b)
            fm = f(m)
            if fm == 0:
                return m
            if fm > 0:
                a, fa = m, fm
            else:
                b, fb = m, fm
            side = 0
    return a if abs(fa) < abs(fb) else b


def package(stats: GroupStats, sc: SizeClasses, method: str, gamma: float, sigma2: float | None,
            fitted: bool, stationary: int = 0) -> FitResult:
    """Estimates and per-group quantities at gamma (and sigma2, when given, in the units
    of y).  The search ran on y / stats.scale; here the scaling is undone: means times
    scale, variances times scale^2, log-likelihood minus (N - p) log scale (p = 1 for
    REML, 0 for ML: the Jacobian of y -> y / scale, less REML's |X'V^-1 X| term)."""
    s = stats.scale
    W, b, Q, D, _, _ = (float(v[0]) for v in _pieces(sc, np.array([gamma])))
    if sigma2 is None:
        sigma2 = float(gen._ml_sigma2(Q, sc.N) if method == "ML" else gen._reml_sigma2(Q, sc.N - 1))
        loglik = float(gen._ml_profile(sc.N, Q, D) if method == "ML" else gen._reml_profile(sc.N - 1, Q, D, W))
    else:
        sigma2 = sigma2 / s / s
        loglik = float(gen._ml_loglik_at(sc.N, sigma2, Q, D) if method == "ML"
                       else gen._reml_loglik_at(sc.N - 1, sigma2, Q, D, W))
    sigma_b2 = gamma * sigma2
    n = stats.n.astype(float)
    lam = gen._shrinkage_factor(n, sigma2, sigma_b2)
    blup = lam * ((stats.mean - sc.offset) - b)  # = lambda_j (ybar_j - beta0), computed centred
    cond = gen._conditional_variance(n, sigma2, sigma_b2)
    if not all(math.isfinite(v) for v in (b, sigma2, sigma_b2, loglik)):
        raise InputError("the fit produced a non-finite estimate; the data are too extreme to fit")
    if s != 1.0:
        _representable(s, sigma2=sigma2, sigma_b2=sigma_b2)
        loglik -= (sc.N - (1 if method == "REML" else 0)) * math.log(s)
        sigma2, sigma_b2, blup, cond = sigma2 * s * s, sigma_b2 * s * s, blup * s, cond * s * s
    ybar, ss = (stats.mean, stats.ss) if s == 1.0 else (stats.mean * s, stats.ss * s * s)
    if not (np.isfinite(ss).all() and np.isfinite(cond).all()):
        raise InputError("the within-group sums of squares S_j overflow double precision at this scale of y; "
                         "rescale y (e.g. divide it by 1e100) and fit again")
    ro = [np.ascontiguousarray(a) for a in (ybar, ss, lam, blup, cond)]
    for a in ro:
        a.setflags(write=False)
    return FitResult(method, (sc.offset + b) * s, float(sigma2), float(sigma_b2), float(gamma), loglik,
                     sigma_b2 == 0.0, fitted, stats.labels, stats.n, *ro, sc.N, stationary)


def _unit_scale(stats: GroupStats) -> GroupStats:
    """The statistics in units where the within-group variance is near 1 when it is far
    from 1 (beyond 2^+-200): the generated formulas multiply variances together, and at
    such scales their products would leave double precision.  Exact (powers of two)."""
    N, J = stats.n_obs, stats.n_groups
    ssw = float(np.sum(stats.ss))
    if N > J and 0.0 < ssw < math.inf:
        e = round(math.log2(ssw / (N - J)) / 2)
        if abs(e) > 200:
            return stats.rescaled(math.ldexp(stats.scale, e))
    return stats


def _representable(scale: float, **scaled: float) -> None:
    """Refuse variances that exist on y / scale but not in the units of y."""
    tiny, huge = np.finfo(float).tiny, np.finfo(float).max
    for name, v in scaled.items():
        if v == 0.0:
            continue
        log10 = math.log10(v) + 2 * math.log10(scale)
        if not (math.log10(tiny) <= log10 <= math.log10(huge)):
            side = "above the largest" if log10 > 0 else "below the smallest normal"
            raise InputError(f"the estimate of {name} is about 1e{log10:.1f}, {side} double-precision number "
                             f"(range 2.2e-308 to 1.8e308): the fit exists but cannot be reported in the units of y; "
                             f"multiply y by a power of ten (e.g. 1e{-round(log10 / 2)}) and fit again")


def _method(method: str) -> str:
    m = str(method).upper()
    if m not in METHODS:
        raise InputError(f"method must be 'REML' or 'ML', got {method!r}")
    return m


def fit_stats(stats: GroupStats, method: str = "REML", *, sigma2: float | None = None,
              sigma_b2: float | None = None) -> FitResult:
    """Fit (or, given both variances, evaluate) the model from per-group statistics."""
    if not isinstance(stats, GroupStats):
        raise InputError("stats must be a shrinkage.GroupStats (see GroupStats.from_data / from_arrays)")
    method = _method(method)
    stats = _unit_scale(stats)
    sc = size_classes(stats)
    if sigma2 is None and sigma_b2 is None:
        best = maximise(sc, method)
        return package(stats, sc, method, best.gamma, None, True, best.stationary_points)
    if sigma2 is None or sigma_b2 is None:
        raise InputError("give both sigma2 and sigma_b2 to evaluate at given variances (or neither to fit)")
    try:
        s2, sb2 = float(sigma2), float(sigma_b2)
    except (TypeError, ValueError):
        raise InputError("sigma2 and sigma_b2 must be numbers") from None
    if not (math.isfinite(s2) and s2 > 0):
        raise InputError(f"sigma2 must be finite and > 0, got {sigma2!r}")
    if not (math.isfinite(sb2) and sb2 >= 0):
        raise InputError(f"sigma_b2 must be finite and >= 0, got {sigma_b2!r}")
    return package(stats, sc, method, sb2 / s2, s2, False)


def fit(y=None, groups=None, method: str = "REML", *, sigma2: float | None = None,
        sigma_b2: float | None = None, stats: GroupStats | None = None, data=None,
        response: str | None = None, group: str | None = None, progress=None) -> FitResult:
    """Fit y_ij = beta0 + b_j + eps_ij by REML (default) or ML.

    ``y``: 1-d numbers; ``groups``: 1-d labels of the same length (ints, strings ...),
    taken as given.  Or ``stats=GroupStats(...)`` (chunked data, GROUP BY).  Or
    ``data=`` a path (CSV, Parquet, glob), a DuckDB relation, or a pandas, polars, Dask or
    PySpark DataFrame with the column names ``response`` and ``group``: the statistics are
    computed where the data live (:func:`shrinkage.sources.group_stats`).
    With ``sigma2`` and ``sigma_b2`` given, nothing is estimated but beta0 (by GLS):
    the result holds the BLUPs and the (REML or ML) log-likelihood at those variances.
    Raises :class:`~shrinkage.errors.InputError` naming the problem for unusable data.
    """
    given = [name for name, v in (("y and groups", y if y is not None else groups), ("stats", stats),
                                  ("data", data)) if v is not None]
    if len(given) > 1:
        raise InputError(f"give one of y and groups, stats or data, not both ({' and '.join(given)} given)")
    if data is not None:
        if response is None or group is None:
            raise InputError("with data=, name its columns: response='...' and group='...'")
        from .sources import group_stats
        stats = group_stats(data, response, group, progress=progress)
    elif stats is None:
        if y is None or groups is None:
            raise InputError("give y and groups (or stats=GroupStats, or data= with response= and group=)")
        stats = GroupStats.from_data(y, groups)
    return fit_stats(stats, method, sigma2=sigma2, sigma_b2=sigma_b2)
