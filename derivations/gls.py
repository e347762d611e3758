"""The GLS estimate of beta0 given the variances.

Sum the marginal log-likelihoods of the groups (derivations/marginal.py), differentiate
in beta0 and set the score to zero: beta0_hat = sum_j w_j ybar_j / sum_j w_j with
w_j = 1 / (sigma_b^2 + sigma^2/n_j), the precision of ybar_j.
"""

import sympy as sp

from shrinkage import model
from shrinkage.derive import Derivation, Derivative, Equals, Maximiser
from shrinkage.display import frac, neg, terms, times
from shrinkage.symbols import J, beta0, j, n, sigma2, sigma_b2, ybar

n_j, ybar_j = model.n_j, model.ybar_j


def over_groups(expr):
    return sp.Sum(expr, (j, 1, J))


def weight(size=n_j[j]):
    """w_j = 1/(sigma_b^2 + sigma^2/n_j), in the textbook form."""
    return frac(1, terms(sigma_b2, frac(sigma2, size)))


def weight_stable(size=n_j[j]):
    """w_j = n_j/(sigma^2 + n_j sigma_b^2): the same, without the division sigma^2/n_j."""
    return frac(size, terms(sigma2, times(size, sigma_b2)))


def gls_estimate(w=weight):
    return frac(over_groups(times(w(), ybar_j[j])), over_groups(w()))


def derivation() -> Derivation:
    d = Derivation(
        name="gls",
        title=r"The GLS estimate of $\beta_0$ given the variance components",
        summary=r"""
The groups are independent, so the log-likelihood of $(\beta_0, \sigma^2, \sigma_b^2)$ is
the sum over groups of the marginal log-densities $\log p(\mathbf y_j)$ derived in the
document \emph{marginal}.  With the variances held fixed it is a concave quadratic in
$\beta_0$; setting its derivative (the score) to zero gives the generalised least squares
estimate: a weighted mean of the group means, each weighted by its precision
$w_j = 1/\operatorname{Var}(\bar y_j) = 1/(\sigma_b^2 + \sigma^2/n_j)$.  Large groups get more
weight, but never more than $1/\sigma_b^2$: however large a group, its mean still carries
its own random intercept.  Sums over groups are checked on random data sets with
$J \le 4$ groups of random sizes.
""",
    )
    d = model.cite_group_loglik(d, __file__)
    d = d.then(
        Derivative(
            frac(times(n, terms(ybar, neg(beta0))), terms(sigma2, times(n, sigma_b2))),
            var=beta0,
            lhs=r"\frac{\partial L_j}{\partial \beta_0}",
            why=r"The score of group $j$ in $\beta_0$: only the last term depends on $\beta_0$.",
        ),
        Derivative(
            weight_stable(n),
            var=ybar,
            lhs=r"w_j = \frac{\partial}{\partial \bar y_j}\frac{\partial L_j}{\partial \beta_0}",
            why=r"The score is linear in the group mean: its coefficient $w_j$ is the weight $\bar y_j$ gets in the score equation $\sum_j \partial L_j/\partial\beta_0 = 0$.",
            label="weight",
        ),
        Equals(
            weight(n),
            why=r"Divide numerator and denominator by $n_j$: the weight is the precision $1/\operatorname{Var}(\bar y_j)$ of the group mean, $\operatorname{Var}(\bar y_j) = \operatorname{Var}(b_j) + \operatorname{Var}(\bar\varepsilon_j) = \sigma_b^2 + \sigma^2/n_j$.",
        ),
    )
    d = model.sum_over_groups(d, __file__, lhs=r"\ell(\beta_0) = \sum_{j=1}^{J} L_j", cite=False)
    d = d.then(
        Derivative(
            over_groups(frac(times(n_j[j], terms(ybar_j[j], neg(beta0))), terms(sigma2, times(n_j[j], sigma_b2)))),
            var=beta0,
            lhs=r"\frac{\partial \ell}{\partial \beta_0}",
            why=r"The score in $\beta_0$: only the last term of each group depends on $\beta_0$.",
        ),
        Equals(
            over_groups(times(weight(), terms(ybar_j[j], neg(beta0)))),
            why=r"In terms of the weights: $n_j/(\sigma^2 + n_j\sigma_b^2) = w_j$.",
        ),
        Equals(
            terms(over_groups(times(weight(), ybar_j[j])), neg(times(beta0, over_groups(weight())))),
            why=r"Split the sum: the score is linear in $\beta_0$ with slope $-\sum_j w_j < 0$, so it vanishes at exactly one point, the maximum of $\ell$.",
        ),
    )
    d = d.recall("loglik", lhs=r"\ell(\beta_0)", why=r"Back to the log-likelihood, to solve for its maximiser.")
    d = d.then(
        Maximiser(
            gls_estimate(),
            var=beta0,
            lhs=r"\hat\beta_0 = \operatorname*{arg\,max}_{\beta_0} \ell(\beta_0)",
            why=r"The score vanishes where $\beta_0 \sum_j w_j = \sum_j w_j \bar y_j$, and the second derivative $-\sum_j w_j$ is negative.",
        ),
        Equals(
            gls_estimate(weight_stable),
            why=r"The same weighted mean with the weights in the form the code evaluates. As $\sigma_b^2 \to 0$ the weights become proportional to $n_j$ and $\hat\beta_0$ is the grand mean of all observations; as $\sigma_b^2 \to \infty$ every group counts equally.",
            label="gls",
        ),
    )
    d = d.export(
        "gls_weight", "weight", (n, sigma2, sigma_b2),
        "GLS weight of a group: the precision of its mean.\n\n"
        "w_j = 1/(sigma_b^2 + sigma^2/n_j) = n_j / (sigma^2 + n_j sigma_b^2).  Elementwise.",
    )
    d = d.export(
        "gls_beta0", "gls", (n, ybar, sigma2, sigma_b2),
        "GLS estimate of beta0 given the variances: the precision-weighted mean of the group means.\n\n"
        "beta0_hat = sum_j w_j ybar_j / sum_j w_j, w_j = n_j / (sigma^2 + n_j sigma_b^2).\n"
        "n and ybar hold one entry per group along their last axis (the sum runs over it);\n"
        "sigma2 and sigma_b2 are scalars, or arrays of shape (..., 1) for a batch of problems.",
        over_groups=True,
    )
    return model.with_references(d)
