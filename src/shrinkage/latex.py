"""Render a checked derivation as a standalone LaTeX document.

The renderer only reads a :class:`~shrinkage.engine.CheckedDerivation`; it never
decides what is true.  Each step is one numbered line of an ``align`` block, preceded
by its justification and by how it was checked.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.latex import LatexPrinter

from .engine import CheckedDerivation, CheckedStep, Define, Given, Limit
from .matrix.notation import latex_names as matrix_latex_names
from .matrix.notation import table_rows as matrix_table_rows
from .symbols import QUANTITIES, quantity_of

PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage[T1]{fontenc}
\usepackage{lmodern}
\usepackage[margin=1in]{geometry}
\usepackage{amsmath,amssymb,mathtools}
\usepackage{booktabs,array}
\usepackage{xcolor}
\allowdisplaybreaks
\pdfinfoomitdate=1
\pdftrailerid{}
\pdfsuppressptexinfo=-1
\newcommand{\stepnote}[3]{\par\noindent\textbf{Step #1.} #2\par\nopagebreak\hfill{\footnotesize\textsf{#3}}}
"""


class ShrinkagePrinter(LatexPrinter):
    """SymPy's LaTeX printer with the registry's names and the author's term order."""

    def __init__(self, settings=None):
        names = {q.symbol: q.latex for q in QUANTITIES}
        names.update(matrix_latex_names())  # shrinkage.matrix: X_j, D, ...
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


def tex(expr: sp.Expr) -> str:
    return ShrinkagePrinter().doprint(expr)


def escape(text: str) -> str:
    """Plain prose -> LaTeX, leaving $...$ math alone."""
    out, in_math = [], False
    for ch in text:
        if ch == "$":
            in_math = not in_math
        elif not in_math and ch in "&%#_":
            ch = "\\" + ch
        elif not in_math and ch in "^~":
            ch = {"^": r"\textasciicircum{}", "~": r"\textasciitilde{}"}[ch]
        out.append(ch)
    return "".join(out)


def check_note(cs: CheckedStep) -> str:
    v = cs.verdict
    if v.symbolic == "n/a":
        return v.method
    proof = r"SymPy: proved" if v.symbolic is True else r"\textcolor{red!60!black}{SymPy: not settled, numeric check only}"
    return f"{proof}; mpmath: {v.method}"


def equation_label(derivation: str, number: int) -> str:
    return f"{derivation}:{number}"


def relation(step) -> str:
    """The relation a step is printed with; a limit names its variable and point under
    the arrow (x -> 0 prints as 0^+, the only finite point a Limit step takes)."""
    if isinstance(step, Limit):
        point = "0^+" if step.point == 0 else tex(step.point)
        return rf"\xrightarrow{{\;{tex(step.var)} \to {point}\;}}"
    return step.relation


def step_lines(checked: CheckedDerivation) -> list[str]:
    lines = []
    for cs in checked.steps:
        step = cs.step
        lhs = step.lhs
        if isinstance(step, Define) and not lhs:
            lhs = tex(step.symbol)
        if isinstance(step, (Given, Define)) or lhs:
            row = f"{lhs} &{relation(step)} {tex(step.rhs)}"
        else:
            row = f"&{relation(step)} {tex(step.rhs)}"
        lines.append(rf"\intertext{{\stepnote{{{cs.number}}}{{{escape(step.why)}}}{{{check_note(cs)}}}}}")
        lines.append(rf"{row} \label{{{equation_label(checked.derivation.name, cs.number)}}}\\")
    lines[-1] = lines[-1].rstrip("\\")
    return lines


def symbols_table(checked: CheckedDerivation) -> list[str]:
    used = set()
    for cs in checked.steps:
        used |= {s.name for s in cs.step.rhs.free_symbols if isinstance(s, sp.Symbol)}
        used |= {str(x.base.label) for x in cs.step.rhs.atoms(sp.Indexed)}
    rows = [rf"${q.latex}$ & {q.meaning} & \texttt{{{escape(q.code)}}} \\" for q in QUANTITIES if q.code in used]
    used |= {m.name for cs in checked.steps for m in cs.step.rhs.atoms(sp.MatrixSymbol)}
    rows += [rf"${t}$ & {m} & \texttt{{{escape(c)}}} \\" for t, m, c in matrix_table_rows(used)]
    return [r"\begin{tabular}{lll}", r"\toprule symbol & meaning & code name \\ \midrule", *rows, r"\bottomrule", r"\end{tabular}"]


def exports_table(checked: CheckedDerivation) -> list[str]:
    d = checked.derivation
    if not d.exports:
        return []
    rows = []
    for e in d.exports:
        number = d.step_index(e.label) + 1
        args = ", ".join(a.name for a in e.args)
        rows.append(rf"\texttt{{{escape(e.function)}({escape(args)})}} & eq.~\eqref{{{equation_label(d.name, number)}}} & {escape(e.doc.strip().splitlines()[0])} \\")
    return [
        r"\section*{Generated numeric functions}",
        r"Each function below is generated from the right-hand side of the cited step, with every "
        r"definition substituted, into \texttt{shrinkage.numeric}.",
        r"\par\medskip\noindent{\small\begin{tabular}{@{}>{\raggedright\arraybackslash}p{0.45\linewidth}l>{\raggedright\arraybackslash}p{0.38\linewidth}@{}}",
        r"\toprule function & from & what it computes \\ \midrule",
        *rows,
        r"\bottomrule",
        r"\end{tabular}}",
    ]


CHECK_EXPLANATION = (
    r"\section*{How the steps were checked}"
    "\n"
    r"Every step after a given statement is checked against the expression before it, twice. "
    r"\emph{Symbolically}: SymPy shows that the difference is zero (or the derivative vanishes at the "
    r"claimed maximiser, or the integral or limit evaluates to the claim) under the symbols' declared "
    r"assumptions (variances positive, $n_j$ a positive integer). "
    r"\emph{Numerically}: both sides are evaluated with mpmath at random points drawn from the symbols' "
    r"domains; maximisers are checked by numerical differentiation, integrals by quadrature. "
    r"Steps with sums over the observations of a group are checked on random data sets of concrete sizes. "
    r"A step SymPy cannot settle is marked in red as checked numerically only. "
    r"A step failing either check stops the build, so no document states an unchecked step."
)


def render(checked: CheckedDerivation) -> str:
    d = checked.derivation
    body = [
        PREAMBLE,
        rf"\title{{{escape(d.title)}}}",
        r"\author{generated by \texttt{shrinkage build} from \texttt{derivations/" + escape(d.name) + r".py}}",
        r"\date{}",
        r"\begin{document}",
        r"\maketitle",
        d.summary.strip(),
        r"\section*{Symbols}",
        *symbols_table(checked),
        r"\section*{Derivation}",
        r"\begin{align}",
        *step_lines(checked),
        r"\end{align}",
        *exports_table(checked),
        CHECK_EXPLANATION,
        r"\end{document}",
    ]
    return "\n".join(body) + "\n"
