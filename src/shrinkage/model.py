"""The random-intercept model, stated once, and the chains every derivation shares.

    y_ij = beta0 + b_j + eps_ij,   b_j ~ N(0, sigma_b^2),   eps_ij ~ N(0, sigma^2).

Derivations start from these statements; the verifier's oracles (dense covariance,
quadrature of the joint density) are built from them too, never from a derived result.
The chains below (the opening chain from the joint log-density to the sufficient
statistics, the completed square, the integral over b_j) and the expressions they lead
to (lambda_j, the log-constants c_j, the marginal group log-likelihood) are written here
once; blup, marginal, laplace, profile, pls, ... put them in their own documents.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import sympy as sp
from sympy.codegen.cfunctions import log1p

from .derive.steps import Define, Equals, LogIntegral, Premise, Statement, Substitute
from .display import frac, half, neg, terms, times
from .errors import DerivationError
from .symbols import NOTATION, J, b, b_hat, beta0, const, i, j, k, n, quantity, sigma2, sigma_b2, ss_within, y, ybar

TWO_PI = 2 * sp.pi


def normal_logpdf(x: sp.Expr, mean: sp.Expr, var: sp.Expr) -> sp.Expr:
    """log N(x; mean, var), written out as the textbook density (in the textbook order)."""
    deviation = x if mean == 0 else terms(x, neg(mean))
    return terms(neg(half(sp.log(times(2, sp.pi, var)))), neg(frac(deviation**2, times(2, var))))


# --- all groups: the joint log-density of (y, b), a sum over *every* observation ---
n_j = quantity("n").indexed
b_j = quantity("b").indexed
ybar_j = quantity("ybar").indexed
ss_j = quantity("ss_within").indexed


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
    model = (r"$y_{ij} = \beta_0 + b_j + \varepsilon_{ij}$ with $b_j \sim N(0, \sigma_b^2)$ and "
             r"$\varepsilon_{ij} \sim N(0, \sigma^2)$, all independent")
    return (
        Statement("joint_all_groups", joint_logdensity_all_groups(), r"\log p(\mathbf y, \mathbf b)",
                  model + r": the joint log-density of $(\mathbf y, \mathbf b)$ over every observation "
                  r"$i = 1, \dots, n_j$ of every group $j = 1, \dots, J$."),
        Statement("group_joint", group_joint_logdensity(), r"\ell_j(b_j)",
                  model + r": the log-density of group $j$'s data given $b_j$ plus that of $b_j$."),
        Statement("joint_by_group", sp.Sum(ell_j[j], (j, 1, J)), r"\log p(\mathbf y, \mathbf b)",
                  r"The groups are independent given the parameters (the model): the joint log-density is the sum "
                  r"over the groups of their terms $\ell_j(b_j)$, and $b_j$ appears in the $j$-th term only."),
        Statement("group_and_others", terms(quantity("ell_group").symbol, sp.Sum(L_j[k], (k, 1, J - 1))),
                  r"\log p(\mathbf y, b_j)",
                  r"The groups are independent (the model): the joint log-density of the data and $b_j$ is group "
                  r"$j$'s term $\ell_j(b_j)$ plus the marginal log-likelihoods $L_k$ of the other groups, numbered "
                  r"$k = 1, \dots, J - 1$."),
        Statement("independent_groups", sp.Sum(L_j[j], (j, 1, J)), r"\ell",
                  r"The groups are independent (the model): the log-likelihood of the parameters is the sum over "
                  r"the groups of their marginal log-likelihoods $L_j = \log p(\mathbf y_j)$."),
    )


L_j = quantity("loglik_group").indexed
ell_j = quantity("ell_group").indexed
JOINT_ALL_GROUPS, GROUP_JOINT, JOINT_BY_GROUP, GROUP_AND_OTHERS, INDEPENDENT_GROUPS = _statements()
PREMISES = {s.name: s for s in (JOINT_ALL_GROUPS, GROUP_JOINT, JOINT_BY_GROUP, GROUP_AND_OTHERS, INDEPENDENT_GROUPS)}  # every premise of the project's derivations


# ----------------------------------------------------------------------------------
# Expressions that recur in several derivations, written once
# ----------------------------------------------------------------------------------
RESID = terms(ybar, neg(beta0))  # the group's deviation ybar_j - beta0
PRECISION = terms(frac(n, sigma2), frac(1, sigma_b2))  # n_j/sigma^2 + 1/sigma_b^2, of b_j given y_j
LOG_CONSTANTS = terms(neg(half(times(n, sp.log(TWO_PI * sigma2)))), neg(half(sp.log(TWO_PI * sigma_b2))))
LAMBDA = frac(sigma_b2, terms(sigma_b2, frac(sigma2, n)))  # the shrinkage factor lambda_j


def var_group_mean(size: sp.Expr = n) -> sp.Expr:
    """Var(ybar_j) = sigma_b^2 + sigma^2/n_j."""
    return terms(sigma_b2, frac(sigma2, size))


def in_statistics(b_value: sp.Expr = b) -> sp.Expr:
    """log p(y_j, b_j) in the sufficient statistics: c_j - (S_j + n_j(ybar_j - beta0 - b_j)^2)/(2 sigma^2) - b_j^2/(2 sigma_b^2)."""
    return terms(
        const,
        neg(frac(terms(ss_within, times(n, terms(ybar, neg(beta0), neg(b_value)) ** 2)), times(2, sigma2))),
        neg(frac(b_value**2, times(2, sigma_b2))),
    )


def completed_square() -> sp.Expr:
    """log p(y_j, b_j) with the square in b_j completed about b_hat_j."""
    return terms(
        neg(half(times(PRECISION, (b - b_hat) ** 2))),
        neg(frac(RESID**2, times(2, var_group_mean()))),
        neg(frac(ss_within, times(2, sigma2))),
        const,
    )


def marginal_group_loglik(size=n, mean=ybar, ss=ss_within, centre=beta0, stable: bool = True) -> sp.Expr:
    """log p(y_j), the marginal log-density of group j, in its sufficient statistics.

    ``stable`` is the form the generated code evaluates: log1p, and no division by n_j;
    otherwise the textbook form the integral over b_j gives.  Pass ``n_j[j]`` etc. for
    the j-th term of a sum over groups, and another ``centre`` for beta0 at an estimate."""
    deviation = terms(mean, neg(centre)) ** 2
    if stable:
        return terms(
            neg(half(times(size, sp.log(TWO_PI * sigma2)))),
            neg(half(log1p(frac(times(size, sigma_b2), sigma2)))),
            neg(frac(ss, times(2, sigma2))),
            neg(frac(times(size, deviation), times(2, terms(sigma2, times(size, sigma_b2))))),
        )
    return terms(
        neg(half(times(size, sp.log(TWO_PI * sigma2)))),
        neg(half(sp.log(terms(1, frac(times(size, sigma_b2), sigma2))))),
        neg(frac(ss, times(2, sigma2))),
        neg(frac(deviation, times(2, var_group_mean(size)))),
    )


# ----------------------------------------------------------------------------------
# Shared chains: functions returning steps, so each document shows them in full
# ----------------------------------------------------------------------------------
def opening_chain(lhs: str = r"\ell_j(b_j)", why: str = "") -> tuple:
    """From the joint log-density of group j's data and b_j to its sufficient statistics:
    the model statement (premise), the constants c_j, the written-out densities, and
    sum_i (y_ij - beta0 - b_j)^2 = S_j + n_j (ybar_j - beta0 - b_j)^2 (label ``in_statistics``)."""
    return (
        Premise.of(GROUP_JOINT, lhs=lhs, why=why or None),
        Define(LOG_CONSTANTS, symbol=const,
               why=r"Collect the normalising constants, which involve neither $b_j$ nor the data."),
        Equals(
            terms(
                const,
                neg(frac(sp.Sum(terms(y[i], neg(beta0), neg(b)) ** 2, (i, 1, n)), times(2, sigma2))),
                neg(frac(b**2, times(2, sigma_b2))),
            ),
            why=r"Write out the two normal log-densities.",
        ),
        Equals(
            in_statistics(),
            label="in_statistics",
            why=r"Add and subtract $\bar y_j$: $\sum_i (y_{ij}-\beta_0-b_j)^2 = S_j + n_j(\bar y_j-\beta_0-b_j)^2$, as the cross term sums to zero. The data enter only through $n_j$, $\bar y_j$ and $S_j$.",
        ),
    )


def completing_the_square(why: str = "") -> tuple:
    """Name the centre b_hat_j of the square and complete it (label ``completed_square``)."""
    return (
        Define(frac(times(frac(n, sigma2), RESID), PRECISION), symbol=b_hat,
               why=r"Name the centre of the square that the next step completes."),
        Equals(
            completed_square(),
            label="completed_square",
            why=why or r"Complete the square in $b_j$: the quadratic $-\tfrac12(n_j/\sigma^2 + 1/\sigma_b^2)\,b_j^2 + (n_j/\sigma^2)(\bar y_j-\beta_0)\,b_j$ plus terms free of $b_j$.",
        ),
    )


def integrating_out(lhs: str = r"\log p(\mathbf y_j) = \log\!\int_{-\infty}^{\infty}\! e^{\ell_j(b)}\, db") -> tuple:
    """From the completed square to log p(y_j): the Gaussian integral over b_j, then the
    constants combined (label ``marginal``, the textbook form)."""
    return (
        LogIntegral(
            terms(
                half(sp.log(frac(TWO_PI, PRECISION))),
                neg(frac(RESID**2, times(2, var_group_mean()))),
                neg(frac(ss_within, times(2, sigma2))),
                const,
            ),
            var=b,
            centre=b_hat,
            scale=1 / sp.sqrt(PRECISION),
            lhs=lhs,
            why=r"Integrate $b_j$ over the real line: $\int e^{-\frac12 a (b-\hat b)^2}\,db = \sqrt{2\pi/a}$, and the other terms are free of $b_j$.",
        ),
        Equals(
            marginal_group_loglik(stable=False),
            label="marginal",
            why=r"Substitute $c_j$ and combine the logarithms: $\tfrac12\log(2\pi) - \tfrac12\log(2\pi\sigma_b^2) - \tfrac12\log(n_j/\sigma^2 + 1/\sigma_b^2) = -\tfrac12\log(1 + n_j\sigma_b^2/\sigma^2)$. The marginal log-density of group $j$ depends on its data only through $n_j$, $\bar y_j$ and $S_j$.",
        ),
    )


# ----------------------------------------------------------------------------------
# Equations referred to by label
# ----------------------------------------------------------------------------------
_REF = re.compile(r"\\eqref\{@(?:([a-z_]+):)?([a-z_0-9]+)\}")


def with_references(d):
    """Resolve ``\\eqref{@label}`` in the summary and in every step's justification to
    ``\\eqref{name:k}``, k the number of the step labelled ``label``: a derivation refers
    to its equations by label, so inserting a step never leaves a stale number.  A
    reference to another derivation (``@other:label``) is left for the composer of
    documents that show both (the answer)."""
    from dataclasses import replace

    def fix(m: re.Match) -> str:
        name, label = m.group(1), m.group(2)
        if name not in (None, d.name):
            return m.group(0)
        return rf"\eqref{{{d.name}:{d.step_index(label) + 1}}}"

    steps = tuple(replace(s, why=_REF.sub(fix, s.why)) for s in d.steps)
    return replace(d, summary=_REF.sub(fix, d.summary), steps=steps)


# ----------------------------------------------------------------------------------
# Citing another derivation
# ----------------------------------------------------------------------------------
_SIBLINGS: dict = {}
MARGINAL = ("marginal", "marginal_stable")  # where log p(y_j) is derived: derivation, label


def cite_group_loglik(d, here: str, as_label: str = "group_loglik"):
    """``d`` continued with log p(y_j), cited from derivation marginal (checked with it)."""
    return d.cite(sibling(MARGINAL[0], here), MARGINAL[1], lhs=r"L_j = \log p(\mathbf y_j)", as_label=as_label,
                  why=r"The marginal log-likelihood of group $j$, derived in document \emph{marginal}: $b_j$ integrated out of the model's joint density.")


def sum_over_groups(d, here: str, lhs: str = r"\ell", size: sp.Expr | None = None, label: str = "loglik",
                    cite: bool = True):
    """``d`` continued with the log-likelihood of all groups: log p(y_j) cited from
    derivation marginal (unless ``cite`` is False: cited already), the premise that groups
    are independent, then log p(y_j) put in for every L_j (the j-th term built from the
    cited step, never re-typed; ``size`` replaces n_j, e.g. by a common group size)."""
    if cite:
        d = cite_group_loglik(d, here)
    source = sibling(MARGINAL[0], here).step(MARGINAL[1]).rhs
    term = xreplace_indexed(source, size)
    return d.then(
        Premise.of(INDEPENDENT_GROUPS, lhs=lhs),
        Substitute(sp.Sum(term, (j, 1, J)), values={L_j[j]: term}, label=label,
                   why=r"Put in $L_j = \log p(\mathbf y_j)$ of document \emph{marginal}, the same for every group, with the group's own statistics."),
    )


def xreplace_indexed(expr: sp.Expr, size: sp.Expr | None = None, index: sp.Symbol = j) -> sp.Expr:
    """One group's expression in the scalars n_j, ybar_j, S_j as the term ``index`` of a
    sum over groups (n_j[j], ybar[j], ss_within[j]); ``size`` in place of n_j if given."""
    return expr.xreplace({n: n_j[index] if size is None else size, ybar: ybar_j[index], ss_within: ss_j[index]})


def sibling(name: str, here: str):
    """The derivation built by ``<name>.py`` in the folder of the derivation file ``here``
    (pass ``__file__``): the source of a citation (``Derivation.cite``), so a result of
    another derivation is restated from it and checked against it, never re-typed."""
    path = Path(here).resolve().parent / f"{name}.py"
    if not path.is_file():
        raise DerivationError(f"{Path(here).name} cites derivation {name!r}, but there is no {path}")
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _SIBLINGS:
        spec = importlib.util.spec_from_file_location(f"shrinkage_derivations.{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _SIBLINGS[key] = module.derivation()
    return _SIBLINGS[key]
