"""Derivations as immutable chains of checked steps.

A :class:`Derivation` is a value: a name, some prose, and a tuple of steps.  Each step
states a new expression and *how it follows* from the current one (equal to it, its
maximiser, its log-integral, its derivative, its limit, or a sign fact about it).
:func:`check` verifies every step twice:

* symbolically: SymPy shows the claim holds under the symbols' assumptions;
* numerically: mpmath at ``DPS`` digits, at ``POINTS`` random points drawn from the
  symbols' domains (sums over observations are instantiated at concrete n_j).

A step that fails either check raises :class:`StepError` naming the derivation, the
step and a counterexample.  A step SymPy cannot settle, but whose numeric check
passes, is recorded as ``symbolic=None`` and the document says so.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping

import mpmath
import sympy as sp
from sympy.codegen.cfunctions import log1p

from .errors import DerivationError, StepError
from .model import GROUP_STATISTICS
from .symbols import quantity_of

DPS = 50  # working precision of the numeric check (digits)
POINTS = 24  # random points per step
REL_TOL = mpmath.mpf(10) ** -35  # agreement demanded at DPS digits


# ----------------------------------------------------------------------------------
# Steps: what each one claims about the current expression
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """Base class.  ``rhs`` is the new current expression; ``lhs`` is LaTeX shown to its
    left (empty: continue the chain with ``=``); ``why`` is the one-line justification."""

    rhs: sp.Expr
    why: str
    lhs: str = ""
    label: str = ""

    relation = "="
    kind = "step"


@dataclass(frozen=True)
class Given(Step):
    """A statement of the model or a definition: the start of a chain.  Not checked,
    because it is an assumption, and the document says so (``note`` says what kind:
    a model statement by default, or e.g. "read off eq. (16)")."""

    note: str = "given (model statement)"
    kind = "given"


@dataclass(frozen=True)
class Define(Step):
    """Introduce ``symbol := rhs``.  Later checks substitute the definition; the current
    expression of the chain is unchanged."""

    symbol: sp.Symbol = None
    relation = r"\coloneqq"
    kind = "definition"


@dataclass(frozen=True)
class Equals(Step):
    """rhs equals the current expression (a rewriting)."""

    kind = "equals"


@dataclass(frozen=True)
class Maximiser(Step):
    """rhs is the maximiser over ``var`` of the current expression: the derivative
    vanishes there and the second derivative is negative."""

    var: sp.Symbol = None
    kind = "maximiser"


@dataclass(frozen=True)
class LogIntegral(Step):
    """rhs = log of the integral over the real line, in ``var``, of exp(current).
    ``centre``/``scale`` only guide the quadrature (break points); they claim nothing."""

    var: sp.Symbol = None
    centre: sp.Expr = sp.S.Zero
    scale: sp.Expr = sp.S.One
    kind = "log-integral"


@dataclass(frozen=True)
class Conditional(LogIntegral):
    """rhs = current - log of the integral of exp(current) over ``var``: the log-density
    of ``var`` given everything else (Bayes' rule, when current is a joint log-density)."""

    kind = "conditional"


@dataclass(frozen=True)
class Recall(Step):
    """Restate the rhs of an earlier step (``of``, a label) to start a new chain from it."""

    of: str = ""
    kind = "recall"


@dataclass(frozen=True)
class Derivative(Step):
    """rhs = d(current)/d(var)."""

    var: sp.Symbol = None
    kind = "derivative"


@dataclass(frozen=True)
class Limit(Step):
    """rhs = limit of the current expression as ``var`` tends to ``point`` (0 from the
    right or +oo)."""

    var: sp.Symbol = None
    point: sp.Expr = sp.oo
    relation = r"\to"
    kind = "limit"


@dataclass(frozen=True)
class Sign(Step):
    """The current expression has sign ``sign`` (+1 or -1) everywhere on the symbols'
    domains; ``rhs`` is the bound shown (0), and the current expression is unchanged."""

    sign: int = 1
    kind = "sign"

    @property
    def relation(self) -> str:  # type: ignore[override]
        return ">" if self.sign > 0 else "<"


@dataclass(frozen=True)
class Export:
    """A result turned into a generated numeric function: the rhs of step ``label``,
    with every definition substituted, as a function of ``args``.  The first line of
    ``doc`` is a plain-words summary (shown in the document); the rest goes to the
    function's docstring only."""

    function: str
    label: str
    args: tuple[sp.Symbol, ...]
    doc: str


@dataclass(frozen=True)
class Derivation:
    """An immutable chain of steps.  ``then`` returns a new derivation."""

    name: str
    title: str
    summary: str
    steps: tuple[Step, ...] = ()
    exports: tuple[Export, ...] = ()

    def then(self, *steps: Step) -> "Derivation":
        return replace(self, steps=self.steps + tuple(steps))

    def export(self, function: str, label: str, args: Iterable[sp.Symbol], doc: str) -> "Derivation":
        return replace(self, exports=self.exports + (Export(function, label, tuple(args), doc),))

    def recall(self, label: str, lhs: str, why: str) -> "Derivation":
        """Continue with a new chain that starts from the rhs of step ``label``."""
        earlier = self.steps[self.step_index(label)]
        return self.then(Recall(earlier.rhs, why=why, lhs=lhs, of=label))

    def step_index(self, label: str) -> int:
        for k, s in enumerate(self.steps):
            if s.label == label:
                return k
        raise DerivationError(f"derivation {self.name!r} has no step labelled {label!r}")


# ----------------------------------------------------------------------------------
# Results of checking
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """How one step was checked.  symbolic: True (proven), None (SymPy could not
    settle it; numeric evidence only), or 'n/a' for givens and definitions."""

    symbolic: object
    points: int
    method: str  # e.g. "24 random points at 50 digits", "instantiated at n_j in {...}"


@dataclass(frozen=True)
class CheckedStep:
    step: Step
    number: int
    current: sp.Expr  # the expression this step was checked against (before it)
    verdict: Verdict


@dataclass(frozen=True)
class CheckedDerivation:
    derivation: Derivation
    steps: tuple[CheckedStep, ...]
    definitions: Mapping[sp.Symbol, sp.Expr] = field(default_factory=dict)

    def result(self, label: str) -> sp.Expr:
        """The rhs of step ``label`` with every definition substituted."""
        rhs = self.derivation.steps[self.derivation.step_index(label)].rhs
        return substitute(rhs, self.definitions, keep_sums=False).doit()


# ----------------------------------------------------------------------------------
# Helpers shared by the checks
# ----------------------------------------------------------------------------------
def substitute(expr: sp.Expr, definitions: Mapping[sp.Symbol, sp.Expr], keep_sums: bool = True) -> sp.Expr:
    """Replace defined symbols by their definitions until none is left.  With
    ``keep_sums=False`` definitions that are sums over data (ybar, S_j) are kept as
    symbols, which is right for expressions already written in sufficient statistics."""
    defs = {s: e for s, e in definitions.items() if keep_sums or not e.has(sp.Sum)}
    for _ in range(10):
        new = _xreplace_shielded(expr, defs)
        if new == expr:
            return new
        expr = new
    raise DerivationError("definitions are circular")


def _xreplace_shielded(expr: sp.Expr, defs: Mapping) -> sp.Expr:
    """xreplace that leaves array elements alone: ybar[j] has the label ybar, the same
    Symbol as the scalar ybar, so a definition of the scalar would otherwise rewrite the
    array's name.  Elements that are themselves defined (keys of ``defs``) are replaced."""
    shield = {x: sp.Dummy() for x in expr.atoms(sp.Indexed) if x not in defs}
    if not shield:
        return expr.xreplace(defs)
    return expr.xreplace(shield).xreplace(defs).xreplace({d: x for x, d in shield.items()})


def _has_data_sums(*exprs: sp.Expr) -> bool:
    return any(e.has(sp.Sum) or e.has(sp.Indexed) for e in exprs)


def _split_sums(expr: sp.Expr) -> sp.Expr:
    """Distribute each Sum over the terms of its expanded summand and evaluate the easy
    parts: turns sum identities over a symbolic n_j into polynomial identities."""

    def split(s: sp.Sum) -> sp.Expr:
        terms = sp.Add.make_args(sp.expand(s.function))
        return sp.Add(*[sp.Sum(t, *s.limits).doit() for t in terms])

    return sp.expand(expr.replace(lambda x: isinstance(x, sp.Sum), split))


def _sums_from_one(expr: sp.Expr) -> sp.Expr:
    """Rewrite every Sum whose innermost index starts above 1 as the Sum from 1 minus
    its first terms: Sum(f, (i, 2, n)) = Sum(f, (i, 1, n)) - f(1).  Sums that differ
    only in where they start then cancel in _split_sums."""

    def from_one(s: sp.Sum) -> sp.Expr:
        var, lo, hi = s.limits[0]
        if not (lo.is_Integer and lo > 1):
            return s
        head = sp.Add(*[s.function.xreplace({var: sp.Integer(k)}) for k in range(1, int(lo))])
        rest = s.limits[1:]
        return sp.Sum(s.function, (var, 1, hi), *rest) - (sp.Sum(head, *rest) if rest else head)

    return expr.replace(lambda x: isinstance(x, sp.Sum), from_one)


def _starts_above_one(expr: sp.Expr) -> bool:
    return any(s.limits[0][1].is_Integer and s.limits[0][1] > 1 for s in expr.atoms(sp.Sum))


def is_zero(expr: sp.Expr) -> bool | None:
    """True if SymPy proves expr == 0 under the symbols' assumptions; None if it cannot."""
    if expr == 0:
        return True
    if expr.has(log1p):  # the numerically stable spelling; SymPy simplifies log(1 + x)
        expr = expr.replace(lambda x: isinstance(x, log1p), lambda x: sp.log(1 + x.args[0]))
    attempts = (
        sp.expand,
        lambda e: sp.cancel(sp.together(e)),
        lambda e: sp.simplify(sp.expand_log(e)),
        sp.simplify,
        lambda e: sp.simplify(sp.expand_log(sp.expand(e), force=False)),
    )
    if expr.has(sp.Sum):
        attempts = (lambda e: sp.simplify(_split_sums(e)), lambda e: sp.simplify(_split_sums(_split_sums(e)))) + attempts
        if _starts_above_one(expr):
            attempts = (lambda e: sp.simplify(_split_sums(_sums_from_one(e))),) + attempts
    for attempt in attempts:
        try:
            if attempt(expr) == 0:
                return True
        except (TypeError, ValueError, NotImplementedError, RecursionError, StopIteration):
            continue  # StopIteration: SymPy's sum_simplify on some sums of Indexed terms
    return None


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "big")


