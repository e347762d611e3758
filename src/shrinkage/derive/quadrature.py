"""Step kinds about integrals that have no closed form: the Laplace approximation's
leading error, a change of variable under the integral, and Gauss-Hermite rules.

Each kind checks itself (a ``verify`` method, as shrinkage.derive.checks allows) twice:

* numerically by mpmath quadrature at random points of the symbols' domains (the
  integrals themselves, not the claimed formulas, are what is computed);
* symbolically by SymPy from first principles: the Laplace expansion integrated term by
  term against the Gaussian, the substitution rule with its Jacobian, and the rule's sums
  as entries of powers of the Jacobi matrix (Golub and Welsch), while the numeric check
  takes the nodes as roots of the Hermite polynomial and the classical weights.

Not imported by shrinkage.derive itself, so no other derivation's cache key depends on it.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field

import mpmath
import sympy as sp

from ..errors import StepError
from .algebra import is_positive, is_zero, substitute
from .checks import Verdict
from .points import Failure, fmt_point, num, sample_point, seed
from .steps import Step

DPS = 35  # quadrature precision (digits)
POINTS = 6  # random points per claim (each needs several quadratures)
GROWTH = 16  # the size grows by this factor from one quadrature to the next
STAGES = 5  # sizes m0, 16 m0, ..., 16^4 m0
INFORMATION = 100  # m0: the first size m 16^k with -f''(mode) at least this
RATE = mpmath.mpf(1) / 32  # an O(m^-2) residual falls by 256 per stage, an O(1/m) one by 16


def _draws(step, name, number, exprs, notation, skip=()):
    """POINTS random points of the free symbols of ``exprs`` (but ``skip``), seeded by the step."""
    free = set().union(*[e.free_symbols for e in exprs]) - set(skip)
    rng = random.Random(seed(name, number, step.kind))
    return [sample_point(free, rng, notation) for _ in range(POINTS)]


DOUBLINGS = 64  # how far a bracket or a tail is searched (2^64 from 1): far past any mode or tail of a real integrand


@functools.lru_cache(maxsize=256)
def _compiled(expr, var, syms):
    return sp.lambdify([var, *syms], expr, "mpmath")


@functools.lru_cache(maxsize=64)
def _derivative(expr, var, k):
    return sp.diff(expr, var, k)


def _function(expr, var, point):
    """expr as an mpmath function of ``var`` at ``point`` (compiled once per expression)."""
    syms = tuple(sorted(point, key=str))
    f = _compiled(expr, var, syms)
    values = [num(point[s]) for s in syms]
    return lambda x: f(x, *values)


def _outwards(still, x, point, what):
    """x doubled until ``still(x)`` is false, at most DOUBLINGS times (a corrupted, mutant
    integrand may have no maximum or no tail: the search must end, naming why)."""
    for _ in range(DOUBLINGS):
        if not still(x):
            return x
        x *= 2
    raise Failure(f"at {fmt_point(point)}: {what} within 2^{DOUBLINGS}")


def mode(expr, var, point):
    """The maximiser in ``var`` of a strictly concave ``expr`` at ``point``: bisection on
    the derivative, then Newton steps, to DPS digits."""
    d1 = _function(_derivative(expr, var, 1), var, point)
    d2 = _function(_derivative(expr, var, 2), var, point)
    lo, hi = (_outwards(lambda x, sign=sign: sign * d1(x) >= 0, mpmath.mpf(sign), point,
                        f"no maximiser in {var}: the derivative does not change sign (the integrand is not log-concave)")
              for sign in (-1, 1))
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if d1(mid) > 0 else (lo, mid)
        if hi - lo < mpmath.mpf(10) ** -4 * (1 + abs(mid)):
            break
    x = (lo + hi) / 2
    for _ in range(12):
        step = d1(x) / d2(x)
        x -= step
        if abs(step) < mpmath.mpf(10) ** -DPS * (1 + abs(x)):
            break
    return x, d2(x)


def log_integral(expr, var, point, found=None):
    """log of the integral over the real line of exp(expr), by quadrature split about the
    mode, out to where the log-concave integrand has fallen by e^-120 (the rest is below
    1e-50 of the integral, and exp of a far tail point would cost more than all else)."""
    f = _function(expr, var, point)
    c, curvature = found or mode(expr, var, point)
    if not curvature < 0:
        raise Failure(f"at {fmt_point(point)}: the integrand is not log-concave in {var} at its mode")
    s, peak = 1 / mpmath.sqrt(-curvature), f(c)
    ends = []
    for sign in (-1, 1):
        reach = _outwards(lambda r, sign=sign: f(c + sign * r) > peak - 120, 16 * s, point,
                          f"the integrand in {var} does not decay away from its mode")
        ends.append(c + sign * reach)
    breaks = [ends[0], *(c + k * s for k in (-4, -1, 1, 4)), ends[1]]
    return mpmath.log(mpmath.quad(lambda x: mpmath.exp(f(x) - peak), breaks)) + peak


def _run(step, name, number, numeric, symbolic_check, symbolic, method):
    try:
        with mpmath.workdps(DPS):
            try:
                numeric()
            except (ArithmeticError, ValueError, TypeError, ZeroDivisionError) as e:
                raise Failure(f"the claim cannot be evaluated numerically on the symbols' domains: {e}") from None
        proved = symbolic_check() if symbolic else None
    except Failure as failure:
        raise StepError(name, number, step.why, str(failure), step.label or step.kind) from None
    return Verdict(proved, POINTS, method)


# ----------------------------------------------------------------------------------
# The Laplace approximation's leading error
# ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def laplace_term():
    """The second-order term of Laplace's expansion of log int exp(f), from first principles:
    f about its mode is f0 + f2 t^2/2 + eps f3 t^3/6 + eps^2 f4 t^4/24 (eps counts the
    powers of 1/sqrt(size)); exp of the cubic and quartic terms expanded to eps^2 and
    integrated against the Gaussian exp(f2 t^2/2).  Returns (term, (p, a3, a4)), p = -f2."""
    t, eps = sp.Dummy("t", real=True), sp.Dummy("eps", positive=True)
    p, a3, a4 = sp.Dummy("p", positive=True), sp.Dummy("a3", real=True), sp.Dummy("a4", real=True)
    series = sp.Poly(sp.expand(sp.series(sp.exp(eps * a3 * t**3 / 6 + eps**2 * a4 * t**4 / 24), eps, 0, 3).removeO()), t)
    moment = {k: sp.integrate(t**k * sp.exp(-p * t**2 / 2), (t, -sp.oo, sp.oo)) for k in range(series.degree() + 1)}
    ratio = sum(c * moment[k] for (k,), c in series.terms()) / moment[0]
    log_ratio = sp.expand(sp.series(sp.log(sp.expand(ratio)), eps, 0, 3).removeO())
    if not is_zero(log_ratio.coeff(eps, 1)):
        raise AssertionError("the odd term of Laplace's expansion does not vanish")  # pragma: no cover
    return sp.simplify(log_ratio.coeff(eps, 2)), (p, a3, a4)


def _laplace_residuals(current, rhs, var, at, size, point):
    """(exact log-integral - Laplace - rhs, exact log-integral) at STAGES sizes growing by
    GROWTH, from the first multiple of the drawn size at which the curvature at the mode
    exceeds INFORMATION (where the expansion in 1/size has begun to hold)."""
    def at_size(value):
        return {**point, size: sp.Float(mpmath.nstr(value, DPS), DPS)}

    m0 = num(point[size])
    for _ in range(40):
        if -mode(current, var, at_size(m0))[1] >= INFORMATION:
            break
        m0 *= GROWTH
    out = []
    for k in range(STAGES):
        here = at_size(m0 * GROWTH**k)
        u, curvature = mode(current, var, here)
        exact = log_integral(current, var, here, (u, curvature))
        laplace = _function(current, var, here)(u) + mpmath.log(2 * mpmath.pi / -curvature) / 2
        term = _function(rhs.xreplace({at: var}), var, here)(u)
        out.append((exact - laplace - term, exact))
    return out


def _term_at_mode(current, rhs, var, at, point):
    """rhs at the mode equals the expansion's term (:func:`laplace_term`) in the derivatives
    of current there, to DPS - 12 digits: the decay test alone cannot tell a term from one that
    differs by O(size^-2) (a derivative at the mode with a bounded part dropped)."""
    term, symbols = laplace_term()
    u, _ = mode(current, var, point)
    f2, f3, f4 = (_function(_derivative(current, var, k), var, point)(u) for k in (2, 3, 4))
    want = _compiled(term, symbols[0], symbols[1:])(-f2, f3, f4)
    got = _function(rhs.xreplace({at: var}), var, point)(u)
    if not abs(got - want) <= mpmath.mpf(10) ** -(DPS - 12) * (1 + abs(want)):
        raise Failure(f"at {fmt_point(point)}: the term is {mpmath.nstr(got, 15)} at the mode, the expansion's "
                      f"{mpmath.nstr(want, 15)} (from the derivatives of the integrand there)")


@dataclass(frozen=True)
class LaplaceError(Step):
    """rhs is the leading term of the error of Laplace's approximation to the log of the
    integral of exp(current) over ``var``:

        log int e^f = f(u^) + 1/2 log(2 pi / -f''(u^)) + rhs + O(size^-2),

    rhs written in ``at`` (the symbol standing for the mode u^), ``size`` the quantity
    (trials, prior weight) the log-likelihood grows with.  Numerically: at random points
    the residual (quadrature - Laplace - rhs) must fall like size^-2 over the last stages
    as size grows by 16 (a wrong term leaves an O(1/size) residual, which falls by 16 only);
    symbolically: rhs equals the second-order term of the expansion (:func:`laplace_term`)
    with f2, f3, f4 the derivatives of current at the mode."""

    var: sp.Symbol = None
    at: sp.Symbol = None
    size: sp.Symbol = None
    notation: object = field(default=None, compare=False, repr=False)  # where the points are drawn
    kind = "Laplace error"

    def verify(self, name, number, current, definitions, symbolic=True):
        current, rhs = substitute(current, definitions), substitute(self.rhs, definitions)
        notation = self.notation

        def numeric():
            for point in _draws(self, name, number, (current, rhs), notation, skip=(self.var, self.at)):
                _term_at_mode(current, rhs, self.var, self.at, point)
                rows = _laplace_residuals(current, rhs, self.var, self.at, self.size, point)
                r = [abs(a) for a, _ in rows]
                tiny = mpmath.mpf(10) ** -(DPS - 12) * (1 + abs(rows[-1][1]))
                for a, b in zip(r[-3:], r[-2:]):
                    if a > tiny and not b <= RATE * a:
                        raise Failure(f"at {fmt_point(point)}: quadrature minus Laplace minus this term is "
                                      f"{', '.join(mpmath.nstr(x, 5) for x in r)} as {self.size} grows by {GROWTH}: "
                                      f"it does not fall like {self.size}^-2")

        def proved():
            term, (p, a3, a4) = laplace_term()
            f = [sp.diff(current, self.var, k).xreplace({self.var: self.at}) for k in (2, 3, 4)]
            return True if is_zero(term.xreplace({p: -f[0], a3: f[1], a4: f[2]}) - rhs) else None

        size = notation.quantity_of(self.size).latex
        method = (f"{POINTS} random points, each at {STAGES} sizes ${size}$ growing by {GROWTH} from where "
                  f"$-f''(\\hat u) \\ge {INFORMATION}$: quadrature ({DPS} digits) minus Laplace minus this term "
                  f"falls like ${size}^{{-2}}$")
        return _run(self, name, number, numeric, proved, symbolic, method)



# ----------------------------------------------------------------------------------
# A change of variable under the integral
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChangeOfVariable(Step):
    """log int exp(current) d var = log int exp(rhs) d new, with var = ``map`` (an
    increasing affine function of ``new``): rhs = current at the map + log of its slope.
    Numerically: both integrals by quadrature at random points; symbolically: the map is
    affine with a positive slope and rhs is the substitution rule's integrand."""

    var: sp.Symbol = None
    new: sp.Symbol = None
    map: sp.Expr = None
    notation: object = field(default=None, compare=False, repr=False)
    kind = "change of variable"

    def verify(self, name, number, current, definitions, symbolic=True):
        current, rhs = substitute(current, definitions), substitute(self.rhs, definitions)
        u_of_z = substitute(self.map, definitions)

        def numeric():
            for point in _draws(self, name, number, (current, rhs, u_of_z), self.notation, skip=(self.var, self.new)):
                a, b = log_integral(current, self.var, point), log_integral(rhs, self.new, point)
                if not abs(a - b) <= mpmath.mpf(10) ** -(DPS - 12) * (1 + abs(a)):
                    raise Failure(f"at {fmt_point(point)}: the integral in {self.var} is {mpmath.nstr(a, 15)}, "
                                  f"in {self.new} {mpmath.nstr(b, 15)}")

        def proved():
            slope = sp.diff(u_of_z, self.new)
            if not (is_zero(sp.diff(slope, self.new)) and is_positive(slope, self.notation)):
                return None
            return True if is_zero(current.xreplace({self.var: u_of_z}) + sp.log(slope) - rhs) else None

        method = f"{POINTS} random points, both integrals by quadrature, {DPS} digits"
        return _run(self, name, number, numeric, proved, symbolic, method)


