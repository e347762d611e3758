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
    powers: object = field(repr=False)  # the design and y (algebra.Powers): the passes' data
    at: object = field(repr=False)  # the sums at tau2 (algebra.Profile)
    tau2: float
    se_tau2: float
    beta: np.ndarray
    vb: np.ndarray = field(repr=False)

    # Everything below is computed when first asked (a fit that wants tau2 and beta pays for no
    # p-value, log or heterogeneity statistic).

    @cached_property
    def se(self) -> np.ndarray:
        return np.sqrt(np.diag(self.vb))

    @property
    def df(self) -> int:
        return self.k - self.p

    @cached_property
    def zval(self) -> np.ndarray:
        return self.beta / self.se

    @cached_property
    def crit(self) -> float:
        """The normal (or, with knha, t) quantile of the intervals."""
        sp, alpha = _dist(), 1 - self.level
        return float(sp.stdtrit(self.df, 1 - alpha / 2) if self.test == "knha" else sp.ndtri(1 - alpha / 2))

    @property
    def ddf(self) -> float:
        return float(self.df) if self.test == "knha" else float("nan")

    @cached_property
    def pval(self) -> np.ndarray:
        sp = _dist()
        return np.asarray(2 * sp.stdtr(self.df, -np.abs(self.zval)) if self.test == "knha"
                          else 2 * sp.ndtr(-np.abs(self.zval)))

    @property
    def ci_lb(self) -> np.ndarray:
        return self.beta - self.crit * self.se

    @property
    def ci_ub(self) -> np.ndarray:
        return self.beta + self.crit * self.se

    @cached_property
    def _moderators_test(self) -> tuple:
        btt = np.arange(1, self.p) if self.p > 1 else np.arange(1)
        QM = float(self.beta[btt] @ np.linalg.solve(self.vb[np.ix_(btt, btt)], self.beta[btt]))
        if self.test == "knha":
            QM /= len(btt)
            return QM, float(_dist().fdtrc(len(btt), self.df, QM)), (len(btt), self.df)
        return QM, float(_dist().chdtrc(len(btt), QM)), (len(btt), None)

    @property
    def QM(self) -> float:
        return self._moderators_test[0]

    @property
    def QMp(self) -> float:
        return self._moderators_test[1]

    @property
    def QMdf(self) -> tuple:
        return self._moderators_test[2]

    @cached_property
    def _fixed(self):
        """The sums at tau^2 = 0 (weights 1/v_i): Cochran's Q and the typical variance."""
        return self.powers.at(0.0)

    @property
    def QE(self) -> float:
        return self._fixed.rss

    @cached_property
    def QEp(self) -> float:
        return float(_dist().chdtrc(self.df, self.QE))

    @property
    def vt(self) -> float:
        return float(self.df / self._fixed.trP)

    @property
    def I2(self) -> float:
        return float(numeric._meta_i2(self.tau2, self.vt))

    @property
    def H2(self) -> float:
        return float(numeric._meta_h2(self.tau2, self.vt))

    @cached_property
    def fit_stats(self) -> dict:
        """logLik, deviance, AIC, BIC, AICc of the ML and the REML fit, as metafor's fitstats()."""
        return fit_stats(self)

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


def fit_stats(r) -> dict:
    """metafor's fitstats() of a fit: the ML and REML log-likelihoods at its tau^2 and what follows."""
    k, p, s, fe = r.k, r.p, r.at, r.powers.at(0.0)
    # docs/meta_analysis.pdf: the sum over the studies of their marginal log-densities, in the sum of
    # log(v_i + tau^2) and y'Py; REML's terms.  The saturated model (tau^2 = 0, no residual) for the deviance.
    ll_ml = float(numeric._meta_loglik(k, s.log_vt, s.rss))
    ll_reml = float(numeric._meta_reml_loglik(ll_ml, p, r.powers.logdet_xtx, s.logdet_A))
    saturated = float(numeric._meta_loglik(k, fe.log_vt, 0.0))
    parms = p + 1
    out = {}
    for name, ll, n, dev in (("ML", ll_ml, k, -2 * (ll_ml - saturated)), ("REML", ll_reml, k - p, -2 * ll_reml)):
        big = max(n, parms + 2)
        out[name] = {"logLik": ll, "deviance": dev, "AIC": -2 * ll + 2 * parms, "BIC": -2 * ll + parms * np.log(n),
                     "AICc": -2 * ll + 2 * parms * big / (big - parms - 1)}
    return out
