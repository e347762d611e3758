"""Render a checked derivation as a standalone LaTeX document.

The renderer only reads a :class:`~shrinkage.engine.CheckedDerivation`; it never
decides what is true.  Each step is one numbered equation of an ``align`` block
(broken into lines when long, :mod:`.layout`), preceded by its justification and by
how it was checked.  What the closing section says about the checks is counted from
the verdicts, so it is true of the document it closes.
"""

from __future__ import annotations

from typing import Iterable

import sympy as sp

from ..engine import CheckedDerivation, CheckedStep, Define, Given, Limit
from ..symbols import QUANTITIES, quantity_of
from .layout import Row, align_lines
from .measure import text_width
from .prose import symbol_names, typeset
from .tex import PREAMBLE, escape, tex

MODEL_STATEMENT = "given (model statement)"


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


def step_lhs(cs: CheckedStep) -> str:
    step = cs.step
    return step.lhs or (tex(step.symbol) if isinstance(step, Define) else "")


def step_row(cs: CheckedStep, lhs: str, end: str, tag_em: float, number_text: str, note: str) -> Row:
    """The align row of one checked step, with its note as \\intertext."""
    step = cs.step
    before = rf"\intertext{{\stepnote{{{number_text}}}{{{escape(step.why)}}}{{{note}}}}}"
    return Row(lhs, relation(step), step.rhs, end, tag_em, before)


def tag_width(number: int) -> float:
    return text_width(f"({number})")


def derivation_rows(checked: CheckedDerivation) -> list[Row]:
    name = checked.derivation.name
    return [step_row(cs, step_lhs(cs), rf"\label{{{equation_label(name, cs.number)}}}", tag_width(cs.number),
                     str(cs.number), check_note(cs)) for cs in checked.steps]


def used_quantities(steps: Iterable[CheckedStep]) -> list[list]:
    """The registered quantities the steps mention, in registry order, one entry per
    LaTeX name (two code names with one LaTeX name print as one row)."""
    used = set()
    for cs in steps:
        used |= {s.name for s in cs.step.rhs.free_symbols if isinstance(s, sp.Symbol)}
        used |= {str(x.base.label) for x in cs.step.rhs.atoms(sp.Indexed)}
    rows: dict[str, list] = {}
    for q in QUANTITIES:
        if q.code in used:
            rows.setdefault(q.latex, []).append(q)
    return list(rows.values())


def symbols_table(checked: CheckedDerivation) -> list[str]:
    rows = []
    for qs in used_quantities(checked.steps):
        codes = ", ".join(rf"\texttt{{{escape(q.code)}}}" for q in qs)
        rows.append(rf"${qs[0].latex}$ & {qs[0].meaning} & {codes} \\")
    return [r"\noindent\begin{tabularx}{\linewidth}{@{}lXl@{}}", r"\toprule symbol & meaning & code name \\ \midrule",
            *rows, r"\bottomrule", r"\end{tabularx}"]


def summary_line(doc: str) -> str:
    """The first line of an export's docstring, its plain-text maths typeset."""
    return typeset(doc.strip().splitlines()[0], symbol_names(QUANTITIES))


def exports_table(checked: CheckedDerivation) -> list[str]:
    d = checked.derivation
    if not d.exports:
        return []
    rows = []
    for e in d.exports:
        number = d.step_index(e.label) + 1
        args = ", ".join(escape(a.name) for a in e.args)
        rows.append(rf"\texttt{{{escape(e.function)}({args})}} & eq.~\eqref{{{equation_label(d.name, number)}}} & "
                    rf"{summary_line(e.doc)} \\")
    return [
        r"\section*{Generated numeric functions}",
        r"Each function below is generated from the right-hand side of the cited step, with every "
        r"definition substituted, into \texttt{shrinkage.numeric}.",
        r"\par\medskip\noindent{\small\begin{tabularx}{\linewidth}{@{}>{\raggedright\arraybackslash}p{0.4\linewidth}l"
        r">{\raggedright\arraybackslash}X@{}}",
        r"\toprule function & from & what it computes \\ \midrule",
        *rows,
        r"\bottomrule",
        r"\end{tabularx}}",
    ]


def _refs(name: str, numbers: list[int]) -> str:
    refs = [rf"\eqref{{{equation_label(name, k)}}}" for k in numbers]
    return refs[0] if len(refs) == 1 else ", ".join(refs[:-1]) + " and " + refs[-1]


def closing(checked: CheckedDerivation) -> str:
    """How every step was checked, counted from the verdicts (the sentence is true by construction)."""
    name = checked.derivation.name
    premises = [cs.number for cs in checked.steps if isinstance(cs.step, Given) and cs.verdict.method == MODEL_STATEMENT]
    stated = [cs.number for cs in checked.steps if isinstance(cs.step, Given) and cs.number not in premises]
    definitions = [cs.number for cs in checked.steps if isinstance(cs.step, Define)]
    proved = [cs.number for cs in checked.steps if cs.verdict.symbolic is True]
    numeric = [cs.number for cs in checked.steps if cs.verdict.symbolic is None]
    other = len(checked.steps) - len(premises) - len(stated) - len(definitions) - len(proved) - len(numeric)
    parts = [f"Of the {len(checked.steps)} steps of this document, "]
    counted = []
    if premises:
        counted.append(f"{len(premises)} state{'s' if len(premises) == 1 else ''} the model ({_refs(name, premises)})")
    if definitions:
        counted.append(f"{len(definitions)} introduce{'s' if len(definitions) == 1 else ''} a name for an expression")
    if other:
        counted.append(f"{other} restate{'s' if other == 1 else ''} an earlier step, checked to be identical to it")
    if proved:
        counted.append(f"{len(proved)} {'was' if len(proved) == 1 else 'were'} proved by SymPy and confirmed numerically")
    if numeric:
        counted.append(rf"{len(numeric)} {'was' if len(numeric) == 1 else 'were'} checked \emph{{numerically only}}, "
                       rf"SymPy could not settle {'it' if len(numeric) == 1 else 'them'} ({_refs(name, numeric)})")
    if stated:
        counted.append(rf"{len(stated)} {'is' if len(stated) == 1 else 'are'} \emph{{stated without a check}} "
                       rf"({_refs(name, stated)}; each says why)")
    text = parts[0] + ("; ".join(counted[:-1]) + "; and " + counted[-1] if len(counted) > 1 else counted[0]) + ". "
    if stated:
        return text + "Every other step passed the checks above; a failing step stops the build."
    if numeric:
        return text + ("No other step is stated without both checks; a failing step stops the build, so "
                       "nothing here is unchecked, and what is checked numerically only is marked in red.")
    return text + "No step beyond the model's statements and the definitions is stated without both checks."


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
        *align_lines(derivation_rows(checked)),
        r"\end{align}",
        *exports_table(checked),
        CHECK_EXPLANATION + closing(checked),
        r"\end{document}",
    ]
    return "\n".join(body) + "\n"
