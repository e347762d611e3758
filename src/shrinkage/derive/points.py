"""Random points for the numeric checks: exact draws from the symbols' domains, sums
over data written out at concrete lengths, and evaluation at ``DPS`` digits.

Everything here is deterministic: the random generator of a step is seeded from the
derivation's name and the step's number.
"""

from __future__ import annotations

import hashlib
import random
from typing import Iterable, Iterator, Mapping

import mpmath
import sympy as sp

from .algebra import has_data_sums, substitute, xreplace_shielded
from .fastnum import MAX_TERMS, Env, Unsupported, certified, exact_rational  # noqa: F401 (MAX_TERMS: here too)
from .notation import Notation

DPS = 50  # working precision of the numeric check (digits)
POINTS = 24  # random points per step
REL_TOL = mpmath.mpf(10) ** -35  # agreement demanded at DPS digits


class Failure(Exception):
    """A claim is false (or cannot be evaluated) at a point: carries the counterexample
    from a check to check(), which turns it into a StepError naming the step."""


def seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "big")


def sample_point(symbols: Iterable[sp.Symbol], rng: random.Random, notation: Notation) -> dict:
    return {s: notation.sample(s, rng) for s in sorted(symbols, key=lambda s: s.name)}


def _unroll(s: sp.Sum) -> sp.Expr:
    """A Sum whose outermost limits are concrete, written out term by term in its
    outermost index.  Inner limits may depend on the outer index (SymPy merges nested
    sums so): they become concrete on a later pass."""
    var, lo, hi = s.limits[-1]
    length = int(hi) - int(lo) + 1
    if length > MAX_TERMS:
        raise Failure(f"a sum over {length} terms ({var} from {lo} to {hi}) is too long to write out "
                      f"for the numeric check (at most {MAX_TERMS}); state it over a symbolic length")
    inner = s.function if len(s.limits) == 1 else sp.Sum(s.function, *s.limits[:-1])
    return sp.Add(*[inner.xreplace({var: sp.Integer(k)}) for k in range(int(lo), int(hi) + 1)])


def _concrete(x: sp.Basic) -> bool:
    return isinstance(x, sp.Sum) and x.limits[-1][1].is_Integer and x.limits[-1][2].is_Integer


def instantiate(expr: sp.Expr, point: dict, indexed_values: dict, rng: random.Random, notation: Notation) -> sp.Expr:
    """Substitute scalar values, then write out sums at their now-concrete lengths and
    give every data element y[k] (and n[k], b[k] ...) a random value, shared via
    ``indexed_values`` so both sides of a claim see the same data."""
    expr = xreplace_shielded(expr, point)  # the scalar n, not the array n[j] whose label it shares
    for _ in range(12):
        pending = {x for x in expr.atoms(sp.Indexed) if all(ix.is_Integer for ix in x.indices)}
        for x in sorted(pending, key=str):
            if x not in indexed_values:
                indexed_values[x] = notation.sample(x.base.label, rng)
        expr = expr.xreplace({x: indexed_values[x] for x in pending})
        if not expr.has(sp.Sum):
            break
        expr = expr.replace(_concrete, _unroll)
    if expr.has(sp.Sum) or expr.atoms(sp.Indexed):
        raise Failure(f"could not write out the sums in {expr}: their lengths are not given by the symbols")
    return expr


def scalar_symbols(expr: sp.Expr) -> set:
    """The free symbols outside array elements: n in n/sigma^2, not the label of n[j]
    (both can occur in one expression: the two are different quantities)."""
    shielded = expr.xreplace({x: sp.Dummy() for x in expr.atoms(sp.Indexed)})
    return {s for s in shielded.free_symbols if isinstance(s, sp.Symbol) and not isinstance(s, sp.Dummy)}


def num(expr: sp.Expr) -> mpmath.mpf:
    """The value of an exact expression, at DPS digits, as an mpf (infinities kept)."""
    value = sp.N(expr, DPS + 10)
    if not value.is_real:
        raise ValueError(f"not a real number: {value}")
    with mpmath.workdps(DPS + 10):  # parsed at mpmath's default of 15 digits, it would keep only those
        return mpmath.mpf(str(value)) if value.is_finite else mpmath.mpf("inf") * int(sp.sign(value))


def close(a, b) -> bool:
    return abs(a - b) <= REL_TOL * max(1, abs(a), abs(b))


def fmt_point(point: dict) -> str:
    """A counterexample as a reader pastes it: decimals to 10 digits, whole numbers as
    they are (the exact draws, 10**(13/50)/10 or 441/125, say little at a glance)."""
    return ", ".join(f"{s}={v if v.is_Integer else mpmath.nstr(num(v), 10)}" for s, v in point.items())