def _sample_point(symbols: Iterable[sp.Symbol], rng: random.Random) -> dict:
    point = {}
    for s in sorted(symbols, key=lambda s: s.name):
        try:
            point[s] = quantity_of(s).sample(rng)
        except KeyError:
            raise DerivationError(f"symbol {s} has no entry in shrinkage.symbols, so no domain to sample") from None
    return point


def _unroll(s: sp.Sum) -> sp.Expr:
    """A Sum whose outermost limits are concrete, written out term by term in its
    outermost index (no symbolic summation).  Inner limits may depend on the outer
    index (Sum(f, (i, 2, n[j]), (j, 1, 3)) is how SymPy merges nested sums): they become
    concrete once that index and the data element n[k] have values, on a later pass."""
    var, lo, hi = s.limits[-1]
    inner = s.function if len(s.limits) == 1 else sp.Sum(s.function, *s.limits[:-1])
    return sp.Add(*[inner.xreplace({var: sp.Integer(k)}) for k in range(int(lo), int(hi) + 1)])


def _concrete(x: sp.Basic) -> bool:
    return isinstance(x, sp.Sum) and x.limits[-1][1].is_Integer and x.limits[-1][2].is_Integer


def _instantiate(expr: sp.Expr, point: dict, indexed_values: dict, rng: random.Random) -> sp.Expr:
    """Substitute scalar values, then write out sums at their now-concrete lengths and
    give every data element y[k] (and n[k], b[k] ...) a random value, shared via
    ``indexed_values`` so both sides of a claim see the same data."""
    expr = expr.xreplace(point)
    for _ in range(12):
        pending = {x for x in expr.atoms(sp.Indexed) if all(ix.is_Integer for ix in x.indices)}
        for x in sorted(pending, key=str):
            if x not in indexed_values:
                indexed_values[x] = quantity_of(x.base.label).sample(rng)
        expr = expr.xreplace({x: indexed_values[x] for x in pending})
        if not expr.has(sp.Sum):
            break
        expr = expr.replace(_concrete, _unroll)
    if expr.has(sp.Sum) or expr.atoms(sp.Indexed):
        raise DerivationError(f"could not instantiate the sums in {expr}")
    return expr


