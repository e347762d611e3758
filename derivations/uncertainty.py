"""Uncertainty of a BLUP: conditional variance given beta0 versus prediction error variance.

With beta0 known, Var(b_j | y) = (1 - lambda_j) sigma_b^2 (derivation blup; lme4's condVar).
With beta0 replaced by its GLS estimate, the prediction error variance is
PEV_j = Var(b_hat_j - b_j) = (1 - lambda_j) sigma_b^2 + lambda_j^2 Var(beta0_hat), with
Var(beta0_hat) = 1 / sum_k 1/(sigma_b^2 + sigma^2/n_k): the diagonal of Henderson's
C-matrix (the inverse of the mixed-model equations' matrix, times sigma^2).  Every
variance is read off a normal log-density derived from the model; the PEV as the
variance of b_j given the data with beta0 integrated out under a flat prior
(Henderson's identity), which the tests check against the sampling definition with
explicit matrices.
"""

from dataclasses import replace

import sympy as sp

from sympy.codegen.cfunctions import log1p

from shrinkage import model
from shrinkage.derive import (Define, Derivation, Equals, LogIntegral, Notation, Premise, ReadOffNormal, Sign,
                              Substitute)
from shrinkage.display import frac, half, neg, terms, times
from shrinkage.symbols import NOTATION, J, b, beta0, const, j, k, lam, n, quantity, sigma2, sigma_b2, ss_within, ybar

n_j, ybar_j, ss_j = model.n_j, model.ybar_j, model.ss_j
w_j = quantity("w_gls").symbol  # the precision of ybar_j, for group j
w_rest, m_rest, c_rest = quantity("w_rest").symbol, quantity("mean_rest").symbol, quantity("const_rest").symbol
var_beta0, beta0_hat = quantity("var_beta0").symbol, quantity("beta0_gls").symbol
ell_j, L = quantity("ell_group").symbol, model.L_j
var_mean = model.var_group_mean
a = frac(n, sigma2)  # the precision of group j's data about beta0 + b_j

# At least one group besides group j (its GLS mean divides by their total weight).
AT_LEAST_TWO = Notation([replace(q, domain="several") if q.code == "J" else q for q in NOTATION],
                        NOTATION.definitions, name="shrinkage.symbols, J >= 2", swaps=NOTATION.swaps)


def weight(ix):
    """w_k = n_k/(sigma^2 + n_k sigma_b^2), the precision of ybar_k (document gls)."""
    return frac(n_j[ix], terms(sigma2, times(n_j[ix], sigma_b2)))


def others(expr):
    return sp.Sum(expr, (k, 1, J - 1))


cond_var = frac(times(sigma2, sigma_b2), terms(sigma2, times(n, sigma_b2)))  # (1 - lambda_j) sigma_b^2
pev_form = terms(times(terms(1, neg(lam)), sigma_b2), times(lam**2, frac(1, terms(w_j, w_rest))))
blup_hat = times(lam, terms(ybar, neg(beta0_hat)))  # the BLUP at the GLS estimate of beta0
joint_j = model.in_statistics().xreplace({const: model.LOG_CONSTANTS})  # log p(y_j, b_j), constants written out


