"""Confidence intervals: profile likelihood for the variance parameters, Wald for beta.

The variance parameters are lme4's: per bar term, the standard deviations and
correlations in theta's order (.sig01, .sig02, ...), then sigma (.sigma).  The profile of
one of them, phi_k, is the criterion minimised over all the others with phi_k held fixed,

    dev(theta, sigma) = log|L|^2 [+ log|A|] + nu log(2 pi sigma^2) + r^2(theta) / sigma^2

(the fit's own criterion, ML or REML, before sigma is profiled out; nu = N or N - p), and
the interval is where dev_prof(phi_k) - dev_min <= the chi^2_1 quantile of ``level``
(lme4's confint(method = "profile"), found here by root finding rather than splines).
As lme4 does (its profile() refits with refitML), a REML fit is profiled on the ML
criterion of the same model: the intervals are those of the likelihood.
A standard deviation whose profile stays below the cut at 0 gets 0 as its lower end, a
correlation that stays below it up to +-1 gets +-1.  The inner minimisation runs over
log sd, atanh(correlation) and log sigma with the analytic gradient in theta (chain rule).
The parameters are those of the user's columns (lme4's); the profiles run in the centred
columns the fit ran in (:func:`_space`: a parameter that means the same there is held
directly, the intercept's sd and correlations by a constraint).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from .objective import evaluate, gradient_parts

__all__ = ["confint", "with_wald", "parameter_names", "natural", "to_theta", "profile_deviance"]


def _entries(layout):
    """(block start, row, column) of every theta entry, in theta's order."""
    out, start = [], 0
    for size in layout.blocks:
        for c in range(size):
            for r in range(c, size):
                out.append((start, start + r, start + c))
        start += size
    return out


def parameter_names(layout) -> list[str]:
    """lme4's names: .sig01, .sig02, ... for theta's entries, then .sigma."""
    return [f".sig{k + 1:02d}" for k in range(layout.size)] + [".sigma"]


def natural(theta, sigma: float, layout) -> np.ndarray:
    """(sd, correlation entries in theta's order, sigma) from theta and sigma."""
    lam = np.zeros((layout.q, layout.q))
    lam[layout.rows, layout.cols] = theta
    D = sigma * sigma * lam @ lam.T
    sd = np.sqrt(np.maximum(np.diag(D), 0.0))
    out = []
    for _, r, c in _entries(layout):
        if r == c:
            out.append(sd[r])
        else:
            out.append(D[r, c] / (sd[r] * sd[c]) if sd[r] > 0 and sd[c] > 0 else 0.0)
    return np.array(out + [sigma])


def to_theta(nat, layout):
    """theta and sigma from natural parameters; None if a correlation block is not
    positive definite.  Lambda = diag(sd / sigma) chol(R) block by block."""
    nat = np.asarray(nat, dtype=float)
    sigma = nat[-1]
    q = layout.q
    R, sd = np.eye(q), np.zeros(q)
    for (start, r, c), v in zip(_entries(layout), nat[:-1]):
        if r == c:
            sd[r] = v
        else:
            R[r, c] = R[c, r] = v
    try:
        C = np.linalg.cholesky(R)
    except np.linalg.LinAlgError:
        return None
    lam = (sd / sigma)[:, None] * C
    return lam[layout.rows, layout.cols], sigma


def _user_parameter(result, k: int):
    """nat_c (natural parameters of the centred columns) -> the user's parameter k."""
    lay, cen = result.problem.layout, result.centring

    def value(nat_c):
        ts = to_theta(nat_c, lay)
        if ts is None:
            return np.nan
        lam = cen.lam(_lambda(ts[0], lay))
        return natural(lay.from_lambda(lam), ts[1], lay)[k]

    return value


def _lambda(theta, layout) -> np.ndarray:
    lam = np.zeros((layout.q, layout.q))
    lam[layout.rows, layout.cols] = theta
    return lam


OFFSET = 10.0  # kappa above which the intercept's parameters are profiled under a constraint


def _space(result, k: int):
    """How parameter k is profiled: (natural parameters at the estimate, the map from
    natural parameters to (theta in the fit's centred columns, sigma) or None, and None
    or the map from centred natural parameters to the user's parameter k).

    sigma, and an sd or a correlation not involving Z's intercept, mean the same in the
    centred columns (T^-1 = I - e_i c' changes only D's row and column i): held fixed
    there, well conditioned.  The intercept's sd and correlations of the user's D: held
    fixed in the user's parameters when the offset is modest (kappa = sd of c'b_c / sd of
    the centred intercept below OFFSET); beyond, the others would meet in a valley of
    width ~ 1/kappa there, so the profile runs over all the centred parameters with the
    user's parameter k held by an equality constraint (SLSQP)."""
    lay = result.problem.layout
    entries = _entries(lay)
    zi = result.problem.cp.z_intercept
    centred = natural(result.optimum.theta, result.sigma, lay)
    direct = lambda nat: to_theta(nat, lay)  # noqa: E731
    if (result.centring is None or result.centring.identity or k == len(entries)
            or zi not in entries[k][1:]):
        return centred, direct, None
    lam_c = _lambda(result.optimum.theta, lay)
    Dc = lam_c @ lam_c.T
    c = result.centring.c
    kappa = math.sqrt(max(c @ Dc @ c, 0.0) / Dc[zi, zi]) if Dc[zi, zi] > 0 else math.inf
    if kappa < OFFSET:
        return natural(result.theta, result.sigma, lay), (lambda nat: _user_theta(nat, result)), None
    return centred, direct, _user_parameter(result, k)


