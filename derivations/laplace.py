"""The Laplace view: the h-likelihood adjusted by its curvature is the marginal likelihood.

For one group, l_j(b) = log p(y_j, b_j) is quadratic in b_j.  The Laplace approximation
log int exp(l_j) db ~ l_j(b_hat) - 1/2 log(-l_j''(b_hat) / (2 pi)) is therefore exact:
both sides equal the marginal log-likelihood of the group, which is why completing the
square (the BLUP) and integrating b_j out (the likelihood of the parameters) agree.
"""

import sympy as sp

from shrinkage import model
from shrinkage.display import frac, half, neg, terms, times
from shrinkage.derive import Define, Derivation, Derivative, Equals, LogIntegral, Maximiser, Sign
from shrinkage.symbols import b, b_hat, beta0, n, sigma2, sigma_b2, ybar

curvature = model.PRECISION  # -l_j''(b_j) = n_j/sigma^2 + 1/sigma_b^2
at_mode = model.in_statistics(b_hat)  # l_j(b_hat_j)


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
eq.\ \eqref{@laplace}, and the integral, eq.\ \eqref{@marginal}, are the same expression, checked
separately.  This is why the BLUP (the mode) and the marginal likelihood come out of the
same completed square, and it shows what the question's function lacks as a likelihood for the
variances: the term $-\tfrac12\log(n_j/\sigma^2 + 1/\sigma_b^2)$, which penalises a small $\sigma_b^2$ and
removes the unboundedness shown in derivation \texttt{joint\_unbounded}.
""",
    )
    d = d.then(
        *model.opening_chain(why=r"The joint log-density of group $j$'s data and its random effect (the h-likelihood)."),
        Derivative(terms(frac(times(n, terms(ybar, neg(beta0), neg(b))), sigma2), neg(frac(b, sigma_b2))), var=b,
                   lhs=r"\ell_j'(b_j)", label="score", why=r"The score in $b_j$."),
        Derivative(neg(curvature), var=b, lhs=r"\ell_j''(b_j)", label="curvature",
                   why=r"The curvature is the same at every $b_j$: $\ell_j$ is exactly quadratic."),
        Sign(sp.S.Zero, sign=-1, why=r"Negative: a single peak."),
        Define(times(model.LAMBDA, model.RESID), symbol=b_hat, label="mode",
               why=r"The BLUP of derivation \texttt{blup}, $\hat b_j = \lambda_j(\bar y_j-\beta_0)$."),
    )
    d = d.recall("in_statistics", lhs=r"\ell_j(b_j)", why=r"Back to the h-likelihood, to locate its peak.")
    d = d.then(
        Maximiser(b_hat, var=b, lhs=r"\operatorname*{arg\,max}_{b_j} \ell_j(b_j)",
                  why=r"The score, eq.~\eqref{@score}, vanishes at the BLUP, and the curvature is negative: the mode of $\ell_j$ is $\hat b_j$."),
    )
    d = d.recall("in_statistics", lhs=r"\ell_j(b_j)", why=r"Laplace's method replaces $\ell_j$ by its second-order expansion about the mode.")
    d = d.then(
        Equals(terms(at_mode, neg(half(times(curvature, (b - b_hat) ** 2)))), label="expansion",
               why=r"The expansion about $\hat b_j$: the value at the mode, no linear term (the score vanishes there) and the curvature of eq.~\eqref{@curvature}. It is exact, because $\ell_j$ is quadratic in $b_j$."),
        LogIntegral(terms(at_mode, neg(half(sp.log(frac(curvature, 2 * sp.pi))))), var=b, centre=b_hat,
                    scale=1 / sp.sqrt(curvature),
                    lhs=r"\ell_j(\hat b_j) - \tfrac12\log\frac{-\ell_j''(\hat b_j)}{2\pi}",
                    why=r"Laplace's approximation of $\log\int e^{\ell_j(b)}db$: the log-integral of the exponentiated expansion, the h-likelihood at the mode corrected by the curvature. As the expansion is exact, so is the approximation."),
        Equals(model.marginal_group_loglik(), label="laplace",
               why=r"Simplify: the constants $-\tfrac12\log(2\pi\sigma_b^2)$ and $-\tfrac12\log\bigl((n_j/\sigma^2+1/\sigma_b^2)/(2\pi)\bigr)$ combine into $-\tfrac12\log(1+n_j\sigma_b^2/\sigma^2)$."),
    )
    d = d.recall("in_statistics", lhs=r"\ell_j(b_j)", why=r"Now the exact integral, from the same h-likelihood.")
    d = d.then(
        LogIntegral(model.marginal_group_loglik(), var=b, centre=b_hat, scale=1 / sp.sqrt(curvature),
                    lhs=r"\log p(\mathbf y_j) = \log\!\int e^{\ell_j(b)}\,db", label="marginal",
                    why=r"Integrating $b_j$ out over the real line gives the marginal log-likelihood of group $j$: the same expression as the Laplace approximation, eq.~\eqref{@laplace}, so the approximation is exact here."),
    )
    return model.with_references(d)
