"""The fitted model in lme4's terms: fixef, vcov, VarCorr, sigma, logLik, ranef, condVar.

Estimates are computed once, at theta_hat, in :func:`shrinkage.lmm.fit.fit_cross_products`;
this class only names and arranges them (pandas objects indexed by lme4's names).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..oneway_names import InformationCriteria

__all__ = ["Lme4Accessors", "LmmResult", "match_labels"]


def _kind(a: np.ndarray) -> str:
    return "number" if a.dtype.kind in "biuf" else "time" if a.dtype.kind in "mM" else "other"


def _printed(v) -> str:
    """A label as text: a whole float as the integer it is (R prints the level 2, not 2.0)."""
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def match_labels(labels: np.ndarray, g) -> np.ndarray:
    """The position of each label of ``g`` among the fitted ``labels`` (sorted), -1 for a
    group the fit has not seen.  Numbers match numbers by value (1 matches 1.0), times
    match times; otherwise (text, or text against numbers) labels match by their printed
    form, as R matches a factor's levels, which are text: 1 matches "1" and 2.0 matches
    "2" whichever side is the fitted one.  Comparing by type instead would make every
    group new, silently, or fail to sort."""
    g = np.asarray(g)
    if labels.size == 0:
        return np.full(g.shape, -1, dtype=np.intp)
    if _kind(labels) == _kind(g) != "other":
        where = np.minimum(np.searchsorted(labels, g), labels.size - 1)
        return np.where(labels[where] == g, where, -1)
    index = {}
    for i, lab in enumerate(labels.tolist()):
        index.setdefault(_printed(lab), i)
    if len(index) < labels.size:
        raise InputError("predict: two of the fitted group labels print alike (e.g. 1 and '1'); "
                         "cannot match new labels to them")
    return np.array([index.get(_printed(v), -1) for v in g.tolist()], dtype=np.intp)


class Lme4Accessors(InformationCriteria):
    """fixef, vcov, sigma, logLik (and AIC, BIC) from beta, vcov_matrix, x_names, sigma2
    and deviance: the one-factor and the several-factor results alike."""

    @property
    def fixef(self):
        """Fixed effects, lme4's names -> estimate (a pandas Series)."""
        import pandas as pd

        return pd.Series(self.beta, index=list(self.x_names), name="Estimate")

    @property
    def vcov(self):
        """sigma^2 (X'V^-1X)^-1 with V = I + Z Lambda Lambda' Z' at theta_hat (lme4's vcov)."""
        import pandas as pd

        return pd.DataFrame(self.vcov_matrix, index=list(self.x_names), columns=list(self.x_names))

    @property
    def sigma(self) -> float:
        return math.sqrt(self.sigma2)

    @property
    def loglik(self) -> float:
        return -0.5 * self.deviance


