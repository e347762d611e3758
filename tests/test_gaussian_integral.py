"""The closed-form Gaussian integral of the log-integral check equals quadrature (mpmath,
40 digits, at random points), and is used only where the quadratic's leading
coefficient is shown negative."""

from __future__ import annotations

import random

import mpmath
import sympy as sp

from shrinkage.derive.claims import gaussian_log_integral

b = sp.Symbol("b", real=True)
s2, t2 = sp.symbols("s2 t2", positive=True)
m, y = sp.symbols("m y", real=True)
n = sp.Symbol("n", integer=True, positive=True)
FORMS = (-(y - b) ** 2 / (2 * s2) - b**2 / (2 * t2),
         -n * (y - m - b) ** 2 / (2 * s2) - b**2 / (2 * t2) + sp.log(s2),
         -(b - m) ** 2 / (2 * t2) + 3 * b * y)


def _quadrature(f, point) -> mpmath.mpf:
    g = sp.lambdify(b, f.subs(point), modules="mpmath")
    return mpmath.log(mpmath.quad(lambda x: mpmath.exp(g(x)), [-mpmath.inf, -10, 0, 10, mpmath.inf]))


def test_it_equals_quadrature_and_a_wrong_form_does_not():
    rng = random.Random(5)
    with mpmath.workdps(40):
        for f in FORMS:
            closed = gaussian_log_integral(f, b)
            for _ in range(4):
                point = {s2: sp.Rational(rng.randint(1, 40), 10), t2: sp.Rational(rng.randint(1, 40), 10),
                         m: sp.Rational(rng.randint(-20, 20), 10), y: sp.Rational(rng.randint(-20, 20), 10),
                         n: rng.randint(1, 5)}
                reference = _quadrature(f, point)
                assert abs(mpmath.mpf(sp.N(closed.subs(point), 40)) - reference) < mpmath.mpf(10) ** -30, f
                wrong = closed - sp.log(2) / 2  # a slip: sqrt(pi/(-2a)) for sqrt(pi/(-a))
                assert abs(mpmath.mpf(sp.N(wrong.subs(point), 40)) - reference) > mpmath.mpf(10) ** -3


def test_it_declines_what_it_cannot_show():
    assert gaussian_log_integral(-(y - b) ** 2 * m, b) is None  # the sign of m is unknown
    assert gaussian_log_integral((y - b) ** 2 / (2 * s2), b) is None  # no integral: a > 0
    assert gaussian_log_integral(-b**4, b) is None  # not a quadratic
    assert gaussian_log_integral(-sp.exp(b), b) is None
