"""The crossed fit's result: what was estimated and how, in lme4's vocabulary."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...lmm.result import Lme4Accessors

__all__ = ["CrossedResult", "METHOD"]

METHOD = "moments+backfitting"
DESCRIBED = {METHOD: "variances by the method of moments (Gao & Owen 2017), fixed effects by GLS and BLUPs "
                     "by backfitting (Ghosh, Hastie & Owen 2022); not REML",
             "backfitting": "variances given; fixed effects by GLS and BLUPs by backfitting "
                            "(Ghosh, Hastie & Owen 2022)"}


@dataclass(frozen=True, eq=False)
class CrossedResult:
    """y = X beta + Z_a a + Z_b b + e fitted out of core.  ``method`` says what the
    variances are (``moments+backfitting``: moment estimates, not REML; ``backfitting``:
    given).  ``beta`` is the GLS estimate and ``b`` the BLUPs at those variances (to the
    backfitting tolerance ``tol``, met when ``converged``); ``vcov`` is (X'V^-1X)^-1 at them.
    ``moments``: the moment equations (statistics Q and their expectations' coefficients)."""

    method: str
    formula: str
    data: str | None
    factors: tuple
    variances: np.ndarray
    beta: np.ndarray
    vcov_matrix: np.ndarray
    x_names: tuple
    labels: tuple
    b: tuple
    nobs: int
    dropped: int
    sweeps: int
    converged: bool
    tol: float
    moments: object = None

    @property
    def sigma2(self) -> float:
        return float(self.variances[2])

    # lme4's accessors shared with the exact fits (no loglik: a moment fit has no likelihood)
    sigma, fixef, vcov = Lme4Accessors.sigma, Lme4Accessors.fixef, Lme4Accessors.vcov

    @property
    def varcorr(self) -> dict:
        """Grouping factor -> its random-intercept variance (a 1 x 1 frame, as the in-memory fit's)."""
        import pandas as pd

        return {f: pd.DataFrame([[float(v)]], index=["(Intercept)"], columns=["(Intercept)"])
                for f, v in zip(self.factors, self.variances[:2])}

    @property
    def ranef(self) -> dict:
        """Grouping factor -> BLUPs per level (a frame with the column (Intercept))."""
        import pandas as pd

        return {f: pd.DataFrame({"(Intercept)": b}, index=pd.Index(lab, name=f))
                for f, lab, b in zip(self.factors, self.labels, self.b)}

    @property
    def ngroups(self) -> dict:
        return {f: int(np.size(lab)) for f, lab in zip(self.factors, self.labels)}

    def summary(self) -> str:
        se = np.sqrt(np.diag(self.vcov_matrix))
        lines = [f"Linear mixed model, method = \"{self.method}\": {DESCRIBED[self.method]}",
                 f"Formula: {self.formula}"]
        if self.data:
            lines.append(f"   Data: {self.data}")
        lines += ["", "Random effects:", f" {'Groups':<10} {'Name':<12} {'Variance':>12} {'Std.Dev.':>10}"]
        for f, v in zip((*self.factors, "Residual"), self.variances):
            lines.append(f" {f:<10} {'(Intercept)' if f != 'Residual' else '':<12} {v:>12.5g} {math.sqrt(v):>10.5g}")
        groups = "; ".join(f"{f}, {n}" for f, n in self.ngroups.items())
        lines.append(f"Number of obs: {self.nobs}, groups:  {groups}")
        if self.dropped:
            lines.append(f"  ({self.dropped} observations deleted due to missingness)")
        state = "converged" if self.converged else "NOT converged"
        lines += [f"Backfitting: {self.sweeps} sweeps, {state} (tolerance {self.tol:g}, relative)", "",
                  "Fixed effects:", f" {'':<14} {'Estimate':>12} {'Std. Error':>12} {'t value':>9}"]
        for name, b, s in zip(self.x_names, self.beta, se):
            lines.append(f" {name:<14} {b:>12.5g} {s:>12.5g} {b / s:>9.3f}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"CrossedResult({self.method}: {self.formula}; {self.nobs} obs, "
                + ", ".join(f"{f} {n}" for f, n in self.ngroups.items()) + ")")
