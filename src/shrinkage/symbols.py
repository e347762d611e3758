"""The project's notation: one table of every symbol (SymPy assumptions, LaTeX name, code
name, meaning, and the domain random check points are drawn from), made into the
:class:`~shrinkage.derive.Notation` :data:`NOTATION` that the project's derivations are
checked and printed with.  Users declare their own Notation in their own files.

The SymPy name of a symbol *is* its code name; the LaTeX name lives beside it.
"""

from __future__ import annotations

import sympy as sp

from .derive.notation import DOMAINS, Notation, Quantity, use_by_default

# Domain name -> sampler: the public vocabulary lives in shrinkage.derive.notation.DOMAINS.
DOMAIN_SAMPLERS = {name: d.sampler for name, d in DOMAINS.items()}


# --- the registry -------------------------------------------------------------------
# Per-group quantities are written for one group j; their LaTeX carries the subscript.
QUANTITIES: tuple[Quantity, ...] = (
    Quantity("beta0", r"\beta_0", "fixed intercept (overall mean)", "real"),
    Quantity("sigma2", r"\sigma^2", "residual variance", "positive"),
    Quantity("sigma_b2", r"\sigma_b^2", "random-intercept variance", "positive", accepts="nonnegative"),
    Quantity("gamma", r"\gamma", r"variance ratio $\sigma_b^2/\sigma^2$", "positive", accepts="nonnegative"),
    Quantity("n", r"n_j", "number of observations in group $j$", "count"),
    Quantity("b", r"b_j", "random intercept of group $j$", "real"),
    Quantity("y", r"y", "observations; $y_{ij}$ is observation $i$ of group $j$", "real", observation=True),
    Quantity("ybar", r"\bar y_j", "mean of group $j$", "real"),
    Quantity("ss_within", r"S_j", r"within-group sum of squares $\sum_i (y_{ij}-\bar y_j)^2$ (0 for a group of one)", "nonnegative"),
    Quantity("lam", r"\lambda_j", "shrinkage factor of group $j$", "unit"),
    Quantity("b_hat", r"\hat b_j", "BLUP (conditional mode) of $b_j$", "real"),
    Quantity("mu", r"\mu_j", r"mean of group $j$, $\beta_0 + b_j$", "real"),
    Quantity("ell_group", r"\ell_j", r"the term of group $j$ in the joint log-density, $\log p(\mathbf y_j \mid b_j) + \log p(b_j)$", "real"),
    Quantity("loglik_group", r"L_j", r"$\log p(\mathbf y_j)$, the marginal log-likelihood of group $j$", "real"),
    Quantity("const", r"c_j", "normalising constants of group $j$ (free of $b_j$ and the data)", "real"),
    Quantity("J", r"J", "number of groups", "few"),
    Quantity("N", r"N", r"total number of observations $\sum_j n_j$", "count"),
    Quantity("i", r"i", "index of an observation within a group", "count"),
    Quantity("j", r"j", "index of a group", "count"),
    # shrinkage facts, uncertainty of a BLUP (derivations shrinkage_facts, uncertainty)
    Quantity("k", r"k", "a second index (of an observation, or of a group)", "count"),
    Quantity("w_rest", r"W_{-j}", r"$\sum_{k\ne j} w_k$: the precisions of the other groups' means", "positive"),
    Quantity("mean_rest", r"\bar y_{-j}", r"$\sum_{k\ne j} w_k\bar y_k / W_{-j}$: the GLS mean of the other groups", "real"),
    Quantity("const_rest", r"c_{-j}", r"the terms of the other groups' log-likelihood free of $\beta_0$ and $b_j$", "real"),
    Quantity("log_lik_q", r"\log\tilde L", r"log of the question's product: one factor per group instead of one per observation", "real"),
    Quantity("var_beta0", r"V_{\beta_0}", r"sampling variance $\operatorname{Var}(\hat\beta_0)$ of the GLS estimate of $\beta_0$", "positive"),
    # the profiled likelihood (derivations/profile.py)
    Quantity("beta0_hat", r"\hat\beta_0(\gamma)", r"GLS estimate of $\beta_0$ given $\gamma$", "real"),
    Quantity("Q_form", r"Q(\gamma)", r"residual quadratic form $\sum_j S_j + \sum_j \tilde w_j(\bar y_j-\hat\beta_0)^2$", "positive"),
    Quantity("W_sum", r"W(\gamma)", r"sum of the scaled GLS weights, $\sum_j \tilde w_j$", "positive"),
    Quantity("logdet", r"D(\gamma)", r"log-determinant term $\sum_j \log(1+n_j\gamma)$", "positive"),
    Quantity("R_sum", r"R(\gamma)", r"$\sum_j \tilde w_j^2(\bar y_j-\hat\beta_0)^2$", "positive"),
    Quantity("U_sum", r"U(\gamma)", r"$\sum_j \tilde w_j^2$", "positive"),
    Quantity("w", r"\tilde w_j", r"scaled GLS weight of group $j$, $n_j/(1+n_j\gamma) = \sigma^2 w_j$, a function of $\gamma$ alone", "positive"),
    Quantity("nu", r"\nu", r"residual degrees of freedom of REML, $N - 1$ (one fixed effect)", "positive"),
    Quantity("m", r"m", r"a group size shared by a class of groups", "count"),
    Quantity("class_sum", r"C_m", r"$\sum_{j:\,n_j = m} \tilde w_j(\bar y_j-\beta_0)^2$, the share of the groups of size $m$", "positive"),
    Quantity("J_m", r"J_m", r"number of groups of size $m$", "few"),
    Quantity("ybar_class", r"\bar{\bar y}_m", r"mean of the group means $\bar y_j$ of the groups of size $m$", "real"),
    Quantity("spread_class", r"A_m", r"$\sum_j (\bar y_j - \bar{\bar y}_m)^2$ over the groups of size $m$", "positive"),
    # GLS and ML/REML at given variances (derivations/gls.py, ml_reml.py)
    Quantity("w_gls", r"w_j", r"GLS weight of group $j$, the precision $1/\operatorname{Var}(\bar y_j) = n_j/(\sigma^2 + n_j\sigma_b^2)$ of its mean", "positive"),
    Quantity("ell_ml", r"\ell_{\mathrm{ML}}", r"profiled log-likelihood $\max_{\beta_0} \ell(\beta_0)$ at given variances", "real"),
    Quantity("w_total", r"W", r"sum of the GLS weights, $\sum_j w_j = \sum_j n_j/(\sigma^2 + n_j\sigma_b^2)$", "positive"),
    Quantity("beta0_gls", r"\hat\beta_0", r"GLS estimate of $\beta_0$ given $\sigma^2, \sigma_b^2$", "real"),
    # the balanced design (derivations/balanced.py): all n_j = n, at least 2 groups of at least 2
    Quantity("group_size", r"n", r"common group size of a balanced design ($n_j = n$ for every $j$; $n \ge 2$)", "several"),
    Quantity("ybar_grand", r"\bar y", r"grand mean $\sum_j \bar y_j / J$ of a balanced design", "real"),
    Quantity("msw", r"\mathrm{MSW}", r"within-group mean square $\sum_j S_j / (J(n-1))$", "positive"),
    Quantity("msb", r"\mathrm{MSB}", r"between-group mean square $n \sum_j (\bar y_j - \bar y)^2 / (J-1)$", "positive"),
    Quantity("f_ratio", r"F", r"variance ratio $\mathrm{MSB}/\mathrm{MSW}$", "positive"),
    Quantity("tau", r"\tau", r"$\sigma^2 + n\sigma_b^2$, the variance of $\sqrt n\,\bar y_j$ in a balanced design", "positive"),
    Quantity("sigma_b2_ml_free", r"\tilde\sigma^2_{b,\mathrm{ML}}", r"unconstrained maximiser in $\sigma_b^2$ of the ML criterion (may be negative)", "real"),
    Quantity("sigma_b2_reml_free", r"\tilde\sigma^2_{b,\mathrm{R}}", r"unconstrained maximiser in $\sigma_b^2$ of the REML criterion (may be negative)", "real"),
    Quantity("sigma_b2_ml", r"\hat\sigma^2_{b,\mathrm{ML}}", r"ML estimate of $\sigma_b^2$ (zero at the boundary)", "nonnegative"),
    Quantity("sigma_b2_reml", r"\hat\sigma^2_{b,\mathrm{R}}", r"REML estimate of $\sigma_b^2$ (zero at the boundary)", "nonnegative"),
)