def _scalar_symbols(expr: sp.Expr) -> set:
    bases = {x.base.label for x in expr.atoms(sp.Indexed)}
    return {s for s in expr.free_symbols if isinstance(s, sp.Symbol) and s not in bases}


def _num(expr: sp.Expr) -> mpmath.mpf:
    value = sp.N(expr, DPS + 10)
    if not value.is_real:
        raise ValueError(f"not a real number: {value}")
    return mpmath.mpf(str(value)) if value.is_finite else mpmath.mpf("inf") * sp.sign(value)


def _close(a, b) -> bool:
    return abs(a - b) <= REL_TOL * max(1, abs(a), abs(b))


def _fmt_point(point: dict) -> str:
    return ", ".join(f"{s}={sp.nsimplify(v) if v.is_Rational else v}" for s, v in point.items())


# ----------------------------------------------------------------------------------
# The checks, one per kind of step
# ----------------------------------------------------------------------------------
class _Failure(Exception):
    """Internal: carries a counterexample from a check to check()."""


def _points(name: str, number: int, exprs: tuple, definitions: Mapping):
    """Yield (point, instantiate) pairs; instantiate(expr) gives the exact number (or,
    for expressions still in ``keep``, an expression in those symbols)."""
    expanded = [substitute(e, definitions, keep_sums=_has_data_sums(*exprs)) for e in exprs]
    scalars = set().union(*[_scalar_symbols(e) for e in expanded])
    rng = random.Random(_seed(name, number))
    for _ in range(POINTS):
        point = _sample_point(scalars, rng)
        shared: dict = {}
        yield point, expanded, (lambda e, p=point, s=shared: _instantiate(e, p, s, rng))


