"""Check a derivation: every claim verified symbolically and numerically, or the build stops.

:func:`check` walks the steps (walk.py) and verifies each claim with the two checks of
its kind (claims.py, optimum.py):

* numerically: mpmath at ``DPS`` digits at ``POINTS`` random points drawn from the
  symbols' domains (sums over observations written out at concrete lengths); this is
  what rejects a claim, with a counterexample;
* symbolically: SymPy proves it under the symbols' assumptions (True), or cannot settle
  it (None: the document marks the step "numeric check only").

Premises must restate their model statement; recalls and citations must restate the
step they name; exports must come from checked claims.  Each step's check runs under a
time limit.
"""

from __future__ import annotations

import keyword
import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Mapping

import mpmath
import sympy as sp

from ..errors import DerivationError, StepError, StepTimeoutError
from . import claims, optimum
from .algebra import has_data_sums, substitute
from .notation import default_notation
from .points import DPS, POINTS, Failure
from .steps import (Cite, Conditional, ConstrainedMaximiser, Define, Derivation, Derivative, Equals, Given,
                    Limit, LogIntegral, Maximiser, Premise, ReadOffNormal, Recall, Sign, Statement, Step,
                    Substitute, expressions_of)
from .walk import Context, advance, mentioned, walk

DEFAULT_TIMEOUT = 120.0  # seconds per step check, unless SHRINKAGE_STEP_TIMEOUT or timeout= says otherwise
TIMEOUT_ENV = "SHRINKAGE_STEP_TIMEOUT"

# kind of claim -> (numeric check, symbolic check), each called with the walk's Context.
# The numeric check runs first: it is cheap to fail, and it produces a counterexample.
# A new kind registers here (subclasses of a kind inherit its checks), or has a method
# verify(name, number, current, definitions, symbolic) -> Verdict of its own.
CHECKS: dict[type, tuple[Callable, Callable]] = {
    Equals: (claims.numeric_equals, claims.symbolic_equals),
    Substitute: (claims.numeric_substitute, claims.symbolic_substitute),
    Maximiser: (claims.numeric_maximiser, claims.symbolic_maximiser),
    ConstrainedMaximiser: (optimum.numeric_constrained, optimum.symbolic_constrained),
    ReadOffNormal: (claims.numeric_read_off, claims.symbolic_read_off),
    LogIntegral: (claims.numeric_log_integral, claims.symbolic_log_integral),
    Conditional: (claims.numeric_log_integral, claims.symbolic_log_integral),
    Derivative: (claims.numeric_derivative, claims.symbolic_derivative),
    Limit: (claims.numeric_limit, claims.symbolic_limit),
    Sign: (claims.numeric_sign, claims.symbolic_sign),
}


@dataclass(frozen=True)
class Verdict:
    """How one step was checked.  symbolic: True (proven), None (SymPy could not settle
    it; numeric evidence only), or 'n/a' for premises, definitions and restatements."""

    symbolic: object
    points: int
    method: str  # e.g. "24 random points, 50 digits", "premise (model statement)"


@dataclass(frozen=True)
class CheckedStep:
    step: Step
    number: int
    current: sp.Expr  # the expression this step was checked against (before it)
    verdict: Verdict


