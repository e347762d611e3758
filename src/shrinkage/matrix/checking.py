"""What every matrix check shares: where it evaluates, and how it compares.

``numeric_walkers`` yields the random instances of a step (seeded by derivation and step,
so a build is deterministic); ``exact_walker`` builds one explicit instance of symbols;
``assign`` sets a (possibly stacked) vector variable to a value.
"""

from __future__ import annotations

import random

import mpmath
import sympy as sp

from ..derive.points import seed as _seed
from .evaluate import Walker
from .instances import Sizes, explicit_entries, explicit_instance, random_instance, random_sizes, symbols_of
from .linalg import Mat, column
from .notation import BY_CODE, STACKED_FROM, J, N, n, p, q
from .numbers import Exact, Numeric

DPS = 50  # digits of the numeric check
POINTS = 12  # random instances per step: q = 1, 2, 3, 4 three times each
REL_TOL = mpmath.mpf(10) ** -35
NUMERIC = Numeric()


class Failure(Exception):
    """A counterexample, carried from a check to MatrixStep.verify."""


def numeric_walkers(step, name: str, number: int, exprs):
    """(sizes, walker) at each random instance of this step."""
    from .instances import uses_groups

    rng = random.Random(_seed(name, number))
    groups = uses_groups(*exprs)
    for k in range(POINTS):
        sizes = random_sizes(rng, step.fixed("q") or 1 + k % 4, groups, step.full_rank, step.fixed("p"))
        yield sizes, Walker(NUMERIC, random_instance(exprs, sizes, rng, NUMERIC))


def explicit_sizes(step, groups: bool) -> list[Sizes]:
    """The sizes of the symbolic check: q = 1 and 2 with as few observations as the
    claim allows (two groups of different sizes where sums over groups appear)."""
    if getattr(step, "exact_sizes", ()):
        return list(step.exact_sizes)
    if step.fixed("q"):
        q0, p0 = step.fixed("q"), step.fixed("p") or 1
        return [Sizes(q0, p0, (k,)) for k in (1, 2, 3)]
    if groups:
        return [Sizes(1, 1, (1, 2)), Sizes(2, 1, (2, 3))]
    return [Sizes(1, 1, (2,)), Sizes(2, 1, (3,))]


def _size_env(sizes: Sizes) -> dict:
    return {p: sp.Integer(sizes.p), q: sp.Integer(sizes.q), J: sp.Integer(len(sizes.n)), n: sp.Integer(sizes.n[0]),
            N: sp.Integer(sum(sizes.n))}


def vector_rows(parts, sizes: Sizes) -> int:
    env = _size_env(sizes)
    return sum(int(sp.sympify(part.rows).xreplace(env)) for part in parts)


vector_shape = vector_rows


def probe_symbols(parts):
    return tuple(parts)


def exact_walker(exprs, sizes: Sizes, probes=None):
    """A walker over an explicit instance (and a probe vector of fresh symbols)."""
    entries, gens = explicit_entries(exprs, sizes)
    _, scalars = symbols_of(exprs)
    probe_syms = []
    if probes:
        probe_syms = [sp.Symbol(f"probe_{i}", real=True) for i in range(vector_rows(probes, sizes))]
    exact = Exact(gens + probe_syms)
    walker = Walker(exact, explicit_instance(entries, sorted(scalars, key=str), sizes, exact))
    probe = column([exact.element(s) for s in probe_syms]) if probes else None
    return walker, probe


def assign(w: Walker, parts, x: Mat) -> Walker:
    """The walker with the stacked variable (parts) set to the vector x."""
    row = 0
    for part in parts:
        rows = w.size(part.rows, 0)
        chunk = Mat(x.rows[row:row + rows])
        row += rows
        if part.name in STACKED_FROM:
            source = BY_CODE[STACKED_FROM[part.name][0]].symbol
            start = 0
            for g in range(w.inst.J):
                size = w.size(source.rows, g)
                w = w.with_values({source: Mat(chunk.rows[start:start + size])}, group=g)
                start += size
        elif BY_CODE[part.name].scope == "group":
            w = w.with_values({part: chunk}, group=0)
        else:
            w = w.with_values({part: chunk})
    return w


def probe_vector(w: Walker, parts, rng: random.Random) -> Mat:
    rows = sum(w.size(part.rows, 0) for part in parts)
    return column([mpmath.mpf(rng.randint(-4000, 4000)) / 1000 for _ in range(rows)])


def _scale(v) -> mpmath.mpf:
    if isinstance(v, Mat):
        return max([mpmath.mpf(1)] + [abs(x) for x in v.entries()])
    return max(mpmath.mpf(1), abs(v))


def close(a, b) -> bool:
    a, b = (x.rows[0][0] if isinstance(x, Mat) and x.shape == (1, 1) else x for x in (a, b))
    if isinstance(a, Mat) != isinstance(b, Mat):
        return False
    if isinstance(a, Mat):
        if a.shape != b.shape:
            return False
        tol = REL_TOL * max(_scale(a), _scale(b))
        return all(abs(x - y) <= tol for x, y in zip(a.entries(), b.entries()))
    return abs(a - b) <= REL_TOL * max(_scale(a), _scale(b))


def describe_value(v) -> str:
    if isinstance(v, Mat):
        shown = ", ".join(mpmath.nstr(x, 10) for x in v.entries()[:4])
        more = ", ..." if len(v.entries()) > 4 else ""
        return f"a {v.nrows}x{v.ncols} matrix [{shown}{more}]"
    return mpmath.nstr(v, 15)
