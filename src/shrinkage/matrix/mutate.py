"""Mutation operators for matrix expressions, and equivalence by the matrix checks.

shrinkage.derive.mutate corrupts numbers and terms of any expression (a matrix sum is
an Add to it; shapes are never touched).  A matrix derivation's notation adds, through
:data:`MUTATION` (its ``mutation`` attribute):

* operators a careless hand applies to matrices: an inverse dropped (A^{-1} -> A), a
  transpose dropped (A^T -> A, A square), two square factors of a product exchanged
  (A B -> B A), the quantities of the two designs confused (X_j <-> Z_j and their
  cross-products);
* corruptions of the fields of the matrix step kinds: a substituted value, the claimed
  precision or centre of a quadratic, the covariance or the moment read off, a rescaling's factor;
* equivalence tested like every matrix claim: the mutant's expression equals the
  original's at the random instances (q = 1..4, 50 digits) of a MatrixEquals check.
"""

from __future__ import annotations

from dataclasses import replace

import sympy as sp

from ..errors import DerivationError


def _square(x) -> bool:
    return sp.simplify(x.shape[0] - x.shape[1]) == 0


def swaps() -> tuple:
    """The project's scalar swaps, and the two designs (and their cross-products)."""
    from .notation import MATRIX_NOTATION, X_j, XtX, Xty, Z_j, ZtZ, Zty

    return MATRIX_NOTATION.swaps + (
        ("swap X_j and Z_j", {X_j: Z_j, Z_j: X_j}),
        ("swap XtX_j and ZtZ_j", {XtX: ZtZ, ZtZ: XtX}),
        ("swap Xty_j and Zty_j", {Xty: Zty, Zty: Xty}),
    )


def expression_mutants(expr: sp.Basic) -> list[tuple[str, str, sp.Basic]]:
    """(operator, description, corrupted expression): the matrix operators only (the
    numbers and terms are derive.mutate's)."""
    from ..derive.mutate import _positions, _replace_at

    out = []
    for path, node in _positions(expr):
        if isinstance(node, sp.Inverse):
            out.append(("drop-inverse", f"drop the inverse of {node.arg} at {path}", _replace_at(expr, path, node.arg)))
        if isinstance(node, sp.Transpose) and _square(node.arg):
            out.append(("drop-transpose", f"drop the transpose of {node.arg} at {path}",
                        _replace_at(expr, path, node.arg)))
        if isinstance(node, sp.MatMul):
            args = list(node.args)
            for k in range(len(args) - 1):
                a, b = args[k], args[k + 1]
                if isinstance(a, sp.MatrixExpr) and isinstance(b, sp.MatrixExpr) and _square(a) and _square(b) and a != b:
                    swapped = args[:k] + [b, a] + args[k + 2:]
                    out.append(("swap-factors", f"exchange the factors {a} and {b} at {path}",
                                _replace_at(expr, path, sp.MatMul(*swapped, evaluate=False))))
    return out


def _value_mutants(pairs, what: str, field: str, step, limit: int = 6):
    from ..derive.mutate import expression_mutants as scalar_mutants

    out = []
    for k, (sym, value) in enumerate(pairs):
        candidates = scalar_mutants(value, swaps()) + expression_mutants(value)
        for operator, description, new in candidates[:limit]:
            changed = list(pairs)
            changed[k] = (sym, new)
            out.append((operator, f"{what} {sym}: {description}", replace(step, **{field: tuple(changed)})))
    return out


def _expr_field_mutants(step, field: str, limit: int = 6):
    from ..derive.mutate import expression_mutants as scalar_mutants

    value = getattr(step, field)
    if not isinstance(value, sp.Basic):
        return []
    candidates = scalar_mutants(value, swaps()) + expression_mutants(value)
    return [(operator, f"{field}: {description}", replace(step, **{field: new}))
            for operator, description, new in candidates[:limit]]


def field_mutants(step) -> list[tuple[str, str, object]]:
    """Corruptions of a matrix step's fields other than rhs."""
    from .gaussian import NormalReadOff, _Quadratic
    from .steps import MatrixRescale, MatrixSubstitute

    out = []
    if isinstance(step, MatrixSubstitute):
        out += _value_mutants(step.values, "value of", "values", step)
    if isinstance(step, MatrixRescale):
        out += _expr_field_mutants(step, "factor")
    if isinstance(step, _Quadratic):
        out += _expr_field_mutants(step, "precision")
        out += _expr_field_mutants(step, "centre")
    if isinstance(step, NormalReadOff):
        other = "mean" if step.read == "covariance" else "covariance"
        out.append(("moment", f"read off the {other}", replace(step, read=other)))
        out += _expr_field_mutants(step, "covariance")
        out += _expr_field_mutants(step, "mean", limit=3)
    return out


def equivalent(context, original, mutated) -> bool:
    """Is the mutant no corruption?  An rhs changed: it equals the original's at every
    random instance of a matrix equality check (the original's fixed sizes and rank
    condition).  A field changed (a substituted value, a precision): the mutated step
    still passes the numeric check, at fresh random instances; it then states the same
    rhs from the same expression by a claim that holds (e.g. Z_j = -1 instead of 1 in
    Z_j^T Z_j), so nothing false is printed."""
    from .steps import MatrixEquals, MatrixStep

    name = f"{context.derivation}/equivalence"
    try:
        if replace(mutated, rhs=original.rhs) != original:
            if not isinstance(mutated, MatrixStep):
                return False
            mutated.verify(name, context.number, context.current, context.definitions, symbolic=False)
            return True
        check = (original.equality(mutated.rhs, why="equivalence of a mutant") if isinstance(original, MatrixStep)
                 else MatrixEquals(mutated.rhs, why="equivalence of a mutant"))
        check.verify(name, context.number, original.rhs, context.definitions, symbolic=False)
    except (DerivationError, ValueError, TypeError, ArithmeticError, KeyError):
        return False
    return True


class _Extension:
    """What shrinkage.derive.mutate asks a notation's ``mutation`` for."""

    swaps = staticmethod(swaps)
    expression_mutants = staticmethod(expression_mutants)
    field_mutants = staticmethod(field_mutants)
    equivalent = staticmethod(equivalent)


MUTATION = _Extension()
