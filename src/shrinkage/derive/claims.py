"""The checks of the claims about the current expression, two per kind of step.

``numeric(ctx)`` raises :class:`~shrinkage.derive.points.Failure` with a counterexample
when the claim is false at a random point (DPS digits); ``symbolic(ctx)`` returns True
when SymPy proves the claim and None when it cannot settle it (it may also raise
Failure when SymPy finds the claim false).  ``ctx`` is the walk's
:class:`~shrinkage.derive.walk.Context`; ``ctx.step`` is the claim.
"""

from __future__ import annotations

import random

import mpmath
import sympy as sp

from .algebra import has_data_sums, is_positive, is_zero, linear_sums, substitute, xreplace_shielded
from .points import DPS, REL_TOL, Failure, at, close, derivatives, fmt_point, num, points, seed, univariate, value_at
from .steps import Conditional
from .walk import Context

DERIVATIVE_TOL = REL_TOL * 10**5  # numerical differentiation at DPS digits loses a few


def _points(ctx: Context, *exprs, **kw):
    return points(ctx.derivation, ctx.number, exprs, ctx.definitions, ctx.notation, **kw)


def _sub(ctx: Context, expr, *like):
    """Definitions substituted into expr; the data sums (ybar_j, S_j as sums over the
    observations) only when the expressions ``like`` themselves involve data sums."""
    return substitute(expr, ctx.definitions, keep_sums=has_data_sums(*like))


def _in_terms_of(ctx: Context, *variables):
    """The current expression with every definition that depends on ``variables`` put in:
    differentiating, integrating or substituting in gamma, the symbol Q standing for
    Q(gamma) is no constant.  The other definitions stay symbols (put in afterwards, as
    :func:`_sub` or the points do)."""
    variables, expr, defs = set(variables), ctx.current, ctx.definitions
    dependent = {s: e for s, e in defs.items()
                 if s not in variables and variables & substitute(s, defs).free_symbols}
    return substitute(expr, dependent) if dependent else expr


# --- Equals -------------------------------------------------------------------------
def equal_at_points(ctx: Context, a, b, what=("previous expression", "this step")):
    for point, (va, vb), inst in _points(ctx, a, b):
        x, y = value_at(inst, va), value_at(inst, vb)
        if not close(x, y):
            raise Failure(f"at {fmt_point(point)}: {what[0]} = {mpmath.nstr(x, 15)}, {what[1]} = {mpmath.nstr(y, 15)}")


def numeric_equals(ctx):
    equal_at_points(ctx, ctx.current, ctx.step.rhs)


def symbolic_equals(ctx):
    return is_zero(_sub(ctx, ctx.current - ctx.step.rhs, ctx.current, ctx.step.rhs))


# --- Substitute -----------------------------------------------------------------------
def substituted(ctx: Context) -> sp.Expr:
    """The current expression with the step's values put in literally (definitions of
    the substituted symbols are not expanded first: putting beta0 = ybar into an
    abbreviation that contains beta0 puts it into the abbreviation too)."""
    mapping = ctx.step.mapping
    defs = {s: e for s, e in ctx.definitions.items() if s not in mapping}
    current = _in_terms_of(ctx, *mapping)
    expanded = substitute(current, defs, keep_sums=has_data_sums(current, ctx.step.rhs))
    absent = [k for k in mapping if not expanded.has(k)]
    if absent:
        raise Failure(f"substitutes {', '.join(map(str, absent))}, which the current expression does not contain")
    return xreplace_shielded(expanded, mapping)


def numeric_substitute(ctx):
    equal_at_points(ctx, substituted(ctx), ctx.step.rhs, ("the substitution", "this step"))


def symbolic_substitute(ctx):
    done = substituted(ctx)
    return is_zero(_sub(ctx, done - ctx.step.rhs, done, ctx.step.rhs))


