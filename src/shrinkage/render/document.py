"""Render a checked derivation as a standalone LaTeX document.

The renderer only reads a :class:`~shrinkage.derive.CheckedDerivation`; it never
decides what is true.  Each step is one numbered equation of an ``align`` block
(broken into lines when long, :mod:`.layout`), preceded by its justification and by
how it was checked.  What the closing section says about the checks is counted from
the verdicts, so it is true of the document it closes.
"""

from __future__ import annotations

import re
from typing import Iterable

import sympy as sp

from ..derive import CheckedDerivation, CheckedStep, Cite, Define, Given, Limit, Premise, Recall, Step
from ..errors import DerivationError
from .layout import Row, align_lines
from .measure import text_width
from .prose import symbol_names, typeset
from .tex import PREAMBLE, escape, tex

def check_note(cs: CheckedStep) -> str:
    v = cs.verdict
    if v.symbolic == "n/a":
        return v.method
    proof = r"SymPy: proved" if v.symbolic is True else r"\textcolor{red!60!black}{SymPy: not settled, numeric check only}"
    return f"{proof}; mpmath: {v.method}"


def equation_label(derivation: str, number: int) -> str:
    return f"{derivation}:{number}"


def relation(step, notation=None) -> str:
    """The relation a step is printed with; a limit names its variable and point under
    the arrow (x -> 0 prints as 0^+, the only finite point a Limit step takes).  A
    Limit's lhs is the expression that tends to rhs; an lhs that writes the limit out
    itself (``\\lim_{n \\to \\infty} \\lambda_j``) gets "=", not the limit a second time."""
    if isinstance(step, Limit) and r"\lim" in step.lhs:
        return "="
    if isinstance(step, Limit):
        point = "0^+" if step.point == 0 else tex(step.point, notation)
        return rf"\xrightarrow{{\;{tex(step.var, notation)} \to {point}\;}}"
    return step.relation


def step_lhs(cs: CheckedStep, notation=None) -> str:
    step = cs.step
    return step.lhs or (tex(step.symbol, notation) if isinstance(step, Define) else "")


def resolve_labels(text: str, d) -> str:
    """References by label in a derivation's prose: \\eqref{@label} (a step of ``d``) becomes
    \\eqref{name:k}; \\eqref{@other:label} (a step of a derivation ``d`` cites) becomes
    "eq. (k) of other", since that equation is in another document."""

    def plain(label: str) -> str:
        return label.replace(r"\_", "_")  # the prose was escaped already

    def own(m: re.Match) -> str:
        return rf"\eqref{{{equation_label(d.name, d.step_index(plain(m.group(1))) + 1)}}}"

    def cited(m: re.Match) -> str:
        name, label = plain(m.group(1)), plain(m.group(2))
        for step in d.steps:
            source = getattr(step, "source", None)
            if source is not None and source.name == name:
                return rf"eq.~({source.step_index(label) + 1}) of \emph{{{escape(name)}}}"
        raise DerivationError(f"{d.name}: \\eqref{{@{name}:{label}}} names a derivation it does not cite")

    text = re.sub(r"\\eqref\{@([a-z0-9_\\]+)\}", own, text)
    return re.sub(r"\\eqref\{@([a-z_\\]+):([a-z0-9_\\]+)\}", cited, text)


def step_row(cs: CheckedStep, lhs: str, end: str, tag_em: float, number_text: str, note: str,
             notation=None, derivation=None) -> Row:
    """The align row of one checked step, with its note as \\intertext."""
    step = cs.step
    why = resolve_labels(escape(step.why), derivation) if derivation is not None else escape(step.why)
    before = rf"\intertext{{\stepnote{{{number_text}}}{{{why}}}{{{note}}}}}"
    return Row(lhs, relation(step, notation), step.rhs, end, tag_em, before)


def tag_width(number: int) -> float:
    return text_width(f"({number})")


def derivation_rows(checked: CheckedDerivation) -> list[Row]:
    name, notation = checked.derivation.name, checked.notation
    return [step_row(cs, step_lhs(cs, notation), rf"\label{{{equation_label(name, cs.number)}}}",
                     tag_width(cs.number), str(cs.number), check_note(cs), notation, checked.derivation)
            for cs in checked.steps]


