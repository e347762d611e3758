"""The linear mixed model, stated once, as SymPy matrix expressions.

    y_j = X_j beta + Z_j b_j + eps_j,   b_j ~ N(0, D),   eps_j ~ N(0, sigma^2 I),

independently over the groups j = 1..J, with q random terms per group.  These are the
premises of the lmm_* derivations; the shared pieces (the normal log-density, the
residual y_j - X_j beta, the precision C_j) are written here once.
"""

from __future__ import annotations

import sympy as sp

from ..derive import Statement
from ..display import frac, half, neg, terms, times
from .nodes import Eye, GroupSum, logdet, mneg, mplus, mtimes, quad, tr
from .notation import D, X_j, Z_j, b_j, beta, matrix, q, sigma2, y_j
from .notation import n as n_j

# The model's assumptions, in words, for the premise's text.
PREMISES = (
    r"$\mathbf y_j \mid \mathbf b_j \sim N(\mathbf X_j\boldsymbol\beta + \mathbf Z_j\mathbf b_j,\ \sigma^2\mathbf I_{n_j})$",
    r"$\mathbf b_j \sim N(\mathbf 0, \mathbf D)$ with $\mathbf D$ positive definite",
    r"the groups $j = 1, \dots, J$ are independent",
    r"$\mathbf X = [\mathbf X_1; \dots; \mathbf X_J]$ has full column rank $p$",
)


def mvn_logpdf(x, mean, cov) -> sp.Expr:
    """log N(x; mean, cov), the textbook density: -k/2 log(2 pi) - 1/2 log det cov
    - 1/2 (x - mean)^T cov^{-1} (x - mean), with k the length of x."""
    dev = x if mean is None else mplus(x, mneg(mean))
    return terms(
        neg(times(half(x.rows), sp.log(2 * sp.pi))),
        neg(half(logdet(cov))),
        neg(half(quad(dev, sp.Inverse(cov)))),
    )


def residual():
    """y_j - X_j beta: the group's deviation from the fixed part."""
    return mplus(y_j, mneg(mtimes(X_j, beta)))


def full_residual():
    """y_j - X_j beta - Z_j b_j."""
    return mplus(y_j, mneg(mtimes(X_j, beta)), mneg(mtimes(Z_j, b_j)))


def data_logdensity():
    """log p(y_j | b_j) = log N(y_j; X_j beta + Z_j b_j, sigma^2 I)."""
    return mvn_logpdf(y_j, mplus(mtimes(X_j, beta), mtimes(Z_j, b_j)), sigma2 * Eye(n_j))


def effects_logdensity():
    """log p(b_j) = log N(b_j; 0, D)."""
    return mvn_logpdf(b_j, None, D)


def group_joint_logdensity():
    """log p(y_j, b_j): the contribution of group j to the joint log-density."""
    return terms(data_logdensity(), effects_logdensity())


# The premise of the lmm_* derivations: group j's joint log-density, stated once.
GROUP_JOINT = Statement(
    "lmm_group_joint", group_joint_logdensity(), r"\log p(\mathbf y_j, \mathbf b_j)",
    "The linear mixed model: " + "; ".join(PREMISES) + r". The log-density of group $j$'s responses given its "
    r"random effects plus that of the random effects.")


def joint_logdensity_all_groups():
    """log p(y, b) = sum_j log p(y_j, b_j), the groups being independent."""
    return GroupSum(group_joint_logdensity())


def written_out():
    """The group's joint log-density with both normal densities written out."""
    return terms(
        neg(times(half(n_j), sp.log(times(2, sp.pi, sigma2)))),
        neg(frac(quad(full_residual(), None), times(2, sigma2))),
        neg(times(half(q), sp.log(2 * sp.pi))),
        neg(half(logdet(D))),
        neg(half(quad(b_j, sp.Inverse(D)))),
    )


def precision():
    """C_j = Z_j^T Z_j / sigma^2 + D^{-1}, written out."""
    return mplus(mtimes(frac(1, sigma2), tr(Z_j), Z_j), sp.Inverse(D))


def blup_written_out():
    """(Z_j^T Z_j/sigma^2 + D^{-1})^{-1} Z_j^T (y_j - X_j beta) / sigma^2."""
    return mtimes(frac(1, sigma2), sp.Inverse(precision()), tr(Z_j), residual())


C_j = matrix("C_j")
b_hat_j = matrix("b_hat_j")


def completed_square():
    """The group's joint log-density with the square in b_j completed around b_hat_j."""
    return terms(
        neg(half(quad(mplus(b_j, mneg(b_hat_j)), C_j))),
        half(quad(b_hat_j, C_j)),
        neg(frac(quad(residual(), None), times(2, sigma2))),
        neg(times(half(n_j), sp.log(times(2, sp.pi, sigma2)))),
        neg(times(half(q), sp.log(2 * sp.pi))),
        neg(half(logdet(D))),
    )


def opening_chain():
    """Premise -> both densities written out -> the square in b_j completed: the chain
    shared by the BLUP and the marginal likelihood (each document shows it)."""
    from ..derive import Define, Premise
    from .steps import MatrixEquals

    return (
        Premise.of(
            GROUP_JOINT,
            why=r"The model: the density of group $j$'s responses given its random effects, times the density of the random effects.",
        ),
        MatrixEquals(
            written_out(),
            why=r"Write out both normal log-densities: $\det(\sigma^2\mathbf I_{n_j}) = (\sigma^2)^{n_j}$ and $(\sigma^2\mathbf I)^{-1} = \mathbf I/\sigma^2$.",
        ),
        Define(precision(), symbol=C_j, why=r"The precision of $\mathbf b_j$ once the data of the group are seen."),
        Define(blup_written_out(), symbol=b_hat_j, why=r"The centre of the square completed next."),
        MatrixEquals(
            completed_square(),
            why=r"Complete the square in $\mathbf b_j$: expanding the two quadratic forms gives $-\tfrac12\mathbf b_j^{\mathsf T}\mathbf C_j\mathbf b_j + \mathbf b_j^{\mathsf T}\mathbf Z_j^{\mathsf T}(\mathbf y_j - \mathbf X_j\boldsymbol\beta)/\sigma^2$ plus terms free of $\mathbf b_j$, and $\mathbf C_j\hat{\mathbf b}_j = \mathbf Z_j^{\mathsf T}(\mathbf y_j - \mathbf X_j\boldsymbol\beta)/\sigma^2$.",
            label="completed_square",
        ),
    )


STATISTICS_MEANING = {
    "ZtZ_j": (lambda: mtimes(tr(Z_j), Z_j)),
    "ZtX_j": (lambda: mtimes(tr(Z_j), X_j)),
    "XtX_j": (lambda: mtimes(tr(X_j), X_j)),
    "Zty_j": (lambda: mtimes(tr(Z_j), y_j)),
    "Xty_j": (lambda: mtimes(tr(X_j), y_j)),
}


def define_statistics(*codes: str):
    """Define steps for the per-group cross-products the fit accumulates in one pass."""
    from ..derive import Define
    from .notation import scalar, yty

    steps = []
    for code in codes:
        if code == "yty":
            steps.append(Define(quad(y_j, None), symbol=yty, why=r"The sum of squares of the group's responses."))
        else:
            steps.append(Define(STATISTICS_MEANING[code](), symbol=matrix(code),
                                why=r"A cross-product of group $j$'s data: the fit needs the data only through these."))
    del scalar
    return tuple(steps)
