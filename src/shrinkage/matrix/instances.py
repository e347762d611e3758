"""Where the checks evaluate: random instances (numeric) and explicit ones (symbolic).

A random instance draws the sizes (q, p, the n_j of 1-3 groups) and a value for every
symbol from its kind: general real matrices, a positive definite D = L L^T from a random
Cholesky factor, a lower triangular Lambda_theta with positive diagonal, scalars from
their domains.  An explicit instance gives every entry its own SymPy symbol instead, and
D its Cholesky parametrisation L = [[l11, 0], [l21, l22]] (l11, l22 > 0), at small sizes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from ..errors import DerivationError
from ..symbols import quantity_of
from .evaluate import Instance
from .linalg import Mat
from .nodes import GroupMatSum, GroupStack, GroupSum
from .notation import BY_CODE, SCALAR_BY_CODE, SIZES, STACKED_FROM, MatrixQuantity, J


@dataclass(frozen=True)
class Sizes:
    """Sizes of one instance: q, p and the n_j of each group (group 0 is group j)."""

    q: int
    p: int
    n: tuple[int, ...]

    def describe(self) -> str:
        sizes = ", ".join(map(str, self.n))
        return f"q={self.q}, p={self.p}, n_j=({sizes})"

    def describe_tex(self) -> str:
        sizes = ", ".join(map(str, self.n))
        groups = f"$n_j = {sizes}$" if len(self.n) == 1 else f"$J = {len(self.n)}$ groups of $n_j = {sizes}$"
        return f"$q = {self.q}$ ({groups}, $p = {self.p}$)"


def uses_groups(*exprs: sp.Basic) -> bool:
    """Does any expression sum or stack over groups (so more than one group matters)?"""
    stacked = {BY_CODE[c].symbol for c in STACKED_FROM}
    return any(e.has(GroupSum, GroupMatSum, GroupStack) or e.atoms(sp.MatrixSymbol) & stacked or e.has(J)
               for e in exprs)


def symbols_of(exprs) -> tuple[set, set]:
    """(matrix symbols, scalar symbols) an instance must give values to."""
    matrices, scalars = _symbols_of(tuple(exprs))
    return set(matrices), set(scalars)


@lru_cache(maxsize=None)
def _symbols_of(exprs: tuple) -> tuple[frozenset, frozenset]:
    """symbols_of, once per tuple of expressions (every random instance of a step asks)."""
    matrices, scalars = set(), set()
    for e in exprs:
        matrices |= e.atoms(sp.MatrixSymbol)
        bound = {lim[0] for s in e.atoms(sp.Sum) for lim in s.limits}
        labels = {x.base.label for x in e.atoms(sp.Indexed)}
        scalars |= {s for s in e.atoms(sp.Symbol) if s not in bound and s not in labels and s not in SIZES}
    if any(e.atoms(sp.Indexed) for e in exprs):  # y[i] of the one-way model is an entry of y_j
        matrices.add(BY_CODE["y_j"].symbol)
    for m in list(matrices):
        if m.name in STACKED_FROM:
            matrices.add(BY_CODE[STACKED_FROM[m.name][0]].symbol)
    return frozenset(matrices), frozenset(scalars)


def _quantity(m: sp.MatrixSymbol) -> MatrixQuantity:
    try:
        mq = BY_CODE[m.name]
    except KeyError:
        raise DerivationError(f"matrix {m.name} has no entry in shrinkage.matrix.notation") from None
    if mq.scope == "defined":
        raise DerivationError(f"matrix {m.name} is used but not defined by a Define step")
    return mq


def _shape(mq: MatrixQuantity, sizes: Sizes, group: int) -> tuple[int, int]:
    from .notation import n, p, q

    env = {n: sp.Integer(sizes.n[group]), p: sp.Integer(sizes.p), q: sp.Integer(sizes.q)}
    return int(sp.sympify(mq.rows).xreplace(env)), int(sp.sympify(mq.cols).xreplace(env))


def scalar_sample(s: sp.Symbol, rng: random.Random) -> sp.Expr:
    q = SCALAR_BY_CODE.get(s.name)
    try:
        q = q or quantity_of(s)
    except KeyError:
        raise DerivationError(f"symbol {s} has no entry in shrinkage.symbols or shrinkage.matrix.notation") from None
    return q.sample(rng)


# --- random instances -------------------------------------------------------------
def random_sizes(rng: random.Random, q: int, groups: bool, full_rank: bool, p: int | None = None) -> Sizes:
    p = p or rng.randint(1, 3)
    count = rng.randint(1, 3) if groups else 1
    lo = q if full_rank else 1
    n = [rng.randint(lo, q + 4) for _ in range(count)]
    while sum(n) <= p:  # the stacked design needs more rows than columns
        n[-1] += 1
    return Sizes(q, p, tuple(n))


def _real(rng):
    return sp.Rational(rng.randint(-3000, 3000), 1000)


def _draw(mq: MatrixQuantity, shape, rng) -> list[list[sp.Expr]]:
    r, c = shape
    if mq.kind in ("spd", "lower"):
        low = [[sp.Integer(0)] * c for _ in range(r)]
        for i in range(r):
            for k in range(i + 1):
                low[i][k] = sp.Rational(10) ** sp.Rational(rng.randint(-50, 50), 100) if i == k else _real(rng) / 3
        if mq.kind == "lower":
            return low
        scale = sp.Rational(10) ** sp.Rational(rng.randint(-100, 100), 100)
        return (sp.Matrix(low) * sp.Matrix(low).T * scale).tolist()
    return [[_real(rng) for _ in range(c)] for _ in range(r)]


def random_instance(exprs, sizes: Sizes, rng: random.Random, numbers) -> Instance:
    matrices, scalars = symbols_of(exprs)
    inst = Instance(sizes.p, sizes.q, list(sizes.n), {}, [{} for _ in sizes.n])
    conv = lambda rows: Mat(tuple(tuple(numbers.const(x) for x in row) for row in rows))  # noqa: E731
    for m in sorted(matrices, key=lambda m: m.name):
        mq = _quantity(m)
        if mq.scope in ("stacked", "blockdiag"):
            continue
        if mq.scope == "group":
            for g in range(len(sizes.n)):
                inst.groups[g][m] = conv(_draw(mq, _shape(mq, sizes, g), rng))
        else:
            inst.values[m] = conv(_draw(mq, _shape(mq, sizes, 0), rng))
    for s in sorted(scalars, key=lambda s: s.name):
        inst.values[s] = numbers.const(scalar_sample(s, rng))
    return inst


# --- explicit instances -------------------------------------------------------------
def explicit_entries(exprs, sizes: Sizes) -> tuple[dict, list[sp.Symbol]]:
    """Matrices of fresh symbols for every matrix in ``exprs`` (as SymPy matrices,
    keyed by (symbol, group or None)), and the list of all symbols introduced."""
    matrices, scalars = symbols_of(exprs)
    entries, gens = {}, sorted(scalars, key=lambda s: s.name)
    for m in sorted(matrices, key=lambda m: m.name):
        mq = _quantity(m)
        if mq.scope in ("stacked", "blockdiag"):
            continue
        for g in range(len(sizes.n)) if mq.scope == "group" else (None,):
            r, c = _shape(mq, sizes, g or 0)
            tag = f"{m.name}{'' if g is None else g}"
            if mq.kind in ("spd", "lower"):
                low = sp.zeros(r, c)
                for i in range(r):
                    for k in range(i + 1):
                        low[i, k] = sp.Symbol(f"{tag}_L{i}{k}", positive=True) if i == k else sp.Symbol(f"{tag}_L{i}{k}", real=True)
                gens += [x for x in low if isinstance(x, sp.Symbol)]
                entries[(m, g)] = ("spd" if mq.kind == "spd" else "lower", low)
            else:
                mat = sp.Matrix(r, c, lambda i, k: sp.Symbol(f"{tag}_{i}{k}", real=True))
                gens += list(mat)
                entries[(m, g)] = ("real", mat)
    return entries, gens


def explicit_instance(entries: dict, scalars, sizes: Sizes, exact) -> Instance:
    inst = Instance(sizes.p, sizes.q, list(sizes.n), {}, [{} for _ in sizes.n])
    for (m, g), (kind, mat) in entries.items():
        value = Mat(tuple(tuple(exact.element(x) if x != 0 else exact.zero for x in row) for row in mat.tolist()))
        if kind == "spd":
            value = value @ value.T
        if g is None:
            inst.values[m] = value
        else:
            inst.groups[g][m] = value
    for s in scalars:
        inst.values[s] = exact.scalar(exact.element(s))
    return inst
