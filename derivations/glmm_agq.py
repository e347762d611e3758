"""Adaptive Gauss-Hermite quadrature: the change of variables at the mode, exactness for
polynomials of degree 2K - 1, and K = 1 as the Laplace approximation.

The group's integral int e^f(u) du is written in z with u = u^ + sqrt(2) s z, which turns
it into int e^(-z^2) e^(h(z)) dz; the K-point Gauss-Hermite rule sums w_i e^(h(z_i)).
The rule is exact when e^h is a polynomial of degree 2K - 1 (checked on every such
polynomial, and shown to fail on z^(2K), for K = 1..6), and with K = 1 (one node at 0,
weight sqrt(pi)) and s = (-f''(u^))^(-1/2) it is Laplace's approximation.
"""

import sympy as sp

from glmm_laplace_error import BINOMIAL
from shrinkage.answer.glmm_numbers import agq_table
from shrinkage.derive import Derivation, Notation, Premise, Quantity, Substitute
from shrinkage.derive.quadrature import ChangeOfVariable, GaussHermite

MAX_NODES = 6
NOTATION = Notation([
    Quantity("u", r"u", "spherical random effect of the group, $b_j = \\theta u$", "real"),
    Quantity("z", r"z", "the quadrature variable, $u = \\hat u + \\sqrt2\\, s z$", "real"),
    Quantity("uhat", r"\hat u", "the centre of the rule (the mode of $f_j$)", "real"),
    Quantity("s", r"s", "the scale of the rule, $(-f_j''(\\hat u))^{-1/2}$ at the mode", "positive"),
    Quantity("beta", r"\beta", "the fixed part of the linear predictor, $x_j'\\beta$", "real"),
    Quantity("theta", r"\theta", "standard deviation of the random intercept, $\\sigma_b$", "positive"),
    Quantity("m", r"m_j", "trials of the group", "positive"),
    Quantity("y", r"y_j", "observed proportion of successes", "unit"),
    *(Quantity(f"c{k}", f"c_{{{k}}}", f"coefficient of $z^{{{k}}}$ of a polynomial", "real")
      for k in range(2 * MAX_NODES)),
], name="glmm_agq")

u, z, uhat, s, beta, theta, m, y = (NOTATION.symbol(c) for c in (
    "u", "z", "uhat", "s", "beta", "theta", "m", "y"))
c = [NOTATION.symbol(f"c{k}") for k in range(2 * MAX_NODES)]


def moment(p: int) -> sp.Expr:
    """int z^p e^(-z^2) dz over the real line: Gamma((p+1)/2) for even p, 0 for odd."""
    return sp.gamma(sp.Rational(p + 1, 2)) if p % 2 == 0 else sp.S.Zero


def _exactness(d: Derivation, k: int) -> Derivation:
    """The k-point rule on a polynomial of degree 2k - 1 (exact) and on z^(2k) (not)."""
    poly = sum(c[p] * z ** p for p in range(2 * k))
    return d.then(
        GaussHermite(sum(c[p] * moment(p) for p in range(2 * k)), var=z, nodes=k, integrand=poly, notation=NOTATION,
                     lhs=rf"Q_{{{k}}}[\sum_{{p=0}}^{{{2 * k - 1}}} c_p z^p]", label=f"exact_{k}",
                     why=rf"The {k}-point rule on any polynomial of degree {2 * k - 1}: the integral "
                         r"$\int z^p e^{-z^2}dz = \Gamma(\frac{p+1}2)$ for even $p$, 0 for odd, term by term."),
        GaussHermite(moment(2 * k) - sp.factorial(k) * sp.sqrt(sp.pi) / 2 ** k, var=z, nodes=k, integrand=z ** (2 * k),
                     notation=NOTATION, lhs=rf"Q_{{{k}}}[z^{{{2 * k}}}]", label=f"inexact_{k}",
                     why=rf"But not on $z^{{{2 * k}}}$: the rule falls short of $\Gamma({2 * k + 1}/2)$ by "
                         rf"${k}!\sqrt\pi/2^{{{k}}}$, so degree {2 * k - 1} is the most it integrates exactly."),
    )


