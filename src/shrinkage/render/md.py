"""Markdown with MathJax-ready equations, for notebooks and the web.

:func:`render_markdown` turns a derivation, checked or not, into Markdown: the premises,
the symbols, and each step as its reason, its verdict and its equation in a display
block ``$$\\begin{aligned} ... \\end{aligned}\\tag{n}$$`` (long right-hand sides broken
at + and - as in the PDF).  Every cross-reference is resolved here, never left to
MathJax: an equation gets an HTML anchor ``<a id="name-n"></a>`` and references
(``\\eqref{name:n}``, ``\\eqref{@label}``, "eq. (n)" in the notes) become links
``[(n)](#name-n)``; a step of another document links to ``other.md#other-n``.
:func:`render_latex_display` is the same chain as one ``aligned`` block of pure maths
(what Jupyter's ``text/latex`` and nbconvert's LaTeX export take).
"""

from __future__ import annotations

import re

from ..derive import CheckedDerivation, Define, Derivation, Premise, Verdict
from .document import closing, relation, used_quantities
from .layout import CONTINUATION, break_lines
from .prose import symbol_names, typeset
from .tex import LINEWIDTH_EM, tex

WIDTH_EM = LINEWIDTH_EM  # a web column holds about as much as the page
_MATH_SUBS = ((r"\coloneqq", r"\mathrel{:=}"),)  # outside MathJax's default packages
_TEXT_MACROS = (
    (re.compile(r"\\(?:emph|textit)\{([^{}]*)\}"), r"*\1*"),
    (re.compile(r"\\textbf\{([^{}]*)\}"), r"**\1**"),
    (re.compile(r"\\texttt\{([^{}]*)\}"), lambda m: "`" + m.group(1).replace(r"\_", "_") + "`"),
    (re.compile(r"\\(?:textsf|textup|textrm|textnormal|mbox)\{([^{}]*)\}"), r"\1"),
    (re.compile(r"\\textcolor\{[^{}]*\}\{([^{}]*)\}"), r"\1"),
)
_TEXT_SYMBOLS = (("``", "“"), ("''", "”"), ("---", "—"), ("--", "–"), (r"\S", "§"), (r"\%", "%"), (r"\&", "&"),
                 (r"\_", "_"), (r"\#", "#"), ("~", " "), (r"\,", " "), (r"\ ", " "), (r"\par", "\n\n"),
                 (r"\smallskip", ""), (r"\medskip", ""), (r"\noindent", ""), (r"\textasciicircum{}", "^"),
                 (r"\textasciitilde{}", "~"))


def anchor(name: str, number: int) -> str:
    return f"{name}-{number}"


def _split_math(text: str) -> list[tuple[bool, str]]:
    """(is_math, part) pieces of prose: $...$ is maths (kept for MathJax)."""
    parts = text.split("$")
    return [(k % 2 == 1, part) for k, part in enumerate(parts)]


def md_prose(text: str) -> str:
    """LaTeX prose (as in summaries and reasons) -> Markdown; $...$ maths kept as is."""
    out = []
    for is_math, part in _split_math(text):
        if is_math:
            for old, new in _MATH_SUBS:
                part = part.replace(old, new)
            out.append(f"${part}$")
            continue
        for _ in range(3):  # nested macros, innermost first
            for pattern, repl in _TEXT_MACROS:
                part = pattern.sub(repl, part)
        for old, new in _TEXT_SYMBOLS:
            part = part.replace(old, new)
        out.append(part)
    return "".join(out)


