"""Estimators of tau^2, each as metafor's rma.uni defines it, truncated at 0.

Closed forms (DL, HE, HS, SJ) are evaluated from the traces of `algebra.Weighted`.  The
iterative ones are roots of a decreasing function of tau^2: PM and EB of the generalised
Q minus its degrees of freedom (the same equation: metafor's EB iteration converges to
PM's root), ML and REML of the profiled score.  Roots are found by Newton steps kept
inside a bracket (bisection when a step leaves it), to the last bits, not to a threshold.
tau^2 = 0 is returned exactly when the function is <= 0 at 0 (and, for ML/REML, no
interior maximum is higher): found, not crept towards.
"""

from __future__ import annotations

import numpy as np

from .. import numeric
from ..errors import InputError
from .algebra import Weighted

METHODS = ("DL", "PM", "EB", "ML", "REML", "HE", "SJ", "HS")
SCAN_MAX = 200_000  # up to this many studies, ML/REML scan a grid for every local maximum
GRID = np.concatenate([[0.0], np.logspace(-8, 4, 37)])


def root(fdf, lo: float, hi: float, x: float) -> float:
    """Root of a function decreasing through 0 in [lo, hi] (f(lo) > 0 >= f(hi)); Newton inside the bracket."""
    for _ in range(400):
        f, d = fdf(x)
        if f > 0:
            lo = x
        else:
            hi = x
        step = f / d if d < 0 else np.nan
        new = x - step
        if not (lo < new < hi):
            new = np.sqrt(lo * hi) if lo > 0 and hi > 4 * lo else 0.5 * (lo + hi)
        if abs(new - x) <= 2e-16 * max(abs(new), 1e-300) or hi - lo <= 4e-16 * hi:
            return float(new)
        x = new
    return float(x)


def upper_bracket(f, start: float) -> float:
    """A tau^2 where the decreasing function f is <= 0, by doubling from start."""
    hi = max(start, 1e-300)
    for _ in range(2100):
        if f(hi) <= 0:
            return hi
        hi *= 2.0
    raise InputError("no tau^2 solves the estimating equation (the data are unbounded)")


def _wls(X, y, v, tau2):
    return Weighted(X, y, numeric._meta_weight(v, tau2))


def generalised_q_root(X, y, v, target: float) -> float:
    """The tau^2 >= 0 with Q(tau^2) = target (Paule-Mandel, EB, the Q-profile bounds); 0 if Q(0) <= target."""
    def f(t):
        return _wls(X, y, v, t).rss - target

    def fdf(t):
        s = _wls(X, y, v, t)
        return s.rss - target, -s.ypp

    if f(0.0) <= 0:
        return 0.0
    hi = upper_bracket(f, float(np.var(y)) + 1e-300)
    return root(fdf, 0.0, hi, 0.5 * hi)


class Likelihood:
    """The profiled ML or REML log-likelihood in tau^2, its score and the score's derivative."""

    def __init__(self, X, y, v, reml: bool):
        self.X, self.y, self.v, self.reml = X, y, v, reml

    def score(self, t, s=None):
        s = s or _wls(self.X, self.y, self.v, t)
        return 0.5 * (s.ypp - (s.trP if self.reml else s.sumw))

    def score_and_slope(self, t):
        s = _wls(self.X, self.y, self.v, t)
        info = s.trPP if self.reml else s.sumw2
        return self.score(t, s), 0.5 * info - s.ypppy()

    def value(self, t) -> float:
        s = _wls(self.X, self.y, self.v, t)
        ll = -0.5 * float(np.log(self.v + t).sum()) - 0.5 * s.rss
        return ll - 0.5 * s.logdet_A() if self.reml else ll

    def maximise(self, start: float) -> float:
        """The global maximiser over tau^2 >= 0: every + to - sign change of the score on a grid
        (up to SCAN_MAX studies; above, from 0 and the moment estimate), each refined."""
        k = len(self.y)
        scale = max(start, float(np.mean(self.v)))
        points = GRID * scale if k <= SCAN_MAX else np.unique([0.0, start])
        scores = [self.score(t) for t in points]
        candidates = [0.0] if scores[0] <= 0 else []
        for a, b, sa, sb in zip(points[:-1], points[1:], scores[:-1], scores[1:]):
            if sa > 0 >= sb:
                candidates.append(root(self.score_and_slope, a, b, 0.5 * (a + b)))
        if scores[-1] > 0:
            a = points[-1]
            hi = upper_bracket(self.score, 2 * max(a, scale))
            candidates.append(root(self.score_and_slope, a, hi, 0.5 * (a + hi)))
        if len(candidates) == 1:
            return candidates[0]
        values = [self.value(t) for t in candidates]
        return candidates[int(np.argmax(values))]


def estimate(method: str, X, y, v) -> tuple[float, float, dict]:
    """(tau2, se_tau2, extra) for one method, as metafor's rma.uni computes them."""
    k, p = X.shape
    df = k - p
    yc = y - y.mean()  # metafor centres y; with an intercept in X nothing else changes
    if method in ("DL", "HS"):
        s = Weighted(X, yc, 1.0 / v)
        trP = s.trP
        if method == "DL":
            tau2 = numeric._meta_dl_tau2(s.rss, df, trP)
        else:
            tau2 = numeric._meta_hs_tau2(s.rss, k, s.sumw)
        t = max(tau2, 0.0)
        se2 = 2 * df + 4 * t * trP + 2 * t * t * s.trPP
        se = np.sqrt(se2) / (trP if method == "DL" else s.sumw)
        return max(tau2, 0.0), float(se), {}
    if method == "HE":
        s = Weighted(X, yc, np.ones(k))
        trPV, trPVPV, _ = s.traces_v(v)
        tau2 = numeric._meta_he_tau2(s.rss, trPV, df)
        t = max(tau2, 0.0)
        return t, float(np.sqrt(2 * trPVPV + 4 * t * trPV + 2 * t * t * df) / df), {}
    if method == "SJ":
        tau0 = float(np.var(y, ddof=1) * (k - 1) / k)
        s = _wls(X, yc, v, tau0)
        tau2 = numeric._meta_sj_tau2(tau0, s.rss, df)
        _, trPVPV, trPPV = s.traces_v(v)
        t = max(tau2, 0.0)
        se = tau0 / df * np.sqrt(2 * trPVPV + 4 * t * trPPV + 2 * t * t * s.trPP)
        return t, float(se), {"tau2_0": tau0}
    if method in ("PM", "EB"):
        tau2 = generalised_q_root(X, yc, v, df)
        sumw = float(numeric._meta_weight(v, tau2).sum())
        return tau2, float(np.sqrt(2 * k * k / df) / sumw), {}
    if method in ("ML", "REML"):
        reml = method == "REML"
        he = Weighted(X, yc, np.ones(k))
        start = max(numeric._meta_he_tau2(he.rss, he.traces_v(v)[0], df), 0.0)
        tau2 = Likelihood(X, yc, v, reml).maximise(start)
        s = _wls(X, yc, v, tau2)
        info = s.trPP if reml else s.sumw2
        return tau2, float(np.sqrt(2.0 / info)), {}
    raise InputError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
