"""The numba backend of the code generator: a derivation's per-group matrix formula as
straight-line Python for one value of q, which numba compiles.

:mod:`.codegen` prints a formula as numpy calls vectorised over groups; a compiled kernel
instead loops over the groups, and inside the loop a q x q quantity is q^2 local scalars
(an array of that size costs more in loop overhead than its arithmetic, see
shrinkage.lmm.pls_kernels).  So here the formula is multiplied out: every matrix symbol
is bound to a SymPy matrix of entry symbols (the kernel's locals: ``l1_0`` is
Lambda_theta[1, 0]), the products are formed entry by entry (:class:`Explicit`), common
subexpressions are shared (sympy.cse) and every entry is printed as one assignment
(:func:`assign`).  What is never unrolled:

- an inverse M^-1 of a symmetric positive definite M (Lambda'Z'Z Lambda + I, Z'Z): the
  kernel factors M = L L' (:func:`cholesky_lines`, an algorithm, not a formula) and the
  formula reads M^-1 = N'N with N = L^-1 (:func:`triangular_inverse_lines`);
- the fixed-effect dimension p: a q x p product with a p-vector (Z'X beta) is a loop over
  p (:func:`contraction_lines`), and a formula linear in a q x p matrix (W_j = Z'X - ...)
  is its q x q operator, formed once a group and applied column by column
  (:func:`operator`), so one kernel per q serves every p.

Importing this module imports SymPy; the fit calls it once per q (shrinkage.lmm.derived).
"""

from __future__ import annotations

import random

import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from ..errors import DerivationError
from .nodes import GroupMatSum, GroupSum, Scalar

__all__ = ["Explicit", "entries", "vector", "assign", "operator", "group_sum", "cholesky_lines",
           "triangular_inverse_lines", "contraction_lines", "step_comment", "vanishes", "scalar_function"]


def entries(prefix: str, q: int, cols: int | None = None, lower: bool = False, symmetric: bool = False) -> sp.Matrix:
    """A q x cols matrix of entry symbols ``prefix{a}_{b}``: ``lower``: zero above the
    diagonal; ``symmetric``: (a, b) and (b, a) one symbol (the lower one)."""
    def entry(a, b):
        if lower and b > a:
            return sp.S.Zero
        if symmetric and b > a:
            a, b = b, a
        return sp.Symbol(f"{prefix}{a}_{b}")
    return sp.Matrix(q, q if cols is None else cols, entry)


def vector(prefix: str, q: int) -> sp.Matrix:
    """A q-vector of entry symbols ``prefix{a}``."""
    return sp.Matrix(q, 1, lambda a, _: sp.Symbol(f"{prefix}{a}"))


class Explicit:
    """A matrix formula multiplied out into a SymPy matrix of scalar expressions.

    ``leaves`` binds each symbol of the formula (MatrixSymbol or scalar Symbol) to its
    entries; ``inverses`` is a tuple of (M, entries of M^-1): an Inverse must be of one of
    those M (compared as expressions), nothing is inverted symbolically; ``products`` binds
    a product (A, v) of two adjacent factors to the entries of A v (a loop over p in the
    kernel); ``sizes`` gives the dimension symbols (q) their values.  A symbol, inverse or
    node that is not bound raises DerivationError naming it: the kernel would not compute
    the formula the step states."""

    def __init__(self, leaves: dict, inverses: tuple = (), products: dict | None = None, sizes: dict | None = None):
        self.leaves, self.inverses, self.products, self.sizes = leaves, inverses, products or {}, sizes or {}

    def __call__(self, expr):
        if expr in self.leaves:
            return self.leaves[expr]
        if isinstance(expr, (sp.MatrixSymbol, sp.Symbol)):
            raise DerivationError(f"the kernel has no value for {expr} (bind it as a leaf)")
        if isinstance(expr, Scalar):
            return self(expr.matrix)[0, 0]
        if isinstance(expr, sp.Inverse):
            for M, value in self.inverses:
                if expr.arg == M:
                    return value
            raise DerivationError(f"the kernel inverts only factored matrices, not {expr.arg}")
        if isinstance(expr, sp.Transpose):
            return self(expr.arg).T
        if isinstance(expr, sp.Identity):
            return sp.eye(int(expr.rows.subs(self.sizes)))
        if isinstance(expr, sp.MatMul):
            return self._product(expr.args)
        if isinstance(expr, sp.MatAdd):
            return sum((self(a) for a in expr.args[1:]), self(expr.args[0]))
        if isinstance(expr, (GroupSum, GroupMatSum)):
            raise DerivationError("a sum over the groups is the kernel's loop: pass its term (group_sum)")
        if isinstance(expr, sp.Number):
            return expr
        if isinstance(expr, (sp.Add, sp.Mul, sp.Pow)):
            return expr.func(*(self(a) for a in expr.args))
        raise DerivationError(f"the numba backend cannot write {type(expr).__name__}: {expr}")

    def _product(self, args):
        scalar, mats, k = sp.S.One, [], 0
        while k < len(args):
            a = args[k]
            if not isinstance(a, sp.MatrixExpr):
                scalar *= self(a)
            elif k + 1 < len(args) and (a, args[k + 1]) in self.products:
                mats.append(self.products[(a, args[k + 1])])
                k += 1
            else:
                mats.append(self(a))
            k += 1
        out = mats[-1]
        for m in reversed(mats[:-1]):  # right to left: matrix times vector first, where the formula allows
            out = m * out
        return out * scalar if scalar != 1 else out


