"""Generated numpy functions from matrix results, vectorised over groups.

Inside a kernel every value is a stack of matrices, shape (..., rows, cols): a per-group
matrix such as Z_j^T Z_j is an array (J, q, q), a vector (J, q, 1), a scalar (J, 1, 1);
shared values (D, Lambda_theta, beta, sigma^2) have no leading axis and broadcast.  A
product A^{-1} B prints as numpy.linalg.solve(A, B), log det A as slogdet, a sum over
groups as a sum over axis -3.  The public function reshapes its arguments to that form
(vectors (..., q) -> (..., q, 1), scalars -> (..., 1, 1)) and its result back.
"""

from __future__ import annotations

import textwrap

import sympy as sp
from sympy.printing.numpy import NumPyPrinter

from ..derive import substitute
from ..errors import DerivationError
from .nodes import GroupMatSum, GroupSum, Scalar
from .notation import SIZES, N, n

HELPERS = '''
def _batch(name, value, rows, cols):
    """An argument as a stack of (rows x cols) matrices; vectors and scalars gain axes."""
    x = numpy.asarray(value, dtype=float)
    if not numpy.all(numpy.isfinite(x)):
        raise ValueError(f"{name} has a value that is not finite")
    if rows == 1 and cols == 1:
        return x[..., None, None]
    if cols == 1:
        if x.ndim < 1 or (rows is not None and x.shape[-1] != rows):
            raise ValueError(f"{name} must end in an axis of length {rows}, not shape {x.shape}")
        return x[..., None]
    if x.ndim < 2:
        raise ValueError(f"{name} must be a matrix (or a stack of matrices), not shape {x.shape}")
    return x
'''


def is_matrix_expr(expr: sp.Basic) -> bool:
    return bool(expr.atoms(sp.MatrixSymbol)) or expr.has(GroupSum, GroupMatSum, Scalar)


class BatchedPrinter(NumPyPrinter):
    def __init__(self):
        super().__init__({"fully_qualified_modules": True, "allow_unknown_functions": False})

    def _print_MatrixSymbol(self, expr):
        return expr.name

    def _print_Scalar(self, expr):
        return self._print(expr.matrix)

    def _print_GroupSum(self, expr):
        return f"numpy.sum({self._print(expr.term)}, axis=-3)"

    _print_GroupMatSum = _print_GroupSum

    def _print_Transpose(self, expr):
        return f"numpy.swapaxes({self._print(expr.arg)}, -1, -2)"

    def _print_Inverse(self, expr):
        return f"numpy.linalg.inv({self._print(expr.arg)})"

    def _print_Identity(self, expr):
        return f"numpy.eye({self._print(expr.rows)})"

    def _print_Determinant(self, expr):
        return f"numpy.linalg.det({self._print(expr.arg)})[..., None, None]"

    def _print_log(self, expr):
        if isinstance(expr.args[0], sp.Determinant):
            return f"numpy.linalg.slogdet({self._print(expr.args[0].arg)})[1][..., None, None]"
        return super()._print_log(expr)

    def _print_MatAdd(self, expr):
        return "(" + " + ".join(self._print(a) for a in expr.args) + ")"

    def _print_MatMul(self, expr):
        scalars = [a for a in expr.args if not isinstance(a, sp.MatrixExpr)]
        mats = [a for a in expr.args if isinstance(a, sp.MatrixExpr)]
        out = self._print(mats[-1])
        for a in reversed(mats[:-1]):
            if isinstance(a, sp.Inverse):
                out = f"numpy.linalg.solve({self._print(a.arg)}, {out})"
            else:
                out = f"numpy.matmul({self._print(a)}, {out})"
        if scalars:
            out = f"({self._print(sp.Mul(*scalars))}) * {out}"
        return out


def export_expression(cd, export) -> sp.Expr:
    """The rhs of the exported step with every definition substituted, except the
    quantities that are arguments of the function (e.g. the cross-products)."""
    d = cd.derivation
    rhs = d.steps[d.step_index(export.label)].rhs
    defs = {s: e for s, e in cd.definitions.items() if s not in export.args}
    return substitute(rhs, defs, keep_sums=True)


def _shape(a):
    return (a.rows, a.cols) if isinstance(a, sp.MatrixSymbol) else (1, 1)


def export_source(name: str, expr: sp.Expr, args: tuple, doc: str) -> str:
    names = {a.name for a in args}
    free = {s.name for s in expr.free_symbols if isinstance(s, (sp.Symbol, sp.MatrixSymbol))} - {s.name for s in SIZES}
    if free - names:
        raise DerivationError(f"export {name} uses {sorted(free - names)}, which are not among its arguments")
    sizes = []
    for s in sorted((expr.free_symbols & set(SIZES)) - set(args), key=str):
        if s == N and n in args:  # the total number of observations: the sum of the group sizes
            sizes.append(f"    {s} = numpy.sum({n.name}, axis=-3)\n")
            continue
        where = next(((a.name, axis) for a in args if isinstance(a, sp.MatrixSymbol)
                      for axis, dim in ((-2, a.rows), (-1, a.cols)) if dim == s), None)
        if where is None:
            raise DerivationError(f"export {name}: size {s} is not the size of any argument")
        sizes.append(f"    {s} = {where[0]}.shape[{where[1]}]\n")
    body = BatchedPrinter().doprint(expr)
    params = ", ".join(a.name for a in args)
    kernel = f"def _{name}({params}):\n" + "".join(sizes) + f"    return {body}\n"
    rows, cols = expr.shape if isinstance(expr, sp.MatrixExpr) else (1, 1)
    unwrap = "[..., 0, 0]" if (rows, cols) == (1, 1) else ("[..., 0]" if cols == 1 else "")
    conv = "".join(
        f"    {a.name} = _batch({a.name!r}, {a.name}, {_dim(_shape(a)[0])}, {_dim(_shape(a)[1])})\n" for a in args
    )
    docstring = textwrap.indent(doc.strip(), "    ").strip()
    public = (f"def {name}({params}):\n    \"\"\"{docstring}\n    \"\"\"\n{conv}"
              f"    return _{name}({params}){unwrap}\n")
    return kernel + "\n" + public


def _dim(d):
    return int(d) if isinstance(d, int) or getattr(d, "is_Integer", False) else None
