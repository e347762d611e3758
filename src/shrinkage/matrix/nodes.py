"""SymPy nodes a matrix derivation needs beyond SymPy's own matrix expressions.

* :class:`Scalar` is the single entry of a 1x1 matrix expression, so a quadratic form
  (y - X beta)^T (y - X beta) can be added to scalars such as log det D;
* :class:`GroupSum`, :class:`GroupMatSum` sum a term over the groups j = 1..J (the
  per-group quantities X_j, Z_j, y_j, b_j, n_j take group j's value inside);
* :class:`GroupStack` stacks a per-group column vector over the groups.

The display helpers keep terms and factors in the order an author writes them (as
shrinkage.display does for scalars); SymPy's canonical order is only for the checks.
"""

from __future__ import annotations

import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixExpr


class Scalar(sp.Expr):
    """The entry of a 1x1 matrix expression, as a scalar."""

    is_commutative = True

    def __new__(cls, matrix: MatrixExpr):
        if not isinstance(matrix, MatrixExpr) or matrix.shape != (1, 1):
            raise ValueError(f"Scalar() takes a 1x1 matrix expression, not {matrix!r}")
        return sp.Expr.__new__(cls, matrix)

    @property
    def matrix(self) -> MatrixExpr:
        return self.args[0]

    def _eval_is_real(self):
        return True

    def _latex(self, printer):
        return printer._print(self.matrix)


def _sum_latex(term, printer):
    body = printer._print(term)
    if isinstance(term, (sp.Add, sp.MatAdd)):
        body = rf"\left({body}\right)"
    return rf"\sum_{{j=1}}^{{J}} {body}"


class GroupSum(sp.Expr):
    """sum_{j=1}^{J} term, for a scalar term in group j's quantities."""

    is_commutative = True

    def __new__(cls, term: sp.Expr):
        return sp.Expr.__new__(cls, sp.sympify(term))

    @property
    def term(self) -> sp.Expr:
        return self.args[0]

    def _eval_is_real(self):
        return True

    def _latex(self, printer):
        return _sum_latex(self.term, printer)


class GroupMatSum(MatrixExpr):
    """sum_{j=1}^{J} term, for a matrix term of the same shape in every group."""

    def __new__(cls, term: MatrixExpr):
        return MatrixExpr.__new__(cls, term)

    @property
    def term(self) -> MatrixExpr:
        return self.args[0]

    @property
    def shape(self):
        return self.term.shape

    def _latex(self, printer):
        return _sum_latex(self.term, printer)


class GroupStack(MatrixExpr):
    """The column vectors term_1, ..., term_J stacked; ``rows`` is the stacked height
    (J q for q-vectors, N for n_j-vectors), which only the evaluator can compute."""

    mutable_args = (0,)  # the height is a shape: mutation testing leaves it alone

    def __new__(cls, term: MatrixExpr, rows: sp.Expr):
        return MatrixExpr.__new__(cls, term, sp.sympify(rows))

    @property
    def term(self) -> MatrixExpr:
        return self.args[0]

    @property
    def shape(self):
        return (self.args[1], self.term.shape[1])

    def _latex(self, printer):
        return rf"\left[{printer._print(self.term)}\right]_{{j=1}}^{{J}}"


class Eye(sp.Identity):
    """The identity matrix, printed with its size: I_{n_j}."""

    def _latex(self, printer):
        return rf"\mathbf I_{{{printer._print(self.rows)}}}"


# --- display helpers: written order kept, value unchanged ------------------------------
def mplus(*args: MatrixExpr) -> MatrixExpr:
    """a + b + ... of matrices, kept in the written order."""
    flat = []
    for a in args:
        flat.extend(a.args if isinstance(a, sp.MatAdd) else (a,))
    return sp.MatAdd(*flat, evaluate=False)


def mtimes(*args) -> MatrixExpr:
    """a b ... of matrices (and scalar factors), kept in the written order."""
    return sp.MatMul(*args, evaluate=False)


def mneg(x: MatrixExpr) -> MatrixExpr:
    return sp.MatMul(sp.S.NegativeOne, x, evaluate=False)


def tr(x: MatrixExpr) -> MatrixExpr:
    """x^T, unevaluated (so (y - X b)^T prints as such, not as y^T - b^T X^T)."""
    return sp.Transpose(x)


def inv(x: MatrixExpr) -> MatrixExpr:
    return sp.Inverse(x)


def quad(left: MatrixExpr, middle: MatrixExpr | None, right: MatrixExpr | None = None) -> Scalar:
    """The scalar left^T middle right (right defaults to left; middle None: left^T right)."""
    right = left if right is None else right
    if middle is None:
        return Scalar(mtimes(tr(left), right))
    return Scalar(mtimes(tr(left), middle, right))


def logdet(x: MatrixExpr) -> sp.Expr:
    return sp.log(sp.Determinant(x))