@dataclass(frozen=True)
class CheckedDerivation:
    """A derivation whose every claim passed its checks."""

    derivation: Derivation
    steps: tuple[CheckedStep, ...]
    definitions: Mapping[sp.Symbol, sp.Expr] = field(default_factory=dict)
    sources: tuple["CheckedDerivation", ...] = ()  # the checked derivations it cites
    # results already computed (doit on sums of data takes SymPy seconds): filled by
    # result(), and by the checking worker for every export, so the cache carries them
    _results: dict = field(default_factory=dict, compare=False, repr=False)

    def result(self, label: str) -> sp.Expr:
        """The rhs of step ``label`` with every definition substituted."""
        if label not in self._results:
            rhs = self.derivation.steps[self.derivation.step_index(label)].rhs
            self._results[label] = substitute(rhs, self.definitions, keep_sums=False).doit()
        return self._results[label]

    def with_results(self) -> "CheckedDerivation":
        """This derivation with the result of every export computed (where it can be:
        an export that cannot is reported by whoever needs it)."""
        for e in self.derivation.exports:
            try:
                self.result(e.label)
            except Exception:  # noqa: BLE001 - reported by codegen, with its context
                pass
        return self

    @property
    def notation(self):
        return self.derivation.resolved_notation()

    @property
    def premises(self) -> tuple[Statement, ...]:
        """The model statements this derivation rests on, its own Premise steps first,
        then those of the derivations it cites; each once, in order of first use."""
        found: dict[str, Statement] = {}
        for cs in self.steps:
            if isinstance(cs.step, Premise):
                found.setdefault(cs.step.statement.name, cs.step.statement)
        for src in self.sources:
            for st in src.premises:
                found.setdefault(st.name, st)
        return tuple(found.values())

    @property
    def unchecked(self) -> tuple[CheckedStep, ...]:
        """Steps stated without a check that are not premises (deprecated Given steps)."""
        return tuple(cs for cs in self.steps if isinstance(cs.step, Given))


def _method(ctx: Context) -> str:
    exprs = (ctx.current, ctx.step.rhs)
    if has_data_sums(*[substitute(e, ctx.definitions) for e in exprs]):
        return f"{POINTS} random data sets, {DPS} digits"
    return f"{POINTS} random points, {DPS} digits"


class _Timeout(BaseException):
    """Raised by the alarm inside a step check; a BaseException so that no ``except
    Exception`` inside SymPy swallows it."""


def resolve_timeout(timeout: float | None) -> float | None:
    """Seconds per step: the argument, else $SHRINKAGE_STEP_TIMEOUT, else the default;
    0 or a negative number means no limit."""
    if timeout is None:
        raw = os.environ.get(TIMEOUT_ENV, "").strip()
        if not raw:
            return DEFAULT_TIMEOUT
        try:
            timeout = float(raw)
        except ValueError:
            raise DerivationError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds") from None
    return timeout if timeout > 0 else None


@contextmanager
def time_limit(seconds: float | None):
    """Raise _Timeout after ``seconds`` (SIGALRM: main thread only; elsewhere no limit).
    An alarm already pending (an outer time limit) is kept: it fires at its own time."""
    if not seconds or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return
    outer, _ = signal.getitimer(signal.ITIMER_REAL)
    began = time.monotonic()
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: None)
    ours = seconds if not outer else min(seconds, outer)

    def alarm(signum, frame):
        if outer and outer <= seconds and callable(previous):
            return previous(signum, frame)  # the outer limit came first: its handler decides
        raise _Timeout()

    signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, ours)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - began), 1e-3))


def step_tag(step: Step) -> str:
    """How the console names a step: its label, else its kind (never its LaTeX reason)."""
    return step.label or step.kind


def verify(ctx: Context, symbolic: bool = True, timeout: float | None = None) -> Verdict:
    """Check the step of ``ctx`` against its context; StepError if it fails.

    ``symbolic=False`` runs the numeric check only (verdict ``symbolic=None``): mutation
    testing uses it to replay the steps after a corrupted one cheaply; the build never
    does.  ``timeout`` in seconds (None: no limit)."""
    step = ctx.step
    try:
        with time_limit(timeout):
            return _verify(ctx, symbolic)
    except Failure as failure:
        raise StepError(ctx.derivation, ctx.number, step.why, str(failure), step_tag(step)) from None
    except _Timeout:
        raise StepTimeoutError(ctx.derivation, ctx.number, step.why,
                               f"no verdict within the time limit of {timeout:g} s (set {TIMEOUT_ENV} "
                               "or check(..., timeout=) to allow more)", step_tag(step)) from None