# --- Derivative -----------------------------------------------------------------------
def numeric_derivative(ctx):
    var = ctx.step.var
    with mpmath.workdps(DPS):
        for point, (f_expr, rhs), inst in _points(ctx, _in_terms_of(ctx, var), ctx.step.rhs):
            # a claim whose expressions lost ``var`` is still checked, at a point of its domain
            x = point[var] if var in point else ctx.notation.sample(var, random.Random(seed(ctx.derivation, ctx.number, var)))
            numeric = _derivatives(f_expr, var, inst, point, x)[0]
            target = value_at(inst, rhs)
            if not abs(numeric - target) <= DERIVATIVE_TOL * max(1, abs(target)):
                raise Failure(f"at {fmt_point(point)}: numerical derivative {mpmath.nstr(numeric, 15)}, "
                              f"this step claims {mpmath.nstr(target, 15)}")


def _derivatives(f_expr, var, inst, point, x, second: bool = False) -> tuple:
    """(f'(x), f''(x) or None) from certified values (points.derivatives), else by
    mpmath.diff of the lambdified f where a value cannot be certified."""
    found = derivatives(f_expr, var, inst, x)
    if found is not None:
        return found
    f, x = univariate(f_expr, var, inst, point), x if isinstance(x, mpmath.mpf) else num(x)
    return mpmath.diff(f, x), mpmath.diff(f, x, 2) if second else None


def symbolic_derivative(ctx):
    f = _in_terms_of(ctx, ctx.step.var)
    return is_zero(_sub(ctx, sp.diff(f, ctx.step.var) - ctx.step.rhs, f))


# --- Sign -------------------------------------------------------------------------------
def numeric_sign(ctx):
    # The claim is ``current > rhs`` (or ``<``): the bound shown is checked too.
    for point, (e, bound), inst in _points(ctx, ctx.current, ctx.step.rhs):
        v, w = value_at(inst, e), value_at(inst, bound)
        if not ctx.step.sign * (v - w) > 0:
            raise Failure(f"at {fmt_point(point)}: the expression is {mpmath.nstr(v, 15)}, the bound {mpmath.nstr(w, 15)}")


def symbolic_sign(ctx):
    signed = ctx.step.sign * substitute(ctx.current - ctx.step.rhs, ctx.definitions, keep_sums=False)
    return True if is_positive(signed, ctx.notation) else None


# --- Maximiser ----------------------------------------------------------------------------
def numeric_maximiser(ctx):
    var = ctx.step.var
    with mpmath.workdps(DPS):
        for point, (f_expr, xhat_expr), inst in _points(ctx, _in_terms_of(ctx, var), ctx.step.rhs):
            xhat = at(xhat_expr, point, var, inst)
            d1, d2 = _derivatives(f_expr, var, inst, point, xhat, second=True)
            if not (d2 < 0 and abs(d1) <= DERIVATIVE_TOL * abs(d2) * max(1, abs(xhat))):
                raise Failure(f"at {fmt_point(point)}: claimed maximiser {mpmath.nstr(xhat, 15)} has "
                              f"derivative {mpmath.nstr(d1, 5)} and curvature {mpmath.nstr(d2, 5)}")


def symbolic_maximiser(ctx):
    var = ctx.step.var
    f = _in_terms_of(ctx, var)
    stationary = is_zero(_sub(ctx, sp.diff(f, var).xreplace({var: ctx.step.rhs}), f))
    concave = is_positive(-_sub(ctx, sp.diff(f, var, 2).xreplace({var: ctx.step.rhs}), f), ctx.notation)
    return True if (stationary and concave) else None