class _Refs:
    """Resolves references of one document to Markdown links."""

    def __init__(self, d: Derivation, suffix: str = ".md"):
        self.d, self.suffix = d, suffix

    def link(self, name: str, number: int, text: str | None = None) -> str:
        shown = text or (f"({number})" if name == self.d.name else f"({name} {number})")
        target = f"#{anchor(name, number)}" if name == self.d.name else f"{name}{self.suffix}#{anchor(name, number)}"
        return f"[{shown}]({target})"

    def _label(self, name: str, label: str) -> str:
        if name == self.d.name:
            return self.link(name, self.d.step_index(label) + 1)
        for step in self.d.steps:  # a cited derivation: found through the step that cites it
            source = getattr(step, "source", None)
            if source is not None and source.name == name:
                return self.link(name, source.step_index(label) + 1)
        return f"({name}: {label})"

    def resolve(self, text: str) -> str:
        text = re.sub(r"eqs?\.~?\\eqref", r"\\eqref", text)
        text = re.sub(r"\\eqref\{@([a-z_0-9]+)\}", lambda m: self._label(self.d.name, m.group(1)), text)
        text = re.sub(r"\\eqref\{@([a-z_]+):([a-z_0-9]+)\}", lambda m: self._label(m.group(1), m.group(2)), text)
        text = re.sub(r"\\eqref\{([a-z_]+):(\d+)\}", lambda m: self.link(m.group(1), int(m.group(2))), text)
        text = re.sub(r"eq\.~?\((\d+)\) of \\emph\{([a-z\\_]+)\}",
                      lambda m: "eq. " + self.link(m.group(2).replace(r"\_", "_"), int(m.group(1))), text)
        return re.sub(r"eq\.[~ ]?\((\d+)\)", lambda m: "eq. " + self.link(self.d.name, int(m.group(1))), text)


def _steps(obj) -> tuple[Derivation, list[tuple[int, object, Verdict | None]]]:
    """The derivation and its (number, step, verdict) rows; verdict None when unchecked."""
    if isinstance(obj, CheckedDerivation):
        return obj.derivation, [(cs.number, cs.step, cs.verdict) for cs in obj.steps]
    if isinstance(obj, Derivation):
        return obj, [(k, step, None) for k, step in enumerate(obj.steps, start=1)]
    raise TypeError(f"render_markdown takes a Derivation or a CheckedDerivation, not {type(obj).__name__}")


def verdict_text(step, verdict: Verdict | None) -> str:
    """How a step was checked, in words (Markdown)."""
    if verdict is None:
        return "premise (model statement)" if isinstance(step, Premise) else (
            "definition" if isinstance(step, Define) else "not checked yet")
    if verdict.symbolic == "n/a":
        return verdict.method
    if verdict.symbolic is True:
        return f"SymPy: proved; mpmath: {verdict.method}"
    return f"**SymPy: not settled, numeric check only**; mpmath: {verdict.method}"


def _lhs(step, notation) -> str:
    return step.lhs or (tex(step.symbol, notation) if isinstance(step, Define) else "")


def _equation_lines(step, notation) -> list[str]:
    """The aligned rows of one step: ``lhs &rel rhs``, long right sides broken."""
    rel = relation(step, notation)
    lines = break_lines(step.rhs, WIDTH_EM * 0.75, WIDTH_EM * 0.75 - 2, notation)
    rows = [f"{_lhs(step, notation)} &{rel} {lines[0]}"] + [rf"&{CONTINUATION} {{}}{line}" for line in lines[1:]]
    text = " \\\\\n".join(rows)
    for old, new in _MATH_SUBS:
        text = text.replace(old, new)
    return text.splitlines()


def _premises(d: Derivation, rows, refs: _Refs, checked) -> list[str]:
    statements = checked.premises if checked is not None else tuple(
        {s.statement.name: s.statement for _, s, _ in rows if isinstance(s, Premise)}.values())
    if not statements:
        return []
    out = ["## Premises", "", "Everything below is derived from the model's statements, and from nothing else:", ""]
    for st in statements:
        used = [k for k, s, _ in rows if isinstance(s, Premise) and s.statement.name == st.name]
        where = ("; stated as " + ", ".join(refs.link(d.name, k) for k in used) + ".") if used else \
            "; used through the results cited from other documents."
        out.append(f"- {md_prose(st.text.rstrip().rstrip('.'))}{where}")
    return out + [""]