def _numeric_equals(name, number, current, step, definitions):
    for point, (a, b), inst in _points(name, number, (current, step.rhs), definitions):
        va, vb = _num(inst(a)), _num(inst(b))
        if not _close(va, vb):
            raise _Failure(f"at {_fmt_point(point)}: previous expression = {mpmath.nstr(va, 15)}, "
                           f"this step = {mpmath.nstr(vb, 15)}")


def _symbolic_equals(current, step, definitions):
    return is_zero(substitute(current - step.rhs, definitions, keep_sums=_has_data_sums(current, step.rhs)))


def _univariate(expr, var, inst, point):
    """An mpmath function of ``var`` with everything else instantiated at ``point``."""
    free_point = {s: v for s, v in point.items() if s != var}
    e = inst(expr.xreplace({var: sp.Dummy("x")}).xreplace(free_point))
    x = [d for d in e.free_symbols if isinstance(d, sp.Dummy)]
    return sp.lambdify(x[:1] or [sp.Dummy()], e, modules="mpmath")


def _at(expr, point, var, inst):
    """Value of an expression that does not involve ``var`` at ``point``."""
    return _num(inst(expr.xreplace({k: v for k, v in point.items() if k != var})))


def _numeric_maximiser(name, number, current, step, definitions):
    var = step.var
    with mpmath.workdps(DPS):
        for point, (f_expr, xhat_expr), inst in _points(name, number, (current, step.rhs), definitions):
            f = _univariate(f_expr, var, inst, point)
            xhat = _at(xhat_expr, point, var, inst)
            d1 = mpmath.diff(f, xhat)
            d2 = mpmath.diff(f, xhat, 2)
            if not (d2 < 0 and abs(d1) <= REL_TOL * 1e5 * abs(d2) * max(1, abs(xhat))):
                raise _Failure(f"at {_fmt_point(point)}: claimed maximiser {mpmath.nstr(xhat, 15)} has "
                               f"derivative {mpmath.nstr(d1, 5)} and curvature {mpmath.nstr(d2, 5)}")


def _symbolic_maximiser(current, step, definitions):
    var, sums = step.var, _has_data_sums(current)
    stationary = is_zero(substitute(sp.diff(current, var).xreplace({var: step.rhs}), definitions, keep_sums=sums))
    concave = sp.simplify(substitute(sp.diff(current, var, 2), definitions, keep_sums=sums)).is_negative
    return True if (stationary and concave) else None


