"""Rendering of derivations: LaTeX documents (``document.render(checked) -> str``), Markdown
(``md.render_markdown(checked_or_derivation, suffix=".md") -> str``), web pages
(``html.render_html(...) -> str``), quoted excerpts (``excerpts``), and the pieces they
share: one printer (``tex``), one preamble and escape (``preamble``), line breaking
(``layout``, ``chain``), width estimates (``measure``), TeX logs (``texlog``).

Submodules load lazily, so ``shrinkage.render.preamble`` costs no SymPy import.
"""

from __future__ import annotations

import importlib

__all__ = ["render", "render_markdown", "render_html"]


def __getattr__(name: str):
    if name == "render":
        return importlib.import_module(".document", __name__).render
    if name == "render_markdown":
        return importlib.import_module(".md", __name__).render_markdown
    if name == "render_html":
        return importlib.import_module(".html", __name__).render_html
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