def group_sum(expr) -> tuple:
    """(c, term) for a step whose rhs is c sum_j term (c a number): the kernel adds the
    term group by group and multiplies by c once."""
    if isinstance(expr, (GroupMatSum, GroupSum)):
        return sp.S.One, expr.args[0]
    if isinstance(expr, (sp.MatMul, sp.Mul)):
        scalars = [a for a in expr.args if not a.has(GroupMatSum, GroupSum)]
        rest = [a for a in expr.args if a.has(GroupMatSum, GroupSum)]
        if len(rest) == 1:
            c, term = group_sum(rest[0])
            return sp.Mul(*scalars) * c, term
    raise DerivationError(f"not a scalar times one sum over the groups: {expr}")


def scalar_function(name: str, expr, args, comment: str) -> str:
    """A Python function ``name(args)`` returning the scalar formula ``expr`` (math's log)."""
    free = {s.name for s in expr.free_symbols} - {a.name for a in args}
    if free:
        raise DerivationError(f"{name}: the formula uses {sorted(free)}, which are not among its arguments")
    return (f"def {name}({', '.join(a.name for a in args)}):\n    {comment}\n"
            f"    return {_Printer().doprint(expr)}\n")


class _Printer(PythonCodePrinter):
    """Python for numba: x**2 as x*x (exact, and no call to pow)."""

    def _print_Pow(self, expr, rational=False):
        if expr.exp == 2:
            return f"{self.parenthesize(expr.base, 100)}*{self.parenthesize(expr.base, 100)}"
        if expr.exp == -1:
            return f"1.0/{self.parenthesize(expr.base, 100)}"
        return super()._print_Pow(expr, rational)


def assign(targets, temp: str, op: str = "=") -> list:
    """Lines ``name op value`` for (name, expression) pairs, their common subexpressions
    first as ``temp0 = ...`` (prefix ``temp``, unique to the block)."""
    targets = [(n, e) for n, e in targets]
    reps, reduced = sp.cse([e for _, e in targets], symbols=sp.numbered_symbols(temp), order="none")
    printer = _Printer()
    return ([f"{s} = {printer.doprint(e)}" for s, e in reps]
            + [f"{n} {op} {printer.doprint(e)}" for (n, _), e in zip(targets, reduced)])


def vanishes(value: sp.Matrix, fixed: dict | None = None) -> bool:
    """value is zero at a random rational point (exactly; ``fixed`` sets some symbols): a
    polynomial identity that fails somewhere fails at almost every point."""
    rng = random.Random(len(value))
    point = {s: sp.Rational(rng.randint(-97, 97), 13) for s in value.free_symbols}
    point.update(fixed or {})
    return value.xreplace(point) == sp.zeros(*value.shape)


def operator(value: sp.Matrix, column: sp.Matrix) -> sp.Matrix:
    """The matrix B with value = B column, for a value linear in the column (checked at a
    random point: a value that is not linear in it has no such B)."""
    B = value.jacobian(column)
    if not vanishes(value - B * column, {s: sp.Rational(k + 3, 7) for k, s in enumerate(column)}):
        raise DerivationError("the formula is not linear in the fixed-effect columns: no operator to apply column by column")
    return B


def step_comment(derivation, step) -> str:
    """``# derivation NAME, step K (LABEL)``: where the lines below it come from."""
    number = list(derivation.steps).index(step) + 1
    what = step.label or (f"definition of {step.symbol}" if getattr(step, "symbol", None) is not None else "")
    return f"# derivation {derivation.name}, step {number}" + (f" ({what})" if what else "")


def _sum(terms, start: str = "") -> str:
    """``start + t0 + t1 ...`` (``start - ...`` for terms beginning with '-'), or 0.0."""
    out = start
    for t in terms:
        if t.startswith("-"):
            out = f"{out} - {t[1:]}" if out else f"-{t[1:]}"
        else:
            out = f"{out} + {t}" if out else t
    return out or "0.0"


def cholesky_lines(q: int, entry: str, fail: str) -> list:
    """Lines of L L' = the symmetric matrix whose lower entries are named ``entry``a_b
    (Cholesky, column by column): pivots D_i, L_ij, and I_i = 1 / L_ii; ``fail`` is the
    statement when a pivot is not positive (rounding lost the positive definiteness)."""
    lines = []
    for i in range(q):
        for k in range(i + 1):
            t = _sum([f"-L{i}_{n} * L{k}_{n}" for n in range(k)], f"{entry}{i}_{k}")
            if i == k:
                lines += [f"D{i} = {t}", f"if not D{i} > 0.0:", f"    {fail}", f"L{i}_{i} = math.sqrt(D{i})",
                          f"I{i} = 1.0 / L{i}_{i}"]
            else:
                lines.append(f"L{i}_{k} = ({t}) * I{k}")
    return lines


def triangular_inverse_lines(q: int) -> list:
    """Lines of N = L^-1 (lower-triangular), column by column, with I_a = 1 / L_aa."""
    return [f"N{a}_{b} = ({_sum([f'-L{a}_{c} * N{c}_{b}' for c in range(b, a)], '1.0' if a == b else '')}) * I{a}"
            for b in range(q) for a in range(b, q)]


def contraction_lines(q: int, into: str, array: str, vec: str, length: str = "p") -> list:
    """Lines of ``into``a = sum_c array[j, a, c] vec[c] over the fixed effects c < p: the
    product of a stored q x p block with a p-vector, the loop shared by the q rows."""
    return [*(f"{into}{a} = 0.0" for a in range(q)),
            f"for c in range({length}):",
            f"    vc = {vec}[c]",
            *(f"    {into}{a} += {array}[j, {a}, c] * vc" for a in range(q))]
