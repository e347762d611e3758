"""The check of a maximiser on a constrained domain (a truncated estimator).

The claim: the maximiser of f over var >= lower, jointly with the unconstrained
variables of ``jointly``, is (rhs, their values), where rhs may be piecewise (e.g.
max(0, (MSB - MSW)/n)).  These are the Karush-Kuhn-Tucker conditions, checked at
random points of the data on *each piece*:

* var interior (rhs > lower): every partial derivative vanishes and the Hessian in
  all the variables is negative definite (a strict local maximum);
* var on the boundary (rhs = lower): the one-sided slope in var is <= 0 (it points out
  of the domain), the other partial derivatives vanish, and the Hessian in the other
  variables is negative definite.

Every branch of every piecewise expression must be met at some of the random points;
a branch the domains never reach cannot be checked, and is refused.
"""

from __future__ import annotations

import itertools

import mpmath
import sympy as sp

from .algebra import is_positive, is_zero, substitute
from .claims import DERIVATIVE_TOL, _points
from .points import DPS, POINTS, Failure, fmt_point, multivariate, num, value_at
from .walk import Context

MIN_HITS = 4  # random points each branch must be checked at
MAX_DRAWS = 12 * POINTS  # draws made to reach every branch


def _piecewise(expr: sp.Expr) -> sp.Expr:
    return sp.piecewise_fold(expr.rewrite(sp.Piecewise))


def _holds(cond, inst) -> bool:
    if cond in (True, sp.true):
        return True
    if isinstance(cond, sp.core.relational.Relational):
        d = value_at(inst, cond.lhs - cond.rhs)
        return {">": d > 0, ">=": d >= 0, "<": d < 0, "<=": d <= 0, "==": d == 0, "!=": d != 0}[cond.rel_op]
    value = inst(cond)
    if value not in (True, False, sp.true, sp.false):
        raise Failure(f"cannot decide the condition {cond} at a point of the domains")
    return bool(value)


def _branch(expr: sp.Expr, inst) -> int:
    """Which branch of a piecewise expression holds at a point (-1 if not piecewise)."""
    if not isinstance(expr, sp.Piecewise):
        return -1
    for k, (_, cond) in enumerate(expr.args):
        if _holds(cond, inst):
            return k
    raise Failure(f"no branch of {expr} holds at a point of the domains")


def _nonnegative_part(cond) -> tuple | None:
    """(h, strict) with cond equivalent to h > 0 (strict) or h >= 0, for one inequality."""
    if not isinstance(cond, sp.core.relational.Relational) or cond.rel_op not in (">", ">=", "<", "<="):
        return None
    h = cond.lhs - cond.rhs if cond.rel_op in (">", ">=") else cond.rhs - cond.lhs
    return h, cond.rel_op in (">", "<")


def _hessian_negative_definite(f, x, idx) -> bool:
    if not idx:
        return True
    h = mpmath.matrix(len(idx), len(idx))
    for a, i in enumerate(idx):
        for b, j in enumerate(idx):
            orders = [0] * len(x)
            orders[i] += 1
            orders[j] += 1
            h[a, b] = -mpmath.diff(f, x, tuple(orders))
    try:
        mpmath.cholesky(h)
    except ValueError:
        return False
    return True


def _partial(f, x, i, one_sided: bool):
    def along(t):
        y = list(x)
        y[i] = t
        return f(*y)

    return mpmath.diff(along, x[i], 1, direction=1 if one_sided else 0)


