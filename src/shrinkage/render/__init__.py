"""Rendering of checked derivations: LaTeX documents (``document.render``), Markdown
(``md.render_markdown``), and the pieces they share: one printer (``tex``), one preamble
and escape (``preamble``), line breaking (``layout``), width estimates (``measure``).

Submodules load lazily, so ``shrinkage.render.preamble`` costs no SymPy import.
"""

from __future__ import annotations

import importlib

__all__ = ["render", "render_markdown"]


def __getattr__(name: str):
    if name == "render":
        return importlib.import_module(".document", __name__).render
    if name == "render_markdown":
        return importlib.import_module(".md", __name__).render_markdown
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
