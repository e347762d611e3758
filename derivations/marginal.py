"""The marginal likelihood of one group: integrate b_j out of the joint density.

Starting from the joint log-density of group j's data and its random intercept, complete
the square in b_j (as in blup.py) and integrate b_j over the real line.  The result is
log p(y_j) in the sufficient statistics (n_j, ybar_j, S_j), then rewritten with log1p and
without the subtraction 1 - lambda_j, the form the generated code uses.
"""

from shrinkage import model
from shrinkage.derive import Derivation, Equals
from shrinkage.symbols import beta0, n, sigma2, sigma_b2, ss_within, ybar

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
in the form the generated code evaluates, where $\log(1 + n_j\sigma_b^2/\sigma^2)$ is computed by
a function (log1p) that keeps its digits when $n_j\sigma_b^2/\sigma^2$ is tiny.
""",
    )
    d = d.then(
        *model.opening_chain(lhs=r"\log p(\mathbf y_j, b_j)"),
        *model.completing_the_square(
            why=r"Complete the square in $b_j$. Only the first term depends on $b_j$: it is the exponent of a normal density with mean $\hat b_j$ and variance $(n_j/\sigma^2 + 1/\sigma_b^2)^{-1}$.",
        ),
        *model.integrating_out(),
        Equals(
            model.marginal_group_loglik(),
            why=r"The same, in the form the code evaluates: $n_j$ is cleared from the denominator of the last term, and the code computes $\log(1+x)$ by a function that keeps its digits for small $x$ (log1p). This is the $N(\beta_0\mathbf 1,\ \sigma^2 I + \sigma_b^2\mathbf 1\mathbf 1^{\mathsf T})$ log-density of $\mathbf y_j$: $\log\det = n_j\log\sigma^2 + \log(1 + n_j\sigma_b^2/\sigma^2)$ by the matrix determinant lemma.",
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
    return model.with_references(d)