def _verify(ctx: Context, symbolic: bool) -> Verdict:
    step = ctx.step
    if isinstance(step, Define):
        return Verdict("n/a", 0, "definition")
    if isinstance(step, Premise):
        if step.statement is None:
            raise DerivationError(f"derivation {ctx.derivation!r}, step {ctx.number}: a Premise needs the "
                                  "Statement of the model it restates (use Premise.of(statement))")
        if step.rhs != step.statement.expr:
            raise Failure(f"does not restate the model statement {step.statement.name!r}")
        return Verdict("n/a", 0, "premise (model statement)")
    if isinstance(step, Given):
        return Verdict("n/a", 0, step.note)
    if isinstance(step, Recall):
        return _restates(ctx, ctx.derivation, ctx.owner, step.of, "")
    if isinstance(step, Cite):
        if step.source is None:
            raise DerivationError(f"derivation {ctx.derivation!r}, step {ctx.number}: a Cite needs its source")
        return _restates(ctx, step.source.name, step.source, step.of, r" of \emph{%s}" % step.source.name.replace("_", r"\_"))
    if ctx.current is None:
        raise Failure("the chain has no current expression to check against")
    kind = next((cls for cls in type(step).__mro__ if cls in CHECKS), None)
    if kind is None:
        if callable(getattr(step, "verify", None)):  # a kind that checks itself (e.g. shrinkage.matrix)
            return step.verify(ctx.derivation, ctx.number, ctx.current, ctx.definitions, symbolic)
        raise DerivationError(f"derivation {ctx.derivation!r}, step {ctx.number}: no check for the step kind "
                              f"{type(step).__name__}; add (numeric, symbolic) to shrinkage.derive.CHECKS "
                              "or give the kind a verify(name, number, current, definitions, symbolic) method")
    numeric, symbolic_check = CHECKS[kind]
    try:
        with mpmath.workdps(DPS):  # every comparison at DPS digits, whatever the caller's precision
            numeric(ctx)
    except (ArithmeticError, ValueError, TypeError) as e:
        # A claim that cannot even be evaluated at a point of the domain (a complex
        # logarithm, a division by zero) is not verified: reject it, never crash.
        raise Failure(f"the claim cannot be evaluated numerically on the symbols' domains: {e}") from None
    proved = symbolic_check(ctx) if symbolic else None
    return Verdict(proved, POINTS, _method(ctx))


def _restates(ctx: Context, name: str, d: Derivation, label: str, where: str) -> Verdict:
    """A Recall or Cite must restate its step exactly (``where``: LaTeX naming another
    derivation, empty for the same one)."""
    number = d.step_index(label) + 1
    if ctx.step.rhs != d.steps[number - 1].rhs:
        raise Failure(f"does not restate step {number} of {name!r}")
    return Verdict("n/a", 0, f"restates eq.~({number}){where}")


def verify_step(name: str, number: int, step: Step, current: sp.Expr, definitions: Mapping,
                symbolic: bool = True, notation=None, timeout: float | None = None) -> Verdict:
    """Check one claim against a given current expression and definitions (the default
    notation unless ``notation`` is given): for tests of single steps."""
    if notation is None:
        notation = default_notation()
    return verify(Context(name, number, step, current, dict(definitions), notation), symbolic, timeout)


def check_exports(d: Derivation) -> None:
    """Every export: a Python identifier naming a checked claim (a recall or citation of
    one counts; a premise, a definition or a Given does not)."""
    seen = set()
    for e in d.exports:
        if not e.function.isidentifier() or keyword.iskeyword(e.function):
            raise DerivationError(f"derivation {d.name!r}: export name {e.function!r} is not a Python identifier")
        if e.function in seen:
            raise DerivationError(f"derivation {d.name!r}: two exports named {e.function!r}")
        seen.add(e.function)
        for a in e.args:
            name = getattr(a, "name", None)
            if not isinstance(a, (sp.Symbol, sp.MatrixSymbol)) or not name.isidentifier() or keyword.iskeyword(name):
                raise DerivationError(f"derivation {d.name!r}: export {e.function!r} has an argument {a!r} that is "
                                      "not a symbol named by a Python identifier")
        origin, where, number = d, d, d.step_index(e.label) + 1
        step = d.steps[number - 1]
        while isinstance(step, (Recall, Cite)):
            where = step.source if isinstance(step, Cite) else where
            number = where.step_index(step.of) + 1
            step = where.steps[number - 1]
        if not step.claim:
            raise DerivationError(
                f"derivation {origin.name!r}: export {e.function!r} comes from step {number} of {where.name!r} "
                f"(label {e.label!r}), a {step.kind}, which is not checked; export a checked step instead")