# ----------------------------------------------------------------------------------
# Gauss-Hermite rules
# ----------------------------------------------------------------------------------
def hermite_rule(k: int):
    """Nodes and weights of the k-point Gauss-Hermite rule (weight exp(-z^2)) at the
    working precision: the roots of the physicists' Hermite polynomial H_k and the
    classical weights 2^(k-1) k! sqrt(pi) / (k^2 H_(k-1)(z_i)^2)."""
    if k == 1:
        return [mpmath.mpf(0)], [mpmath.sqrt(mpmath.pi)]
    coefficients = [int(c) for c in sp.Poly(sp.hermite(k, sp.Symbol("x")), sp.Symbol("x")).all_coeffs()]
    nodes = sorted(mpmath.re(r) for r in mpmath.polyroots(coefficients, maxsteps=200, extraprec=4 * mpmath.mp.prec))
    weights = [2 ** (k - 1) * mpmath.factorial(k) * mpmath.sqrt(mpmath.pi) / (k**2 * mpmath.hermite(k - 1, x) ** 2)
               for x in nodes]
    return nodes, weights


def jacobi_sum(k: int, polynomial: sp.Expr, var: sp.Symbol) -> sp.Expr:
    """The k-point rule applied to a polynomial, exactly: sum_i w_i z_i^p is sqrt(pi)
    times the (1,1) entry of J^p, J the rule's Jacobi matrix (off-diagonal sqrt(i/2))."""
    jacobi = sp.zeros(k, k)
    for i in range(1, k):
        jacobi[i - 1, i] = jacobi[i, i - 1] = sp.sqrt(sp.Rational(i, 2))
    poly = sp.Poly(sp.expand(polynomial), var)
    power, total = sp.eye(k), sp.S.Zero
    for p in range(poly.degree() + 1):
        total += poly.coeff_monomial(var**p) * power[0, 0]
        power = power * jacobi
    return sp.sqrt(sp.pi) * sp.expand(total)


