"""A glmer fit in lme4's terms: fixef, vcov, VarCorr, ranef, condVar, coef, predict,
logLik, AIC, BIC, deviance, summary, confint; and the link-scale shrinkage factors."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..lmm.result import LmmResult, match_labels
from ..oneway_names import InformationCriteria

__all__ = ["GlmmResult"]


@dataclass(frozen=True, eq=False)
class GlmmResult(InformationCriteria):
    """A fit of g(E[y | b]) = X beta + offset + b_j, b_j ~ N(0, sigma_b^2), lme4's
    theta = sigma_b.  ``loglik`` is on lme4's scale for this nAGQ: the Laplace
    approximation of the full log-likelihood (nagq = 1) or the adaptive Gauss-Hermite one
    minus the saturated model's (nagq > 1); ``deviance`` is lme4's deviance(): the sum of
    the squared deviance residuals at the conditional modes (neither of the two);
    summary() prints -2 loglik in its deviance column, as lme4's does."""

    family: object
    nagq: int
    formula: str
    group: str
    labels: np.ndarray
    x_names: tuple
    problem: object
    optimum: object
    design: object = None
    offsets: tuple = ()
    dropped: int = 0
    data: str | None = None
    z_names = ("(Intercept)",)

    @property
    def theta(self) -> float:
        return float(self.optimum.x[0])

    @property
    def beta(self) -> np.ndarray:
        return self.optimum.x[1:]

    @property
    def sigma_b(self) -> float:
        return self.theta

    @property
    def b(self) -> np.ndarray:
        return self.theta * self.optimum.modes.u

    @property
    def nobs(self) -> int:
        return int(self.problem.y.size)

    @property
    def ngroups(self) -> int:
        return int(self.labels.size)

    @property
    def df(self) -> int:
        return len(self.x_names) + 1

    @property
    def loglik(self) -> float:
        return -0.5 * self.optimum.value

    @property
    def deviance(self) -> float:  # lme4's deviance(): the conditional deviance
        md = self.optimum.modes
        return float(np.sum(self.family.devres(md.eta, self.problem.y, self.problem.m)))

    @property
    def aic(self) -> float:
        return -2 * self.loglik + 2 * self.df

    @property
    def bic(self) -> float:
        return -2 * self.loglik + self.df * math.log(self.nobs)

    @property
    def singular(self) -> bool:
        """lme4's isSingular: theta below 1e-4."""
        return self.theta < 1e-4

    @property
    def vcov_matrix(self) -> np.ndarray:
        """lme4's vcov for a GLMM: the beta block of 2 H^-1, H the Hessian of the
        deviance in (theta, beta) (theta's uncertainty included); at theta = 0 the beta
        block of H alone (the objective is even in theta: H's cross terms vanish there)."""
        H = self.optimum.hessian
        if self.singular:
            return 2 * np.linalg.inv(H[1:, 1:])
        return (2 * np.linalg.inv(H))[1:, 1:]

    fixef = LmmResult.fixef  # the same names and types as lmer's result
    vcov = LmmResult.vcov

    @property
    def varcorr(self) -> dict:
        import pandas as pd

        return {self.group: pd.DataFrame([[self.theta ** 2]], index=["(Intercept)"], columns=["(Intercept)"])}

    def _by_group(self, values, columns):
        import pandas as pd

        return {self.group: pd.DataFrame(values, index=pd.Index(self.labels, name=self.group), columns=columns)}

    @property
    def ranef(self) -> dict:
        """The conditional modes b_j = theta u_j*."""
        return self._by_group(self.b[:, None], ["(Intercept)"])

    @property
    def condvar(self) -> dict:
        """lme4's condVar: theta^2 / H_j, H_j = 1 + theta^2 sum_i w_ij at the mode (J, 1, 1)."""
        return {self.group: (self.theta ** 2 / self.optimum.modes.H)[:, None, None]}

    @property
    def shrinkage(self) -> np.ndarray:
        """Link-scale shrinkage lambda_j = sigma_b^2 / (sigma_b^2 + 1 / sum_i w_ij), the
        working weights at the mode (derivations/glmm_shrinkage.py): b_j is lambda_j times
        the group's own working-scale deviation."""
        from .. import numeric

        return numeric._glmm_link_shrinkage(self.theta, self.optimum.modes.W)

    def coef(self) -> dict:
        out = np.tile(self.beta, (self.ngroups, 1))
        if "(Intercept)" not in self.x_names:
            raise InputError("coef(): the random intercept has no fixed intercept to add it to")
        out[:, self.x_names.index("(Intercept)")] += self.b
        return self._by_group(out, list(self.x_names))

    def confint(self, level: float = 0.95, method: str = "Wald"):
        """Wald intervals for the fixed effects (lme4's confint(method = "Wald"), which
        gives NA for sigma_b); method="profile": the likelihood-ratio interval for sigma_b,
        the row .sig01 of lme4's confint(method = "profile") (:mod:`.profile`)."""
        import pandas as pd
        from scipy.stats import norm

        if method not in ("Wald", "profile"):
            raise InputError(f"method must be 'Wald' or 'profile', got {method!r}")
        if not 0 < level < 1:
            raise InputError(f"level must be between 0 and 1, got {level!r}")
        pct = [f"{100 * (1 - level) / 2:.1f} %", f"{100 * (1 + level) / 2:.1f} %"]
        if method == "profile":
            from .profile import profile_sigma

            return pd.DataFrame([profile_sigma(self, level)], index=[".sig01"], columns=pct)
        z = norm.ppf(0.5 + level / 2)
        se = np.sqrt(np.diag(self.vcov_matrix))
        return pd.DataFrame(np.column_stack([self.beta - z * se, self.beta + z * se]),
                            index=list(self.x_names), columns=pct)

    def predict(self, newdata=None, type: str = "link", random: bool = True) -> np.ndarray:
        """The linear predictor (type="link") or the mean (type="response": a probability
        or a rate) for the fitted rows or ``newdata``; ``random=False`` leaves the random
        intercepts out (lme4's re.form = NA).  A group the fit has not seen is refused."""
        if type not in ("link", "response"):
            raise InputError(f"type must be 'link' or 'response', got {type!r}")
        if newdata is None:
            eta = self.problem.X @ self.beta + self.problem.offset
            if random:
                eta = eta + self.b[self.problem.codes]
        else:
            eta = self._new_eta(newdata, random)
        return eta if type == "link" else self.family.mu(eta)

    def _new_eta(self, newdata, random):
        from ..lmm.formula import new_design
        from .frames import _frame
        from .response import evaluate

        X, _, g = new_design(self.design, newdata)
        frame = _frame(newdata)
        eta = X @ self.beta + sum((evaluate(t, frame) for t in self.offsets), np.zeros(len(g)))
        if random:
            where = match_labels(self.labels, g)
            if (where < 0).any():
                new = g[np.argmax(where < 0)]
                new = new.item() if isinstance(new, np.generic) else new
                raise InputError(f"newdata: group {new!r} of {self.group!r} is not in the fit (lme4 refuses new "
                                 "levels too; use random=False for the population prediction)")
            eta = eta + self.b[where]
        return eta

    def summary(self) -> str:
        from .summary import summary

        return summary(self)

    def __repr__(self) -> str:
        return (f"GlmmResult({self.family!r}, nagq={self.nagq}, sigma_b={self.theta:.6g}, "
                f"loglik={self.loglik:.6f}, groups={self.ngroups}, nobs={self.nobs})")
