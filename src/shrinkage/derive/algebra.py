"""Exact algebra shared by the checks: substituting definitions and proving zero.

``is_zero`` answers True only when SymPy proves an expression is zero under the
symbols' assumptions; None means "not settled" (never "false"): the numeric check is
what rejects a claim.
"""

from __future__ import annotations

from typing import Mapping

import sympy as sp
from sympy.codegen.cfunctions import log1p

from ..errors import DerivationError


def substitute(expr: sp.Expr, definitions: Mapping[sp.Symbol, sp.Expr], keep_sums: bool = True) -> sp.Expr:
    """Replace defined symbols by their definitions until none is left.  With
    ``keep_sums=False`` definitions that are sums over data (ybar, S_j) are kept as
    symbols, which is right for expressions already written in sufficient statistics."""
    defs = {s: e for s, e in definitions.items() if keep_sums or not e.has(sp.Sum)}
    for _ in range(10):
        new = xreplace_shielded(expr, defs)
        if new == expr:
            return new
        expr = new
    raise DerivationError("definitions are circular")


def xreplace_shielded(expr: sp.Expr, defs: Mapping) -> sp.Expr:
    """xreplace that leaves array elements alone: ybar[j] has the label ybar, the same
    Symbol as the scalar ybar, so a definition of the scalar would otherwise rewrite the
    array's name.  Elements that are themselves defined (keys of ``defs``) are replaced."""
    shield = {x: sp.Dummy() for x in expr.atoms(sp.Indexed) if x not in defs}
    if not shield:
        return expr.xreplace(defs)
    return expr.xreplace(shield).xreplace(defs).xreplace({d: x for x, d in shield.items()})


def has_data_sums(*exprs: sp.Expr) -> bool:
    return any(e.has(sp.Sum) or e.has(sp.Indexed) for e in exprs)


def _split_sums(expr: sp.Expr) -> sp.Expr:
    """Distribute each Sum over the terms of its expanded summand and evaluate the easy
    parts: turns sum identities over a symbolic n_j into polynomial identities."""

    def split(s: sp.Sum) -> sp.Expr:
        terms = sp.Add.make_args(sp.expand(s.function))
        return sp.Add(*[_sum_term(t, s.limits) for t in terms])

    return sp.expand(expr.replace(lambda x: isinstance(x, sp.Sum), split))


def linear_sums(expr: sp.Expr) -> sp.Expr:
    """``expr`` with every single sum split by linearity alone: the summand expanded,
    factors free of the index pulled out, each remaining sum over a summand without
    nested sums written in one canonical form (its index renamed to one Dummy, the
    summand cancelled).  An identity between such sums that holds with the sums taken
    as independent indeterminates holds for every value they take (the envelope
    theorem's sum_j w_j (ybar_j - beta0_hat) = 0 is one: doit cannot see it)."""
    index = sp.Dummy("i", integer=True)

    def split(s: sp.Sum) -> sp.Expr:
        if len(s.limits) != 1:
            return s
        var, lo, hi = s.limits[0]
        out = []
        for term in sp.Add.make_args(sp.expand(s.function)):
            free, bound = term.as_independent(var, as_Add=False)
            if bound.has(var) and sp.denom(bound).has(var):  # expand multiplied the free factors into the denominator
                more, bound = sp.factor(bound).as_independent(var, as_Add=False)
                free *= more
            if not bound.has(var):
                out.append(free * bound * (hi - lo + 1))
            elif bound.has(sp.Sum):  # renaming the index could capture it inside the nested sum
                out.append(free * sp.Sum(bound, (var, lo, hi)))
            else:
                out.append(free * sp.Sum(sp.cancel(bound.xreplace({var: index})), (index, lo, hi)))
        return sp.Add(*out)

    return expr.replace(lambda x: isinstance(x, sp.Sum), split)


def _sum_term(term: sp.Expr, limits: tuple) -> sp.Expr:
    """Sum(term, limits) by linearity alone when the index appears only inside data
    (y[i]: no closed form exists, and SymPy's doit spends seconds proving so): the
    Sum stays as doit would leave it.  A term free of the index is multiplied by the
    number of terms.  Anything else (the index itself, nested sums) is left to doit."""
    if len(limits) != 1 or term.has(sp.Sum):
        return sp.Sum(term, *limits).doit()
    var, lo, hi = limits[0]
    if not term.has(var):
        return term * (hi - lo + 1)
    if not all(isinstance(x, sp.Indexed) for x in _holders(term, var)):
        return sp.Sum(term, *limits).doit()
    return sp.Sum(term, *limits)  # as doit leaves it (factors pulled out slow simplify down)