def used_quantities(steps: Iterable[Step], notation) -> list[list]:
    """The notation's quantities the steps mention, in the notation's order, one entry
    per LaTeX name (two code names with one LaTeX name print as one row)."""
    used = set()
    for step in steps:
        used |= {s.name for s in step.rhs.free_symbols if isinstance(s, sp.Symbol)}
        used |= {str(x.base.label) for x in step.rhs.atoms(sp.Indexed)}
    rows: dict[str, list] = {}
    for q in notation:
        if q.code in used:
            rows.setdefault(q.latex, []).append(q)
    return list(rows.values())


def symbols_table(checked: CheckedDerivation) -> list[str]:
    rows = []
    for qs in used_quantities((cs.step for cs in checked.steps), checked.notation):
        codes = ", ".join(rf"\texttt{{{escape(q.code)}}}" for q in qs)
        rows.append(rf"${qs[0].latex}$ & {qs[0].meaning} & {codes} \\")
    rows += matrix_rows(checked)
    return [r"\noindent\begin{tabularx}{\linewidth}{@{}lXl@{}}", r"\toprule symbol & meaning & code name \\ \midrule",
            *rows, r"\bottomrule", r"\end{tabularx}"]


def matrix_rows(checked: CheckedDerivation) -> list[str]:
    """Symbols-table rows of the MatrixSymbols the steps use, if the notation has matrices
    (shrinkage.matrix.notation.MatrixNotation)."""
    table = getattr(checked.notation, "matrix_rows", None)
    if table is None:
        return []
    used = {m.name for cs in checked.steps for m in cs.step.rhs.atoms(sp.MatrixSymbol)}
    return [rf"${t}$ & {m} & \texttt{{{escape(c)}}} \\" for t, m, c in table(used)]


def summary_line(doc: str, notation) -> str:
    """The first line of an export's docstring, its plain-text maths typeset."""
    return typeset(doc.strip().splitlines()[0], symbol_names(notation))