@dataclass(frozen=True, eq=False)
class LmmResult(Lme4Accessors):
    """A fit of y_j = X_j beta + Z_j b_j + eps_j (one grouping factor).

    ``loglik`` follows lme4: the REML log-likelihood (with its (N-p) log 2 pi constant)
    for REML, the ordinary one for ML; ``deviance`` is -2 loglik (lme4's REMLcrit for
    REML).  ``condvar`` is Var(b_j | y) with beta known (lme4's condVar).  ``singular``
    is lme4's isSingular (a diagonal entry of theta below 1e-4: a zero variance or a
    correlation of +-1).  ``dropped``: rows left out for a missing value.  ``data``: the
    data as summary()'s ``Data:`` line names them (a path, or the type: <pandas DataFrame>).  ``theta``,
    ``lam``, ``b``, ``cond`` are for the user's columns; ``problem`` and ``optimum.theta``
    for the centred columns the fit ran in (``centring`` maps between them).
    """

    method: str
    formula: str | None
    group: str
    labels: np.ndarray
    x_names: tuple
    z_names: tuple
    blocks: tuple
    theta: np.ndarray
    beta: np.ndarray
    vcov_matrix: np.ndarray
    sigma2: float
    deviance: float
    nobs: int
    singular: bool
    lam: np.ndarray
    b: np.ndarray
    cond: np.ndarray
    optimum: object
    stats: object
    problem: object
    design: object = None
    dropped: int = 0
    centring: object = None  # Z = Z_c T (.centring): problem and optimum.theta are in Z_c
    data: str | None = None  # what summary() prints as lme4's Data: line (.fit.describe)
    x_dropped: tuple = ()  # fixed-effect columns dropped for rank deficiency (.fit.full_rank)
    refit: object = None  # fit.fit_cross_products, handed in so the profile's ML refit needs no import of the fit

    # --- lme4's accessors ---------------------------------------------------------------
    @property
    def D(self) -> np.ndarray:
        """The random-effect covariance sigma^2 Lambda Lambda' (q x q)."""
        return self.sigma2 * self.lam @ self.lam.T

    @property
    def varcorr(self) -> dict:
        """Grouping factor -> covariance matrix of its random effects (a DataFrame)."""
        import pandas as pd

        names = list(self.z_names)
        return {self.group: pd.DataFrame(self.D, index=names, columns=names)}

    @property
    def df(self) -> int:
        """Number of parameters: fixed effects, theta, sigma (lme4's logLik df)."""
        return len(self.x_names) + self.theta.size + 1

    @property
    def ngroups(self) -> int:
        return int(self.labels.size)

    @property
    def ranef(self) -> dict:
        """Grouping factor -> conditional modes b_j (DataFrame: a row per group label, a
        column per random term)."""
        import pandas as pd

        return {self.group: pd.DataFrame(self.b, index=pd.Index(self.labels, name=self.group),
                                         columns=list(self.z_names))}

    @property
    def condvar(self) -> dict:
        """Grouping factor -> Var(b_j | y) for every group, an array (J, q, q), rows in the
        order of ranef (lme4's condVar / postVar, beta treated as known).  With several
        bar terms, e.g. (1 | g) + (0 + x | g), lme4 reports only each term's block; this is
        the whole matrix (the data couple the terms' conditional distributions)."""
        return {self.group: self.cond}

    def coef(self) -> dict:
        """Grouping factor -> fixef + ranef per group (lme4's coef): every fixed-effect
        column, with the group's random effect added where the term is random."""
        import pandas as pd

        out = np.tile(self.beta, (self.ngroups, 1))
        for k, name in enumerate(self.z_names):
            if name not in self.x_names:
                raise InputError(f"coef(): the random term {name!r} has no fixed effect to add it to")
            out[:, self.x_names.index(name)] += self.b[:, k]
        return {self.group: pd.DataFrame(out, index=pd.Index(self.labels, name=self.group),
                                         columns=list(self.x_names))}

    # --- one-way extras -----------------------------------------------------------------
    def _one_way(self, what: str) -> None:
        """Refuse a one-way quantity for a model with more than a random intercept."""
        if self.z_names != ("(Intercept)",):
            raise InputError(f"{what} is defined here for a random intercept alone, (1 | {self.group})")

    @property
    def icc(self) -> float:
        """Intraclass correlation sigma_b^2 / (sigma_b^2 + sigma^2) (random intercept only)."""
        self._one_way("the ICC")
        sb2 = float(self.D[0, 0])
        return sb2 / (sb2 + self.sigma2)

    def lrt(self):
        """Likelihood-ratio test of sigma_b^2 = 0 (random intercept only), by the same
        method (REML or ML): statistic = deviance(theta = 0) - deviance(theta_hat), with
        the boundary's 50:50 mixture of chi2_0 and chi2_1: p = 0.5 P(chi2_1 >= stat)
        (Self & Liang 1987; Stram & Lee 1994).  Returns (statistic, p value)."""
        from scipy.stats import chi2

        from .objective import deviance

        self._one_way("the likelihood-ratio test of sigma_b^2 = 0")
        stat = max(deviance(np.zeros(1), self.problem, self.method) - self.deviance, 0.0)
        return float(stat), float(0.5 * chi2.sf(stat, 1)) if stat > 0 else 1.0

    # --- the one-way fit's names (shrinkage.fit.FitResult's; shrinkage.oneway_names) ----
    def _intercept_only(self, what: str) -> None:
        self._one_way(what)
        if self.x_names != ("(Intercept)",):
            raise InputError(f"{what} is defined here for y ~ 1 + (1 | {self.group}) (no covariates)")

    @property
    def sigma_b2(self) -> float:
        """sigma_b^2, the random intercept's variance (random intercept only)."""
        self._one_way("sigma_b2")
        return float(self.D[0, 0])

    @property
    def gamma(self) -> float:
        return self.sigma_b2 / self.sigma2

    @property
    def beta0(self) -> float:
        """The fixed intercept."""
        if "(Intercept)" not in self.x_names:
            raise InputError("beta0: the model has no fixed intercept")
        return float(self.beta[self.x_names.index("(Intercept)")])

    @property
    def blup(self) -> np.ndarray:
        """b_hat_j, the random intercepts (random intercept only)."""
        self._one_way("blup")
        return self.b[:, 0]

    @property
    def conditional_variance(self) -> np.ndarray:
        """Var(b_j | y) (random intercept only): condvar's only entry per group."""
        self._one_way("conditional_variance")
        return self.cond[:, 0, 0]

    @property
    def shrinkage(self) -> np.ndarray:
        """lambda_j = n_j sigma_b^2 / (n_j sigma_b^2 + sigma^2): b_hat_j is lambda_j times the
        group's mean residual (random intercept only; covariates allowed)."""
        from .. import numeric as gen

        return gen._shrinkage_factor(self.n.astype(float), self.sigma2, self.sigma_b2)

    @property
    def groups(self) -> np.ndarray:
        return self.labels

    @property
    def n(self) -> np.ndarray:
        """Group sizes n_j, in the order of labels."""
        return self.stats.n

    @property
    def n_obs(self) -> int:
        return self.nobs

    @property
    def n_groups(self) -> int:
        return self.ngroups

    @property
    def fitted(self) -> bool:
        """Estimated (always, for a formula fit; FitResult can be evaluated at given variances)."""
        return True

    @property
    def ybar(self) -> np.ndarray:
        """Group means of y (from Z'y: Z's column is 1; random intercept only)."""
        self._one_way("ybar")
        return self.stats.Zty[:, 0] / self.stats.n + self.stats.y_centre

    @property
    def group_means(self) -> np.ndarray:
        """beta0 + b_hat_j (y ~ 1 + (1 | g) only)."""
        self._intercept_only("group_means")
        return self.beta0 + self.blup

    # --- prediction ---------------------------------------------------------------------
    def predict(self, newdata=None, *, variance: bool = False):
        """Predictions for new rows: fixef + ranef for a known group, fixef alone for a
        new one (lme4's allow.new.levels=TRUE).  Group labels match the fitted ones as
        :func:`match_labels` says (by value, or by printed form across types: 3 matches "3");
        a level of a fixed factor the fit did not see is refused, naming it.  With
        ``variance=True`` a DataFrame with the prediction and the variance of a new
        observation's prediction error, given theta (the documented formulas, in the
        centred X and Z the fit ran in, z_c = T^-T z, a = Lambda_c' z_c,
        D_c = sigma^2 Lambda_c Lambda_c'):

        * known group j: sigma^2 [(x - h_j'a)' A^-1 (x - h_j'a) + a' S_j^-1 a + 1],
          h_j = S_j^-1 Lambda' Z_j'X_j (from the inverse of Henderson's matrix);
        * new group: x' vcov x + z_c' D_c z_c + sigma^2 (= z' D z, without its cancellation
          when a column sits far from zero).
        """
        import pandas as pd

        from .formula import new_design

        if self.design is None:
            raise InputError("predict(newdata) needs a fit from a formula and data")
        if newdata is None:
            X, Z, g = self.design.X, self.design.Z, self.labels[self.design.codes]
        else:
            X, Z, g = new_design(self.design, newdata)
        at = match_labels(self.labels, g)
        known = at >= 0
        mean = X @ self.beta + np.where(known, np.einsum("nk,nk->n", Z, self.b[np.maximum(at, 0)]), 0.0)
        if not variance:
            return mean
        var = self._prediction_variance(X, Z, at, known)
        return pd.DataFrame({"fit": mean, "var": var, "known_group": known})

    def _prediction_variance(self, X, Z, at, known) -> np.ndarray:
        from .objective import _lsolve, evaluate

        pr = self.problem
        Xc = X - pr.cp.x_centre[None, :]
        pc = evaluate(self.optimum.theta, pr)
        Zc = Z if self.centring is None else self.centring.rows(Z)
        Ainv = np.linalg.inv(pc.A)
        vcov_c = self.sigma2 * Ainv
        Dc = self.sigma2 * pc.lam @ pc.lam.T
        var = np.einsum("np,pk,nk->n", Xc, vcov_c, Xc) + np.einsum("nk,kl,nl->n", Zc, Dc, Zc) + self.sigma2
        if known.any():
            rows = np.flatnonzero(known)
            j = at[rows]
            a = Zc[rows] @ pc.lam  # (Lambda_c' z_c)' per row
            L = pc.L[:, :, j]
            w = _lsolve(L, a.T[:, None, :])[:, 0, :]  # L^-1 a  (q, n)
            ZtX = pr.ZtXy[:, :-1, j]  # (q, p, n)
            lamZtX = np.tensordot(pc.lam.T, ZtX, axes=(1, 0))
            Yx = _lsolve(L, lamZtX)  # L^-1 Lambda' Z'X
            hta = np.einsum("qn,qpn->np", w, Yx)  # h_j' a = Yx' L^-1 a
            e = Xc[rows] - hta
            var[rows] = self.sigma2 * (np.einsum("np,pk,nk->n", e, Ainv, e) + (w * w).sum(axis=0) + 1.0)
        return var

    # --- inference and printing ---------------------------------------------------------
    def confint(self, level: float = 0.95, *, method: str = "profile"):
        """Intervals: profile likelihood for the standard deviations, correlations and
        sigma (lme4's .sig01 ..., .sigma), Wald for the fixed effects."""
        from .inference import confint

        return confint(self, level, method=method)

    def summary(self) -> str:
        """The fit printed as lme4's summary() prints it (returned as a string)."""
        from .summary import summary

        return summary(self)

    def __repr__(self) -> str:
        flag = ", singular" if self.singular else ""
        return (f"LmmResult({self.method}: {self.formula or 'from statistics'}; {self.nobs} obs, "
                f"{self.ngroups} groups, loglik={self.loglik:.6f}{flag})")