def points(name: str, number: int, exprs: tuple, definitions: Mapping, notation: Notation,
           count: int = POINTS, salt: object = "") -> Iterator:
    """Yield ``count`` triples (point, expanded exprs, :class:`Instance`): the
    definitions substituted into ``exprs``, a random point of their free symbols, and
    what evaluates an expanded expression at that point (same data on both sides)."""
    expanded = [substitute(e, definitions, keep_sums=has_data_sums(*exprs)) for e in exprs]
    scalars = set().union(*[scalar_symbols(e) for e in expanded])
    rng = random.Random(seed(name, number, salt) if salt != "" else seed(name, number))
    for _ in range(count):
        point = sample_point(scalars, rng, notation)
        yield point, expanded, Instance(point, {}, rng, notation)


class Instance:
    """One random point of a check, with the data drawn for it (shared by every
    expression evaluated there, so both sides of a claim see the same data).

    ``inst(e)``: the point put into ``e`` exactly (the reference).  ``inst.value(e)``:
    ``num(inst(e))``, computed by interval arithmetic when that certifies every digit
    num keeps (shrinkage.derive.fastnum), by the reference otherwise.
    ``inst.partial(e, free)``: like ``inst(e)`` with the symbols ``free`` left in and
    every other constant a Float of DPS + 10 digits (what univariate lambdifies)."""

    def __init__(self, point: dict, shared: dict, rng: random.Random, notation: Notation):
        self.point, self.shared, self.rng, self.notation = point, shared, rng, notation
        self.env = Env(point, shared, lambda label: notation.sample(label, rng))

    def __call__(self, e: sp.Expr) -> sp.Expr:
        return instantiate(e, self.point, self.shared, self.rng, self.notation)

    def value(self, e: sp.Expr) -> mpmath.mpf:
        try:
            return certified(e, self.env, DPS + 10)
        except Unsupported:
            return num(self(e))

    def value_with(self, e: sp.Expr, values: dict) -> mpmath.mpf:
        """``e`` with some symbols at other exact values (the same data), certified to
        DPS + 12 digits by interval arithmetic; Unsupported where it cannot be."""
        return certified(e, Env({**self.point, **values}, self.shared, self.env.draw), DPS + 12)

    def partial(self, e: sp.Expr, free: set) -> sp.Expr:
        try:
            return self._partial(e, frozenset(free))
        except Unsupported:  # e.g. a sum whose length the point does not give: the reference decides
            return _constants_to_floats(self(e))

    def _partial(self, e: sp.Expr, free: frozenset) -> sp.Expr:
        if e in free:
            return e
        if not (e.free_symbols & free):
            return self._constant(e)
        if isinstance(e, sp.Sum):
            var, lo, hi = e.limits[-1]
            a, b = int(self._constant_integer(lo)), int(self._constant_integer(hi))
            if b - a + 1 > MAX_TERMS:
                raise Unsupported("too long")
            inner = e.function if len(e.limits) == 1 else sp.Sum(e.function, *e.limits[:-1])
            bound, saved = self.env.bound, self.env.bound.get(var)
            try:
                terms = []
                for k in range(a, b + 1):
                    bound[var] = k
                    terms.append(self._partial(inner, free))
            finally:
                bound.pop(var, None) if saved is None else bound.__setitem__(var, saved)
            return sp.Add(*terms)
        return e.func(*[self._partial(a, free) for a in e.args])

    def _constant_integer(self, e: sp.Expr) -> int:
        v = exact_rational(e, self.env)
        if v.denominator != 1:
            raise Unsupported(e)
        return v.numerator

    def _constant(self, e: sp.Basic) -> sp.Basic:
        """A subexpression without free symbols at this point: exact if rational there,
        else a Float of DPS + 10 digits, as _constants_to_floats makes it."""
        if not isinstance(e, sp.Expr):
            return self(e.xreplace({s: sp.Integer(k) for s, k in self.env.bound.items()}))
        try:
            return sp.Rational(exact_rational(e, self.env))
        except (Unsupported, ZeroDivisionError):
            pass
        try:
            return sp.Float(certified(e, self.env, DPS + 10), DPS + 10)
        except Unsupported:
            return _constants_to_floats(self(e.xreplace({s: sp.Integer(k) for s, k in self.env.bound.items()})))


def _constants_to_floats(e: sp.Expr) -> sp.Expr:
    """Every maximal constant subexpression (10**(9/20), log(2*pi*c), ...) as a Float of
    DPS + 10 digits; integers and rationals stay exact (x**2 stays a square)."""
    if e.is_Integer or e.is_Rational or e.is_Symbol:
        return e
    if not e.free_symbols:
        return sp.Float(num(e), DPS + 10) if e.is_real is not False else e
    if e.is_Atom:
        return e
    return e.func(*[_constants_to_floats(a) for a in e.args])


def _compact(e: sp.Expr, xs: list) -> sp.Expr:
    """The same function of ``xs``, cheaper to evaluate many times (quadrature calls it
    thousands of times): every constant evaluated once at DPS + 10 digits instead of at
    every call, then a polynomial in xs collected into its coefficients (a sum over 60
    observations becomes a quadratic)."""
    return _collect(_constants_to_floats(e), xs)  # first floats: exact irrationals make Poly's zero tests explode


