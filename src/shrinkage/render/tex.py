"""The one LaTeX printer of every document.

``tex(expr, notation)`` prints a SymPy expression with the LaTeX names of the notation
the derivation declares (by default the one installed: the project's own) and in the author's term order.
Stable spellings the generated code needs (``log1p``) print as a reader writes them
(log(1 + x)).  The preamble and the escapes are in :mod:`.preamble` (no SymPy there, so
a report does not load it).
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.latex import LatexPrinter

from ..derive.notation import default_notation
from .preamble import LINEWIDTH_EM, PREAMBLE, escape, escape_verbatim  # noqa: F401  (re-exported)


class ShrinkagePrinter(LatexPrinter):
    """SymPy's LaTeX printer with a notation's names and the author's term order."""

    def __init__(self, notation=None, settings=None):
        self.notation = notation if notation is not None else default_notation()
        names = {q.symbol: q.latex for q in self.notation}
        names.update(getattr(self.notation, "matrix_names", {}))  # MatrixSymbols (shrinkage.matrix)
        super().__init__({"symbol_names": names, "order": "none", **(settings or {})})
        self._printed: dict = {}

    def _print(self, expr, **kwargs):
        """SymPy's _print, once per expression: the line breaker prints every subtree
        again at each level (quadratic), and a matrix product's sign test is slow."""
        if kwargs:
            return super()._print(expr, **kwargs)
        try:
            return self._printed[expr]
        except KeyError:
            out = self._printed[expr] = super()._print(expr)
            return out
        except TypeError:  # unhashable (a mutable matrix)
            return super()._print(expr)

    def _print_Indexed(self, expr):
        q = self.notation.quantity_of(expr.base.label)
        base = q.latex[:-2] if q.latex.endswith("_j") else q.latex
        index = "".join(self._print(ix) for ix in expr.indices)
        if q.observation and len(expr.indices) == 1:
            index += "j"
        return f"{base}_{{{index}}}"

    def _print_IndexedBase(self, expr):
        return self.notation.quantity_of(expr.label).latex

    def _print_log1p(self, expr):
        """log1p(x) is how the code keeps digits; a reader sees log(1 + x)."""
        return r"\log{\left(1 + %s \right)}" % self._print(expr.args[0])


_PRINTERS: dict[int, tuple[object, ShrinkagePrinter]] = {}


def printer(notation=None) -> ShrinkagePrinter:
    """The printer of ``notation`` (the default when None), made once per notation."""
    notation = notation if notation is not None else default_notation()
    kept = _PRINTERS.get(id(notation))
    if kept is None or kept[0] is not notation:
        kept = _PRINTERS[id(notation)] = (notation, ShrinkagePrinter(notation))
    return kept[1]


def tex(expr: sp.Expr, notation=None) -> str:
    return printer(notation).doprint(expr)
