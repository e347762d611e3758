"""Fast values for the numeric checks, certified by interval arithmetic.

The numeric check needs the value of an exact expression at a random point, to DPS + 10
digits.  Putting the exact point into the expression and evaluating it with SymPy
(``points.instantiate`` then ``points.num``) is the reference, and slow: SymPy rebuilds
every node with exact numbers and asks assumptions at each.  Here the expression is
compiled once into a tree of closures and evaluated in mpmath's interval arithmetic at
``IV_DPS`` digits, sums written out as loops and data drawn as they are read.  A value
is used only when its interval pins it to DPS + 12 digits (or within ``FLOOR`` of 0);
otherwise (cancellation, a branch that cannot be decided, a function not handled here,
a value outside the real line) the exact reference decides, with the same data.  So a
check sees the same number either way, to the last digit it keeps.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Callable

import mpmath
import sympy as sp
import mpmath.libmp as M
import mpmath.libmp.libmpi as L
from sympy.codegen.cfunctions import log1p

IV_DPS = 110  # working precision of the intervals
WIDTH = mpmath.mpf(10) ** -62  # relative width that certifies a value (DPS + 12 digits)
FLOOR = mpmath.mpf(10) ** -80  # absolute width that certifies a value near 0
MAX_TERMS = 20_000  # longest sum written out (points refuses a longer one, with its reason)


class Unsupported(Exception):
    """This value cannot be certified here: the exact reference decides."""


class Env:
    """The values of one point: scalars (exact SymPy numbers), the data drawn so far
    (``shared``: Indexed with integer indices -> exact value, filled by ``draw``), and
    the summation indices bound while a sum is written out."""

    __slots__ = ("point", "shared", "draw", "bound", "_values", "_data")

    def __init__(self, point: dict, shared: dict, draw: Callable[[sp.Basic], sp.Expr]):
        self.point, self.shared, self.draw = point, shared, draw
        self.bound: dict = {}
        self._values: dict = {}
        self._data: dict = {}  # (base, indices) -> value: building an Indexed key is slow

    def exact(self, value: sp.Expr) -> tuple:
        """An exact number as an interval (cached per point: 10**(37/100) is used often)."""
        if value not in self._values:
            self._values[value] = compiled(value)(self)
        return self._values[value]

    def datum(self, base: sp.IndexedBase, indices: tuple) -> sp.Expr:
        known = self._data.get((base, indices))
        if known is not None:
            return known
        key = sp.Indexed(base, *[sp.Integer(k) for k in indices])
        if key not in self.shared:
            self.shared[key] = self.draw(base.label)
        self._data[(base, indices)] = value = self.shared[key]
        return value


# ----------------------------------------------------------------------------------
# Integer-valued parts (sum limits, indices): exact Python integers
# ----------------------------------------------------------------------------------
def _integer(e: sp.Expr) -> Callable[[Env], int]:
    if e.is_Integer:
        k = int(e)
        return lambda env: k
    if isinstance(e, sp.Symbol):
        def symbol(env, s=e):
            if s in env.bound:
                return env.bound[s]
            v = env.point.get(s)
            if v is None or not v.is_Integer:
                raise Unsupported(s)
            return int(v)
        return symbol
    if isinstance(e, sp.Indexed):
        base, idx = e.base, [_integer(i) for i in e.indices]

        def datum(env):
            v = env.datum(base, tuple(f(env) for f in idx))
            if not v.is_Integer:
                raise Unsupported(e)
            return int(v)
        return datum
    if isinstance(e, (sp.Add, sp.Mul)):
        parts = [_integer(a) for a in e.args]
        if isinstance(e, sp.Add):
            return lambda env: sum(f(env) for f in parts)

        def product(env):
            out = 1
            for f in parts:
                out *= f(env)
            return out
        return product
    raise Unsupported(e)


# ----------------------------------------------------------------------------------
# Real values: intervals, as mpmath's raw (lower, upper) pairs (no objects per operation)
# ----------------------------------------------------------------------------------
PREC = int(IV_DPS * 3.33) + 8  # bits


def _exact(p: int, q: int = 1) -> tuple:
    if q == 1:
        v = M.from_int(p)
        return v, v
    return M.from_rational(p, q, PREC, M.round_floor), M.from_rational(p, q, PREC, M.round_ceiling)


_ZERO, _ONE = _exact(0), _exact(1)


def _positive(x: tuple) -> tuple:
    if not M.mpf_sign(x[0]) > 0 or x[0] in (M.fnan,):
        raise Unsupported("not certainly positive")
    return x


def _sum(e: sp.Sum):
    body = compiled(e.function)
    limits = [(var, _integer(lo), _integer(hi)) for var, lo, hi in e.limits]

    def run(env, level):
        var, lo, hi = limits[level]
        a, b = lo(env), hi(env)
        if b - a + 1 > MAX_TERMS:
            raise Unsupported("too long")
        saved = env.bound.get(var)
        total = _ZERO
        try:
            for k in range(a, b + 1):
                env.bound[var] = k
                total = add(total, body(env) if level == 0 else run(env, level - 1), PREC)
        finally:
            if saved is None:
                env.bound.pop(var, None)
            else:
                env.bound[var] = saved
        return total

    return lambda env: run(env, len(limits) - 1)


def _pow(e: sp.Pow):
    base, ex = compiled(e.base), e.exp
    if ex.is_Integer:
        n = int(ex)
        return lambda env: L.mpi_pow_int(base(env), n, PREC)
    if ex == sp.S.Half:
        return lambda env: L.mpi_sqrt(_positive(base(env)), PREC)
    exponent = compiled(ex)
    integral = _integer(ex) if ex.is_integer else None

    def power(env):
        if integral is not None:
            try:
                return L.mpi_pow_int(base(env), integral(env), PREC)
            except Unsupported:
                pass
        return L.mpi_exp(L.mpi_mul(exponent(env), L.mpi_log(_positive(base(env)), PREC), PREC), PREC)
    return power


def _condition(c) -> Callable[[Env], bool]:
    if c in (True, sp.true):
        return lambda env: True
    if c in (False, sp.false):
        return lambda env: False
    if isinstance(c, sp.core.relational.Relational) and c.rel_op in (">", ">=", "<", "<="):
        diff = compiled(c.lhs - c.rhs if c.rel_op in (">", ">=") else c.rhs - c.lhs)
        strict = c.rel_op in (">", "<")

        def holds(env):
            lo, hi = diff(env)
            if M.mpf_sign(lo) > 0:
                return True
            if M.mpf_sign(hi) < 0 or (strict and M.mpf_sign(hi) <= 0):
                return False
            raise Unsupported("undecided condition")
        return holds
    if isinstance(c, (sp.And, sp.Or)):
        parts = [_condition(a) for a in c.args]
        combine = all if isinstance(c, sp.And) else any
        return lambda env: combine([f(env) for f in parts])  # every part decided: no short cut
    if isinstance(c, sp.Not):
        inner = _condition(c.args[0])
        return lambda env: not inner(env)
    raise Unsupported(c)


def _piecewise(e: sp.Piecewise):
    pieces = [(compiled(x), _condition(c)) for x, c in e.args]

    def choose(env):
        for value, cond in pieces:
            if cond(env):
                return value(env)
        raise Unsupported("no branch holds")
    return choose


add, mul = L.mpi_add, L.mpi_mul


def _compile(e: sp.Basic) -> Callable[[Env], tuple]:
    if e.is_Rational:
        v = _exact(int(e.p), int(e.q))
        return lambda env: v
    if e.is_Float:
        m = e._mpf_
        v = (m, m)
        return lambda env: v
    if e is sp.pi:
        v = L.mpi_pi(PREC)
        return lambda env: v
    if e is sp.E:
        v = L.mpi_exp(_ONE, PREC)
        return lambda env: v
    if isinstance(e, sp.Symbol):
        def symbol(env, s=e):
            if s in env.bound:
                return _exact(env.bound[s])
            if s not in env.point:
                raise Unsupported(s)
            return env.exact(env.point[s])
        return symbol
    if isinstance(e, sp.Indexed):
        base, idx = e.base, [_integer(i) for i in e.indices]
        return lambda env: env.exact(env.datum(base, tuple(f(env) for f in idx)))
    if isinstance(e, (sp.Add, sp.Mul)):
        parts = [compiled(a) for a in e.args]
        op = add if isinstance(e, sp.Add) else mul

        def fold(env):
            out = parts[0](env)
            for f in parts[1:]:
                out = op(out, f(env), PREC)
            return out
        return fold
    if isinstance(e, sp.Pow):
        return _pow(e)
    if isinstance(e, sp.Sum):
        return _sum(e)
    if isinstance(e, sp.Piecewise):
        return _piecewise(e)
    if isinstance(e, (sp.exp, sp.log, log1p, sp.Abs)) and len(e.args) == 1:
        arg = compiled(e.args[0])
        if isinstance(e, sp.exp):
            return lambda env: L.mpi_exp(arg(env), PREC)
        if isinstance(e, sp.log):
            return lambda env: L.mpi_log(_positive(arg(env)), PREC)
        if isinstance(e, log1p):
            return lambda env: L.mpi_log(_positive(add(_ONE, arg(env), PREC)), PREC)
        return lambda env: L.mpi_abs(arg(env), PREC)
    raise Unsupported(e)


_COMPILED: dict = {}


def compiled(e: sp.Basic) -> Callable[[Env], tuple]:
    """``e`` compiled (once per process); an unsupported node raises when evaluated."""
    try:
        return _COMPILED[e]
    except KeyError:
        pass
    try:
        f = _compile(e)
    except Unsupported as why:
        def f(env, why=why):
            raise Unsupported(why)
    if len(_COMPILED) > 50_000:
        _COMPILED.clear()
    _COMPILED[e] = f
    return f


def certified(e: sp.Expr, env: Env, digits: int) -> mpmath.mpf:
    """The value of ``e`` at ``env``'s point, certified to DPS + 12 digits and rounded
    to ``digits`` (as points.num rounds it), or Unsupported."""
    try:
        a, b = compiled(e)(env)
    except (ZeroDivisionError, ValueError, ArithmeticError, TypeError, OverflowError) as err:
        raise Unsupported(err) from None
    lo, hi = mpmath.mp.make_mpf(a), mpmath.mp.make_mpf(b)
    if not (mpmath.isfinite(lo) and mpmath.isfinite(hi)):
        raise Unsupported("unbounded")
    with mpmath.workprec(PREC):
        mid = (lo + hi) / 2
        if not hi - lo <= max(WIDTH * abs(mid), FLOOR):
            raise Unsupported("too wide")
    with mpmath.workdps(digits):
        return +mid  # rounded as points.num rounds its values


def exact_rational(e: sp.Expr, env: Env) -> Fraction:
    """``e`` at the point as an exact fraction, when it is rational there (integers,
    rationals, integer powers of them), else Unsupported."""
    if e.is_Rational:
        return Fraction(int(e.p), int(e.q))
    if isinstance(e, sp.Symbol):
        v = sp.Integer(env.bound[e]) if e in env.bound else env.point.get(e)
        if v is None or not v.is_Rational:
            raise Unsupported(e)
        return Fraction(int(v.p), int(v.q))
    if isinstance(e, sp.Indexed):
        v = env.datum(e.base, tuple(_integer(i)(env) for i in e.indices))
        if not v.is_Rational:
            raise Unsupported(e)
        return Fraction(int(v.p), int(v.q))
    if isinstance(e, sp.Add):
        return sum((exact_rational(a, env) for a in e.args), Fraction(0))
    if isinstance(e, sp.Mul):
        out = Fraction(1)
        for a in e.args:
            out *= exact_rational(a, env)
        return out
    if isinstance(e, sp.Pow) and e.exp.is_Integer:
        b = exact_rational(e.base, env)
        if b == 0 and e.exp < 0:
            raise Unsupported("division by zero")
        return b ** int(e.exp)
    raise Unsupported(e)