def numeric_constrained(ctx: Context):
    step = ctx.step
    variables = [step.var] + [v for v, _ in step.jointly]
    claims = [_piecewise(step.rhs)] + [_piecewise(e) for _, e in step.jointly]
    hits: dict = {}
    if any(substitute(step.lower, ctx.definitions).has(v) for v in variables):
        raise Failure(f"the bound {step.lower} involves the variables maximised over; "
                      "reparametrise so that the constraint is a bound on one variable")
    with mpmath.workdps(DPS):
        for point, (f_expr, lower, *values), inst in _points(ctx, ctx.current, step.lower, *claims, count=MAX_DRAWS):
            branches = tuple(_branch(c, inst) for c in values)
            key = [(k, b) for k, b in enumerate(branches) if b >= 0]
            if key and all(hits.get(kb, 0) >= MIN_HITS for kb in key):
                continue  # this piece is checked often enough; draw for the others
            for kb in key:
                hits[kb] = hits.get(kb, 0) + 1
            if any(v.has(u) for v in values for u in variables):
                raise Failure(f"the claimed maximiser involves the variables it maximises over ({', '.join(map(str, variables))})")
            x = [value_at(inst, v) for v in values]
            bound = value_at(inst, lower)
            f = multivariate(f_expr, variables, inst, point)
            where = f"at {fmt_point({s: v for s, v in point.items() if s not in variables})}"
            on_boundary = abs(x[0] - bound) <= DERIVATIVE_TOL * max(1, abs(bound))
            if x[0] < bound and not on_boundary:
                raise Failure(f"{where}: the claimed maximiser {step.var} = {mpmath.nstr(x[0], 15)} is outside "
                              f"the domain {step.var} >= {mpmath.nstr(bound, 15)}")
            free = list(range(1, len(x))) if on_boundary else list(range(len(x)))
            grads = [_partial(f, x, i, one_sided=(i == 0 and on_boundary)) for i in range(len(x))]
            curvature = [mpmath.diff(lambda t, i=i: f(*(x[:i] + [t] + x[i + 1:])), x[i], 2) for i in free]
            for i, c in zip(free, curvature):
                if not abs(grads[i]) <= DERIVATIVE_TOL * max(abs(c), 1) * max(1, abs(x[i])):
                    raise Failure(f"{where}: at the claimed maximiser the derivative in {variables[i]} is "
                                  f"{mpmath.nstr(grads[i], 5)}, not 0")
            if not _hessian_negative_definite(f, x, free):
                raise Failure(f"{where}: the claimed maximiser is not a strict local maximum (Hessian in "
                              f"{', '.join(str(variables[i]) for i in free)} not negative definite)")
            if on_boundary and not grads[0] <= DERIVATIVE_TOL * max(1, abs(f(*x))):
                raise Failure(f"{where}: on the boundary {step.var} = {mpmath.nstr(bound, 15)} the slope in "
                              f"{step.var} is {mpmath.nstr(grads[0], 8)} > 0: the maximum is inside the domain")
    missed = [(k, b) for k, c in enumerate(claims) if isinstance(c, sp.Piecewise)
              for b in range(len(c.args)) if hits.get((k, b), 0) < MIN_HITS]
    if missed:
        k, b = missed[0]
        raise Failure(f"the branch {claims[k].args[b][0]} (where {claims[k].args[b][1]}) of the claimed maximiser "
                      f"was met at {hits.get((k, b), 0)} of {MAX_DRAWS} random points, fewer than {MIN_HITS}: "
                      "it cannot be checked on these domains")


def _branches(c: sp.Expr):
    """(expression, conditions) of each branch: a branch holds where its condition does
    and every earlier one fails.  Conditions as (h, strict): h > 0 or h >= 0."""
    if not isinstance(c, sp.Piecewise):
        return [(c, [])]
    out, prior = [], []
    for e, cond in c.args:
        conds = prior + ([] if cond in (True, sp.true) else [cond])
        forms = [_nonnegative_part(x) for x in conds]
        if any(f is None for f in forms):
            return None
        out.append((e, forms))
        prior = prior + [sp.Not(cond)]
    return out


def _contradictory(forms, notation) -> bool:
    """Two conditions h1 >= 0, h2 >= 0 (one strict) with h1/h2 < 0: the branch is empty
    (both non-strict: only where both vanish, where the pieces meet)."""
    for k, (h1, _) in enumerate(forms):
        for h2, _ in forms[k + 1:]:
            if is_positive(-h1 / h2, notation):
                return True
    return False


def symbolic_constrained(ctx: Context):
    """True when, on every (non-empty) combination of branches, SymPy proves the
    stationarity conditions identically, the curvature of the free variables negative,
    and on the boundary the slope equal to a negative factor times a condition that
    holds there (so <= 0)."""
    step, defs, notation = ctx.step, ctx.definitions, ctx.notation
    f = substitute(ctx.current, defs, keep_sums=False)
    variables = [step.var] + [v for v, _ in step.jointly]
    claims = [_piecewise(substitute(e, defs, keep_sums=False)) for e in [step.rhs] + [e for _, e in step.jointly]]
    lower = substitute(step.lower, defs, keep_sums=False)
    branches = [_branches(c) for c in claims]
    if any(b is None for b in branches):
        return None
    for combo in itertools.product(*branches):
        conds = [hs for _, c in combo for hs in c]
        if _contradictory(conds, notation):
            continue
        forms = [h for h, _ in conds]
        at_point = {v: e for v, (e, _) in zip(variables, combo)}
        boundary = is_zero(at_point[step.var] - lower)
        free = variables[1:] if boundary else variables
        if not all(is_zero(sp.diff(f, v).xreplace(at_point)) for v in free):
            return None
        if not all(is_positive(-sp.diff(f, v, 2).xreplace(at_point), notation) for v in free):
            return None
        if len(free) > 1:
            h = sp.Matrix([[sp.diff(f, u, v).xreplace(at_point) for v in free] for u in free])
            if not is_positive(h.det() * (-1) ** len(free), notation):
                return None
        if boundary:
            slope = sp.diff(f, step.var).xreplace(at_point)
            # slope = -(positive) * h with h >= 0 where the branch holds: slope <= 0 there
            if not (is_zero(slope) or any(is_positive(-slope / h, notation) for h in forms)):
                return None
    return True
