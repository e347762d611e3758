"""A fit with several random-effect terms in lme4's terms: fixef, vcov, VarCorr per term,
ranef and condVar per grouping factor, coef, predict, logLik/AIC/BIC, per-term LRT and ICC.

Computed at theta_hat by :func:`shrinkage.lmm.blocked_fit.fit_several`; this class names
and arranges the estimates (pandas objects indexed by lme4's names).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .result import Lme4Accessors

__all__ = ["SeveralResult"]


@dataclass(frozen=True, eq=False)
class SeveralResult(Lme4Accessors):
    """y = X beta + sum_k Z_k b_k + eps, b_k's rows i.i.d. N(0, sigma^2 T_k T_k').

    Terms are in lme4's order (most levels first); a term's name is its grouping factor
    as lme4 prints it (``cask:batch``), made unique as lme4 makes it (``Subject``,
    ``Subject.1`` for two terms of one factor).  ``loglik``, ``deviance``, ``singular``,
    ``dropped``, ``data`` as :class:`~shrinkage.lmm.result.LmmResult`."""

    method: str
    formula: str | None
    design: object
    theta: np.ndarray
    T: list
    beta: np.ndarray
    vcov_matrix: np.ndarray
    sigma2: float
    deviance: float
    nobs: int
    singular: bool
    b: list
    optimum: object
    problem: object
    data: str | None = None
    x_dropped: tuple = ()

    @property
    def terms(self) -> tuple:
        return self.design.terms

    @property
    def x_names(self) -> tuple:
        return self.design.x_names

    @property
    def dropped(self) -> int:
        return self.design.dropped

    @property
    def names(self) -> list[str]:
        """Each term's name as VarCorr prints it (a repeated factor gets .1, .2, ...)."""
        seen: dict = {}
        out = []
        for t in self.terms:
            k = seen.get(t.factor, 0)
            seen[t.factor] = k + 1
            out.append(t.factor if k == 0 else f"{t.factor}.{k}")
        return out

    @property
    def factors(self) -> list[str]:
        """The grouping factors, each once, in the terms' order."""
        return list(dict.fromkeys(t.factor for t in self.terms))

    # --- lme4's accessors ---------------------------------------------------------------
    @property
    def D(self) -> list:
        """Each term's random-effect covariance sigma^2 T_k T_k'."""
        return [self.sigma2 * T @ T.T for T in self.T]

    @property
    def varcorr(self) -> dict:
        """Term name -> covariance matrix of its random effects (a DataFrame)."""
        import pandas as pd

        return {name: pd.DataFrame(D, index=list(t.z_names), columns=list(t.z_names))
                for name, t, D in zip(self.names, self.terms, self.D)}

    @property
    def df(self) -> int:
        return len(self.x_names) + self.theta.size + 1

    @property
    def ngroups(self) -> dict:
        """Grouping factor -> number of levels."""
        return {t.factor: t.levels for t in self.terms}

    def _by_factor(self, factor: str) -> list[int]:
        return [k for k, t in enumerate(self.terms) if t.factor == factor]

    @property
    def ranef(self) -> dict:
        """Grouping factor -> conditional modes (a row per level, a column per random
        effect; the terms of one factor side by side, as lme4's ranef)."""
        import pandas as pd

        out = {}
        for factor in self.factors:
            ks = self._by_factor(factor)
            t = self.terms[ks[0]]
            out[factor] = pd.DataFrame(np.hstack([self.b[k] for k in ks]), index=pd.Index(t.labels, name=factor),
                                       columns=[n for k in ks for n in self.terms[k].z_names])
        return out

    @property
    def condvar(self) -> dict:
        """Term name -> Var(b_kj | y) per level, (J_k, q_k, q_k), beta treated as known
        (lme4's condVar, one array per term as lme4's postVar list)."""
        from .blocked import condvar, evaluate

        blocks = condvar(evaluate(self.optimum.theta, self.problem), self.problem)
        return {name: self.sigma2 * c for name, c in zip(self.names, blocks)}

    def coef(self) -> dict:
        """Grouping factor -> fixef + that factor's ranef per level (lme4's coef)."""
        import pandas as pd

        out = {}
        for factor, frame in self.ranef.items():
            values = np.tile(self.beta, (len(frame), 1))
            for name in frame.columns:
                if name not in self.x_names:
                    raise InputError(f"coef(): the random term {name!r} of {factor} has no fixed effect to add it to")
                values[:, self.x_names.index(name)] += frame[name].to_numpy()
            out[factor] = pd.DataFrame(values, index=frame.index, columns=list(self.x_names))
        return out

    def _intercepts_only(self, what: str) -> None:
        if any(t.z_names != ("(Intercept)",) for t in self.terms):
            raise InputError(f"{what} is defined here for random intercepts alone, (1 | a) + (1 | b)")

    @property
    def icc(self) -> dict:
        """Term name -> sigma_k^2 / (sum of the intercept variances + sigma^2): the share of
        the variance of one observation due to that factor (random intercepts only)."""
        self._intercepts_only("the ICC")
        total = sum(float(D[0, 0]) for D in self.D) + self.sigma2
        return {name: float(D[0, 0]) / total for name, D in zip(self.names, self.D)}

    def lrt(self, term: str):
        """Likelihood-ratio test of one random intercept's variance = 0 (by the fit's
        method): the model refitted without the term; p from the boundary's 50:50 mixture
        of chi2_0 and chi2_1 (Self & Liang 1987).  Returns (statistic, p value)."""
        from scipy.stats import chi2

        from .blocked import centred, prepare
        from .blocked_optimise import minimise

        if term not in self.names:
            raise InputError(f"lrt: no term {term!r} (terms: {', '.join(self.names)})")
        k = self.names.index(term)
        if self.terms[k].z_names != ("(Intercept)",):
            raise InputError(f"lrt: the test of {term!r} is defined here for a random intercept alone")
        if len(self.terms) < 2:
            raise InputError("lrt: the model without its only random term is a linear model")
        d = self.design
        Xc, yc, _, _ = centred(d.X, d.y, d.x_names)
        rest = [t for i, t in enumerate(self.terms) if i != k]
        smaller = minimise(prepare([t.codes for t in rest], [t.Z for t in rest], Xc, yc), self.method)
        stat = max(smaller.value - self.deviance, 0.0)
        return float(stat), float(0.5 * chi2.sf(stat, 1)) if stat > 0 else 1.0

    # --- prediction ---------------------------------------------------------------------
    def predict(self, newdata=None):
        """fixef + each term's ranef at the row's level; a level a term has not seen adds 0
        for that term (lme4's allow.new.levels = TRUE).  Without newdata, the fitted values."""
        from .terms import new_rows

        d = self.design
        if newdata is None:
            out = d.X @ self.beta
            for t, b in zip(self.terms, self.b):
                out += np.einsum("nk,nk->n", t.Z, b[t.codes])
            return out
        X, parts = new_rows(d, newdata)
        out = X @ self.beta
        for (Z, at), b in zip(parts, self.b):
            out += np.where(at >= 0, np.einsum("nk,nk->n", Z, b[np.maximum(at, 0)]), 0.0)
        return out

    def confint(self, level: float = 0.95, *, method: str = "profile"):
        """lme4's confint table: ``method="Wald"`` gives the fixed effects' Wald intervals
        (the variance rows .sig01 ... .sigma NaN, as lme4's); profile intervals for several
        factors are not done yet and are refused."""
        from .inference import with_wald

        if method != "Wald":
            raise InputError("confint(method='profile') is not supported yet for several grouping factors (profile "
                             "intervals are implemented for one grouping factor); method='Wald' gives the fixed "
                             "effects' intervals")
        if not 0 < level < 1:
            raise InputError(f"level must be in (0, 1), got {level!r}")
        names = [f".sig{k + 1:02d}" for k in range(self.theta.size)] + [".sigma"]
        return with_wald(self, level, np.full((len(names), 2), np.nan), names)

    def summary(self) -> str:
        """The fit printed as lme4's summary() prints it."""
        from .summary import summary

        return summary(self)

    def __repr__(self) -> str:
        flag = ", singular" if self.singular else ""
        groups = ", ".join(f"{n}: {t.levels}" for n, t in zip(self.names, self.terms))
        return (f"SeveralResult({self.method}: {self.formula}; {self.nobs} obs, {groups}; "
                f"loglik={self.loglik:.6f}{flag})")
