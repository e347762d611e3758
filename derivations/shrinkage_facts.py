"""Facts about the shrinkage factor lambda_j, proved under the symbols' assumptions.

lambda_j = sigma_b^2 / (sigma_b^2 + sigma^2/n_j) lies strictly between 0 and 1; it
increases with sigma_b^2 and with n_j and decreases with sigma^2; it tends to 1 (no
pooling, the fixed-effect limit) as sigma_b^2 -> oo or n_j -> oo, and to 0 (complete
pooling) as sigma_b^2 -> 0+.  n_j is treated as a positive real number here, so that
one may differentiate in it; every fact then holds a fortiori at the integers.
"""

import sympy as sp

from shrinkage import model
from shrinkage.derive import Derivation, Derivative, Limit, Sign
from shrinkage.display import frac, neg, terms, times
from shrinkage.symbols import n, sigma2, sigma_b2

denominator = terms(sigma2, times(n, sigma_b2))  # sigma^2 + n_j sigma_b^2
ZERO = sp.S.Zero


def derivation() -> Derivation:
    d = Derivation(
        name="shrinkage_facts",
        title=r"How the shrinkage factor depends on $\sigma_b^2$, $\sigma^2$ and $n_j$",
        summary=r"""
The BLUP of a random intercept is $\hat b_j = \lambda_j(\bar y_j - \beta_0)$ with the shrinkage
factor $\lambda_j = \sigma_b^2/(\sigma_b^2 + \sigma^2/n_j)$ (derivation \texttt{blup}).  Here we
prove, under the assumptions $\sigma_b^2 > 0$, $\sigma^2 > 0$, $n_j > 0$ only, that
$0 < \lambda_j < 1$; that $\lambda_j$ grows with $\sigma_b^2$ and with $n_j$ and falls with
$\sigma^2$ (so a larger between-group variance or a larger group means \emph{less} shrinkage,
a larger residual variance \emph{more}); and that $\lambda_j \to 1$ as $\sigma_b^2 \to \infty$ or
$n_j \to \infty$ (no pooling: the group's own mean, as if $b_j$ were a fixed effect) while
$\lambda_j \to 0$ as $\sigma_b^2 \to 0^+$ (complete pooling: every group gets $\beta_0$).
$\lambda_j$ is a rational function of the group size $n_j$; we differentiate it in $n_j$ as a
function of a positive real variable, and the facts hold a fortiori at the integers.
""",
    )
    d = d.cite(model.sibling("blup", __file__), "shrinkage_factor", lhs=r"\lambda_j", as_label="lambda",
               why=r"The shrinkage factor of group $j$, as derived in \texttt{blup}.")
    d = d.then(
        Sign(ZERO, sign=1, label="lambda_positive",
             why=r"$\lambda_j$ is positive: a ratio of positive quantities."),
        Sign(sp.S.One, sign=-1, label="lambda_below_one",
             why=r"And $\lambda_j < 1$, as $1-\lambda_j = (\sigma^2/n_j)/(\sigma_b^2+\sigma^2/n_j) = \sigma^2/(\sigma^2 + n_j\sigma_b^2) > 0$: the BLUP is always pulled towards $0$, never past it, never away from it."),
    )
    d = d.recall("lambda", lhs=r"\frac{\partial\lambda_j}{\partial\sigma_b^2}", why=r"Differentiate $\lambda_j$ in $\sigma_b^2$.")
    d = d.then(
        Derivative(frac(times(sigma2, n), denominator**2), var=sigma_b2, label="d_sigma_b2",
                   why=r"Quotient rule, then multiply numerator and denominator by $n_j^2$."),
        Sign(ZERO, sign=1, label="increasing_in_sigma_b2",
             why=r"Positive: the larger $\sigma_b^2$, the larger $\lambda_j$ and the less shrinkage."),
    )
    d = d.recall("lambda", lhs=r"\frac{\partial\lambda_j}{\partial\sigma^2}", why=r"Differentiate $\lambda_j$ in $\sigma^2$.")
    d = d.then(
        Derivative(neg(frac(times(n, sigma_b2), denominator**2)), var=sigma2, label="d_sigma2",
                   why=r"$\sigma^2$ appears only in the denominator."),
        Sign(ZERO, sign=-1, label="decreasing_in_sigma2",
             why=r"Negative: the noisier the observations, the smaller $\lambda_j$ and the more shrinkage."),
    )
    d = d.recall("lambda", lhs=r"\frac{\partial\lambda_j}{\partial n_j}", why=r"Differentiate $\lambda_j$ in $n_j$.")
    d = d.then(
        Derivative(frac(times(sigma2, sigma_b2), denominator**2), var=n, label="d_n",
                   why=r"$n_j$ enters through $\sigma^2/n_j$ only."),
        Sign(ZERO, sign=1, label="increasing_in_n",
             why=r"Positive: more data in a group, less shrinkage. The pull towards $0$ is set by $\sigma^2/(n_j\sigma_b^2)$, not by $\sigma_b^2$ alone."),
    )
    d = d.recall("lambda", lhs=r"\lambda_j", why=r"The limits, first $\sigma_b^2 \to \infty$ with $n_j$ and $\sigma^2$ fixed.")
    d = d.then(
        Limit(sp.S.One, var=sigma_b2, point=sp.oo, lhs=r"\lambda_j", label="no_pooling_sigma_b2",
              why=r"No pooling: $\beta_0 + \hat b_j \to \bar y_j$, the estimate one gets with $b_j$ as a fixed effect. A fixed effect is a random effect with infinite variance, so it is not shrunk."),
    )
    d = d.recall("lambda", lhs=r"\lambda_j", why=r"Next $n_j \to \infty$ with the variances fixed.")
    d = d.then(
        Limit(sp.S.One, var=n, point=sp.oo, lhs=r"\lambda_j", label="no_pooling_n",
              why=r"A group with many observations keeps its own mean: its data outweigh the prior $N(0,\sigma_b^2)$."),
    )
    d = d.recall("lambda", lhs=r"\lambda_j", why=r"Finally $\sigma_b^2 \to 0^+$.")
    d = d.then(
        Limit(ZERO, var=sigma_b2, point=ZERO, lhs=r"\lambda_j", label="complete_pooling",
              why=r"Complete pooling: $\hat b_j \to 0$ and every group is predicted by $\beta_0$."),
    )
    return model.with_references(d)