# --- ReadOffNormal -------------------------------------------------------------------------
def numeric_read_off(ctx):
    """Fit the quadratic through f at x0 - 1, x0, x0 + 1 (exact values), require it to
    reproduce f at two more points (so f is quadratic in var), then compare the claimed
    moment with -1/(second derivative) or the stationary point."""
    step = ctx.step
    var = step.var
    with mpmath.workdps(DPS):
        for point, (f_expr, rhs), inst in _points(ctx, _in_terms_of(ctx, var), step.rhs):
            f = univariate(f_expr, var, inst, point)
            x0 = num(point[var]) if var in point else mpmath.mpf(0)
            lo, mid, hi = f(x0 - 1), f(x0), f(x0 + 1)
            c2, c1 = (hi - 2 * mid + lo), (hi - lo) / 2  # f = mid + c1 t + c2 t^2 / 2, t = x - x0
            scale = max(1, abs(lo), abs(mid), abs(hi))
            for t in (mpmath.mpf(3), mpmath.mpf(-5) / 2):
                if abs(f(x0 + t) - (mid + c1 * t + c2 * t**2 / 2)) > DERIVATIVE_TOL * max(scale, abs(f(x0 + t))):
                    raise Failure(f"at {fmt_point(point)}: the log-density is not quadratic in {var}, so not normal")
            if not c2 < 0:
                raise Failure(f"at {fmt_point(point)}: the curvature in {var} is {mpmath.nstr(c2, 15)}, not negative")
            value = -1 / c2 if step.moment == "variance" else x0 - c1 / c2
            claimed = at(rhs, point, var, inst)
            if not abs(value - claimed) <= DERIVATIVE_TOL * max(1, abs(value), abs(claimed)) * scale:
                raise Failure(f"at {fmt_point(point)}: the normal form has {step.moment} {mpmath.nstr(value, 15)}, "
                              f"this step claims {mpmath.nstr(claimed, 15)}")


def symbolic_read_off(ctx):
    step = ctx.step
    current = _in_terms_of(ctx, step.var)
    f = _sub(ctx, current, current)
    d2 = sp.diff(f, step.var, 2)
    if not is_zero(sp.diff(f, step.var, 3)):
        return None
    claimed = _sub(ctx, step.rhs, current)
    if step.moment == "variance":
        proved = is_zero(d2 * claimed + 1) and is_positive(claimed, ctx.notation)
    else:
        proved = is_zero(sp.diff(f, step.var).xreplace({step.var: claimed})) and is_positive(-d2, ctx.notation)
    return True if proved else None


# --- LogIntegral, Conditional ------------------------------------------------------------
def numeric_log_integral(ctx):
    step = ctx.step
    var = step.var
    with mpmath.workdps(DPS - 10):
        for point, (f_expr, rhs, centre, scale), inst in _points(ctx, _in_terms_of(ctx, var), step.rhs, step.centre, step.scale):
            f = univariate(f_expr, var, inst, point)
            c, s = at(centre, point, var, inst), abs(at(scale, point, var, inst))
            peak = f(c)
            breaks = [-mpmath.inf, c - 8 * s, c - 2 * s, c, c + 2 * s, c + 8 * s, mpmath.inf]
            value = mpmath.log(mpmath.quad(lambda x: mpmath.exp(f(x) - peak), breaks)) + peak
            if isinstance(step, Conditional):
                value = f(point[var]) - value
            target = value_at(inst, rhs)
            if not abs(value - target) <= mpmath.mpf(10) ** -25 * max(1, abs(target)):
                raise Failure(f"at {fmt_point(point)}: quadrature gives {mpmath.nstr(value, 15)}, "
                              f"this step claims {mpmath.nstr(target, 15)}")


def gaussian_log_integral(log_density, var, notation=None):
    """log of the integral over the real line of exp(log_density) when log_density is
    a*var**2 + c*var + d with a provably negative: log(sqrt(pi/(-a))) + d - c**2/(4a),
    the Gaussian integral (SymPy's integrate reaches the same closed form, in seconds).
    None when the form or the sign of a is not shown."""
    expanded = sp.expand(log_density)
    if not expanded.is_polynomial(var):
        return None
    poly = sp.Poly(expanded, var)
    if poly.degree() != 2:
        return None
    a, c, d = poly.all_coeffs()
    if not is_positive(-a, notation):
        return None
    return sp.log(sp.pi) / 2 - sp.log(-a) / 2 + d - c**2 / (4 * a)


