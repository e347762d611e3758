"""Mutation testing of derivations: corrupt one step at a time, and see the checker refuse it.

A *mutant* is a derivation with exactly one step corrupted in a way a careless hand or a
wrong algebra step would: a numeric coefficient changed, a term dropped or doubled, a
sign flipped, two symbols the notation names as easily confused swapped (sigma^2 and
sigma_b^2, ybar_j and beta0: Notation.swaps), the claimed sign of a
Sign step reversed, the point of a Limit moved.  A mutant that is mathematically equal to
the original (e.g. swapping the variances in a symmetric expression) is no corruption:
it is detected numerically, with the checker's own machinery (equal at every random
point, at 50 digits, to the original), and skipped, with the reason recorded.

:func:`judge` replays the mutated derivation from the corrupted step on, with the
context (current expression, definitions) the original derivation has at that step, so a
mutant costs one step check instead of a full derivation check.  The replay follows
:func:`shrinkage.derive.check` exactly (the same walk); a mutant counts as rejected only if the checker
raises :class:`~shrinkage.errors.StepError` (any other exception is a checker crash).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import sympy as sp

from ..errors import StepError
from .algebra import xreplace_shielded
from .checks import verify
from .claims import equal_at_points
from .points import Failure
from .steps import ConstrainedMaximiser, Define, Derivation, Given, Limit, ReadOffNormal, Sign, Step, Substitute
from .walk import Context, mentioned, walk


@dataclass(frozen=True)
class Mutant:
    derivation: str
    number: int  # 1-based step number, as in the documents
    operator: str  # coefficient | scale-term | drop-term | flip-sign | swap | sign-claim | limit-point
    description: str
    step: Step  # the corrupted step

    def apply(self, d: Derivation) -> Derivation:
        steps = list(d.steps)
        steps[self.number - 1] = self.step
        return replace(d, steps=tuple(steps))


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    status: str  # "rejected" | "survived" | "crashed"
    at_step: int | None = None  # step whose check rejected it
    detail: str = ""


# ----------------------------------------------------------------------------------
# Expression surgery
# ----------------------------------------------------------------------------------
def _rebuild(node: sp.Basic, args: list) -> sp.Basic:
    if isinstance(node, sp.MatAdd):  # (a MatAdd is an Add: keep it a matrix sum)
        return args[0] if len(args) == 1 else sp.MatAdd(*args, evaluate=False)
    if isinstance(node, sp.Add):
        return args[0] if len(args) == 1 else sp.Add(*args, evaluate=False)
    if isinstance(node, (sp.Mul, sp.Pow)):
        return node.func(*args, evaluate=False)
    return node.func(*args)


_LEAVES = (sp.Indexed, sp.IndexedBase, sp.Symbol, sp.Tuple, sp.MatrixSymbol, sp.Identity, sp.ZeroMatrix,
           sp.OneMatrix, sp.MatrixBase)


def _positions(expr: sp.Basic, path: tuple = ()) -> Iterator[tuple[tuple, sp.Basic]]:
    """Every (path, subexpression), outside indices, summation limits and the shapes of
    matrices (a node may name the arguments that are expressions: ``mutable_args``)."""
    yield path, expr
    if isinstance(expr, _LEAVES) or expr.is_Atom:
        return
    default = (0,) if isinstance(expr, sp.Inverse) else range(len(expr.args))  # not Inverse's fixed -1
    for k in getattr(expr, "mutable_args", default):
        yield from _positions(expr.args[k], path + (k,))


def _replace_at(expr: sp.Basic, path: tuple, new: sp.Basic) -> sp.Basic:
    if not path:
        return new
    args = list(expr.args)
    args[path[0]] = _replace_at(args[path[0]], path[1:], new)
    return _rebuild(expr, args)


def _drop_at(expr: sp.Basic, path: tuple, k: int) -> sp.Basic:
    node = expr
    for p in path:
        node = node.args[p]
    args = [a for m, a in enumerate(node.args) if m != k]
    return _replace_at(expr, path, _rebuild(node, args))


def _other_number(v: sp.Number) -> sp.Number:
    if v == 1:
        return sp.Integer(2)
    if v == -1:
        return sp.Integer(-2)
    if v == 2:
        return sp.Integer(3)
    return v + 1


def expression_mutants(expr: sp.Expr, swaps: tuple = ()) -> list[tuple[str, str, sp.Expr]]:
    """(operator, description, corrupted expression) for one expression; ``swaps``:
    (description, mapping) pairs of symbols to exchange (a notation's ``swaps``)."""
    out: list[tuple[str, str, sp.Expr]] = []
    for path, node in _positions(expr):
        if node.is_Number and node.is_finite:
            new = _other_number(node)
            out.append(("coefficient", f"number {node} -> {new} at {path}", _replace_at(expr, path, new)))
        if isinstance(node, sp.Add):
            for k, term in enumerate(node.args):
                out.append(("drop-term", f"drop term {term} at {path}", _drop_at(expr, path, k)))
                out.append(("flip-sign", f"flip the sign of term {term} at {path}", _replace_at(expr, path + (k,), -term)))
                out.append(("scale-term", f"double term {term} at {path}", _replace_at(expr, path + (k,), 2 * term)))
    if expr != 0:
        out.append(("flip-sign", "flip the sign of the whole expression", -expr))
    for name, swap in swaps:
        if expr.has(*swap) and xreplace_shielded(expr, swap) != expr:
            # array elements ybar[j] keep their names: swap the scalars only
            out.append(("swap", name, xreplace_shielded(expr, swap)))
    return out


def _field_mutants(step: Step, swaps: tuple) -> list[tuple[str, str, Step]]:
    """Corruptions of the fields of a step other than its rhs: a substituted value, the
    moment read off, a joint maximiser."""
    out = []
    if isinstance(step, Substitute):
        for k, (sym, value) in enumerate(step.values):
            for operator, description, new in expression_mutants(value, swaps)[:6]:
                pairs = list(step.values)
                pairs[k] = (sym, new)
                out.append((operator, f"value of {sym}: {description}", replace(step, values=tuple(pairs))))
    if isinstance(step, ReadOffNormal):
        other = "mean" if step.moment == "variance" else "variance"
        out.append(("moment", f"read off the {other}", replace(step, moment=other)))
    if isinstance(step, ConstrainedMaximiser):
        for k, (sym, value) in enumerate(step.jointly):
            for operator, description, new in expression_mutants(value, swaps)[:6]:
                pairs = list(step.jointly)
                pairs[k] = (sym, new)
                out.append((operator, f"maximiser of {sym}: {description}", replace(step, jointly=tuple(pairs))))
    return out


def step_mutants(d: Derivation, number: int) -> list[Mutant]:
    """Every corruption of step ``number`` (1-based), identical duplicates removed."""
    step = d.steps[number - 1]
    found: list[Mutant] = []
    seen = {sp.srepr(step.rhs)}
    extension = extension_of(d)
    swaps = d.resolved_notation().swaps
    candidates = expression_mutants(step.rhs, swaps if extension is None else extension.swaps())
    if extension is not None:
        candidates += extension.expression_mutants(step.rhs)
    if isinstance(step, Sign) and step.rhs.is_Number:
        # Moving the bound of "x > 0" to -1 gives a weaker claim that is still true: move
        # it the other way, which claims more than was shown.
        bound = step.rhs + step.sign
        candidates = [("coefficient", f"bound {step.rhs} -> {bound}", bound)]
    for operator, description, rhs in candidates:
        key = sp.srepr(rhs)
        if key in seen:
            continue
        seen.add(key)
        found.append(Mutant(d.name, number, operator, description, replace(step, rhs=rhs)))
    if isinstance(step, Sign):
        found.append(Mutant(d.name, number, "sign-claim", "claim the opposite sign", replace(step, sign=-step.sign)))
    if isinstance(step, Limit):
        other = sp.S.Zero if step.point == sp.oo else sp.oo
        found.append(Mutant(d.name, number, "limit-point", f"limit at {other} instead of {step.point}", replace(step, point=other)))
    fields = _field_mutants(step, swaps) + (extension.field_mutants(step) if extension is not None else [])
    found.extend(Mutant(d.name, number, op, desc, new) for op, desc, new in fields)
    return found


def extension_of(d: Derivation):
    """The mutation operators a derivation's notation adds for its own expressions (the
    matrix notation: shrinkage.matrix.mutate), or None.  An extension has ``swaps()``,
    ``expression_mutants(expr)``, ``field_mutants(step)`` and ``equivalent(context,
    original, mutated)``."""
    return getattr(d.resolved_notation(), "mutation", None)


# ----------------------------------------------------------------------------------
# Context of each step, equivalence, and the verdict on a mutant
# ----------------------------------------------------------------------------------
def contexts(d: Derivation) -> list[Context]:
    """The context (current expression, definitions) each step of ``d`` is checked
    against: the one walk of checks.check, without checking anything."""
    return list(walk(d))


def equivalent(d: Derivation, mutant: Mutant, context: Context) -> bool:
    """True if the mutant's fields are those of the original step and its rhs equals the
    original rhs at every random point (50 digits) of the numeric check."""
    original = d.steps[mutant.number - 1]
    extension = extension_of(d)
    if extension is not None:
        return extension.equivalent(context, original, mutant.step)
    if replace(mutant.step, rhs=original.rhs) != original:
        return False  # a field other than rhs was changed (sign claimed, limit point)
    probe = replace(context, derivation=f"{d.name}/equivalence")
    try:
        equal_at_points(probe, original.rhs, mutant.step.rhs)
    except Failure:
        return False
    except (ValueError, TypeError, ZeroDivisionError, ArithmeticError):
        return False  # not even evaluable where the original is: certainly different
    return True


HORIZON = 3  # checked steps after a corrupted Given within which it must be caught
DEFINE_HORIZON = 10  # checked steps using a corrupted definition within which it must be caught


def judge(d: Derivation, mutant: Mutant, context: Context, horizon: int = HORIZON) -> Outcome:
    """Replay the mutated derivation from the corrupted step on (the walk of check),
    stopping at the first StepError.

    The corrupted step itself gets the full check (checks.verify).  A corrupted
    Given or Define is checked by nothing itself, so the replay goes on through the next
    ``horizon`` checked steps, numeric checks only (the numeric check is the one that
    rejects; SymPy only upgrades a verdict).  A corrupted Given not caught there is an
    "unchecked premise": the documents mark a Given as unchecked, and the claims after
    it hold for the corrupted statement too (e.g. a dropped constant under a limit).
    For a corrupted Define, only the later steps that use the defined symbol count."""
    md = mutant.apply(d)
    checked_after = 0
    defined = mutant.step.symbol if isinstance(mutant.step, Define) else None
    if defined is not None:
        horizon = max(horizon, DEFINE_HORIZON)
    try:
        for ctx in walk(md, start=mutant.number, resume=context):
            own = ctx.number == mutant.number
            if own or not ctx.step.claim:
                verify(ctx, symbolic=own and ctx.step.claim)  # premises, recalls: their restatement check
                if own and ctx.step.claim:
                    # A checked claim is judged by its own check: accepting a corrupted
                    # claim is a survival even if a later step happened to catch it.
                    return Outcome(mutant, "survived", None, "its own check accepted it")
            elif defined is None or defined in mentioned((ctx.current, ctx.step.rhs), ctx.definitions):
                # (a step that never sees a corrupted definition cannot catch it: skipped)
                verify(ctx, symbolic=False)
                checked_after += 1
                if checked_after >= horizon:
                    break
    except StepError as e:
        return Outcome(mutant, "rejected", e.step, e.detail)
    except Exception as e:  # noqa: BLE001 - a crash is a finding, reported as such
        return Outcome(mutant, "crashed", None, f"{type(e).__name__}: {e}")
    if isinstance(d.steps[mutant.number - 1], Given):
        return Outcome(mutant, "unchecked-premise", None, f"no check within {checked_after} later checked steps")
    return Outcome(mutant, "survived", None, f"no check within {checked_after} later checked steps")


def select(mutants: list[Mutant], limit: int | None, start: int = 0) -> list[Mutant]:
    """At most ``limit`` mutants, taking the operators in turn (beginning with the
    ``start``-th, so that consecutive steps exercise different operators); all if None."""
    if limit is None or len(mutants) <= limit:
        return list(mutants)
    by_operator: dict[str, list[Mutant]] = {}
    for m in mutants:
        by_operator.setdefault(m.operator, []).append(m)
    operators = sorted(by_operator)
    operators = operators[start % len(operators):] + operators[:start % len(operators)]
    chosen: list[Mutant] = []
    while len(chosen) < limit:
        for op in operators:
            if by_operator[op] and len(chosen) < limit:
                chosen.append(by_operator[op].pop(0))
    return chosen


@dataclass(frozen=True)
class StepReport:
    derivation: str
    number: int
    kind: str
    outcomes: tuple[Outcome, ...]
    equivalent: tuple[Mutant, ...]


def mutate_step(d: Derivation, number: int, ctx: Context | None = None, limit: int | None = None) -> StepReport:
    """All mutants of one step, judged; those not rejected are then tested for
    equivalence with the original and, if equivalent, set aside (not a corruption).

    A checked claim (Equals, Maximiser, ...) is judged by its own check; a corrupted
    Given or Define by the steps after it (it is rejected if any of them fails); a
    corrupted Recall by the restatement check.  Equivalence is tested only for mutants
    the checker did not reject, which is where it matters (an equivalent mutant that is
    rejected anyway counts as rejected).  For Given, Define and Recall, whose judging
    replays the rest of the derivation, equivalence is tested first."""
    ctx = ctx or contexts(d)[number - 1]
    outcomes, skipped = [], []
    unchecked = not d.steps[number - 1].claim
    for m in select(step_mutants(d, number), limit, start=number):
        if unchecked and equivalent(d, m, ctx):  # spare a replay of every later step
            skipped.append(m)
            continue
        outcome = judge(d, m, ctx)
        if not unchecked and outcome.status == "survived" and equivalent(d, m, ctx):
            skipped.append(m)
        else:
            outcomes.append(outcome)
    return StepReport(d.name, number, d.steps[number - 1].kind, tuple(outcomes), tuple(skipped))


def mutant_file_source(original: Path | str, number: int, description: str) -> str:
    """The text of a derivation file that builds the derivation of ``original`` with
    step ``number`` replaced by its mutant described by ``description``: put it in a
    folder under the same file name and run the build on that folder, end to end."""
    return (
        '"""A corrupted copy of a derivation, written by shrinkage.derive.mutate for a test."""\n'
        "import importlib.util\n\n"
        "from shrinkage.derive import mutate\n\n\n"
        "def derivation():\n"
        f"    spec = importlib.util.spec_from_file_location('original_of_mutant', {str(original)!r})\n"
        "    module = importlib.util.module_from_spec(spec)\n"
        "    spec.loader.exec_module(module)\n"
        "    d = module.derivation()\n"
        f"    (m,) = [m for m in mutate.step_mutants(d, {number}) if m.description == {description!r}]\n"
        "    return m.apply(d)\n"
    )
