"""The likelihood-ratio (profile) interval for sigma_b of a one-random-intercept glmer fit,
as lme4's confint(method = "profile") gives it for .sig01.

zeta(sigma) = sign(sigma - sigma_hat) sqrt(D(sigma) - D_min), D(sigma) the deviance (lme4's
scale for the fit's nAGQ) minimised over beta with theta = sigma held; the interval is
where |zeta| <= z_{(1+level)/2}: its ends are roots of zeta = -z and zeta = +z, found by
Brent's method (lme4 interpolates a spline through a grid of profile points; the roots are
what it approximates).  Where D(0) - D_min < z^2 the lower end is 0, as lme4 reports.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq
from scipy.stats import norm

from ..errors import InputError
from .optimise import _hessian_of_gradient, _newton, _Objective

__all__ = ["profile_sigma"]


class _BetaOnly:
    """The fit's objective in beta with theta held (value and gradient for _newton)."""

    def __init__(self, pr, nagq, theta, u0):
        self.full, self.theta = _Objective(pr, nagq), theta
        self.full.u = u0

    def value(self, beta) -> float:
        return self.full.value(np.concatenate([[self.theta], beta]))

    def gradient(self, beta) -> np.ndarray:
        return self.full.gradient(np.concatenate([[self.theta], beta]))[1:]


def _deviance(r, sigma: float, start) -> tuple[float, np.ndarray]:
    """min over beta of the deviance at theta = sigma, from ``start``."""
    obj = _BetaOnly(r.problem, r.nagq, sigma, r.optimum.modes.u)
    beta, value, _ = _newton(obj, np.array(start, dtype=float), _hessian_of_gradient)
    return value, beta


def profile_sigma(r, level: float = 0.95) -> tuple[float, float]:
    """(lower, upper) of the profile interval for sigma_b at ``level``."""
    if not 0 < level < 1:
        raise InputError(f"level must be between 0 and 1, got {level!r}")
    z2 = norm.ppf(0.5 + level / 2) ** 2
    sigma_hat, d_min = r.theta, r.optimum.value
    beta = {"start": r.beta.copy()}

    def excess(sigma):
        value, b = _deviance(r, sigma, beta["start"])
        beta["start"] = b  # the next point starts from this one's beta (the profile is smooth)
        return max(value - d_min, 0.0) - z2

    lower = 0.0
    if sigma_hat > 0 and excess(0.0) > 0:
        beta["start"] = r.beta.copy()
        lower = brentq(excess, 0.0, sigma_hat, xtol=1e-10, rtol=1e-12)
    beta["start"] = r.beta.copy()
    hi = max(2 * sigma_hat, 0.1)
    for _ in range(60):
        if excess(hi) > 0:
            break
        hi *= 2
    else:
        raise InputError("the profile of sigma_b does not rise to the interval's level: no upper end")
    beta["start"] = r.beta.copy()
    upper = brentq(excess, sigma_hat, hi, xtol=1e-10, rtol=1e-12)
    return lower, upper