def _numeric_log_integral(name, number, current, step, definitions):
    var = step.var
    with mpmath.workdps(DPS - 10):
        for point, (f_expr, rhs, centre, scale), inst in _points(
            name, number, (current, step.rhs, step.centre, step.scale), definitions
        ):
            f = _univariate(f_expr, var, inst, point)
            c, s = _at(centre, point, var, inst), abs(_at(scale, point, var, inst))
            peak = f(c)
            breaks = [-mpmath.inf, c - 8 * s, c - 2 * s, c, c + 2 * s, c + 8 * s, mpmath.inf]
            value = mpmath.log(mpmath.quad(lambda x: mpmath.exp(f(x) - peak), breaks)) + peak
            if isinstance(step, Conditional):
                value = f(point[var]) - value
            target = _num(inst(rhs))
            if not abs(value - target) <= mpmath.mpf(10) ** -25 * max(1, abs(target)):
                raise _Failure(f"at {_fmt_point(point)}: quadrature gives {mpmath.nstr(value, 15)}, "
                               f"this step claims {mpmath.nstr(target, 15)}")


def _symbolic_log_integral(current, step, definitions):
    try:
        log_density = substitute(current, definitions, keep_sums=False)
        integral = sp.integrate(sp.exp(log_density), (step.var, -sp.oo, sp.oo), conds="none")
        if integral.has(sp.Integral):
            return None
        claimed = sp.expand_log(sp.log(integral))
        if isinstance(step, Conditional):
            claimed = log_density - claimed
        return is_zero(claimed - substitute(step.rhs, definitions, keep_sums=False))
    except (NotImplementedError, ValueError, TypeError):
        return None


def _numeric_derivative(name, number, current, step, definitions):
    var = step.var
    with mpmath.workdps(DPS):
        for point, (f_expr, rhs), inst in _points(name, number, (current, step.rhs), definitions):
            f = _univariate(f_expr, var, inst, point)
            # a claim whose expressions lost ``var`` is still checked, at a point of its domain
            at = point[var] if var in point else quantity_of(var).sample(random.Random(_seed(name, number, var)))
            numeric = mpmath.diff(f, _num(at))  # an mpf: sympy numbers do not mix with mpmath steps
            target = _num(inst(rhs))
            if not abs(numeric - target) <= REL_TOL * 1e5 * max(1, abs(target)):
                raise _Failure(f"at {_fmt_point(point)}: numerical derivative {mpmath.nstr(numeric, 15)}, "
                               f"this step claims {mpmath.nstr(target, 15)}")


def _symbolic_derivative(current, step, definitions):
    return is_zero(substitute(sp.diff(current, step.var) - step.rhs, definitions, keep_sums=_has_data_sums(current)))


def _approach(point0):
    """Values of the variable on the way to the limit point (0+ or +oo)."""
    if point0 == sp.oo:
        return [sp.Integer(10) ** k for k in (10, 20, 40)]
    return [point0 + sp.Integer(10) ** -k for k in (10, 20, 40)]


def _numeric_limit(name, number, current, step, definitions):
    var, approach = step.var, _approach(step.point)
    target = substitute(step.rhs, definitions, keep_sums=False)
    for pnt, (f_expr, rhs), inst in _points(name, number, (current, step.rhs), definitions):
        values = [_num(inst(f_expr.xreplace({var: a}))) for a in approach]
        if target in (sp.oo, -sp.oo):
            sgn = 1 if target == sp.oo else -1
            if not all(sgn * (v2 - v1) > 1 for v1, v2 in zip(values, values[1:])):
                raise _Failure(f"at {_fmt_point(pnt)}: values {[mpmath.nstr(v, 8) for v in values]} do not "
                               f"grow towards {target}")
        else:
            goal = _num(inst(rhs.xreplace({var: approach[-1]})))
            if not abs(values[-1] - goal) <= mpmath.mpf(10) ** -15 * max(1, abs(goal)):
                raise _Failure(f"at {_fmt_point(pnt)}, {var}={approach[-1]}: value {mpmath.nstr(values[-1], 15)}"
                               f" is not close to the claimed limit {mpmath.nstr(goal, 15)}")


def _symbolic_limit(current, step, definitions):
    expr = substitute(current, definitions, keep_sums=False)
    target = substitute(step.rhs, definitions, keep_sums=False)
    try:
        found = sp.limit(expr, step.var, step.point, "+" if step.point != sp.oo else "-")
    except (NotImplementedError, ValueError, TypeError):
        return None
    if found == target or is_zero(found - target):
        return True
    if found.is_number and target.is_number:
        raise _Failure(f"SymPy finds the limit {found}, this step claims {target}")
    return None


