"""Runs of checked steps quoted in another document, tagged as in their own document.

A document that answers a question (``shrinkage.answer``) quotes steps of several
checked derivations.  Each quoted step keeps its number in its standalone document as
its tag, ``(blup 9)``; steps are named by label, never by number: ``"blup"`` is the
step labelled blup, ``"blup+1"`` the step after it, ``"first"`` the first step.
References ``\\eqref{@name:label}`` become \\eqref to a quoted step, or the tag as text
when the step is not quoted here.  A note that points to "the previous line" of a
step whose previous line is not quoted names that line by its tag instead.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Mapping

from ..derive import CheckedDerivation, Define, Equals, Sign
from ..errors import DerivationError
from .document import check_note, step_lhs, step_row, used_quantities
from .layout import Row, align_lines
from .measure import text_width
from .tex import escape

_REF = re.compile(r"^(first|[a-z_0-9]+?)([+-]\d+)?$")
_PLACEHOLDER = re.compile(r"\{excerpt:([a-z_]+):([a-z_0-9+-]+):([a-z_0-9+-]+)\}")
_PREVIOUS = re.compile(r"\bthe (?:previous|preceding) (?:line|step|equation)\b")


def tag(name: str, number: int) -> str:
    return rf"\textsf{{{escape(name)}}}~{number}"


def step_number(cd: CheckedDerivation, ref: str) -> int:
    """The number of the step ``ref`` names: a label, ``label+k``/``label-k``, or ``first``."""
    m = _REF.match(ref)
    if not m:
        raise DerivationError(f"{ref!r} names no step of {cd.derivation.name}: use a label, label+k or first")
    base = 1 if m.group(1) == "first" else cd.derivation.step_index(m.group(1)) + 1
    number = base + int(m.group(2) or 0)
    if not 1 <= number <= len(cd.steps):
        raise DerivationError(f"{ref!r} is outside the {len(cd.steps)} steps of {cd.derivation.name}")
    return number


def _borrowed_lhs(cd: CheckedDerivation, number: int) -> str:
    """The left-hand side a continuation line (``= ...``) stands for: the lhs of the
    nearest earlier step, provided everything in between rewrote the same quantity."""
    for k in range(number - 1, 0, -1):
        step = cd.derivation.steps[k - 1]
        if step.lhs:
            return step.lhs
        if not isinstance(step, (Equals, Define, Sign)):
            break
    raise DerivationError(f"excerpt of {cd.derivation.name} starts at step {number}, whose left side is unknown")


class Excerpts:
    """Renders runs of steps; remembers which equations the document shows, so that
    references to the others are written as text instead of a broken \\eqref."""

    def __init__(self, checked: Mapping[str, CheckedDerivation]):
        self.checked = checked
        self.shown: set[str] = set()
        self.steps: list = []  # every quoted (CheckedStep, notation), in order, for the notation table

    def lines(self, name: str, first: str, last: str) -> list[str]:
        cd = self.checked[name]
        a, b = step_number(cd, first), step_number(cd, last)
        rows = []
        for cs in cd.steps[a - 1 : b]:
            lhs = step_lhs(cs, cd.notation) or (_borrowed_lhs(cd, a) if cs.number == a else "")
            label = f"{name}:{cs.number}"
            end = rf"\tag{{{tag(name, cs.number)}}}"
            if label not in self.shown:
                end += rf"\label{{{label}}}"
                self.shown.add(label)
            note = re.sub(r"eq\.~\((\d+)\)", lambda m: f"({tag(name, int(m.group(1)))})", check_note(cs))
            row = step_row(cs, lhs, end, text_width(f"({name} {cs.number})") + 0.5, f"{escape(name)}~{cs.number}", note,
                           cd.notation, cd.derivation)
            if cs.number == a and a > 1:  # its previous line is not shown here: name it
                row = _name_previous(row, tag(name, a - 1))
            rows.append(row)
            self.steps.append((cs, cd.notation))
        return [r"\begin{align}", *align_lines(rows, cd.notation), r"\end{align}"]

    def expand(self, body: str) -> str:
        """Replace each {excerpt:name:first:last} by the steps it names."""
        return _PLACEHOLDER.sub(lambda m: "\n".join(self.lines(m.group(1), m.group(2), m.group(3))), body)

    def quantities(self) -> list[list]:
        """The quantities the quoted steps mention, one entry per LaTeX name, in the order
        of the notations (each quoted derivation's, first come first)."""
        seen: dict[str, list] = {}
        notations = list({id(n): n for _, n in self.steps}.values())
        for notation in notations:
            steps = [cs.step for cs, n in self.steps if n is notation]
            for qs in used_quantities(steps, notation):
                seen.setdefault(qs[0].latex, qs)
        return list(seen.values())

    def resolve_refs(self, text: str) -> str:
        """\\eqref{@name:ref} becomes \\eqref{name:k} (k the step's number); \\eqref{name:k} to an
        equation not shown here becomes plain text (name k)."""

        def fix(m: re.Match) -> str:
            label = m.group(1)
            if label in self.shown:
                return m.group(0)
            name, number = label.rsplit(":", 1)
            return rf"\textup{{({tag(name, int(number))})}}"

        text = re.sub(r"\\eqref\{@([a-z_]+):([a-z_0-9+-]+)\}",
                      lambda m: rf"\eqref{{{m.group(1)}:{step_number(self.checked[m.group(1)], m.group(2))}}}", text)
        return re.sub(r"\\eqref\{([a-z_]+:\d+)\}", fix, text)


def _name_previous(row: Row, previous: str) -> Row:
    """``row`` with "the previous line" in its reason and note replaced by the line's tag."""
    return replace(row, before=_PREVIOUS.sub(lambda _: f"eq.~({previous})", row.before))