def exports_table(checked: CheckedDerivation, module: str = "shrinkage.numeric") -> list[str]:
    """The table of generated functions; ``module``: what the build wrote them into."""
    d = checked.derivation
    if not d.exports:
        return []
    rows = []
    for e in d.exports:
        number = d.step_index(e.label) + 1
        args = ", ".join(escape(a.name) for a in e.args)
        rows.append(rf"\texttt{{{escape(e.function)}({args})}} & eq.~\eqref{{{equation_label(d.name, number)}}} & "
                    rf"{summary_line(e.doc, checked.notation)} \\")
    return [
        r"\section*{Generated numeric functions}",
        r"Each function below is generated from the right-hand side of the cited step, with every "
        rf"definition substituted, into \texttt{{{escape(module)}}}.",
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


def premises_section(checked: CheckedDerivation) -> list[str]:
    """The model's statements this document rests on, listed before anything is derived."""
    premises = checked.premises
    if not premises:
        return []
    name = checked.derivation.name
    uses: dict[str, list[int]] = {}
    for cs in checked.steps:
        if isinstance(cs.step, Premise):
            uses.setdefault(cs.step.statement.name, []).append(cs.number)
    items = []
    for st in premises:
        where = (f"; stated as eq.~{_refs(name, uses[st.name])}." if st.name in uses else
                 "; used through the results cited from other documents.")
        items.append(rf"\item {escape(st.text.rstrip().rstrip('.'))}{where}")
    return [r"\section*{Premises}",
            "Everything below is derived from the model's statement" + ("s" if len(premises) > 1 else "") +
            ", and from nothing else:",
            r"\begin{itemize}", *items, r"\end{itemize}"]


def _refs(name: str, numbers: list[int]) -> str:
    refs = [rf"\eqref{{{equation_label(name, k)}}}" for k in numbers]
    return refs[0] if len(refs) == 1 else ", ".join(refs[:-1]) + " and " + refs[-1]


def _eqs(name: str, numbers: list[int]) -> str:
    return ("eq.~" if len(numbers) == 1 else "eqs.~") + _refs(name, numbers)


def _count(k: int, one: str, many: str) -> str:
    return f"{k} {one if k == 1 else many}"


def closing(checked: CheckedDerivation) -> str:
    """How every step was checked, counted from the verdicts (true of the document by construction)."""
    name = checked.derivation.name
    kinds = {"premise": [], "given": [], "definition": [], "restatement": [], "proved": [], "numeric": []}
    for cs in checked.steps:
        step = cs.step
        kind = ("premise" if isinstance(step, Premise) else "given" if isinstance(step, Given) else
                "definition" if isinstance(step, Define) else
                "restatement" if isinstance(step, (Recall, Cite)) else
                "proved" if cs.verdict.symbolic is True else "numeric")
        kinds[kind].append(cs.number)
    parts = []
    if kinds["premise"]:
        parts.append(f"{_count(len(kinds['premise']), 'states', 'state')} the model ({_eqs(name, kinds['premise'])})")
    if kinds["definition"]:
        parts.append(_count(len(kinds["definition"]), "introduces a name", "introduce names") + " for expressions")
    if kinds["restatement"]:
        parts.append(_count(len(kinds["restatement"]), "restates", "restate") +
                     " an earlier result, checked to be identical to it")
    if kinds["proved"]:
        parts.append(_count(len(kinds["proved"]), "was", "were") + " proved by SymPy and confirmed numerically")
    if kinds["numeric"]:
        parts.append(_count(len(kinds["numeric"]), "was", "were") +
                     rf" checked \emph{{numerically only}}, SymPy could not settle "
                     rf"{'it' if len(kinds['numeric']) == 1 else 'them'} ({_eqs(name, kinds['numeric'])})")
    if kinds["given"]:
        parts.append(_count(len(kinds["given"]), "is", "are") +
                     rf" \emph{{stated without a check}} ({_eqs(name, kinds['given'])}; each says why)")
    listed = parts[0] if len(parts) == 1 else "; ".join(parts[:-1]) + "; and " + parts[-1]
    text = f"Of the {len(checked.steps)} steps of this document, {listed}. "
    if kinds["given"]:
        return text + "Every other step passed the checks above; a failing step stops the build."
    if kinds["numeric"]:
        return text + ("So no step is stated unchecked, but the step" + ("s" if len(kinds["numeric"]) > 1 else "")
                       + " marked in red rest" + ("" if len(kinds["numeric"]) > 1 else "s")
                       + " on the numeric check alone.")
    return text + "No step beyond the model's statements and the names is stated without both checks."


CHECK_EXPLANATION = (
    r"\section*{How the steps were checked}"
    "\n"
    r"The premises are the model's statements, listed at the start; a definition names an expression; a "
    r"restatement (of an earlier step, or of a step of another document) is checked to repeat it exactly. "
    r"Every other step claims something about the expression before it and is checked twice. "
    r"\emph{Symbolically}: SymPy shows that the claim holds (the difference is zero, the derivative vanishes at the "
    r"claimed maximiser, the integral or limit evaluates to the claim) under the symbols' declared "
    r"assumptions (variances positive, $n_j$ a positive integer). "
    r"\emph{Numerically}: both sides are evaluated with mpmath at random points drawn from the symbols' "
    r"domains; maximisers are checked by numerical differentiation, integrals by quadrature. "
    r"Steps with sums over the observations of a group are checked on random data sets of concrete sizes. "
    r"A step SymPy cannot settle is marked in red as checked numerically only. "
)


def render(checked: CheckedDerivation, source: str | None = None, module: str = "shrinkage.numeric") -> str:
    """The LaTeX document of ``checked``.  ``source``: the file it was built from (default
    the package's derivations/NAME.py); ``module``: where its exports were generated to."""
    d = checked.derivation
    source = f"derivations/{d.name}.py" if source is None else source
    body = [
        PREAMBLE,
        rf"\title{{{escape(d.title)}}}",
        r"\author{generated by \texttt{shrinkage build} from \texttt{" + escape(source) + r"}}",
        r"\date{}",
        r"\begin{document}",
        r"\maketitle",
        resolve_labels(d.summary.strip(), d),
        *premises_section(checked),
        r"\section*{Symbols}",
        *symbols_table(checked),
        r"\section*{Derivation}",
        r"\begin{align}",
        *align_lines(derivation_rows(checked), checked.notation),
        r"\end{align}",
        *exports_table(checked, module),
        CHECK_EXPLANATION + closing(checked),
        r"\end{document}",
    ]
    return "\n".join(body) + "\n"
