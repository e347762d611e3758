"""The Laplace view: the h-likelihood adjusted by its curvature is the marginal likelihood.

For one group, l_j(b) = log p(y_j, b_j) is quadratic in b_j.  The Laplace approximation
log int exp(l_j) db ~ l_j(b_hat) - 1/2 log(-l_j''(b_hat) / (2 pi)) is therefore exact:
both sides equal the marginal log-likelihood of the group, which is why completing the
square (the BLUP) and integrating b_j out (the likelihood of the parameters) agree.
"""

import sympy as sp

from shrinkage import model
from shrinkage.display import frac, half, neg, terms, times
from shrinkage.engine import Define, Derivation, Derivative, Equals, Given, LogIntegral, Sign
from shrinkage.symbols import b, b_hat, beta0, const, n, sigma2, sigma_b2, ss_within, ybar

two_pi = 2 * sp.pi
lam = frac(sigma_b2, terms(sigma_b2, frac(sigma2, n)))
resid = terms(ybar, neg(beta0))
log_constants = terms(neg(half(times(n, sp.log(two_pi * sigma2)))), neg(half(sp.log(two_pi * sigma_b2))))
curvature = terms(frac(n, sigma2), frac(1, sigma_b2))
h_lik = terms(const, neg(frac(terms(ss_within, times(n, terms(ybar, neg(beta0), neg(b)) ** 2)), times(2, sigma2))),
              neg(frac(b**2, times(2, sigma_b2))))
marginal = terms(
    neg(half(times(n, sp.log(two_pi * sigma2)))),
    neg(half(sp.log(terms(1, frac(times(n, sigma_b2), sigma2))))),
    neg(frac(ss_within, times(2, sigma2))),
    neg(frac(times(n, resid**2), times(2, terms(sigma2, times(n, sigma_b2))))),
)


def derivation() -> Derivation:
    d = Derivation(
        name="laplace",
        title=r"The Laplace view: the h-likelihood corrected by its curvature is the marginal likelihood",
        summary=r"""
The joint log-density $\ell_j(b_j) = \log p(\mathbf y_j, b_j)$ of one group (the h-likelihood) is a
function of the random effect; the likelihood of the parameters integrates $b_j$ out,
$\log p(\mathbf y_j) = \log\int e^{\ell_j(b)}\,db$.  Laplace's method approximates such an integral by the
value at the mode plus a correction for the width of the peak:
$\ell_j(\hat b_j) - \tfrac12\log\bigl(-\ell_j''(\hat b_j)/(2\pi)\bigr)$.  In this Gaussian model $\ell_j$ is
exactly quadratic in $b_j$, so the approximation is exact: below, the corrected h-likelihood,
eq.\ \eqref{laplace:9}, and the integral, eq.\ \eqref{laplace:11}, are the same expression, checked
separately.  This is why the BLUP (the mode) and the marginal likelihood come out of the
same completed square, and it shows what the question's function lacks as a likelihood for the
variances: the term $-\tfrac12\log(n_j/\sigma^2 + 1/\sigma_b^2)$, which penalises a small $\sigma_b^2$ and
removes the unboundedness shown in derivation \texttt{joint\_unbounded}.
""",
    )
    d = d.then(
        Given(model.group_joint_logdensity(), lhs=r"\ell_j(b_j)",
              why=r"The joint log-density of group $j$'s data and its random effect."),
        Define(log_constants, symbol=const,
               why=r"The normalising constants, free of $b_j$ and the data."),
        Equals(h_lik, label="h_likelihood",
               why=r"Write out the normal log-densities and add and subtract $\bar y_j$: $\sum_i (y_{ij}-\beta_0-b_j)^2 = S_j + n_j(\bar y_j-\beta_0-b_j)^2$."),
        Derivative(terms(frac(times(n, terms(ybar, neg(beta0), neg(b))), sigma2), neg(frac(b, sigma_b2))), var=b,
                   lhs=r"\ell_j'(b_j)", why=r"The score in $b_j$; it vanishes at the BLUP $\hat b_j = \lambda_j(\bar y_j-\beta_0)$."),
        Derivative(neg(curvature), var=b, lhs=r"\ell_j''(b_j)", label="curvature",
                   why=r"The curvature is the same at every $b_j$: $\ell_j$ is exactly quadratic."),
        Sign(sp.S.Zero, sign=-1, why=r"Negative: a single peak, at the BLUP."),
        Define(times(lam, resid), symbol=b_hat, label="mode",
               why=r"The mode of $\ell_j$, where the score vanishes: the BLUP of derivation \texttt{blup}."),
        Given(
            terms(h_lik.xreplace({b: b_hat}), neg(half(sp.log(frac(curvature, two_pi))))),
            lhs=r"\ell_j(\hat b_j) - \tfrac12\log\frac{-\ell_j''(\hat b_j)}{2\pi}",
            why=r"Laplace's approximation of $\log\int e^{\ell_j(b)}db$: the h-likelihood at the BLUP, corrected by the curvature of eq.\ \eqref{laplace:5}.",
        ),
        Equals(marginal, label="laplace",
               why=r"Simplify: the constants $-\tfrac12\log(2\pi\sigma_b^2)$ and $-\tfrac12\log\bigl((n_j/\sigma^2+1/\sigma_b^2)/(2\pi)\bigr)$ combine into $-\tfrac12\log(1+n_j\sigma_b^2/\sigma^2)$."),
    )
    d = d.recall("h_likelihood", lhs=r"\ell_j(b_j)", why=r"Now the exact integral, from the same h-likelihood.")
    d = d.then(
        LogIntegral(marginal, var=b, centre=times(lam, resid), scale=sp.sqrt(times(terms(1, neg(lam)), sigma_b2)),
                    lhs=r"\log p(\mathbf y_j) = \log\!\int e^{\ell_j(b)}\,db", label="marginal",
                    why=r"Integrating $b_j$ out over the real line gives the marginal log-likelihood of group $j$: the same expression as the Laplace approximation, eq.\ \eqref{laplace:9}, so the approximation is exact here."),
    )
    return d
