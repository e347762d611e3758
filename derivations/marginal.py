"""The marginal likelihood of one group: integrate b_j out of the joint density.

Starting from the joint log-density of group j's data and its random intercept, complete
the square in b_j (as in blup.py) and integrate b_j over the real line.  The result is
log p(y_j) in the sufficient statistics (n_j, ybar_j, S_j), then rewritten with log1p and
without the subtraction 1 - lambda_j, the form the generated code uses.
"""

import sympy as sp
from sympy.codegen.cfunctions import log1p

from shrinkage import model
from shrinkage.display import frac, half, neg, terms, times
from shrinkage.engine import Define, Derivation, Equals, Given, LogIntegral
from shrinkage.symbols import b, b_hat, beta0, const, i, n, sigma2, sigma_b2, ss_within, y, ybar

two_pi = 2 * sp.pi
precision = terms(frac(n, sigma2), frac(1, sigma_b2))  # n_j/sigma^2 + 1/sigma_b^2
log_constants = terms(neg(half(times(n, sp.log(two_pi * sigma2)))), neg(half(sp.log(two_pi * sigma_b2))))
resid = terms(ybar, neg(beta0))


def derivation() -> Derivation:
    d = Derivation(
        name="marginal",
        title=r"The marginal likelihood of a group: integrating the random intercept out",
        summary=r"""
The likelihood of the parameters $(\beta_0, \sigma^2, \sigma_b^2)$ is not the joint density
of the data and the random effects (the function the question maximises) but the density
of the data alone, in which every $b_j$ has been integrated out.  The groups are
independent, so this \emph{marginal} likelihood is a product over groups of
$p(\mathbf y_j) = \int p(\mathbf y_j \mid b_j)\, p(b_j)\, db_j$.  Completing the square in
$b_j$, as for the BLUP, turns the integrand into a Gaussian bump times factors free of
$b_j$, so the integral is exact.  The result depends on the data of group $j$ only through
$n_j$, the group mean $\bar y_j$ and the within-group sum of squares $S_j$.  It is the
$N(\beta_0 \mathbf 1, \sigma^2 I + \sigma_b^2 \mathbf 1 \mathbf 1^{\mathsf T})$ density of
$\mathbf y_j$, and the tests check it against that dense density.  The last step writes it
in the form the generated code evaluates: $\log(1 + n_j\sigma_b^2/\sigma^2)$ through
$\operatorname{log1p}$, which keeps its digits when $n_j\sigma_b^2/\sigma^2$ is tiny.
""",
    )
    d = d.then(
        Given(
            model.group_joint_logdensity(),
            lhs=r"\log p(\mathbf y_j, b_j)",
            why=r"The joint log-density of group $j$'s data and its random intercept: every observation $i = 1, \dots, n_j$ given $b_j$, and $b_j$ itself.",
        ),
        Define(
            log_constants,
            symbol=const,
            why=r"Collect the normalising constants, which involve neither $b_j$ nor the data.",
        ),
        Equals(
            terms(
                const,
                neg(frac(sp.Sum(terms(y[i], neg(beta0), neg(b)) ** 2, (i, 1, n)), 2 * sigma2)),
                neg(frac(b**2, 2 * sigma_b2)),
            ),
            why=r"Write out the two normal log-densities.",
        ),
        Equals(
            terms(
                const,
                neg(frac(terms(ss_within, times(n, terms(ybar, neg(beta0), neg(b)) ** 2)), 2 * sigma2)),
                neg(frac(b**2, 2 * sigma_b2)),
            ),
            why=r"Add and subtract $\bar y_j$: $\sum_i (y_{ij}-\beta_0-b_j)^2 = S_j + n_j(\bar y_j-\beta_0-b_j)^2$, as the cross term sums to zero.",
        ),
        Define(
            frac(times(frac(n, sigma2), resid), precision),
            symbol=b_hat,
            why=r"The BLUP of $b_j$, the centre of the square completed next.",
        ),
        Equals(
            terms(
                neg(half(times(precision, (b - b_hat) ** 2))),
                neg(frac(resid**2, times(2, terms(sigma_b2, frac(sigma2, n))))),
                neg(frac(ss_within, 2 * sigma2)),
                const,
            ),
            why=r"Complete the square in $b_j$. Only the first term depends on $b_j$: it is the exponent of a normal density with mean $\hat b_j$ and variance $(n_j/\sigma^2 + 1/\sigma_b^2)^{-1}$.",
            label="completed_square",
        ),
        LogIntegral(
            terms(
                half(sp.log(frac(two_pi, precision))),
                neg(frac(resid**2, times(2, terms(sigma_b2, frac(sigma2, n))))),
                neg(frac(ss_within, 2 * sigma2)),
                const,
            ),
            var=b,
            centre=b_hat,
            scale=1 / sp.sqrt(precision),
            lhs=r"\log p(\mathbf y_j) = \log\!\int_{-\infty}^{\infty}\! p(\mathbf y_j, b_j)\, db_j",
            why=r"Integrate $b_j$ over the real line: $\int e^{-\frac12 a (b-\hat b)^2}\,db = \sqrt{2\pi/a}$, and the other terms are free of $b_j$.",
        ),
        Equals(
            terms(
                neg(half(times(n, sp.log(two_pi * sigma2)))),
                neg(half(sp.log(terms(1, frac(times(n, sigma_b2), sigma2))))),
                neg(frac(ss_within, 2 * sigma2)),
                neg(frac(resid**2, times(2, terms(sigma_b2, frac(sigma2, n))))),
            ),
            why=r"Substitute $c_j$ and combine the logarithms: $\tfrac12\log(2\pi) - \tfrac12\log(2\pi\sigma_b^2) - \tfrac12\log(n_j/\sigma^2 + 1/\sigma_b^2) = -\tfrac12\log(1 + n_j\sigma_b^2/\sigma^2)$.",
            label="marginal",
        ),
        Equals(
            terms(
                neg(half(times(n, sp.log(two_pi * sigma2)))),
                neg(half(log1p(frac(times(n, sigma_b2), sigma2)))),
                neg(frac(ss_within, 2 * sigma2)),
                neg(frac(times(n, resid**2), times(2, terms(sigma2, times(n, sigma_b2))))),
            ),
            why=r"The same, in the form the code evaluates: $\operatorname{log1p}(x) = \log(1+x)$ keeps its digits for small $x$, and $n_j$ is cleared from the denominator of the last term. This is the $N(\beta_0\mathbf 1,\ \sigma^2 I + \sigma_b^2\mathbf 1\mathbf 1^{\mathsf T})$ log-density of $\mathbf y_j$: $\log\det = n_j\log\sigma^2 + \log(1 + n_j\sigma_b^2/\sigma^2)$ by the matrix determinant lemma.",
            label="marginal_stable",
        ),
    )
    d = d.export(
        "marginal_loglik", "marginal_stable", (n, ybar, ss_within, beta0, sigma2, sigma_b2),
        "Marginal log-likelihood of one group, log p(y_j), from its sufficient statistics.\n\n"
        "log p(y_j) = -n_j/2 log(2 pi sigma^2) - 1/2 log1p(n_j sigma_b^2/sigma^2) - S_j/(2 sigma^2)\n"
        "             - n_j (ybar_j - beta0)^2 / (2 (sigma^2 + n_j sigma_b^2)),\n"
        "with S_j the within-group sum of squares (0 for a group of one).  Elementwise over\n"
        "groups: pass arrays of n, ybar, ss_within; sum the result for the whole data set.",
    )
    return d