@dataclass(frozen=True)
class GaussHermite(Step):
    """rhs is the ``nodes``-point Gauss-Hermite rule applied to ``integrand`` (a function
    of ``var``; the rule sums w_i integrand(z_i), the weight exp(-z^2) built in).  With
    ``log=True`` the integrand is exp(current + var^2), the rule estimates the log of the
    integral of exp(current), and rhs is that log.  Without, ``integrand`` is a polynomial
    (the current expression plays no part).  Numerically: nodes and weights from the
    roots of H_k; symbolically: the Jacobi matrix's powers (polynomials) or the rule's
    one node 0 and weight sqrt(pi) (k = 1)."""

    var: sp.Symbol = None
    nodes: int = 1
    integrand: sp.Expr = None
    log: bool = False
    notation: object = field(default=None, compare=False, repr=False)
    kind = "Gauss-Hermite rule"

    def verify(self, name, number, current, definitions, symbolic=True):
        rhs = substitute(self.rhs, definitions)
        body = substitute(current if self.log else self.integrand, definitions)

        def rule(point):
            f = _function(body, self.var, point)
            nodes, weights = hermite_rule(self.nodes)
            if self.log:
                return mpmath.log(sum(w * mpmath.exp(f(z) + z**2) for z, w in zip(nodes, weights)))
            return sum(w * f(z) for z, w in zip(nodes, weights))

        def numeric():
            for point in _draws(self, name, number, (body, rhs), self.notation, skip=(self.var,)):
                a, b = rule(point), _function(rhs, self.var, point)(0)
                if not abs(a - b) <= mpmath.mpf(10) ** -(DPS - 12) * (1 + abs(a)):
                    raise Failure(f"at {fmt_point(point)}: the {self.nodes}-point rule gives {mpmath.nstr(a, 15)}, "
                                  f"this step claims {mpmath.nstr(b, 15)}")

        def proved():
            if self.log:
                if self.nodes != 1:
                    return None
                exact = body.xreplace({self.var: 0}) + sp.log(sp.pi) / 2
            else:
                exact = jacobi_sum(self.nodes, body, self.var)
            return True if is_zero(exact - rhs) else None

        method = f"{POINTS} random points, nodes the roots of $H_{{{self.nodes}}}$ at {DPS} digits"
        return _run(self, name, number, numeric, proved, symbolic, method)
