"""The numeric checks' fast values (interval arithmetic, shrinkage.derive.fastnum) are
the exact values: every expression of the blup and marginal derivations, at random exact
points, certified to 60 digits, agrees with SymPy's exact evaluation at 80 digits; and
the comparison is fine enough to see a change in the 58th digit."""

from __future__ import annotations

import random

import mpmath
import pytest
import sympy as sp

from conftest import DERIVATIONS
from shrinkage.build import load_file
from shrinkage.derive.fastnum import Env, Unsupported, certified
from shrinkage.derive.walk import walk

DIGITS = 60


def _expressions(name):
    out = []
    for ctx in walk(load_file(DERIVATIONS / f"{name}.py")):
        for e in (ctx.current, ctx.step.rhs):
            if isinstance(e, sp.Expr) and e.free_symbols and not e.atoms(sp.Indexed, sp.Sum):
                out.append(e)
    return list(dict.fromkeys(out))


def _point(e, rng):
    """Exact positive rationals (whole numbers for counts) for the free symbols."""
    return {s: (sp.Integer(rng.randint(1, 50)) if s.is_integer else sp.Rational(rng.randint(1, 10**6), rng.randint(1, 10**4)))
            for s in sorted(e.free_symbols, key=str)}


def _exact(e, point):
    with mpmath.workdps(DIGITS + 20):  # parsed at the digits it has, not mpmath's default 15
        return mpmath.mpf(str(sp.N(e.xreplace(point), DIGITS + 20)))


@pytest.mark.parametrize("name", ["blup", "marginal"])
def test_certified_values_are_the_exact_values(name):
    rng = random.Random(20261201)
    exprs = _expressions(name)
    compared = 0
    for e in exprs:
        for _ in range(3):
            point = _point(e, rng)
            try:
                fast = certified(e, Env(point, {}, lambda base: None), DIGITS)
            except Unsupported:
                continue  # the exact reference decides these; nothing to compare
            exact = _exact(e, point)
            with mpmath.workdps(DIGITS):
                assert abs(fast - exact) <= mpmath.mpf(10) ** -(DIGITS - 2) * max(abs(exact), 1e-80), (e, point)
            compared += 1
    assert len(exprs) >= 5 and compared >= 2 * len(exprs)  # most values are certified, not left to the reference


def test_the_comparison_sees_the_58th_digit():
    sigma2, n = sp.symbols("sigma2 n", positive=True)
    e = sigma2 / (sigma2 + n)
    point = {sigma2: sp.Rational(3, 7), n: sp.Integer(5)}
    fast = certified(e, Env(point, {}, lambda base: None), DIGITS)
    wrong = _exact(e * (1 + sp.Rational(1, 10**57)), point)
    with mpmath.workdps(DIGITS):
        assert abs(fast - wrong) > mpmath.mpf(10) ** -(DIGITS - 2) * abs(wrong)
        assert abs(fast - _exact(e, point)) <= mpmath.mpf(10) ** -(DIGITS - 2) * abs(wrong)


@pytest.mark.parametrize("name", ["blup", "marginal", "profile"])
def test_central_differences_of_certified_values_are_the_derivatives(name):
    """points.derivatives (what the derivative and maximiser checks use) against SymPy's
    exact derivatives at 80 digits, in every scalar symbol of the expressions: within
    1e-32 (relative, or absolute below 1), a hundredth of the checks' tolerance, so a
    claimed derivative off by more than the tolerance cannot pass on rounding."""
    from shrinkage.derive.points import Instance, derivatives

    rng = random.Random(11)
    notation = load_file(DERIVATIONS / f"{name}.py").resolved_notation()
    checked = 0
    for e in _expressions(name)[:12]:
        point = _point(e, rng)
        inst = Instance(point, {}, rng, notation)
        for var in sorted(e.free_symbols, key=str):
            if var.is_integer:
                continue
            with mpmath.workdps(50):  # as the checks run it
                found = derivatives(e, var, inst, point[var])
            if found is None:
                continue
            for order, got in zip((1, 2), found):
                with mpmath.workdps(50):
                    exact = _exact(sp.diff(e, var, order), point)
                    tol = mpmath.mpf(10) ** -32 * max(1, abs(exact))
                    assert abs(got - exact) <= tol, (e, var, order)
            checked += 1
    assert checked >= 5
