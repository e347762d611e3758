"""A glmer fit with vector or several random-effect terms (Laplace), in lme4's terms: the
accessors of shrinkage.lmm's several-term result (VarCorr per term, ranef per factor, coef)
with the GLMM's logLik, deviance(), condVar, predict on the link and response scales."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..lmm.several_result import SeveralResult

__all__ = ["GlmmTermsResult"]


@dataclass(frozen=True, eq=False)
class GlmmTermsResult(SeveralResult):
    """g(E[y | b]) = X beta + offset + sum_k Z_k b_k, b_k's rows N(0, T_k T_k') (no residual
    variance: sigma2 = 1).  ``loglik`` is lme4's Laplace log-likelihood; ``deviance`` lme4's
    deviance(), the summed squared deviance residuals at the modes."""

    family: object = None
    offsets: tuple = ()
    nagq = 1

    @property
    def loglik(self) -> float:
        return -0.5 * self.optimum.value

    @property
    def df(self) -> int:
        return len(self.x_names) + self.theta.size

    @property
    def aic(self) -> float:  # from -2 loglik, not from deviance() (a GLMM's is the conditional one)
        return 2 * (self.df - self.loglik)

    @property
    def bic(self) -> float:
        return self.df * math.log(self.nobs) - 2 * self.loglik

    @property
    def sigma(self) -> float:
        return 1.0

    @property
    def condvar(self) -> dict:
        """Term name -> Var(b_kj | y) per level (J_k, q_k, q_k): Lambda H^-1 Lambda' at the
        modes (lme4's condVar)."""
        from .several import condvar

        return dict(zip(self.names, condvar(self.problem, self.optimum.modes)))

    @property
    def icc(self) -> dict:
        raise InputError("icc is defined for a Gaussian fit (a GLMM has no residual variance on the link scale)")

    def lrt(self, term: str):
        raise InputError("lrt is not done for a GLMM yet")

    def predict(self, newdata=None, type: str = "link", random: bool = True) -> np.ndarray:
        """The linear predictor (type="link") or the mean (type="response"); random=False
        leaves the random effects out (lme4's re.form = NA); a level a term has not seen
        adds 0 for that term."""
        from .frames import _frame
        from .response import evaluate

        if type not in ("link", "response"):
            raise InputError(f"type must be 'link' or 'response', got {type!r}")
        pr = self.problem
        if newdata is None:
            eta = pr.X @ self.beta + pr.offset
            if random:
                for t, b in zip(self.terms, self.b):
                    eta = eta + np.einsum("nk,nk->n", t.Z, b[t.codes])
        else:
            from ..lmm.terms import new_rows

            X, parts = new_rows(self.design, newdata)
            frame = _frame(newdata)
            eta = X @ self.beta + sum((evaluate(t, frame) for t in self.offsets), np.zeros(X.shape[0]))
            if random:
                for (Z, at), b in zip(parts, self.b):
                    eta = eta + np.where(at >= 0, np.einsum("nk,nk->n", Z, b[np.maximum(at, 0)]), 0.0)
        return eta if type == "link" else self.family.mu(eta)

    def confint(self, level: float = 0.95, *, method: str = "Wald"):
        """Wald intervals for the fixed effects (lme4's method="Wald": NA for the
        variance parameters); profile intervals are done for one scalar random effect."""
        import pandas as pd
        from scipy.stats import norm

        if method != "Wald":
            raise InputError("confint(method='profile') is done for one scalar random intercept (1 | g); "
                             "method='Wald' gives the fixed effects' intervals")
        if not 0 < level < 1:
            raise InputError(f"level must be between 0 and 1, got {level!r}")
        z = norm.ppf(0.5 + level / 2)
        se = np.sqrt(np.diag(self.vcov_matrix))
        pct = [f"{100 * (1 - level) / 2:.1f} %", f"{100 * (1 + level) / 2:.1f} %"]
        return pd.DataFrame(np.column_stack([self.beta - z * se, self.beta + z * se]),
                            index=list(self.x_names), columns=pct)

    def summary(self) -> str:
        from .summary import summary

        return summary(self)

    def __repr__(self) -> str:
        groups = ", ".join(f"{n}: {t.levels}" for n, t in zip(self.names, self.terms))
        return (f"GlmmTermsResult({self.family!r}, Laplace: {self.formula}; {self.nobs} obs, {groups}; "
                f"loglik={self.loglik:.6f})")