def _numeric_sign(name, number, current, step, definitions):
    # The claim is ``current > rhs`` (or ``<``), so the bound shown is checked too: a
    # Sign step whose rhs is not the bound it was proved against is rejected.
    for point, (e, bound), inst in _points(name, number, (current, step.rhs), definitions):
        v, w = _num(inst(e)), _num(inst(bound))
        if not step.sign * (v - w) > 0:
            raise _Failure(f"at {_fmt_point(point)}: the expression is {mpmath.nstr(v, 15)}, "
                           f"the bound {mpmath.nstr(w, 15)}")


def _symbolic_sign(current, step, definitions):
    signed = step.sign * substitute(current - step.rhs, definitions, keep_sums=False)
    for form in (signed, sp.factor(signed), sp.simplify(signed), sp.together(signed)):
        if form.is_positive:
            return True
    return None


# kind of step -> (numeric check, symbolic check).  The numeric check runs first: it
# is cheap to fail, and it is what produces a counterexample.
_CHECKS = {
    Equals: (_numeric_equals, _symbolic_equals),
    Maximiser: (_numeric_maximiser, _symbolic_maximiser),
    LogIntegral: (_numeric_log_integral, _symbolic_log_integral),
    Conditional: (_numeric_log_integral, _symbolic_log_integral),
    Derivative: (_numeric_derivative, _symbolic_derivative),
    Limit: (_numeric_limit, _symbolic_limit),
    Sign: (_numeric_sign, _symbolic_sign),
}


def _method(current: sp.Expr, step: Step, definitions) -> str:
    exprs = (current, step.rhs)
    if _has_data_sums(*[substitute(e, definitions) for e in exprs]):
        return f"{POINTS} random data sets, {DPS} digits"
    return f"{POINTS} random points, {DPS} digits"


def verify_step(name: str, number: int, step: Step, current: sp.Expr, definitions: Mapping,
                symbolic: bool = True) -> Verdict:
    """Check one step (not a Given/Define/Recall) against the current expression.

    Raises StepError with a counterexample when the claim is false.  ``symbolic=False``
    runs the numeric check only (verdict ``symbolic=None``): mutation testing uses it to
    replay the steps after a corrupted one cheaply; the build never does."""
    if hasattr(step, "verify"):  # a step kind that checks itself (shrinkage.matrix)
        return step.verify(name, number, current, definitions, symbolic)
    numeric, symbolic_check = _CHECKS[type(step)]
    try:
        try:
            numeric(name, number, current, step, definitions)
        except (ArithmeticError, ValueError, TypeError) as e:
            # A claim that cannot even be evaluated at a point of the domain (a complex
            # logarithm, a division by zero) is not verified: reject it, never crash.
            raise _Failure(f"the claim cannot be evaluated numerically on the symbols' domains: {e}") from None
        symbolic = symbolic_check(current, step, definitions) if symbolic else None
    except _Failure as failure:
        raise StepError(name, number, step.why, str(failure)) from None
    return Verdict(symbolic, POINTS, _method(current, step, definitions))


def check(derivation: Derivation) -> CheckedDerivation:
    """Check every step; raise StepError at the first that fails."""
    definitions: dict = dict(GROUP_STATISTICS)
    current: sp.Expr | None = None
    checked = []
    for number, step in enumerate(derivation.steps, start=1):
        if isinstance(step, Define):
            definitions[step.symbol] = step.rhs
            verdict = Verdict("n/a", 0, "definition")
        elif isinstance(step, Given):
            verdict = Verdict("n/a", 0, step.note)
        elif isinstance(step, Recall):
            number_of = derivation.step_index(step.of) + 1
            if step.rhs != derivation.steps[number_of - 1].rhs:
                raise StepError(derivation.name, number, step.why, f"does not restate step {number_of}")
            verdict = Verdict("n/a", 0, f"restates eq.~({number_of})")
        elif current is None:
            raise StepError(derivation.name, number, step.why, "the chain has no current expression to check against")
        else:
            verdict = verify_step(derivation.name, number, step, current, definitions)
        checked.append(CheckedStep(step, number, current if current is not None else step.rhs, verdict))
        if not isinstance(step, (Define, Sign)):
            current = step.rhs
    for export in derivation.exports:
        derivation.step_index(export.label)
    return CheckedDerivation(derivation, tuple(checked), dict(definitions))