def _user_theta(nat, result):
    """(theta_c, sigma) from the user's natural parameters, or None."""
    lay = result.problem.layout
    ts = to_theta(nat, lay)
    if ts is None:
        return None
    return lay.from_lambda(result.centring.lam_centred(_lambda(ts[0], lay))), ts[1]


def _full(theta, sigma, pr, method):
    """dev(theta, sigma) and its gradient in theta and in sigma."""
    pc = evaluate(theta, pr)
    nu = pr.N - pr.p if method == "REML" else pr.N
    dev = pc.logdet_L + nu * math.log(2 * math.pi * sigma * sigma) + pc.r2 / (sigma * sigma)
    if method == "REML":
        dev += pc.logdet_A
    dlog, dr2 = gradient_parts(pc, pr, method)
    return dev, dlog + dr2 / (sigma * sigma), 2 * nu / sigma - 2 * pc.r2 / sigma ** 3


def _kinds(layout) -> list[str]:
    return ["sd" if r == c else "corr" for _, r, c in _entries(layout)] + ["sigma"]


def _to_u(nat, kinds):
    return np.array([math.atanh(max(min(v, 1 - 1e-12), -1 + 1e-12)) if k == "corr" else math.log(max(v, 1e-300))
                     for v, k in zip(nat, kinds)])


def _from_u(u, kinds):
    return np.array([math.tanh(v) if k == "corr" else math.exp(min(v, 700.0)) for v, k in zip(u, kinds)])


def profile_deviance(result, k: int, value: float, start=None):
    """min over the other natural parameters of dev with the user's parameter k held at
    ``value``; returns (value of the criterion, the minimising natural parameters of the
    centred columns, see :func:`_space`; +inf where the constraint cannot be met)."""
    from scipy.optimize import minimize

    pr, lay, method = result.problem, result.problem.layout, result.method
    kinds = _kinds(lay)
    hat, theta_of, user = _space(result, k)
    nat0 = hat if start is None else np.asarray(start, float)
    free = [i for i in range(len(kinds)) if i != k] if user is None else list(range(len(kinds)))
    u0 = _to_u(nat0, kinds)[free]

    def full_nat(u):
        nat = np.empty(len(kinds))
        if user is None:
            nat[k] = value
        nat[free] = _from_u(u, [kinds[i] for i in free])
        return nat

    def f(u):
        with np.errstate(all="ignore"):  # a trial step far out: overflow is caught below
            return _f(u)

    def _f(u):
        ts = theta_of(full_nat(u))
        if ts is None or not np.all(np.isfinite(ts[0])) or not 0 < ts[1] < np.inf:
            return 1e300, np.zeros_like(u)
        theta, sigma = ts
        try:
            dev, gt, gs = _full(theta, sigma, pr, method)
        except (InputError, ValueError, OverflowError):  # so far out that the criterion is lost
            return 1e300, np.zeros_like(u)
        # chain rule: d theta / d u by central differences of the closed-form map
        grad = np.zeros_like(u)
        for a, i in enumerate(free):
            h = 1e-6
            up, um = u.copy(), u.copy()
            up[a] += h
            um[a] -= h
            tp, tm = theta_of(full_nat(up)), theta_of(full_nat(um))
            if tp is None or tm is None:
                continue
            grad[a] = gt @ ((tp[0] - tm[0]) / (2 * h)) + gs * (tp[1] - tm[1]) / (2 * h)
        if not (np.isfinite(dev) and np.all(np.isfinite(grad))):
            return 1e300, np.zeros_like(u)
        return dev, grad

    if user is None:
        res = minimize(f, u0, jac=True, method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-9, "maxiter": 2000})
        return float(res.fun), full_nat(res.x)
    # the constraint relative to the parameter's scale: a correlation's is its distance to +-1
    scale = max(abs(value), 1e-300) if kinds[k] == "sd" else max(1.0 - abs(value), 1e-300)

    def gap(u):
        with np.errstate(all="ignore"):
            g = (user(full_nat(u)) - value) / scale
        return g if np.isfinite(g) else 1e300

    res = minimize(f, u0, jac=True, method="SLSQP", constraints=[{"type": "eq", "fun": gap}],
                   options={"ftol": 1e-11, "maxiter": 500})
    if not abs(gap(res.x)) <= 1e-9:
        return math.inf, nat0
    return float(res.fun), full_nat(res.x)


