"""The BLUP of a random intercept, by completing the square in b_j.

From the joint log-density of (y, b), summed over every observation, collect the
terms in one b_j, complete the square, and read off the maximiser
b_hat_j = lambda_j (ybar_j - beta0) with lambda_j = sigma_b^2 / (sigma_b^2 + sigma^2/n_j),
the conditional variance (1 - lambda_j) sigma_b^2, and the partial-pooling form.
"""

import sympy as sp

from shrinkage import model
from shrinkage.display import frac, half, neg, terms, times
from shrinkage.derive import Conditional, Define, Derivation, Equals, Maximiser, Premise, ReadOffNormal, Substitute
from shrinkage.symbols import J, b, b_hat, beta0, i, j, lam, n, quantity, sigma2, sigma_b2, y, ybar

n_j, b_j = model.n_j, model.b_j
two_pi = 2 * sp.pi

precision, resid = model.PRECISION, model.RESID
mu = quantity("mu").symbol


def derivation() -> Derivation:
    d = Derivation(
        name="blup",
        title=r"Shrinkage by completing the square: the BLUP of a random intercept",
        summary=r"""
In the random-intercept model $y_{ij} = \beta_0 + b_j + \varepsilon_{ij}$, with
$b_j \sim N(0, \sigma_b^2)$ independent of $\varepsilon_{ij} \sim N(0, \sigma^2)$, group
$j = 1, \dots, J$ and observation $i = 1, \dots, n_j$, we maximise the joint density of the
data and the random effects over $b_j$.  The product in this density runs over
\emph{every observation}, $\prod_j \prod_{i=1}^{n_j}$: written with one factor per group,
as in the question, $n_j$ would disappear, and $n_j$ is what sets the amount of
shrinkage.  Completing the square in $b_j$ shows that the maximiser is the group's
deviation $\bar y_j - \beta_0$ multiplied by a factor $\lambda_j \in (0, 1)$ that depends on
$\sigma_b^2$, $\sigma^2$ and $n_j$ together.
""",
    )
    d = d.then(
        Premise.of(model.JOINT_ALL_GROUPS),
        Equals(
            sp.Sum(
                terms(
                    neg(half(times(n_j[j], sp.log(two_pi * sigma2)))),
                    neg(frac(sp.Sum(terms(y[i, j], neg(beta0), neg(b_j[j])) ** 2, (i, 1, n_j[j])), 2 * sigma2)),
                    neg(half(sp.log(two_pi * sigma_b2))),
                    neg(frac(b_j[j] ** 2, 2 * sigma_b2)),
                ),
                (j, 1, J),
            ),
            why=r"Write out the normal log-densities. Each $b_j$ appears in the $j$-th term only, so the maximum over $\mathbf b$ is found one group at a time.",
        ),
        *model.opening_chain(
            why=r"The $j$-th term: the log-density of group $j$'s data given $b_j$ plus that of $b_j$.",
        ),
        *model.completing_the_square(),
        Maximiser(
            frac(times(frac(n, sigma2), resid), precision),
            var=b,
            lhs=r"\hat b_j = \operatorname*{arg\,max}_{b_j} \ell_j(b_j)",
            why=r"Only the first term depends on $b_j$; it is $\le 0$ and vanishes at the centre of the square.",
        ),
        Equals(
            times(model.LAMBDA, resid),
            why=r"Multiply numerator and denominator by $\sigma^2\sigma_b^2/n_j$.",
        ),
        Define(
            model.LAMBDA,
            symbol=lam,
            why=r"The shrinkage factor: the share of the group's deviation that survives.",
            label="shrinkage_factor",
        ),
        Equals(
            times(lam, resid),
            lhs=r"\hat b_j",
            why=r"The BLUP is the group's deviation from $\beta_0$, shrunk by $\lambda_j$ towards $0$.",
            label="blup",
        ),
    )
    d = d.recall("shrinkage_factor", lhs=r"\lambda_j", why=r"The shrinkage factor again.")
    d = d.then(
        Equals(
            frac(times(n, sigma_b2), terms(sigma2, times(n, sigma_b2))),
            label="shrinkage_factor_cleared",
            why=r"The same factor with $n_j$ cleared from the denominator: $\lambda_j = n_j\gamma/(1+n_j\gamma)$ with $\gamma=\sigma_b^2/\sigma^2$, so it depends on $\sigma^2/(n_j\sigma_b^2)$, not on $\sigma_b^2$ alone.",
        ),
    )
    d = d.recall("completed_square", lhs=r"\ell_j(b_j)", why=r"Back to the completed square, to find the distribution of $b_j$ given the data.")
    d = d.then(
        Conditional(
            terms(
                neg(half(sp.log(times(2 * sp.pi, 1 - lam, sigma_b2)))),
                neg(frac((b - b_hat) ** 2, times(2, 1 - lam, sigma_b2))),
            ),
            var=b,
            centre=b_hat,
            scale=sp.sqrt((1 - lam) * sigma_b2),
            lhs=r"\log p(b_j \mid \mathbf y_j) = \ell_j(b_j) - \log\!\int \! e^{\ell_j(b)}\,db",
            why=r"Bayes' rule: divide the joint density by its integral over $b_j$. The result is the log-density of $N(\hat b_j,\,(1-\lambda_j)\sigma_b^2)$.",
            label="conditional",
        ),
        ReadOffNormal(
            times(1 - lam, sigma_b2),
            var=b,
            moment="variance",
            lhs=r"\operatorname{Var}(b_j \mid \mathbf y_j)",
            why=r"The log-density of eq.~\eqref{@conditional} is quadratic in $b_j$, so normal: read off its variance, minus the inverse of its second derivative (with $\beta_0$ and the variances known).",
        ),
        Equals(
            frac(times(sigma2, sigma_b2), terms(sigma2, times(n, sigma_b2))),
            why=r"Written without the subtraction $1-\lambda_j$, which loses digits when $\lambda_j$ is near $1$; this is lme4's condVar, $(n_j/\sigma^2 + 1/\sigma_b^2)^{-1}$.",
            label="conditional_variance",
        ),
    )
    d = d.recall("conditional", lhs=r"\log p(b_j \mid \mathbf y_j)", why=r"The mean of group $j$ is $\mu_j = \beta_0 + b_j$; to predict it, return to the conditional density of $b_j$.")
    d = d.then(
        Substitute(
            terms(
                neg(half(sp.log(times(2 * sp.pi, 1 - lam, sigma_b2)))),
                neg(frac(terms(mu, neg(beta0), neg(b_hat)) ** 2, times(2, 1 - lam, sigma_b2))),
            ),
            values={b: terms(mu, neg(beta0))},
            lhs=r"\log p(\mu_j \mid \mathbf y_j)",
            why=r"Put $b_j = \mu_j - \beta_0$: a shift by the known $\beta_0$, so the density of $\mu_j$ has the same form.",
        ),
        ReadOffNormal(
            terms(beta0, times(lam, resid)),
            var=mu,
            moment="mean",
            lhs=r"\operatorname{E}(\mu_j \mid \mathbf y_j) = \beta_0 + \hat b_j",
            why=r"Read off the mean: the predicted mean of group $j$ is the overall mean plus the group's predicted deviation, eq.~\eqref{@blup}.",
        ),
        Equals(
            terms(times(lam, ybar), times(1 - lam, beta0)),
            why=r"Partial pooling: a weighted average of the group's own mean and the overall mean, with no pooling at $\lambda_j = 1$ and complete pooling at $\lambda_j = 0$.",
            label="group_mean",
        ),
        Equals(
            frac(terms(times(n, sigma_b2, ybar), times(sigma2, beta0)), terms(sigma2, times(n, sigma_b2))),
            why=r"The same average with both weights written without a subtraction ($1-\lambda_j = \sigma^2/(\sigma^2+n_j\sigma_b^2)$): the form the code uses, accurate also when $\lambda_j$ is near $1$.",
            label="group_mean_stable",
        ),
    )
    d = d.export("shrinkage_factor", "shrinkage_factor_cleared", (n, sigma2, sigma_b2),
                 "Shrinkage factor of a group of size n.\n\nlambda_j = sigma_b^2 / (sigma_b^2 + sigma^2/n_j) = n_j sigma_b^2 / (sigma^2 + n_j sigma_b^2), in (0, 1).")
    d = d.export("blup", "blup", (ybar, n, beta0, sigma2, sigma_b2),
                 "BLUP (conditional mode) of a random intercept.\n\nb_hat_j = lambda_j (ybar_j - beta0).")
    d = d.export("conditional_variance", "conditional_variance", (n, sigma2, sigma_b2),
                 "Conditional variance of a random intercept given its group's data.\n\nVar(b_j | y_j) = (1 - lambda_j) sigma_b^2 = sigma^2 sigma_b^2 / (sigma^2 + n_j sigma_b^2),\nwith beta0 and the variances known (lme4's condVar).")
    d = d.export("predicted_group_mean", "group_mean_stable", (ybar, n, beta0, sigma2, sigma_b2),
                 "Partially pooled group mean.\n\nbeta0 + b_hat_j = lambda_j ybar_j + (1 - lambda_j) beta0.")
    return model.with_references(d)
