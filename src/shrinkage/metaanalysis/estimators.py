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
from . import certify
from .algebra import Powers, Weighted

METHODS = ("DL", "PM", "EB", "ML", "REML", "HE", "SJ", "HS")
SCAN_MAX = 200_000  # up to this many studies, ML/REML scan a grid for every local maximum
GRID = np.concatenate([[0.0], np.logspace(-8, 4, 37)])


def root(fdf, lo: float, hi: float, x: float) -> float:
    """Root of a function decreasing through 0 in [lo, hi] (f(lo) > 0 >= f(hi); hi may be inf).

    Newton steps from x, kept inside the bracket (halving it, or doubling x while hi is
    unknown, when a step leaves it).  fdf gives the exact derivative, so convergence is
    quadratic: once a Newton step is below 1e-9 of x, the error after it is of the order of
    its square, below rounding, and that step is the last.
    """
    for _ in range(400):
        f, d = fdf(x)
        if f > 0:
            lo = x
        else:
            hi = x
        new = x - f / d if d < 0 else np.nan
        if lo < new < hi and abs(new - x) <= 1e-9 * abs(new):
            return float(new)
        if not (lo < new < hi):
            if np.isinf(hi):
                new = 2 * max(x, lo, 1e-300)
            else:
                new = np.sqrt(lo * hi) if lo > 0 and hi > 4 * lo else 0.5 * (lo + hi)
        if abs(new - x) <= 1e-14 * abs(new) or (np.isfinite(hi) and hi - lo <= 4e-16 * hi):
            return float(new)
        x = new
    return float(x)


def _wls(X, y, v, tau2):
    return Weighted(X, y, numeric._meta_weight(v, tau2))


def generalised_q_root(powers: Powers, target: float, start: float = 0.0) -> float:
    """The tau^2 >= 0 with Q(tau^2) = target (Paule-Mandel, EB, the Q-profile bounds); 0 if Q(0) <= target.
    Q is decreasing and convex in tau^2 (dQ/dtau^2 = -y'PPy, and its derivative 2 y'PPPy >= 0), so a
    Newton step from any start lands left of the root, and the steps from there climb to it."""
    def f(t):
        return powers.at(t).rss - target

    def fdf(t):
        s = powers.at(t)
        return s.rss - target, -s.ypp

    if f(0.0) <= 0:
        return 0.0
    return root(fdf, 0.0, np.inf, start)


class Likelihood:
    """The profiled ML or REML log-likelihood in tau^2, its score and the score's derivative."""

    def __init__(self, powers: Powers, reml: bool):
        self.powers, self.v, self.reml = powers, powers.v, reml

    def score(self, t, s=None):
        s = s or self.powers.at(t)
        return 0.5 * (s.ypp - (s.trP if self.reml else s.sumw))

    def score_and_slope(self, t):
        s = self.powers.at(t, 3)
        info = s.trPP if self.reml else s.sumw2
        return self.score(t, s), 0.5 * info - s.ypppy()

    def value(self, t) -> float:
        """The ML or REML log-likelihood at t (docs/meta_analysis.pdf; its constants too: values are compared)."""
        s, powers = self.powers.at(t, logs=True), self.powers
        ll = float(numeric._meta_loglik(len(self.v), s.log_vt, s.rss))
        return float(numeric._meta_reml_loglik(ll, powers.p, powers.logdet_xtx, s.logdet_A)) if self.reml else ll

    def maximise(self, start: float) -> float:
        """The global maximiser over tau^2 >= 0: up to SCAN_MAX studies proven by `certify` (bounds
        on the score from a few passes) or, when that takes over certify.LIMIT passes, every + to -
        sign change of the score on a grid, each refined; above SCAN_MAX, from 0 and the moment estimate."""
        k = len(self.v)
        if k <= SCAN_MAX:
            proven = certify.maximise(self, start, root)
            if proven is not None:
                return proven
        scale = max(start, float(np.mean(self.v)))
        points = GRID * scale if k <= SCAN_MAX else np.unique([0.0, start])
        if k <= SCAN_MAX:
            scores = list(self.powers.scores(points, self.reml))
        else:
            scores = [self.score(t, self.powers.at(t, 3)) for t in points]
        candidates = [0.0] if scores[0] <= 0 else []
        for a, b, sa, sb in zip(points[:-1], points[1:], scores[:-1], scores[1:]):
            if sa > 0 >= sb:
                candidates.append(root(self.score_and_slope, a, b, b if a == 0 else a))
        if scores[-1] > 0:
            candidates.append(root(self.score_and_slope, points[-1], np.inf, points[-1]))
        if len(candidates) == 1:
            return candidates[0]
        values = [self.value(t) for t in candidates]
        return candidates[int(np.argmax(values))]


def _he_sj(method, X, yc, v):
    """Hedges' and Sidik-Jonkman's estimators (ordinary and tau0-weighted least squares on the rows)."""
    k, p = X.shape
    df = k - p
    if method == "HE":
        s = Weighted(X, yc, np.ones(k))
        trPV, trPVPV, _ = s.traces_v(v)
        t = float(numeric._meta_he_tau2(s.rss, trPV, df))
        return t, float(np.sqrt(2 * trPVPV + 4 * t * trPV + 2 * t * t * df) / df)
    tau0 = float(np.var(yc, ddof=1) * (k - 1) / k)
    s = _wls(X, yc, v, tau0)
    t = max(float(numeric._meta_sj_tau2(tau0, s.rss, df)), 0.0)
    _, trPVPV, trPPV = s.traces_v(v)
    return t, float(tau0 / df * np.sqrt(2 * trPVPV + 4 * t * trPPV + 2 * t * t * s.trPP))


def estimate(method: str, powers: Powers) -> tuple[float, float]:
    """(tau2, se_tau2) for one method, as metafor's rma.uni computes them (from the centred design:
    with an intercept, every estimator is unchanged by centring y and the moderators)."""
    v, p = powers.v, powers.p
    k = len(v)
    df = k - p
    if method in ("DL", "HS"):
        s = powers.at(0.0, 3)  # weights 1/v_i
        t = float(numeric._meta_dl_tau2(s.rss, df, s.trP) if method == "DL" else
                  numeric._meta_hs_tau2(s.rss, k, s.sumw))
        se = np.sqrt(2 * df + 4 * t * s.trP + 2 * t * t * s.trPP) / (s.trP if method == "DL" else s.sumw)
        return t, float(se)
    if method in ("HE", "SJ"):  # on the rows of the centred copy
        return _he_sj(method, powers.Z[:, :p], powers.Z[:, p], v)
    if method in ("PM", "EB"):
        fe = powers.at(0.0)
        t = generalised_q_root(powers, df, float(numeric._meta_dl_tau2(fe.rss, df, fe.trP)))  # from DL: near
        return t, float(np.sqrt(2 * k * k / df) / powers.at(t, logs=True).sumw)  # logs: the fit's loglik
    if method in ("ML", "REML"):
        reml = method == "REML"
        fe = powers.at(0.0, 3 if len(v) > SCAN_MAX else 2)  # the scan above SCAN_MAX asks for 3 powers at 0
        t = Likelihood(powers, reml).maximise(float(numeric._meta_dl_tau2(fe.rss, df, fe.trP)))
        s = powers.at(t, 3, logs=True)  # logs: the fit's loglik, from this same pass
        return t, float(np.sqrt(2.0 / (s.trPP if reml else s.sumw2)))
    raise InputError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
