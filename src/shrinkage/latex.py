"""Kept so that ``from shrinkage.latex import render`` keeps working: the renderer
lives in :mod:`shrinkage.render`."""

from .render.document import check_note, equation_label, exports_table, relation, render, symbols_table
from .render.tex import PREAMBLE, ShrinkagePrinter, escape, tex

__all__ = ["render", "check_note", "equation_label", "exports_table", "relation", "symbols_table", "PREAMBLE",
           "ShrinkagePrinter", "escape", "tex"]