def _holders(expr: sp.Expr, var: sp.Symbol) -> set:
    """The smallest subexpressions through which ``var`` enters ``expr``: an Indexed
    whose indices contain it, or ``var`` itself where it appears bare."""
    if isinstance(expr, sp.Indexed):
        return {expr} if expr.has(var) else set()
    if expr == var:
        return {expr}
    out: set = set()
    for a in expr.args:
        out |= _holders(a, var)
    return out


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


def _branchwise(expr: sp.Expr):
    """The branches of a piecewise expression (folded), or None if it has none: a claim
    holds if it holds on every branch (checking each alone is much faster, and sound)."""
    if not expr.has(sp.Piecewise):
        return None
    try:
        folded = sp.piecewise_fold(expr)
    except (TypeError, ValueError, NotImplementedError):
        return None
    if not isinstance(folded, sp.Piecewise):
        return None
    return [e for e, cond in folded.args if cond != sp.false]


def _once(f):
    """``f`` computed once per argument (the attempts of is_zero often meet the same
    expression: simplify(expand_log(e)) is simplify(e) when e has no logarithm to
    expand); f(0) is 0 for the functions used here, so it is not computed at all."""
    memo: dict = {}

    def g(e):
        if e == 0:
            return sp.S.Zero
        if e not in memo:
            try:
                memo[e] = (True, f(e))
            except Exception as err:  # the same failure for the same expression
                memo[e] = (False, err)
        ok, out = memo[e]
        if not ok:
            raise out
        return out
    return g


def is_zero(expr: sp.Expr) -> bool | None:
    """True if SymPy proves expr == 0 under the symbols' assumptions; None if it cannot."""
    if expr == 0:
        return True
    branches = _branchwise(expr)
    if branches is not None:
        return True if all(is_zero(e) for e in branches) else None
    if expr.has(log1p):  # the numerically stable spelling; SymPy simplifies log(1 + x)
        expr = expr.replace(lambda x: isinstance(x, log1p), lambda x: sp.log(1 + x.args[0]))
    simplify, split = _once(sp.simplify), _once(_split_sums)
    attempts = (
        sp.expand,
        lambda e: sp.cancel(sp.together(e)),
        lambda e: simplify(sp.expand_log(e)),
        simplify,
        lambda e: simplify(sp.expand_log(sp.expand(e), force=False)),
    )
    if expr.has(sp.Sum):
        as_indeterminates = lambda e: sp.cancel(sp.together(sp.expand_log(linear_sums(e), force=False)))  # noqa: E731
        attempts = (as_indeterminates, lambda e: simplify(split(e)), lambda e: simplify(split(split(e)))) + attempts
        if _starts_above_one(expr):
            attempts = (lambda e: simplify(split(_sums_from_one(e))),) + attempts
    for attempt in attempts:
        try:
            if attempt(expr) == 0:
                return True
        except (TypeError, ValueError, NotImplementedError, RecursionError, StopIteration):
            continue  # StopIteration: SymPy's sum_simplify on some sums of Indexed terms
    return None


def is_positive(expr: sp.Expr, notation=None) -> bool:
    """True if SymPy shows expr > 0 under the symbols' assumptions (and, given the
    notation, the minima of integer domains); False means "not shown", not "negative"."""
    branches = _branchwise(expr)
    if branches is not None:
        return all(is_positive(e, notation) for e in branches)
    forms = [expr]
    if notation is not None:
        shifts = notation.shifts(expr)
        if shifts:
            forms.append(expr.xreplace(shifts))
    for e in forms:
        for attempt in (lambda x: x, sp.factor, sp.simplify, sp.together, lambda x: sp.factor(sp.simplify(x))):
            try:
                if attempt(e).is_positive:
                    return True
            except (TypeError, ValueError, NotImplementedError, RecursionError):
                continue
    return False