def _collect(e: sp.Expr, xs: list) -> sp.Expr:
    """A polynomial in ``xs`` (with Float coefficients) collected into its coefficients."""
    try:
        if xs and e.is_polynomial(*xs):
            e = sp.Poly(e, *xs, domain=sp.RealField(dps=DPS + 10)).as_expr()
    except (sp.PolynomialError, sp.polys.polyerrors.CoercionFailed, TypeError, ValueError):
        pass
    return e


def _instantiated(expr, dummies: list, inst) -> sp.Expr:
    """``expr`` (in ``dummies``) at the point of ``inst``, compact: constants as Floats,
    polynomials in the dummies collected."""
    if isinstance(inst, Instance):
        e = inst.partial(expr, set(dummies))
        return _collect(e, [d for d in dummies if e.has(d)])
    e = inst(expr)  # a plain function putting in the point (exactly)
    return _compact(e, [d for d in dummies if e.has(d)])


_FREED: dict = {}  # (expr, variables, names) -> (dummies, expr in them): the same at every point of a step


def _freed(expr, variables: tuple, names: tuple) -> tuple:
    """``expr`` with ``variables`` replaced by Dummies named ``names`` (made once per
    step, not at each of its points: the replacement rebuilds the whole expression)."""
    key = (expr, variables, names)
    if key not in _FREED:
        if len(_FREED) > 2000:
            _FREED.clear()
        dummies = tuple(sp.Dummy(n) for n in names)
        _FREED[key] = dummies, xreplace_shielded(expr, dict(zip(variables, dummies)))
    return _FREED[key]


def univariate(expr, var, inst, point):
    """An mpmath function of ``var`` with everything else instantiated at ``point``."""
    (x,), e = _freed(expr, (var,), ("x",))
    e = _instantiated(e, [x], inst)
    coefficients = _coefficients(e, x)
    if coefficients is not None:  # a polynomial (a log-density in b_j): Horner, no generated code
        return lambda v: mpmath.polyval(coefficients, v)
    return sp.lambdify([x], e, modules="mpmath")


def _coefficients(e: sp.Expr, x: sp.Symbol) -> list | None:
    """The coefficients of ``e`` (highest power first) as mpmath numbers when ``e`` is
    a polynomial in ``x`` with numeric coefficients; None otherwise."""
    try:
        if not (e.free_symbols <= {x} and e.is_polynomial(x)):
            return None
        coefficients = sp.Poly(e, x, domain=sp.RealField(dps=DPS + 10)).all_coeffs()
    except (sp.PolynomialError, sp.polys.polyerrors.CoercionFailed, TypeError, ValueError):
        return None
    return [mpmath.mpf(c) for c in coefficients]


STENCIL = ((-2, 1, -1), (-1, -8, 16), (0, 0, -30), (1, 8, 16), (2, -1, -1))  # offset k, 12h f', 12h^2 f''
STEP = sp.Rational(1, 10**12)


def derivatives(expr, var, inst, x) -> tuple | None:
    """(f'(x), f''(x)) of ``expr`` in ``var`` at ``x`` by five-point central differences
    with step h = 1e-12, of values certified to DPS + 12 digits: truncation ~h^4 and
    rounding ~1e-62/h^2 leave errors near 1e-48 and 1e-38 (relative), far inside the
    checks' tolerance, without generating code for f.  None where a value cannot be
    certified (the caller differentiates a lambdified f instead)."""
    if not isinstance(inst, Instance):
        return None
    if isinstance(x, mpmath.mpf):
        x = sp.Rational(*mpmath.libmp.to_rational(x._mpf_))
    try:
        values = [inst.value_with(expr, {var: x + k * STEP}) for k, _, _ in STENCIL]
    except Unsupported:
        return None
    with mpmath.workdps(DPS + 15):
        h = mpmath.mpf(STEP.p) / STEP.q
        d1 = mpmath.fsum(c * v for (_, c, _), v in zip(STENCIL, values)) / (12 * h)
        d2 = mpmath.fsum(c * v for (_, _, c), v in zip(STENCIL, values)) / (12 * h * h)
    return +d1, +d2


def multivariate(expr, variables, inst, point):
    """An mpmath function of several variables, everything else instantiated at ``point``."""
    dummies, e = _freed(expr, tuple(variables), tuple(str(v) for v in variables))
    return sp.lambdify(list(dummies), _instantiated(e, list(dummies), inst), modules="mpmath")


def value_at(inst, expr) -> mpmath.mpf:
    """``num(inst(expr))``, fast where ``inst`` can (an :class:`Instance`)."""
    return inst.value(expr) if isinstance(inst, Instance) else num(inst(expr))


def at(expr, point, var, inst):
    """Value of an expression that does not involve ``var`` at ``point``."""
    return value_at(inst, _freed(expr, (var,), (str(var),))[1])  # one with var left is no number