def symbolic_log_integral(ctx):
    step = ctx.step
    try:
        log_density = substitute(_in_terms_of(ctx, step.var), ctx.definitions, keep_sums=False)
        in_sums = log_density.has(sp.Sum)
        if in_sums:  # sum_j w_j (ybar_j - beta0)^2 is a quadratic in beta0 once split by linearity
            log_density = linear_sums(log_density)
        claimed = gaussian_log_integral(log_density, step.var, ctx.notation)
        if claimed is None:
            integral = sp.integrate(sp.exp(log_density), (step.var, -sp.oo, sp.oo), conds="none")
            if integral.has(sp.Integral):
                return None
            claimed = sp.expand_log(sp.log(integral))
        if isinstance(step, Conditional):
            claimed = log_density - claimed
        return is_zero(claimed - substitute(step.rhs, ctx.definitions, keep_sums=in_sums))
    except (NotImplementedError, ValueError, TypeError):
        return None


# --- Limit ----------------------------------------------------------------------------------
APPROACH = tuple(range(1, 9))  # x_k = 10^(5k) towards +oo, 10^(-5k) towards 0+
CONVERGED = mpmath.mpf(10) ** -(DPS - 8)  # a distance this small (relative) is zero at DPS digits


def approach(point0):
    """The sequence of values of the variable on the way to the limit point (0+ or +oo)."""
    if point0 == sp.oo:
        return [sp.Integer(10) ** (5 * k) for k in APPROACH]
    return [point0 + sp.Integer(10) ** (-5 * k) for k in APPROACH]


def numeric_limit(ctx):
    """The claimed limit must not involve the variable, and along x_k the distance
    |f(x_k) - L| must shrink at least geometrically in k (by a factor 2 per step while
    x_k moves by 10^5: any power-law or faster approach) until it is zero at DPS
    digits; towards +-oo the values must grow by increments that do not die out."""
    step = ctx.step
    var = step.var
    target = substitute(step.rhs, ctx.definitions, keep_sums=False)
    if var in target.free_symbols:
        raise Failure(f"the claimed limit {step.rhs} depends on {var}, the variable that tends to {step.point}")
    xs = approach(step.point)
    along = None  # f at each x_k: the same expressions at every point, made once
    for pnt, (f_expr, rhs), inst in _points(ctx, _in_terms_of(ctx, var), step.rhs):
        if along is None:
            along = [f_expr.xreplace({var: a}) for a in xs]
        if target in (sp.oo, -sp.oo):
            sgn = 1 if target == sp.oo else -1
            values = [value_at(inst, f) for f in along]
            steps = [sgn * (v2 - v1) for v1, v2 in zip(values, values[1:])]
            if not (all(s > 0 for s in steps) and all(s2 >= s1 / 2 for s1, s2 in zip(steps, steps[1:]))):
                raise Failure(f"at {fmt_point(pnt)}: values {[mpmath.nstr(v, 8) for v in values]} do not grow "
                              f"without bound towards {target}")
            continue
        goal = value_at(inst, rhs)
        gaps = [abs(value_at(inst, f - rhs)) for f in along]
        tiny = CONVERGED * max(1, abs(goal))
        for k, (g1, g2) in enumerate(zip(gaps, gaps[1:])):
            if g1 <= tiny:
                if g2 > tiny:
                    raise Failure(f"at {fmt_point(pnt)}: the distance to the claimed limit {mpmath.nstr(goal, 15)} "
                                  f"grows again at {var}={xs[k + 1]}")
                continue
            if not g2 <= g1 / 2:
                raise Failure(f"at {fmt_point(pnt)}: along {var} -> {step.point} the distance to the claimed limit "
                              f"{mpmath.nstr(goal, 15)} does not shrink geometrically: "
                              f"{', '.join(mpmath.nstr(g, 5) for g in gaps)}")


def symbolic_limit(ctx):
    step = ctx.step
    expr = substitute(_in_terms_of(ctx, step.var), ctx.definitions, keep_sums=False)
    target = substitute(step.rhs, ctx.definitions, keep_sums=False)
    try:
        found = sp.limit(expr, step.var, step.point, "+" if step.point != sp.oo else "-")
    except (NotImplementedError, ValueError, TypeError):
        return None
    if found == target or is_zero(found - target):
        return True
    if found.is_number and target.is_number:
        raise Failure(f"SymPy finds the limit {found}, this step claims {target}")
    return None
