"""The one walk through a derivation: the state each step is checked against.

Checking (checks.check), mutation testing (mutate.contexts, mutate.judge) and anything
else that needs "the current expression and the definitions in force before step k"
walk the steps here, so the rules (a Define changes the definitions, not the chain; a
Sign leaves the chain as it was; a Cite brings the source's definitions along) exist
once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Mapping

import sympy as sp

from ..errors import DerivationError
from .notation import Notation
from .steps import Cite, Define, Derivation, Sign, Step


@dataclass(frozen=True)
class Context:
    """What step ``number`` (1-based) of ``derivation`` is checked against."""

    derivation: str
    number: int
    step: Step
    current: sp.Expr | None  # the rhs of the chain before this step (None at the start)
    definitions: Mapping[sp.Symbol, sp.Expr]
    notation: Notation
    owner: Derivation | None = field(default=None, compare=False, repr=False)  # the derivation walked


def mentioned(exprs, definitions: Mapping) -> set:
    """The defined symbols ``exprs`` use, directly or through other definitions."""
    seen, todo = set(), [e for e in exprs if e is not None]
    while todo:
        e = todo.pop()
        for s in e.free_symbols:
            if s in definitions and s not in seen:
                seen.add(s)
                todo.append(definitions[s])
    return seen


def state_at(d: Derivation, label: str) -> Context:
    """The context of the step labelled ``label`` (its own definition included, if it
    is a Define)."""
    number = d.step_index(label) + 1
    for ctx in walk(d):
        if ctx.number == number:
            return ctx
    raise AssertionError("unreachable")  # step_index found it


def cited_definitions(step: Cite) -> dict:
    """The source's definitions that a cited expression uses (transitively)."""
    ctx = state_at(step.source, step.of)
    defs = dict(ctx.definitions)
    if isinstance(ctx.step, Define):
        defs[ctx.step.symbol] = ctx.step.rhs
    return {s: defs[s] for s in mentioned((step.rhs,), defs)}


def _same_domains(ctx: Context, step: Cite) -> None:
    """A cited result holds on its source's domains: the citing notation may not widen
    them (a symbol it samples elsewhere would check the citation where it was never shown)."""
    theirs = step.source.resolved_notation()
    if theirs is ctx.notation:
        return
    for sym in sorted(step.rhs.free_symbols, key=str):
        if isinstance(sym, sp.Symbol) and str(sym) in theirs and str(sym) in ctx.notation:
            a, b = theirs.quantity_of(sym), ctx.notation.quantity_of(sym)
            if a.domain_name != b.domain_name:
                raise DerivationError(f"derivation {ctx.derivation!r}, step {ctx.number}: cites {step.source.name!r}, "
                                      f"where {sym} is {a.domain_name}, but here it is {b.domain_name}")


def advance(ctx: Context) -> tuple[sp.Expr | None, dict]:
    """(current expression, definitions) after the step of ``ctx``."""
    step, definitions = ctx.step, dict(ctx.definitions)
    if isinstance(step, Define):
        definitions[step.symbol] = step.rhs
        return ctx.current, definitions
    if isinstance(step, Cite):
        _same_domains(ctx, step)
        for s, e in cited_definitions(step).items():
            if s in definitions and definitions[s] != e:
                raise DerivationError(f"derivation {ctx.derivation!r}, step {ctx.number}: cites "
                                      f"{step.source.name!r}, which defines {s} differently")
            definitions[s] = e
    if isinstance(step, Sign):
        return ctx.current, definitions
    return step.rhs, definitions


def walk(d: Derivation, start: int = 1, resume: Context | None = None) -> Iterator[Context]:
    """The context of every step from ``start`` on.  ``resume`` (the context of step
    ``start``, possibly of another derivation whose steps before ``start`` are the same)
    spares the walk through the earlier steps; a mutant is replayed this way."""
    notation = d.resolved_notation()
    if resume is not None:
        current, definitions = resume.current, dict(resume.definitions)
    else:
        current, definitions = None, dict(notation.definitions)
    first = start if resume is not None else 1
    for number in range(first, len(d.steps) + 1):
        ctx = Context(d.name, number, d.steps[number - 1], current, definitions, notation, d)
        if number >= start:
            yield ctx
        current, definitions = advance(ctx)
