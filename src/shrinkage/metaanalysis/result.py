"""The result of shrinkage.meta: estimates, tests, fit statistics and the study-level BLUPs."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .. import numeric
from .algebra import Powers
from .estimators import generalised_q_root


def _dist():
    """scipy.special's distribution functions, loaded when a fit needs them (not by `import shrinkage`)."""
    from scipy import special

    return special


@dataclass(frozen=True)
class MetaResult:
    """A random-effects meta-analysis (or meta-regression) fitted as metafor's rma.uni fits it.

    tau2, se_tau2: between-study variance and its standard error (metafor's formula per method);
    beta, se, vb, zval, pval, ci_lb, ci_ub: the fixed effects (intercept first, named in `names`);
    mu, se_mu: the intercept (the pooled effect without moderators); QE, QEp: the test of
    (residual) heterogeneity with weights 1/v_i; I2 (percent), H2; QM, QMp: the test of the
    moderators (of the intercept without them); loglik on metafor's scale (the REML
    log-likelihood for REML, the ML one for every other method, as metafor's logLik()); blup, blup_se, pi_lb, pi_ub: metafor's blup() per study.
    """

    method: str
    test: str
    level: float
    k: int
    p: int
    names: tuple
    yi: np.ndarray = field(repr=False)
    vi: np.ndarray = field(repr=False)
    powers: object = field(repr=False)  # the centred design and y (algebra.Powers): the passes' data
    tau2: float
    se_tau2: float
    beta: np.ndarray
    se: np.ndarray
    vb: np.ndarray = field(repr=False)
    zval: np.ndarray = field(repr=False)
    pval: np.ndarray = field(repr=False)
    ci_lb: np.ndarray = field(repr=False)
    ci_ub: np.ndarray = field(repr=False)
    ddf: float
    QE: float
    QEp: float
    QM: float
    QMp: float
    QMdf: tuple
    vt: float
    I2: float
    H2: float
    fit_stats: dict = field(repr=False)
    crit: float = field(repr=False)  # the normal (or t, with knha) quantile of the intervals

    @cached_property
    def X(self) -> np.ndarray:
        """The model matrix in the user's columns (intercept, then the moderators)."""
        return self.powers.Z[:, :self.p] + self.powers.means

    @cached_property
    def fitted(self) -> np.ndarray:
        """x_i'beta."""
        return self.powers.Z[:, :self.p] @ self.powers.centred(self.beta) + self.powers.ybar

    @cached_property
    def shrinkage(self) -> np.ndarray:
        """lambda_i = tau^2 / (tau^2 + v_i) (docs/meta_analysis.pdf)."""
        return numeric._meta_shrinkage(self.tau2, self.vi)

    @cached_property
    def blup(self) -> np.ndarray:
        """metafor's blup() pred: the BLUP of each study's true effect, x_i'beta + lambda_i (y_i - x_i'beta)."""
        return numeric._meta_blup(self.yi, self.fitted, self.tau2, self.vi)

    @cached_property
    def blup_se(self) -> np.ndarray:
        """metafor's blup() se: sqrt(lambda_i v_i + (1 - lambda_i)^2 x_i' vb x_i), mu's uncertainty included."""
        Zx = self.powers.Z[:, :self.p]  # x_i' vb x_i is the same in the centred columns
        s2mu = ((Zx @ self.powers.centred_cov(self.vb)) * Zx).sum(axis=1)
        return np.sqrt(numeric._meta_blup_variance(self.tau2, self.vi, s2mu))

    @property
    def pi_lb(self) -> np.ndarray:
        return self.blup - self.crit * self.blup_se

    @property
    def pi_ub(self) -> np.ndarray:
        return self.blup + self.crit * self.blup_se

    @cached_property
    def R2(self) -> float | None:
        """Percent of tau^2 accounted for by the moderators (metafor's R^2): the intercept-only fit's
        tau^2 against this one's; None without moderators.  Computed when asked (a second fit)."""
        if self.p == 1:
            return None
        from .estimators import estimate

        tau2_re = estimate(self.method, Powers(np.empty((self.k, 0)), self.yi, self.vi))[0]
        return 0.0 if tau2_re <= 0 else max(0.0, 100 * (tau2_re - self.tau2) / tau2_re)

    @property
    def mu(self) -> float:
        return float(self.beta[0])

    @property
    def se_mu(self) -> float:
        return float(self.se[0])

    @property
    def tau(self) -> float:
        return float(np.sqrt(self.tau2))

    @property
    def loglik(self) -> float:
        return self.fit_stats["REML" if self.method == "REML" else "ML"]["logLik"]

    def confint_tau2(self, level: float = 0.95) -> dict:
        """Q-profile confidence intervals (Viechtbauer 2007) for tau^2, tau, I^2 and H^2.

        Q(tau^2) ~ chi^2_{k-p} at the true tau^2 and decreases in tau^2 (docs/meta_estimators.pdf),
        so the bounds are the roots of Q(tau^2) = the chi^2 quantiles, each 0 when Q(0) is below it.
        Returns {name: (estimate, lower, upper)}.
        """
        from ..errors import InputError

        if not 0 < level < 1:
            raise InputError(f"level must be in (0, 1), not {level!r}")
        df = self.k - self.p
        sp = _dist()
        alpha = 1 - level
        crit_u, crit_l = float(sp.chdtri(df, alpha / 2)), float(sp.chdtri(df, 1 - alpha / 2))
        ub = generalised_q_root(self.powers, crit_l)  # 0 when Q(0) <= the quantile
        lb = generalised_q_root(self.powers, crit_u) if ub > 0 else 0.0
        out = {"tau^2": (self.tau2, lb, ub), "tau": (self.tau, np.sqrt(lb), np.sqrt(ub))}
        out["I^2(%)"] = tuple(float(numeric._meta_i2(t, self.vt)) for t in (self.tau2, lb, ub))
        out["H^2"] = tuple(float(numeric._meta_h2(t, self.vt)) for t in (self.tau2, lb, ub))
        return out

    def summary(self) -> str:
        """The text metafor's summary(rma(...)) prints."""
        from .summary import render

        return render(self)

    def __str__(self) -> str:
        return self.summary()
