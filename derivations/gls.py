"""The GLS estimate of beta0 given the variances.

Sum the marginal log-likelihoods of the groups (derivations/marginal.py), differentiate
in beta0 and set the score to zero: beta0_hat = sum_j w_j ybar_j / sum_j w_j with
w_j = 1 / (sigma_b^2 + sigma^2/n_j), the precision of ybar_j.
"""

import sympy as sp
from sympy.codegen.cfunctions import log1p

from shrinkage.display import frac, half, neg, terms, times
from shrinkage.engine import Derivation, Derivative, Equals, Given, Maximiser, Recall
from shrinkage.symbols import J, beta0, j, n, quantity, sigma2, sigma_b2

n_j = quantity("n").indexed
ybar_j = quantity("ybar").indexed
ss_j = quantity("ss_within").indexed
two_pi = 2 * sp.pi


def over_groups(expr):
    return sp.Sum(expr, (j, 1, J))


def group_loglik(centre):
    """log p(y_j) of marginal.py (its last step), with beta0 = centre, as the j-th term."""
    return terms(
        neg(half(times(n_j[j], sp.log(two_pi * sigma2)))),
        neg(half(log1p(frac(times(n_j[j], sigma_b2), sigma2)))),
        neg(frac(ss_j[j], 2 * sigma2)),
        neg(frac(times(n_j[j], terms(ybar_j[j], neg(centre)) ** 2), times(2, terms(sigma2, times(n_j[j], sigma_b2))))),
    )


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
    d = d.then(
        Given(
            weight(n),
            lhs=r"w_j",
            why=r"The precision of a group mean: $\operatorname{Var}(\bar y_j) = \operatorname{Var}(b_j) + \operatorname{Var}(\bar\varepsilon_j) = \sigma_b^2 + \sigma^2/n_j$.",
        ),
        Equals(
            weight_stable(n),
            why=r"Multiply numerator and denominator by $n_j$: the form the code evaluates.",
            label="weight",
        ),
        Given(
            over_groups(group_loglik(beta0)),
            lhs=r"\ell(\beta_0) = \sum_{j=1}^{J} \log p(\mathbf y_j)",
            why=r"The log-likelihood: the sum over the independent groups of the marginal log-density of each group (document \emph{marginal}, last step).",
            label="loglik",
        ),
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
        Recall(
            over_groups(group_loglik(beta0)),
            of="loglik",
            lhs=r"\ell(\beta_0)",
            why=r"Back to the log-likelihood, to solve for its maximiser.",
        ),
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
        "gls_beta0", "gls", (n, quantity("ybar").symbol, sigma2, sigma_b2),
        "GLS estimate of beta0 given the variances: the precision-weighted mean of the group means.\n\n"
        "beta0_hat = sum_j w_j ybar_j / sum_j w_j, w_j = n_j / (sigma^2 + n_j sigma_b^2).\n"
        "n and ybar hold one entry per group along their last axis (the sum runs over it);\n"
        "sigma2 and sigma_b2 are scalars, or arrays of shape (..., 1) for a batch of problems.",
    )
    return d