def derivation() -> Derivation:
    d = Derivation(
        name="uncertainty",
        notation=AT_LEAST_TWO,
        title=r"How uncertain is a BLUP? Conditional variance and prediction error variance",
        summary=r"""
Two variances are attached to a predicted random effect $\hat b_j = \lambda_j(\bar y_j - \beta_0)$, and
they answer different questions.  The \emph{conditional variance} $\operatorname{Var}(b_j\mid\mathbf y) =
(1-\lambda_j)\sigma_b^2$ (derivation \texttt{blup}) treats $\beta_0$ and the variances as known; it
is what lme4 reports as \texttt{condVar}.  Once $\beta_0$ is replaced by its GLS estimate
$\hat\beta_0$, the predictor $\lambda_j(\bar y_j-\hat\beta_0)$ inherits the uncertainty of $\hat\beta_0$; its
\emph{prediction error variance} is
$\operatorname{PEV}_j = \operatorname{Var}(\hat b_j - b_j) = (1-\lambda_j)\sigma_b^2 + \lambda_j^2\operatorname{Var}(\hat\beta_0)$
with $\operatorname{Var}(\hat\beta_0) = 1/\sum_k (\sigma_b^2+\sigma^2/n_k)^{-1}$, the diagonal of Henderson's
$C$-matrix (the inverse of the matrix of the mixed-model equations, derivation \texttt{pls}, times $\sigma^2$).
Every variance below is read off a normal log-density derived from the model: $\operatorname{Var}(\bar y_j)$
from the marginal density of group $j$, $\operatorname{Var}(\hat\beta_0)$ from the curvature of the
log-likelihood in $\beta_0$, and the PEV as the variance of $b_j$ given the data once $\beta_0$ is integrated
out under a flat prior (Henderson's identity: for the BLUP with $\beta_0$ estimated by GLS the two agree).
Both still treat the variance components as known: the uncertainty of $\hat\sigma_b^2$, $\hat\sigma^2$ plugged
into $\lambda_j$ comes on top (the empirical-Bayes caveat).  The checks draw data sets of at least two
groups; the tests compare these formulas with dense-matrix computations of the same variances from the
model, by the sampling definition and by Henderson's $C$-matrix.
""",
    )
    # --- the variance of a group mean, and of the GLS estimate ---------------------------
    d = model.cite_group_loglik(d, __file__)
    d = d.then(
        ReadOffNormal(var_mean(n), var=ybar, moment="variance", lhs=r"\operatorname{Var}(\bar y_j)", label="var_mean",
                      why=r"The density of $\mathbf y_j$ is a normal density of $\bar y_j$ times a function of the deviations $y_{ij} - \bar y_j$ (which are independent of $\bar y_j$): read off its variance. The shared $b_j$ does not average out; the noise does, at the rate $1/n_j$."),
    )
    d = model.sum_over_groups(d, __file__, lhs=r"\ell(\beta_0) = \sum_{j=1}^{J} L_j", cite=False)
    d = d.then(
        ReadOffNormal(frac(1, sp.Sum(frac(1, var_mean(n_j[j])), (j, 1, J))), var=beta0, moment="variance",
                      lhs=r"\operatorname{Var}(\hat\beta_0)", label="var_beta0",
                      why=r"$\hat\beta_0 - \beta_0 = \sum_j w_j(\bar y_j - \beta_0)/\sum_j w_j$ is a weighted sum of the independent deviations of the group means, of variances $1/w_j$; its variance $\sum_j w_j^2 w_j^{-1}/(\sum_j w_j)^2 = 1/\sum_j w_j$ is minus the inverse curvature of $\ell$ in $\beta_0$: read it off. Each group contributes its precision $1/\operatorname{Var}(\bar y_j)$."),
    )
    # --- the prediction error variance ---------------------------------------------------
    d = d.then(
        Define(model.LAMBDA, symbol=lam, label="lambda", why=r"The shrinkage factor of derivation \texttt{blup}."),
        Define(frac(1, var_mean(n)), symbol=w_j, why=r"The precision of the mean of group $j$: its weight in $\hat\beta_0$."),
        Premise.of(model.GROUP_AND_OTHERS),
        Substitute(
            terms(ell_j, others(model.xreplace_indexed(model.marginal_group_loglik(), index=k))),
            values={L[k]: model.xreplace_indexed(model.marginal_group_loglik(), index=k)},
            why=r"Put in $L_k$ of document \emph{marginal}, each with its own statistics.",
        ),
        Define(others(weight(k)), symbol=w_rest, why=r"The total precision of the other groups' means."),
        Define(frac(others(times(weight(k), ybar_j[k])), w_rest), symbol=m_rest, why=r"Their GLS mean."),
        Define(terms(others(terms(neg(half(times(n_j[k], sp.log(model.TWO_PI * sigma2)))),
                                   neg(half(log1p(frac(times(n_j[k], sigma_b2), sigma2)))),
                                   neg(frac(ss_j[k], times(2, sigma2))))),
                     neg(half(others(times(weight(k), terms(ybar_j[k], neg(m_rest)) ** 2))))),
               symbol=c_rest, why=r"The terms of the other groups free of $\beta_0$."),
        Equals(
            terms(ell_j, c_rest, neg(half(times(w_rest, terms(m_rest, neg(beta0)) ** 2)))),
            why=r"The other groups inform $\beta_0$ only through their GLS mean $\bar y_{-j}$, with precision $W_{-j}$: add and subtract $\bar y_{-j}$ in $\sum_k w_k(\bar y_k - \beta_0)^2$.",
        ),
        Substitute(
            terms(joint_j, c_rest, neg(half(times(w_rest, terms(m_rest, neg(beta0)) ** 2)))),
            values={ell_j: joint_j},
            label="joint_j",
            why=r"Put in $\ell_j(b_j)$ in the sufficient statistics (document \emph{blup}).",
        ),
        LogIntegral(
            terms(model.LOG_CONSTANTS, neg(frac(ss_within, times(2, sigma2))), neg(frac(b**2, times(2, sigma_b2))), c_rest,
                  half(sp.log(frac(2 * sp.pi, terms(a, w_rest)))),
                  neg(frac(times(a, w_rest, terms(ybar, neg(b), neg(m_rest)) ** 2), times(2, terms(a, w_rest))))),
            var=beta0,
            centre=frac(terms(times(a, terms(ybar, neg(b))), times(w_rest, m_rest)), terms(a, w_rest)),
            scale=1 / sp.sqrt(terms(a, w_rest)),
            lhs=r"\log\!\int e^{\ell}\,d\beta_0",
            label="posterior",
            why=r"Integrate $\beta_0$ out under a flat prior: two normal factors in $\beta_0$, of precisions $n_j/\sigma^2$ (about $\bar y_j - b_j$) and $W_{-j}$ (about $\bar y_{-j}$), integrate to one of precision $(n_j/\sigma^2)W_{-j}/(n_j/\sigma^2 + W_{-j})$ in their difference.",
        ),
        Define(frac(terms(times(w_j, ybar), times(w_rest, m_rest)), terms(w_j, w_rest)), symbol=beta0_hat,
               why=r"The GLS estimate of $\beta_0$ from all groups (document \emph{gls}), group $j$ and the others."),
        ReadOffNormal(
            pev_form, var=b, moment="variance", label="pev_decomposition",
            lhs=r"\operatorname{Var}(\hat b_j - b_j) = \operatorname{Var}(b_j \mid \mathbf y)",
            why=r"As a function of $b_j$, eq.~\eqref{@posterior} is the log-density of $b_j$ given the data up to a constant: it is quadratic in $b_j$, so normal; read off its variance. By Henderson's identity it is the prediction error variance of the BLUP with $\beta_0$ estimated by GLS: the conditional variance $(1-\lambda_j)\sigma_b^2$ plus $\lambda_j^2/\sum_k w_k$.",
        ),
    )
    d = d.recall("posterior", lhs=r"\log\!\int e^{\ell}\,d\beta_0", why=r"And its mean is the predictor itself.")
    d = d.then(
        ReadOffNormal(blup_hat, var=b, moment="mean", lhs=r"\operatorname{E}(b_j \mid \mathbf y)",
                      why=r"Read off the mean: the BLUP $\lambda_j(\bar y_j - \hat\beta_0)$ with $\beta_0$ at its GLS estimate."),
    )
    d = d.recall("pev_decomposition", lhs=r"\operatorname{PEV}_j", why=r"The prediction error variance again.")
    d = d.then(
        Substitute(terms(times(terms(1, neg(lam)), sigma_b2), times(lam**2, var_beta0)),
                   values={w_rest: terms(frac(1, var_beta0), neg(w_j))},
                   why=r"Write the total precision $w_j + W_{-j} = \sum_k w_k$ as $1/V_{\beta_0}$, with $V_{\beta_0} = \operatorname{Var}(\hat\beta_0)$ of eq.~\eqref{@var_beta0} as a number in its own right (the form generated as code): the conditional variance plus $\lambda_j^2\operatorname{Var}(\hat\beta_0)$."),
        Equals(terms(cond_var, times(lam**2, var_beta0)), label="pev",
               why=r"Written without the subtraction $1-\lambda_j$, which loses digits when $\lambda_j$ is near $1$."),
        Sign(cond_var, sign=1, label="gap_positive",
             why=r"So condVar, $(1-\lambda_j)\sigma_b^2$, understates the error of $\hat b_j$ when $\beta_0$ is estimated; the gap $\lambda_j^2\operatorname{Var}(\hat\beta_0)$ is largest for weakly shrunk groups ($\lambda_j$ near $1$) and shrinks like $1/J$ as groups are added."),
    )
    d = d.export("gls_beta0_variance", "var_beta0", (n, sigma2, sigma_b2),
                 "Sampling variance of the GLS estimate of beta0 given the variances.\n\n"
                 "Var(beta0_hat) = 1 / sum_j 1/(sigma_b^2 + sigma^2/n_j); n holds the group sizes along its last axis.",
                 over_groups=True)
    d = d.export("prediction_error_variance", "pev", (n, sigma2, sigma_b2, var_beta0),
                 "Prediction error variance of a BLUP when beta0 is estimated by GLS.\n\n"
                 "PEV_j = Var(b_hat_j - b_j) = (1 - lambda_j) sigma_b^2 + lambda_j^2 Var(beta0_hat);\n"
                 "pass var_beta0 = gls_beta0_variance(n_all_groups, sigma2, sigma_b2).  Henderson's C-matrix diagonal.")
    return model.with_references(d)