def _endpoint(result, k, kind, hat, dev_min, cut, side):
    """The end of the interval on one side (-1 lower, +1 upper) of natural parameter k."""
    from scipy.optimize import brentq

    done = [(hat, _space(result, k)[0])]  # warm starts, in the space k is profiled in

    def excess(v):  # warm start from the nearest value tried between the estimate and v
        inside = [t for t in done if (t[0] - hat) * (v - hat) >= 0 and abs(t[0] - hat) <= abs(v - hat)]
        start = min(inside or done[:1], key=lambda t: abs(t[0] - v))[1]
        val, nat = profile_deviance(result, k, v, start)
        done.append((v, nat))
        return val - dev_min - cut

    if kind == "corr":
        gap = 1 - side * hat  # a correlation within 1e-8 of +-1 (a covariate far from 0): an edge beyond it
        edge = side * (1 - (min(1e-8, 1e-3 * gap) if gap > 0 else 1e-8))
        if excess(edge) <= 0:
            return float(side)
        return brentq(excess, hat, edge, xtol=min(1e-10, 1e-6 * max(gap, 1e-300)), rtol=1e-10)
    if side < 0 and kind == "sd":
        # outward from the estimate by factors of 10 (a constrained profile far below the
        # interval, where it cannot be held, costs SLSQP's whole iteration limit: 9 s a
        # value on sleepstudy with Days + 1000), then 0 itself
        if hat <= 0:  # a singular fit: the estimate itself is 0
            return 0.0
        inside = hat
        for v in hat * 10.0 ** -np.arange(1, 9):
            e = excess(v)
            if not math.isfinite(e):
                break
            if e > 0:
                return brentq(excess, v, inside, xtol=1e-12 * max(hat, 1.0), rtol=1e-10)
            inside = v
        lo, e = 0.0, excess(0.0)
        for t in 10.0 ** np.arange(-8, 0):  # +inf: held by a constraint that cannot reach 0 exactly
            if math.isfinite(e) or hat * t >= inside:
                break
            lo = hat * t
            e = excess(lo)
        if not math.isfinite(e):  # the constraint cannot be held below ``inside``: the interval reaches it
            return inside
        if e <= 0:
            return lo
        return brentq(excess, lo, inside, xtol=1e-12 * max(hat, 1.0), rtol=1e-10)
    inside = hat if hat > 0 else result.sigma * 1e-6
    step = 1.5 if side > 0 else 1 / 1.5
    outside = inside * step
    for _ in range(200):
        if excess(outside) > 0:
            break
        inside, outside = outside, outside * step
    else:
        raise InputError(f"the profile for parameter {k} does not reach the cut: interval unbounded")
    lo, hi = sorted((inside, outside))
    return brentq(excess, lo, hi, xtol=1e-12 * hi, rtol=1e-10)


def confint(result, level: float = 0.95, *, method: str = "profile"):
    """A DataFrame with the lower and upper end of every parameter's interval (lme4's
    row names .sig01 ... .sigma, then the fixed effects).  ``method="Wald"`` gives the
    fixed effects only (the variance rows are NaN), as lme4 does."""
    from scipy.stats import chi2

    if not 0 < level < 1:
        raise InputError(f"level must be in (0, 1), got {level!r}")
    if method not in ("profile", "Wald"):
        raise InputError(f"method must be 'profile' or 'Wald', got {method!r}")
    lay = result.problem.layout
    names = parameter_names(lay)
    rows = np.full((len(names), 2), np.nan)
    if method == "profile":
        ml = result
        if result.method != "ML":
            ml = result.refit(result.stats, "ML", result.blocks)
        cut = float(chi2.ppf(level, 1))
        hat = natural(ml.theta, ml.sigma, lay)
        for k, kind in enumerate(_kinds(lay)):
            rows[k] = [_endpoint(ml, k, kind, hat[k], ml.deviance, cut, -1),
                       _endpoint(ml, k, kind, hat[k], ml.deviance, cut, +1)]
    return with_wald(result, level, rows, names)


def with_wald(result, level: float, rows: np.ndarray, names: list):
    """The interval table: the variance parameters' rows as given, then the fixed
    effects' Wald intervals beta -+ z se (lme4's columns '2.5 %', '97.5 %')."""
    import pandas as pd
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + level / 2))
    se = np.sqrt(np.diag(result.vcov_matrix))
    wald = np.column_stack([result.beta - z * se, result.beta + z * se])
    lo, hi = f"{100 * (1 - level) / 2:g} %", f"{100 * (1 + level) / 2:g} %"
    return pd.DataFrame(np.vstack([rows, wald]), index=names + list(result.x_names), columns=[lo, hi])
