"""Uncertainty of a BLUP: conditional variance given beta0 versus prediction error variance.

With beta0 known, Var(b_j | y) = (1 - lambda_j) sigma_b^2 (derivation blup; lme4's condVar).
With beta0 replaced by its GLS estimate, the prediction error variance is
PEV_j = Var(b_hat_j - b_j) = (1 - lambda_j) sigma_b^2 + lambda_j^2 Var(beta0_hat), with
Var(beta0_hat) = 1 / sum_k 1/(sigma_b^2 + sigma^2/n_k): the diagonal of Henderson's
C-matrix (the inverse of the mixed-model equations' matrix, times sigma^2), as the tests
check with explicit matrices.
"""

import sympy as sp

from shrinkage import codegen, model
from shrinkage.display import frac, neg, terms, times
from shrinkage.engine import Define, Derivation, Equals, Given, Sign
from shrinkage.symbols import J, i, j, lam, n, prec, quantity, sigma2, sigma_b2, var_beta0, w_rest

n_j = model.n_j
lam_expr = frac(sigma_b2, terms(sigma_b2, frac(sigma2, n)))


def var_mean(size):
    return terms(sigma_b2, frac(sigma2, size))


total = terms(prec, w_rest)  # sum over all groups of 1/Var(ybar_k)
cond_var = frac(times(sigma2, sigma_b2), terms(sigma2, times(n, sigma_b2)))  # (1 - lambda_j) sigma_b^2


def derivation() -> Derivation:
    d = Derivation(
        name="uncertainty",
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
Both still treat the variance components as known: the uncertainty of $\hat\sigma_b^2$, $\hat\sigma^2$ plugged
into $\lambda_j$ comes on top (the empirical-Bayes caveat).  The tests compare these formulas with
dense-matrix computations of the same variances from the model.
""",
    )
    d = d.then(
        Given(
            times(frac(1, n**2), terms(times(n**2, sigma_b2), sp.Sum(sigma2, (i, 1, n)))),
            lhs=r"\operatorname{Var}(\bar y_j)",
            why=r"In the model $n_j\bar y_j = n_j\beta_0 + n_j b_j + \sum_i \varepsilon_{ij}$, a sum of independent terms: $n_j b_j$ has variance $n_j^2\sigma_b^2$, each $\varepsilon_{ij}$ has variance $\sigma^2$.",
        ),
        Equals(var_mean(n), label="var_mean",
               why=r"The shared $b_j$ does not average out; the noise does, at the rate $1/n_j$."),
        Given(
            frac(sp.Sum(times(frac(1, var_mean(n_j[j])) ** 2, var_mean(n_j[j])), (j, 1, J)),
                 sp.Sum(frac(1, var_mean(n_j[j])), (j, 1, J)) ** 2),
            lhs=r"\operatorname{Var}(\hat\beta_0)",
            why=r"$\hat\beta_0 = \sum_j \bar y_j/\operatorname{Var}(\bar y_j) \big/ \sum_j 1/\operatorname{Var}(\bar y_j)$ (derivation \texttt{pls}) is linear in the independent group means: add their variances, each times its squared weight.",
        ),
        Equals(frac(1, sp.Sum(frac(1, var_mean(n_j[j])), (j, 1, J))), label="var_beta0",
               why=r"Each group contributes its precision $1/\operatorname{Var}(\bar y_j)$ once in the numerator and once in the square root of the denominator."),
        Define(lam_expr, symbol=lam, label="lambda",
               why=r"The shrinkage factor of derivation \texttt{blup}."),
        Define(frac(1, var_mean(n)), symbol=prec,
               why=r"The precision of the group mean, eq.\ \eqref{uncertainty:2}: the weight of $\bar y_j$ in $\hat\beta_0$."),
        Given(
            terms(
                times(terms(lam, neg(1), neg(frac(times(lam, prec), total))) ** 2, sigma_b2),
                times(lam**2, terms(1, neg(frac(prec, total))) ** 2, frac(sigma2, n)),
                times(lam**2, frac(w_rest, total**2)),
            ),
            lhs=r"\operatorname{Var}(\hat b_j - b_j)",
            why=r"With $\bar y_k = \beta_0 + b_k + \bar\varepsilon_k$, the error $\hat b_j - b_j = \lambda_j(\bar y_j - \hat\beta_0) - b_j$ is a linear combination of the independent $b_j$, $\bar\varepsilon_j$ (variance $\sigma^2/n_j$) and $\bar y_k$, $k\ne j$, where $W_{-j} = \sum_{k\ne j} p_k$. Add the variances, each times its squared coefficient.",
        ),
        Equals(
            terms(times(terms(1, neg(lam)), sigma_b2), times(lam**2, frac(1, total))),
            label="pev_decomposition",
            why=r"The prediction error variance is the conditional variance $(1-\lambda_j)\sigma_b^2$ plus $\lambda_j^2/\sum_k \operatorname{Var}(\bar y_k)^{-1} = \lambda_j^2\operatorname{Var}(\hat\beta_0)$ by eq.\ \eqref{uncertainty:4}: the cross terms cancel, because the prediction error $\lambda_j(\bar y_j-\beta_0) - b_j$ is uncorrelated with the data.",
        ),
        Given(
            terms(times(terms(1, neg(lam)), sigma_b2), times(lam**2, var_beta0)),
            lhs=r"\operatorname{PEV}_j",
            why=r"The same with $V_{\beta_0} = \operatorname{Var}(\hat\beta_0)$, eq.\ \eqref{uncertainty:4}, as a number in its own right: this form is the one generated as code.",
        ),
        Equals(terms(cond_var, times(lam**2, var_beta0)), label="pev",
               why=r"Written without the subtraction $1-\lambda_j$, which loses digits when $\lambda_j$ is near $1$."),
        Given(terms(cond_var, times(lam**2, var_beta0), neg(cond_var)), lhs=r"\operatorname{PEV}_j - \operatorname{Var}(b_j \mid \mathbf y)",
              why=r"How much the estimation of $\beta_0$ adds."),
        Equals(times(lam**2, var_beta0),
               why=r"The conditional variances cancel."),
        Sign(sp.S.Zero, sign=1, label="gap_positive",
             why=r"So condVar understates the error of $\hat b_j$ when $\beta_0$ is estimated; the gap $\lambda_j^2\operatorname{Var}(\hat\beta_0)$ is largest for weakly shrunk groups ($\lambda_j$ near $1$) and shrinks like $1/J$ as groups are added."),
    )
    if hasattr(codegen, "is_group_sum"):  # the code generator prints sums over groups
        d = d.export("gls_beta0_variance", "var_beta0", (n_j, sigma2, sigma_b2),
                     "Sampling variance of the GLS estimate of beta0 given the variances.\n\n"
                     "Var(beta0_hat) = 1 / sum_j 1/(sigma_b^2 + sigma^2/n_j); n holds the group sizes along its last axis.")
    d = d.export("prediction_error_variance", "pev", (n, sigma2, sigma_b2, var_beta0),
                 "Prediction error variance of a BLUP when beta0 is estimated by GLS.\n\n"
                 "PEV_j = Var(b_hat_j - b_j) = (1 - lambda_j) sigma_b^2 + lambda_j^2 Var(beta0_hat);\n"
                 "pass var_beta0 = gls_beta0_variance(n_all_groups, sigma2, sigma_b2).  Henderson's C-matrix diagonal.")
    return d