BY_CODE: dict[str, Quantity] = {q.code: q for q in QUANTITIES}


def quantity(code: str) -> Quantity:
    try:
        return BY_CODE[code]
    except KeyError:
        raise KeyError(f"no quantity named {code!r} in shrinkage.symbols") from None


def quantity_of(obj: sp.Basic) -> Quantity:
    """The registry entry of a Symbol or IndexedBase (by its name)."""
    name = obj.name if hasattr(obj, "name") else str(obj)
    return quantity(str(name))


def _standing_definitions() -> dict:
    """The sufficient statistics of one group, defined from its observations: every check
    substitutes them, so a claim written in ybar_j and S_j is checked on the data."""
    y, i, n = quantity("y").indexed, quantity("i").symbol, quantity("n").symbol
    mean = sp.Sum(y[i], (i, 1, n)) / n
    return {quantity("ybar").symbol: mean, quantity("ss_within").symbol: sp.Sum((y[i] - mean) ** 2, (i, 1, n))}


def _swaps() -> tuple:
    """The symbols a careless hand confuses, for the mutation suite."""
    sigma2, sigma_b2, ybar, beta0 = (quantity(c).symbol for c in ("sigma2", "sigma_b2", "ybar", "beta0"))
    return (("swap sigma2 and sigma_b2", {sigma2: sigma_b2, sigma_b2: sigma2}),
            ("swap ybar and beta0", {ybar: beta0, beta0: ybar}))


# the project's derivations name no notation: this table is installed as derive's default
NOTATION = use_by_default(Notation(QUANTITIES, _standing_definitions(), name="shrinkage.symbols", swaps=_swaps()))


# Convenient module-level symbols: ``from shrinkage.symbols import sigma2, n``.
beta0 = quantity("beta0").symbol
sigma2 = quantity("sigma2").symbol
sigma_b2 = quantity("sigma_b2").symbol
gamma = quantity("gamma").symbol
n = quantity("n").symbol
b = quantity("b").symbol
ybar = quantity("ybar").symbol
ss_within = quantity("ss_within").symbol
lam = quantity("lam").symbol
b_hat = quantity("b_hat").symbol
const = quantity("const").symbol
J = quantity("J").symbol
N = quantity("N").symbol
i = quantity("i").symbol
j = quantity("j").symbol
y = quantity("y").indexed
k = quantity("k").symbol
w_rest = quantity("w_rest").symbol
var_beta0 = quantity("var_beta0").symbol
log_lik_q = quantity("log_lik_q").symbol
