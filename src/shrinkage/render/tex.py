"""The one LaTeX printer of every document.

``tex(expr)`` prints a SymPy expression with the symbol registry's LaTeX names and in
the author's term order.  Stable spellings the generated code needs (``log1p``) print
as a reader writes them (log(1 + x)).  The preamble and the escapes are in
:mod:`.preamble` (no SymPy there, so a report does not load it).
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.latex import LatexPrinter

from ..symbols import QUANTITIES, quantity_of
from .preamble import LINEWIDTH_EM, PREAMBLE, escape, escape_verbatim  # noqa: F401  (re-exported)

class ShrinkagePrinter(LatexPrinter):
    """SymPy's LaTeX printer with the registry's names and the author's term order."""

    def __init__(self, settings=None):
        names = {q.symbol: q.latex for q in QUANTITIES}
        super().__init__({"symbol_names": names, "order": "none", **(settings or {})})

    def _print_Indexed(self, expr):
        q = quantity_of(expr.base.label)
        base = q.latex[:-2] if q.latex.endswith("_j") else q.latex
        index = "".join(self._print(ix) for ix in expr.indices)
        if q.observation and len(expr.indices) == 1:
            index += "j"
        return f"{base}_{{{index}}}"

    def _print_IndexedBase(self, expr):
        return quantity_of(expr.label).latex

    def _print_log1p(self, expr):
        """log1p(x) is how the code keeps digits; a reader sees log(1 + x)."""
        return r"\log{\left(1 + %s \right)}" % self._print(expr.args[0])


PRINTER = ShrinkagePrinter()


def tex(expr: sp.Expr) -> str:
    return PRINTER.doprint(expr)
