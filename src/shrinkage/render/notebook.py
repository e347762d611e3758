"""Jupyter shows a derivation, checked or not, as its steps (Markdown and LaTeX).

derive/ knows no renderer: render/ teaches IPython to show derive's two types, by name,
so that neither this module nor ``import shrinkage`` (which calls :func:`register` when
it runs inside IPython) loads SymPy before a derivation is shown.  Elsewhere
``%load_ext shrinkage.render.notebook`` registers them in a running shell.
"""

from __future__ import annotations

SHOWN = (("shrinkage.derive.steps", "Derivation"), ("shrinkage.derive.checks", "CheckedDerivation"))


def markdown(obj) -> str:
    """The Markdown document of ``obj`` (what ``text/markdown`` shows)."""
    from .md import render_markdown  # SymPy loaded when a derivation is first shown, not at import

    return render_markdown(obj)


def latex(obj) -> str:
    """The chain as one display of pure maths (``text/latex``: nbconvert's LaTeX export)."""
    from .md import render_latex_display  # as in markdown()

    return render_latex_display(obj)


def register(formatter) -> None:
    """Teach an IPython ``DisplayFormatter`` (``shell.display_formatter``) to show
    derivations; the types are named, not imported, so derive is loaded only if used."""
    for module, name in SHOWN:
        formatter.formatters["text/markdown"].for_type_by_name(module, name, markdown)
        formatter.formatters["text/latex"].for_type_by_name(module, name, latex)


def register_in_running_shell(ipython) -> None:
    """If ``ipython`` (the IPython module, or None) runs a shell, register there."""
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None:
        register(shell.display_formatter)


def load_ipython_extension(shell) -> None:
    """``%load_ext shrinkage.render.notebook``."""
    register(shell.display_formatter)
