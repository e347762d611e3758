"""The random-intercept model, stated once, as SymPy expressions.

    y_ij = beta0 + b_j + eps_ij,   b_j ~ N(0, sigma_b^2),   eps_ij ~ N(0, sigma^2).

Derivations start from these statements; the verifier's oracles (dense covariance,
quadrature of the joint density) are built from them too, never from a derived result.
"""

from __future__ import annotations

import sympy as sp

from .display import frac, half, neg, terms, times
from .symbols import NOTATION, J, b, beta0, i, j, n, quantity, sigma2, sigma_b2, ss_within, y, ybar


def normal_logpdf(x: sp.Expr, mean: sp.Expr, var: sp.Expr) -> sp.Expr:
    """log N(x; mean, var), written out as the textbook density (in the textbook order)."""
    deviation = x if mean == 0 else terms(x, neg(mean))
    return terms(neg(half(sp.log(times(2, sp.pi, var)))), neg(frac(deviation**2, times(2, var))))


# --- all groups: the joint log-density of (y, b), a sum over *every* observation ---
n_j = quantity("n").indexed
b_j = quantity("b").indexed


def joint_logdensity_all_groups() -> sp.Expr:
    """log p(y, b) = sum_j [ sum_{i<=n_j} log N(y_ij; beta0 + b_j, sigma^2) + log N(b_j; 0, sigma_b^2) ]."""
    data = sp.Sum(normal_logpdf(y[i, j], terms(beta0, b_j[j]), sigma2), (i, 1, n_j[j]))
    return sp.Sum(terms(data, normal_logpdf(b_j[j], 0, sigma_b2)), (j, 1, J))


def questioners_product_all_groups() -> sp.Expr:
    """The log of the questioner's product: one factor per *group*, so n_j is lost."""
    return sp.Sum(terms(normal_logpdf(y[1, j], terms(beta0, b_j[j]), sigma2), normal_logpdf(b_j[j], 0, sigma_b2)), (j, 1, J))


# --- one group j: the term of the sum above that contains b_j -----------------------
def group_data_loglik() -> sp.Expr:
    """log p(y_j | b_j) = sum_{i<=n_j} log N(y_ij; beta0 + b_j, sigma^2)."""
    return sp.Sum(normal_logpdf(y[i], terms(beta0, b), sigma2), (i, 1, n))


def random_effect_logdensity() -> sp.Expr:
    """log p(b_j) = log N(b_j; 0, sigma_b^2): the term the question calls a penalty."""
    return normal_logpdf(b, 0, sigma_b2)


def group_joint_logdensity() -> sp.Expr:
    """log p(y_j, b_j): the contribution of group j to the joint log-density."""
    return terms(group_data_loglik(), random_effect_logdensity())


# --- sufficient statistics of one group, defined from the data ----------------------
GROUP_STATISTICS: dict[sp.Symbol, sp.Expr] = dict(NOTATION.definitions)  # ybar_j, S_j (shrinkage.symbols)


def group_marginal_covariance(size: int) -> sp.Matrix:
    """Cov(y_j) = sigma^2 I + sigma_b^2 1 1^T for a group of the given size (from the model)."""
    return sigma2 * sp.eye(size) + sigma_b2 * sp.ones(size, size)


# --- the premises: the model's distributional statements, the only unchecked steps ----
def _statements():
    from .derive.steps import Statement

    model = (r"$y_{ij} = \beta_0 + b_j + \varepsilon_{ij}$ with $b_j \sim N(0, \sigma_b^2)$ and "
             r"$\varepsilon_{ij} \sim N(0, \sigma^2)$, all independent")
    return (
        Statement("joint_all_groups", joint_logdensity_all_groups(), r"\log p(\mathbf y, \mathbf b)",
                  model + r": the joint log-density of $(\mathbf y, \mathbf b)$ over every observation "
                  r"$i = 1, \dots, n_j$ of every group $j = 1, \dots, J$."),
        Statement("group_joint", group_joint_logdensity(), r"\ell_j(b_j)",
                  model + r": the log-density of group $j$'s data given $b_j$ plus that of $b_j$."),
    )


JOINT_ALL_GROUPS, GROUP_JOINT = _statements()
PREMISES = {s.name: s for s in (JOINT_ALL_GROUPS, GROUP_JOINT)}  # every premise of the project's derivations
