"""Chains of equalities written as LaTeX strings (a report's worked numbers), broken at
their relations when a line would run past the margin.  No SymPy: a report uses it.

``chain_block`` lays out several chains in one ``align*``: every chain starts at the
common alignment point; a chain whose links do not fit on one line continues on the
next with its next relation (``&= ...``), so each line ends where a relation begins.
"""

from __future__ import annotations

from dataclasses import dataclass

from .measure import width
from .preamble import LINEWIDTH_EM

SAFETY = 0.93


@dataclass(frozen=True)
class Chain:
    """``lhs rel1 x1 rel2 x2 ...``, introduced by the text ``label`` on a short line above."""

    label: str
    lhs: str
    links: tuple[tuple[str, str], ...]


def _rows(lhs: str, links, room: float) -> list[str]:
    rows, line, used = [], [], 0.0
    for rel, x in links:
        w = width("{}" + rel + " " + x)
        if line and used + w > room:
            rows.append(" ".join(line))
            line, used = [], 0.0
        line.append(f"{rel} {x}")
        used += w
    rows.append(" ".join(line))
    return [f"{lhs} &{rows[0]}"] + [f"&{r}" for r in rows[1:]]


def chain_block(chains: list[Chain], linewidth: float = LINEWIDTH_EM) -> list[str]:
    """An align* block of ``chains``, every line within ``linewidth``."""
    lhs_col = max((width(c.lhs) for c in chains), default=0.0)
    room = SAFETY * linewidth - lhs_col
    out = [r"\begin{align*}"]
    for c in chains:
        if c.label:
            out.append(rf"\shortintertext{{{c.label}}}")
        out += [row + r"\\" for row in _rows(c.lhs, c.links, room)]
    out[-1] = out[-1][:-2]
    out.append(r"\end{align*}")
    return out
