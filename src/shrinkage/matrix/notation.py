"""The quantities of the linear mixed model y_j = X_j beta + Z_j b_j + eps_j.

One entry per quantity: its SymPy object (a MatrixSymbol of symbolic shape, or a
scalar Symbol), its LaTeX name, its code name (the SymPy name), its meaning, and how a
check draws a random value for it (``kind``) at concrete sizes.  Shapes are written in
the size symbols n (= n_j, observations in group j), p (fixed effects), q (random
terms per group), J (groups) and N (all observations).

Scopes: ``group`` quantities take group j's value (inside a sum over groups, each
group's own); ``global`` ones are shared; ``stacked`` ones are built from the groups'
values (X = [X_1; ...; X_J], Z = blockdiag(Z_1, ..., Z_J)); ``defined`` ones have no
values of their own, only a Define step that gives them a meaning.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..derive import Notation
from ..symbols import NOTATION, J, N, Quantity, n, sigma2

p = sp.Symbol("p", integer=True, positive=True)
q = sp.Symbol("q", integer=True, positive=True)
SIZES = (n, p, q, J, N)


@dataclass(frozen=True)
class MatrixQuantity:
    code: str
    latex: str
    meaning: str
    rows: sp.Expr
    cols: sp.Expr
    kind: str = "real"  # real | spd | lower | defined
    scope: str = "group"  # group | global | stacked | blockdiag | defined

    @property
    def symbol(self) -> sp.MatrixSymbol:
        return sp.MatrixSymbol(self.code, self.rows, self.cols)


def _m(code, latex, meaning, rows, cols, kind="real", scope="group"):
    return MatrixQuantity(code, latex, meaning, rows, cols, kind, scope)


MATRICES: tuple[MatrixQuantity, ...] = (
    _m("y_j", r"\mathbf y_j", r"responses of group $j$ ($n_j \times 1$)", n, 1),
    _m("X_j", r"\mathbf X_j", r"fixed-effects design of group $j$", n, p),
    _m("Z_j", r"\mathbf Z_j", r"random-effects design of group $j$", n, q),
    _m("b_j", r"\mathbf b_j", r"random effects of group $j$ ($q \times 1$)", q, 1),
    _m("beta", r"\boldsymbol\beta", r"fixed effects ($p \times 1$)", p, 1, scope="global"),
    _m("D", r"\mathbf D", r"covariance of $\mathbf b_j$ (positive definite)", q, q, "spd", "global"),
    _m("Lambda_theta", r"\boldsymbol\Lambda_\theta", r"lme4's relative covariance factor (entries $\theta$)", q, q, "lower", "global"),
    # sufficient statistics of group j (defined from the data)
    _m("ZtZ_j", r"\mathbf Z_j^{\mathsf T}\mathbf Z_j", r"a cross-product of group $j$'s data", q, q, "defined", "defined"),
    _m("ZtX_j", r"\mathbf Z_j^{\mathsf T}\mathbf X_j", r"a cross-product of group $j$'s data", q, p, "defined", "defined"),
    _m("XtX_j", r"\mathbf X_j^{\mathsf T}\mathbf X_j", r"a cross-product of group $j$'s data", p, p, "defined", "defined"),
    _m("Zty_j", r"\mathbf Z_j^{\mathsf T}\mathbf y_j", r"a cross-product of group $j$'s data", q, 1, "defined", "defined"),
    _m("Xty_j", r"\mathbf X_j^{\mathsf T}\mathbf y_j", r"a cross-product of group $j$'s data", p, 1, "defined", "defined"),
    # derived per-group matrices
    _m("C_j", r"\mathbf C_j", r"conditional precision of $\mathbf b_j$", q, q, "defined", "defined"),
    _m("b_hat_j", r"\hat{\mathbf b}_j", r"BLUP (conditional mode) of $\mathbf b_j$", q, 1, "defined", "defined"),
    _m("b_ls_j", r"\tilde{\mathbf b}_j", r"group $j$'s own estimate of $\mathbf b_j$", q, 1, "defined", "defined"),
    _m("Shrink_j", r"\boldsymbol\Lambda_j", r"matrix shrinkage factor of group $j$", q, q, "defined", "defined"),
    _m("V_j", r"\mathbf V_j", r"marginal covariance of $\mathbf y_j$", n, n, "defined", "defined"),
    _m("u_j", r"\tilde{\mathbf u}_j", r"conditional mode of lme4's spherical effects $\boldsymbol\Lambda_\theta^{-1}\mathbf b_j$", q, 1, "defined", "defined"),
    _m("e_j", r"\tilde{\mathbf e}_j", r"residual of group $j$ at the conditional modes", n, 1, "defined", "defined"),
    _m("u_hat_j", r"\hat{\mathbf u}_j", r"$\tilde{\mathbf u}_j$ at the GLS estimate $\hat{\boldsymbol\beta}_\theta$", q, 1, "defined", "defined"),
    _m("Zte_hat_j", r"\mathbf Z_j^{\mathsf T}\hat{\mathbf e}_j", r"cross-product of the random terms' columns with group $j$'s residual at $\hat{\boldsymbol\beta}_\theta$, $\hat{\mathbf u}_j$", q, 1, "defined", "defined"),
    _m("W_j", r"\mathbf W_j", r"$\mathbf Z_j^{\mathsf T}\mathbf X_j$ less its part explained by the conditional mode", q, p, "defined", "defined"),
    _m("M_j", r"\mathbf M_j", r"lme4's $\mathbf L_\theta\mathbf L_\theta^{\mathsf T}$ for group $j$", q, q, "defined", "defined"),
    # all groups together (derivation lmm_henderson)
    _m("y_all", r"\mathbf y", r"all responses, $[\mathbf y_1; \dots; \mathbf y_J]$ ($N \times 1$)", N, 1, "real", "stacked"),
    _m("X_all", r"\mathbf X", r"all fixed-effects designs stacked ($N \times p$)", N, p, "real", "stacked"),
    _m("Z_all", r"\mathbf Z", r"$\operatorname{diag}(\mathbf Z_1, \dots, \mathbf Z_J)$", N, J * q, "real", "blockdiag"),
    _m("b_all", r"\mathbf b", r"all random effects, $[\mathbf b_1; \dots; \mathbf b_J]$ ($Jq \times 1$)", J * q, 1, "real", "stacked"),
    # profiled likelihood (derivation lmm_profile)
    _m("A_D", r"\mathbf A", r"$\sigma^2 \sum_j \mathbf X_j^{\mathsf T}\mathbf V_j^{-1}\mathbf X_j$, in $\mathbf D$ and $\sigma^2$", p, p, "defined", "defined"),
    _m("c_D", r"\mathbf c", r"$\sigma^2 \sum_j \mathbf X_j^{\mathsf T}\mathbf V_j^{-1}\mathbf y_j$, in $\mathbf D$ and $\sigma^2$", p, 1, "defined", "defined"),
    _m("A_theta", r"\mathbf A_\theta", r"$\sigma^2 \sum_j \mathbf X_j^{\mathsf T}\mathbf V_j^{-1}\mathbf X_j$", p, p, "defined", "defined"),
    _m("c_theta", r"\mathbf c_\theta", r"$\sigma^2 \sum_j \mathbf X_j^{\mathsf T}\mathbf V_j^{-1}\mathbf y_j$", p, 1, "defined", "defined"),
    _m("beta_gls", r"\hat{\boldsymbol\beta}", r"GLS estimate of $\boldsymbol\beta$ given $\mathbf D$ and $\sigma^2$", p, 1, "defined", "defined"),
    _m("beta_hat", r"\hat{\boldsymbol\beta}_\theta", r"GLS estimate of $\boldsymbol\beta$ given $\theta$", p, 1, "defined", "defined"),
)

SCALARS: tuple[Quantity, ...] = (
    Quantity("p", "p", "number of fixed effects", "count"),
    Quantity("q", "q", "number of random terms per group", "count"),
    Quantity("yty", r"\mathbf y_j^{\mathsf T}\mathbf y_j", r"sum of squares of group $j$'s responses", "positive"),
    Quantity("r2_beta", r"r^2_\theta(\boldsymbol\beta)", r"penalised residual sum of squares at $\boldsymbol\beta$", "positive"),
    Quantity("r2_theta", r"r^2_\theta", r"penalised residual sum of squares at $\hat{\boldsymbol\beta}_\theta$", "positive"),
    Quantity("logdet_RX", r"\log\lvert\mathbf R_X\rvert^2", r"$\log\det\mathbf A_\theta$ (lme4's)", "real"),
    Quantity("logdet_M", r"\log\lvert\mathbf L_\theta\rvert^2", r"$\sum_j \log\det\mathbf M_j$ (lme4's)", "real"),
)

BY_CODE = {m.code: m for m in MATRICES}
# stacked quantity -> (the per-group quantity it is built from, how)
STACKED_FROM = {"y_all": ("y_j", "stack"), "X_all": ("X_j", "stack"), "Z_all": ("Z_j", "blockdiag"),
                "b_all": ("b_j", "stack")}
SCALAR_BY_CODE = {s.code: s for s in SCALARS}


def matrix(code: str) -> sp.MatrixSymbol:
    try:
        return BY_CODE[code].symbol
    except KeyError:
        raise KeyError(f"no matrix named {code!r} in shrinkage.matrix.notation") from None


def scalar(code: str) -> sp.Symbol:
    return SCALAR_BY_CODE[code].symbol


def matrix_quantity(sym: sp.MatrixSymbol) -> MatrixQuantity:
    try:
        return BY_CODE[sym.name]
    except KeyError:
        raise KeyError(f"no matrix named {sym.name!r} in shrinkage.matrix.notation") from None


y_j, X_j, Z_j, b_j = (matrix(c) for c in ("y_j", "X_j", "Z_j", "b_j"))
beta, D, Lambda_theta = matrix("beta"), matrix("D"), matrix("Lambda_theta")
ZtZ, ZtX, XtX, Zty, Xty = (matrix(c) for c in ("ZtZ_j", "ZtX_j", "XtX_j", "Zty_j", "Xty_j"))
yty = scalar("yty")
__all__ = ["p", "q", "n", "J", "N", "sigma2", "MATRICES", "SCALARS"]


class MatrixNotation(Notation):
    """The project's notation (scalars, standing definitions) plus the matrix model's
    scalars and its matrices.  The renderer asks a notation for ``matrix_names`` (the
    LaTeX names of MatrixSymbols) and ``matrix_rows`` (their symbols-table rows), so the
    matrices print by name without being scalar Quantities."""

    def __init__(self):
        super().__init__(NOTATION.quantities + SCALARS, NOTATION.definitions, name="shrinkage.matrix",
                         swaps=NOTATION.swaps)
        self.matrices = MATRICES
        self.matrix_names = {m.symbol: m.latex for m in MATRICES}

    @property
    def mutation(self):
        """The mutation operators and equivalence test for matrix expressions."""
        from .mutate import MUTATION

        return MUTATION

    def matrix_rows(self, used: set[str]) -> list[tuple[str, str, str]]:
        """(LaTeX, meaning, code) of the matrices named in ``used``, in table order."""
        return [(m.latex, m.meaning, m.code) for m in self.matrices if m.code in used]


MATRIX_NOTATION = MatrixNotation()  # the notation of every lmm_* derivation
