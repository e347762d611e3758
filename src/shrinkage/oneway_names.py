"""lme4's accessors for the one-way fit: one model, one answer type.

``fit(y, g)`` (:class:`shrinkage.fit.FitResult`) and ``fit("y ~ 1 + (1 | g)", data)``
(:class:`shrinkage.lmm.result.LmmResult`) fit the same model; each answers by the
other's names too (fixef, vcov, varcorr, ranef, condvar, theta, deviance, aic ... here;
sigma_b2, beta0, blup, shrinkage, conditional_variance ... on LmmResult), computed from
its own fields (one source of truth), and the two agree (tests/test_one_answer.py).
The grouping factor is named ``group``: fit(y, g) is given labels, not a column name.
numpy only (pandas where a pandas object is returned, as LmmResult).
"""

from __future__ import annotations

import math

import numpy as np

from . import numeric as gen

__all__ = ["OneWayLme4Names", "InformationCriteria"]

GROUP = "group"


class InformationCriteria:
    """lme4's AIC and BIC from ``deviance``, ``df`` and ``nobs`` (both answer types)."""

    @property
    def aic(self) -> float:
        return self.deviance + 2 * self.df

    @property
    def bic(self) -> float:
        return self.deviance + self.df * math.log(self.nobs)


class OneWayLme4Names(InformationCriteria):
    """lme4's names for a fit of y_ij = beta0 + b_j + eps_ij (mixed into FitResult)."""

    x_names = ("(Intercept)",)
    z_names = ("(Intercept)",)
    group = GROUP

    @property
    def labels(self) -> np.ndarray:
        return self.groups

    @property
    def nobs(self) -> int:
        return self.n_obs

    @property
    def ngroups(self) -> int:
        return self.n_groups

    @property
    def sigma(self) -> float:
        return math.sqrt(self.sigma2)

    @property
    def theta(self) -> np.ndarray:
        """lme4's theta: sigma_b / sigma."""
        return np.array([math.sqrt(self.gamma)])

    @property
    def beta(self) -> np.ndarray:
        return np.array([self.beta0])

    @property
    def fixef(self):
        import pandas as pd

        return pd.Series(self.beta, index=list(self.x_names), name="Estimate")

    @property
    def vcov_matrix(self) -> np.ndarray:
        """Var(beta0_hat) = 1 / sum_j 1/(sigma_b^2 + sigma^2/n_j) (uncertainty, step 5):
        lme4's vcov, sigma^2 (X'V^-1 X)^-1."""
        return np.array([[float(gen._gls_beta0_variance(self.n.astype(float), self.sigma2, self.sigma_b2))]])

    @property
    def vcov(self):
        import pandas as pd

        return pd.DataFrame(self.vcov_matrix, index=list(self.x_names), columns=list(self.x_names))

    @property
    def D(self) -> np.ndarray:
        return np.array([[self.sigma_b2]])

    @property
    def varcorr(self) -> dict:
        import pandas as pd

        return {self.group: pd.DataFrame(self.D, index=list(self.z_names), columns=list(self.z_names))}

    @property
    def deviance(self) -> float:
        return -2.0 * self.loglik

    @property
    def df(self) -> int:
        """beta0, sigma_b, sigma (lme4's logLik df)."""
        return 3

    @property
    def icc(self) -> float:
        return self.sigma_b2 / (self.sigma_b2 + self.sigma2)

    @property
    def ranef(self) -> dict:
        import pandas as pd

        return {self.group: pd.DataFrame(self.blup[:, None], index=pd.Index(self.groups, name=self.group),
                                         columns=list(self.z_names))}

    @property
    def condvar(self) -> dict:
        return {self.group: self.conditional_variance[:, None, None].copy()}

    def coef(self) -> dict:
        import pandas as pd

        return {self.group: pd.DataFrame(self.group_means[:, None], index=pd.Index(self.groups, name=self.group),
                                         columns=list(self.x_names))}