def _symbols(rows, notation) -> list[str]:
    groups = used_quantities([s for _, s, _ in rows], notation)
    if not groups:
        return []
    out = ["## Symbols", "", "| symbol | meaning | code name |", "|---|---|---|"]
    for qs in groups:
        meaning = md_prose(qs[0].meaning).replace("|", r"\vert ")
        out.append(f"| ${qs[0].latex}$ | {meaning} | " + ", ".join(f"`{q.code}`" for q in qs) + " |")
    return out + [""]


def _exports(d: Derivation, refs: _Refs, notation) -> list[str]:
    if not d.exports:
        return []
    out = ["## Generated numeric functions", "", "| function | from | what it computes |", "|---|---|---|"]
    for e in d.exports:
        number = d.step_index(e.label) + 1
        summary = md_prose(typeset(e.doc.strip().splitlines()[0], symbol_names(notation)))
        args = ", ".join(a.name for a in e.args)
        out.append(f"| `{e.function}({args})` | eq. {refs.link(d.name, number)} | {summary} |")
    return out + [""]


def render_markdown(obj: Derivation | CheckedDerivation, suffix: str = ".md") -> str:
    """The Markdown document of a derivation, checked or not (deterministic).  A step of
    another document is linked as ``<name><suffix>#<name>-<k>``: write each document as
    ``<name>.md`` (or pass the suffix the files get)."""
    d, rows = _steps(obj)
    checked = obj if isinstance(obj, CheckedDerivation) else None
    notation = d.resolved_notation()
    refs = _Refs(d, suffix)
    out = [f"# {md_prose(d.title)}", ""]
    if not checked:
        out += ["*Not checked yet: `shrinkage.derive.check(derivation)` checks every step.*", ""]
    out += [md_prose(refs.resolve(d.summary.strip())), ""]
    out += _premises(d, rows, refs, checked)
    out += _symbols(rows, notation)
    out += ["## Derivation", ""]
    for number, step, verdict in rows:
        out += [f'<a id="{anchor(d.name, number)}"></a>', "",
                f"**Step {number}.** {md_prose(refs.resolve(step.why))} "
                f"*[{md_prose(refs.resolve(verdict_text(step, verdict)))}]*", "",
                "$$", r"\begin{aligned}", *_equation_lines(step, notation), r"\end{aligned}", rf"\tag{{{number}}}",
                "$$", ""]
    out += _exports(d, refs, notation)
    if checked is not None:
        out += ["## How the steps were checked", "", md_prose(refs.resolve(closing(checked))), ""]
    return "\n".join(out).rstrip() + "\n"


def _plain(text: str) -> str:
    """Prose for \\text{...}: formatting macros dropped, $...$ kept (nested maths)."""
    out = []
    for is_math, part in _split_math(text):
        if is_math:
            out.append(f"${part}$")
            continue
        for _ in range(3):
            for pattern, _repl in _TEXT_MACROS:
                part = pattern.sub(r"\1", part)
        for old, new in _TEXT_SYMBOLS:
            part = part.replace(old, new)
        out.append(part.replace("{", r"\{").replace("}", r"\}"))
    return "".join(out)


def render_latex_display(obj: Derivation | CheckedDerivation) -> str:
    """The chain as one display of pure maths: a text row (number, reason, verdict) above
    each equation.  For Jupyter's text/latex and nbconvert's LaTeX export."""
    d, rows = _steps(obj)
    notation = d.resolved_notation()
    body: list[str] = []
    for number, step, verdict in rows:
        note = re.sub(r"\*+", "", verdict_text(step, verdict))
        body.append(rf"&\textbf{{{number}.}}\ \text{{{_plain(step.why)}}}\quad\textit{{{_plain(note)}}} \\")
        body += [line if line.endswith("\\\\") else line + r" \\" for line in _equation_lines(step, notation)]
    if body:
        body[-1] = body[-1][:-2].rstrip()
    return "\n".join([r"$$", r"\begin{aligned}", *body, r"\end{aligned}", r"$$"])