def derivation() -> Derivation:
    d = Derivation(name="glmm_agq", title=r"Adaptive Gauss--Hermite quadrature for a random intercept",
                   summary=SUMMARY + agq_table(), notation=NOTATION)
    f_at = BINOMIAL.expr.xreplace({u: uhat})
    curvature = m * theta ** 2 * sp.exp(beta + theta * uhat) / (1 + sp.exp(beta + theta * uhat)) ** 2 + 1  # -f''(u^)
    d = d.then(
        Premise.of(BINOMIAL, label="binomial_group"),
        ChangeOfVariable(BINOMIAL.expr.xreplace({u: uhat + sp.sqrt(2) * s * z}) + sp.log(sp.sqrt(2) * s),
                         var=u, new=z, map=uhat + sp.sqrt(2) * s * z, notation=NOTATION, lhs=r"g_j(z)",
                         label="change", why=r"Put $u = \hat u + \sqrt2\,s z$ (any centre, any scale $s > 0$): "
                                             r"$\int e^{f_j(u)}du = \int e^{g_j(z)}dz$ with the Jacobian "
                                             r"$\sqrt2\,s$ in $g_j$. Adaptive quadrature centres the rule at the "
                                             r"mode and scales it by the curvature there."),
        GaussHermite(f_at + sp.log(sp.sqrt(2) * s) + sp.log(sp.pi) / 2, var=z, nodes=1, log=True, notation=NOTATION,
                     lhs=r"\log Q_1\bigl[e^{g_j(z) + z^2}\bigr]", label="one_node",
                     why=r"Write $e^{g_j} = e^{-z^2}e^{g_j + z^2}$ and apply the $K$-point Gauss--Hermite rule "
                         r"$Q_K[h] = \sum_i w_i h(z_i)$ to the second factor; with $K = 1$ its one node is $z = 0$ "
                         r"and its weight $\sqrt\pi$."),
        Substitute(f_at + sp.log(2 * sp.pi / curvature) / 2, values={s: 1 / sp.sqrt(curvature)}, label="laplace",
                   lhs=r"\log Q_1", why=r"At the adaptive scale $s = (-f_j''(\hat u))^{-1/2}$ the one-node rule is "
                                        r"Laplace's approximation, $f_j(\hat u) + \tfrac12\log(2\pi/(-f_j''(\hat u)))$."),
    )
    for k in range(1, MAX_NODES + 1):
        d = _exactness(d, k)
    return d


SUMMARY = r"""
The marginal likelihood of a group, $\int e^{f_j(u)}\,du$, is computed by lme4 (\texttt{nAGQ} $> 1$) and by
\texttt{shrinkage.fit(..., nagq=K)} with adaptive Gauss--Hermite quadrature.  The $K$-point
Gauss--Hermite rule $Q_K[h] = \sum_{i=1}^K w_i h(z_i)$ (nodes the roots of the Hermite polynomial
$H_K$) approximates $\int e^{-z^2} h(z)\,dz$ and is exact when $h$ is a polynomial of degree at most
$2K-1$.  \emph{Adaptive}: the variable is centred at the mode $\hat u$ and scaled by the curvature
there, so that $h = e^{g_j(z)+z^2}$ is as close to a low-degree polynomial as the integrand allows;
for the normal model $h$ is constant and one node is exact.  Below: the change of variables, the
one-node rule as Laplace's approximation, and the rule's exactness (and its first failure) for
$K = 1, \dots, 6$.  The checks use two constructions of the rule: the numeric one takes the roots of
$H_K$ at 35 digits and the classical weights $2^{K-1}K!\sqrt\pi/(K^2H_{K-1}(z_i)^2)$; the symbolic one
reads $\sum_i w_i z_i^p$ as $\sqrt\pi$ times the first entry of $J^p$, $J$ the rule's Jacobi matrix
(Golub and Welsch), in exact arithmetic.
"""