def check_symbols(d: Derivation) -> None:
    """Every symbol a step, a premise or an export uses is its notation's own, refused at
    once otherwise: a plain ``sympy.symbols(...)`` lacks the notation's assumptions, and
    SymPy can then spend the whole time limit on a claim it would prove at once."""
    found = set()
    for step in d.steps:
        exprs = [*expressions_of(step), getattr(step, "var", None), getattr(step, "symbol", None)]
        found |= {s for e in exprs if isinstance(e, sp.Basic) for s in e.free_symbols}
    found |= {a for e in d.exports for a in e.args}
    found = {s for s in found if isinstance(s, sp.Symbol) and not isinstance(s, sp.Dummy)}
    notation = d.resolved_notation()
    problems = notation.foreign(found)
    if problems:
        raise DerivationError(f"derivation {d.name!r} uses symbols its notation {notation.name!r} does not give: "
                              + "; ".join(problems))


def check(derivation: Derivation, *, timeout: float | None = None,
          on_step: Callable[[str, int, str, Verdict | None], None] | None = None,
          sources: dict[str, "CheckedDerivation"] | None = None) -> CheckedDerivation:
    """Check every step; raise StepError at the first that fails.

    ``timeout``: seconds per step check (default $SHRINKAGE_STEP_TIMEOUT or 120; 0 for
    none).  ``on_step(derivation, number, label or kind, verdict)`` is called before each
    step (verdict None) and after it (its Verdict), for progress output.  ``sources``:
    derivations already checked, by name, reused for citations (and filled in with the
    ones checked here)."""
    if not isinstance(derivation, Derivation):
        raise DerivationError(f"check() needs a Derivation, got {type(derivation).__name__}")
    seconds = resolve_timeout(timeout)
    check_exports(derivation)
    check_symbols(derivation)
    sources = {} if sources is None else sources
    cited = []
    checked = []
    for step in derivation.steps:  # check the cited derivations first, each under its own limits
        if isinstance(step, Cite) and step.source is not None:
            src = sources.get(step.source.name)
            if src is None or src.derivation != step.source:
                src = sources[step.source.name] = check(step.source, timeout=timeout, on_step=on_step, sources=sources)
            if src not in cited:
                cited.append(src)
    definitions: Mapping = derivation.resolved_notation().definitions
    ctx, uses = None, []
    for ctx in walk(derivation):
        tag = step_tag(ctx.step)
        if on_step:
            on_step(derivation.name, ctx.number, tag, None)
        verdict = verify(ctx, timeout=seconds)
        checked.append(CheckedStep(ctx.step, ctx.number, ctx.current if ctx.current is not None else ctx.step.rhs, verdict))
        if on_step:
            on_step(derivation.name, ctx.number, tag, verdict)
        uses.append(_uses(ctx))
    if ctx is not None:
        _, definitions = advance(ctx)
    _every_definition_used(derivation, uses)
    return CheckedDerivation(derivation, tuple(checked), dict(definitions), tuple(cited))


def _uses(ctx: Context) -> tuple:
    """(defined symbols a checked claim uses, with the definitions in force) or the label
    a restatement restates."""
    step = ctx.step
    if isinstance(step, (Recall, Cite)):
        return ("restates", step.of if isinstance(step, Recall) else None)
    if not step.claim:
        return ("none", None)
    used = mentioned([ctx.current, *expressions_of(step)], ctx.definitions)
    return ("claim", {s: ctx.definitions[s] for s in used})


def _every_definition_used(d: Derivation, uses: list) -> None:
    """A Define that no later checked claim uses (and nothing restates) is checked by
    nothing: a wrong definition would be printed unnoticed.  Refuse it."""
    for k, step in enumerate(d.steps):
        if not isinstance(step, Define):
            continue
        used = any((kind == "restates" and what == step.label and step.label)
                   or (kind == "claim" and what.get(step.symbol) == step.rhs)
                   for kind, what in uses[k + 1:])
        if not used:
            raise StepError(d.name, k + 1, step.why,
                            f"defines {step.symbol}, but no later checked step uses it, so a wrong definition "
                            "would go unnoticed: use it in a checked claim (or recall it and restate it), or remove it",
                            step_tag(step))
