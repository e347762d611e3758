"""A maximiser in one positive scalar (sigma^2) of an expression that may contain matrices.

Numerically, at random instances, the derivative vanishes at the claimed point, the
curvature there is negative, and the derivative is positive below and negative above it
(at a tenth, half, twice and ten times the point), so it is the maximum on (0, oo).
Symbolically, the expression *as written* is used: quantities defined by earlier steps
(r^2_theta, sum_j log det M_j) stay symbols with their declared domains, which is sound
because their definitions are checked to be free of the variable; SymPy then shows that
the derivative has exactly one positive root, the claimed one, with negative curvature.
"""

from __future__ import annotations

from dataclasses import dataclass

import mpmath
import sympy as sp

from ..errors import DerivationError
from .checking import Failure
from .nodes import GroupMatSum, GroupStack, GroupSum, Scalar
from .steps import MatrixStep, _all, expand


@dataclass(frozen=True)
class ScalarMaximiser(MatrixStep):
    """rhs = argmax over the positive scalar ``var`` of the current expression.
    ``positive``: expressions the premises make positive (N - p: X has full column rank
    p < N), which the symbolic check assumes; the random instances satisfy them."""

    var: sp.Symbol = None
    positive: tuple = ()
    kind = "maximiser"

    def expressions(self, current, definitions):
        for s in current.free_symbols & set(definitions):
            if self.var in expand(s, definitions).free_symbols:
                raise DerivationError(f"maximiser step: {s} is defined in terms of {self.var}, so it cannot be held fixed")
        out = super().expressions(current, definitions)
        out["written"], out["written_rhs"] = current, self.rhs
        return out

    def numeric(self, name, number, exprs):
        f_expr, var = exprs["current"], self.var
        for sizes, w in self.walkers(name, number, _all(exprs)):
            def f(t):
                return w.with_values({var: t}).value(f_expr)

            xhat = w.value(exprs["rhs"])
            if not xhat > 0:
                raise Failure(f"at {sizes.describe()}: the claimed maximiser {mpmath.nstr(xhat, 10)} is not positive")
            d1, d2 = mpmath.diff(f, xhat), mpmath.diff(f, xhat, 2)
            if not (d2 < 0 and abs(d1) <= mpmath.mpf(10) ** -30 * abs(d2) * max(1, abs(xhat))):
                raise Failure(f"at {sizes.describe()}: claimed maximiser {mpmath.nstr(xhat, 15)} has derivative "
                              f"{mpmath.nstr(d1, 5)} and curvature {mpmath.nstr(d2, 5)}")
            for factor, sign in ((mpmath.mpf(1) / 10, 1), (mpmath.mpf(1) / 2, 1), (2, -1), (10, -1)):
                if not sign * mpmath.diff(f, xhat * factor) > 0:
                    raise Failure(f"at {sizes.describe()}: the derivative at {mpmath.nstr(xhat * factor, 10)} does "
                                  f"not point towards the claimed maximiser")
        return "; derivative zero there, curvature negative, and the derivative's sign at 1/10, 1/2, 2 and 10 times the point"

    def symbolic(self, exprs, definitions):
        f, xhat, var = exprs["written"], exprs["written_rhs"], self.var
        if any(e.has(sp.MatrixSymbol, Scalar, GroupSum, GroupMatSum, GroupStack) for e in (f, xhat)):
            return None, ()
        f, xhat = _assume_positive(f, xhat, self.positive)
        d1 = sp.diff(f, var)
        try:
            roots = [r for r in sp.solve(d1, var) if r.is_positive is not False]
        except NotImplementedError:
            return None, ()
        if len(roots) != 1 or sp.simplify(roots[0] - xhat) != 0:
            return None, ()
        curvature = sp.simplify(sp.diff(f, var, 2).subs(var, xhat))
        return (True if curvature.is_negative else None), ()

    def method(self, exprs, extra, sizes):
        assumed = "".join(f", ${sp.latex(e)} > 0$" for e in self.positive)
        return super().method(exprs, extra, sizes) + (
            f"; SymPy with the defined quantities held as symbols{assumed}" if not sizes else "")


def _assume_positive(f, xhat, positive):
    """f and xhat with each expression e of ``positive`` written as a fresh positive
    symbol t: the first symbol of e is solved for (N - p > 0 becomes N = p + t)."""
    for e in positive:
        e = sp.sympify(e)
        target = sorted(e.free_symbols, key=str)[0]
        t = sp.Dummy("t", positive=True)
        (solution,) = sp.solve(sp.Eq(e, t), target)
        f, xhat = (x.xreplace({target: solution}) for x in (f, xhat))
    return f, xhat
