"""Unevaluated building blocks, so a step prints in the order a textbook writes it.

SymPy sorts the terms of a sum and the factors of a product into its canonical order.
The checks do not care (they simplify), but a reader does: ``terms(a, b, c)`` keeps the
sum a + b + c as written, ``times(a, b)`` keeps the product a b as written, and the
LaTeX printer (``order='none'``) then shows them in that order.  The value of the
expression is unchanged: every check evaluates it.
"""

from __future__ import annotations

import sympy as sp


def terms(*args: sp.Expr) -> sp.Expr:
    """a + b + ... kept in the written order (nested sums are spliced in, so that the
    printer never sees a sum inside a sum and regroups it)."""
    flat = []
    for a in args:
        flat.extend(a.args if isinstance(a, sp.Add) else (a,))
    return sp.Add(*flat, evaluate=False)


def times(*args: sp.Expr) -> sp.Expr:
    """a * b * ... kept in the written order."""
    return sp.Mul(*args, evaluate=False)


def frac(numerator: sp.Expr, denominator: sp.Expr) -> sp.Expr:
    """numerator / denominator kept as one fraction."""
    if numerator == 1:
        return sp.Pow(denominator, -1, evaluate=False)
    return sp.Mul(numerator, sp.Pow(denominator, -1, evaluate=False), evaluate=False)


def neg(x: sp.Expr) -> sp.Expr:
    """-x with x kept as written."""
    return sp.Mul(-1, x, evaluate=False)


def half(x: sp.Expr) -> sp.Expr:
    """x / 2 printed as a fraction."""
    return frac(x, sp.Integer(2))
