"""Evaluate a matrix expression at concrete sizes, with one of two kinds of numbers.

The same walk over the expression serves both checks:

* :class:`Numeric`: mpmath numbers (random values, ``DPS`` digits) for the numeric check;
* :class:`Exact`: elements of the field of rational functions in the entries of
  explicit matrices of symbols (D = L L^T with a Cholesky factor L), for the symbolic
  check.  A logarithm stays a formal ``LogLinear`` combination, decided exactly by
  factoring its arguments (:meth:`LogLinear.is_zero`).

An :class:`Instance` holds the sizes (p, q, J, every n_j) and the value of every symbol;
inside a sum over groups, per-group symbols take the value of the group being summed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import sympy as sp
from sympy.codegen.cfunctions import log1p
from sympy.matrices.expressions.kronecker import KroneckerProduct

from .linalg import Mat, block, blockdiag, eye, kron, ones, vstack, zeros
from .nodes import GroupMatSum, GroupStack, GroupSum, Scalar
from .notation import BY_CODE, STACKED_FROM, J, N, n, p, q


@lru_cache(maxsize=None)
def free_symbols(expr: sp.Basic) -> frozenset:
    """``expr.free_symbols``, computed once per expression: SymPy walks the whole tree on
    every call, and a quadrature asks for the same subexpressions thousands of times."""
    return frozenset(expr.free_symbols)


class NotSettled(Exception):
    """The exact arithmetic cannot represent this expression (e.g. an exponential)."""


@dataclass
class Instance:
    """Sizes and values at which an expression is evaluated."""

    p: int
    q: int
    sizes: list[int]  # n_j of every group; group 0 is "group j" outside sums over groups
    values: dict = field(default_factory=dict)  # global symbols -> value
    groups: list[dict] = field(default_factory=list)  # per-group symbols -> value, one dict per group

    @property
    def J(self) -> int:
        return len(self.sizes)

    def describe(self) -> str:
        return f"q={self.q}, p={self.p}, n_j={self.sizes}"


class Walker:
    """Evaluates expressions at one instance with one kind of numbers (memoised).

    :meth:`with_values` gives a walker for the same instance with some symbols set to
    other values (a point b of an integral): it reuses every value computed here that
    does not depend on them, so a quadrature evaluates only what changes."""

    def __init__(self, numbers, instance: Instance, parent: "Walker | None" = None, changed: frozenset = frozenset()):
        self.k = numbers
        self.inst = instance
        self._memo: dict = {}
        self._parent, self._changed = parent, changed

    def with_values(self, values: dict, group: int | None = None) -> "Walker":
        """The same instance with ``values`` (global, or of one group) replaced."""
        inst = self.inst
        if group is None:
            new = Instance(inst.p, inst.q, inst.sizes, {**inst.values, **values}, inst.groups)
        else:
            groups = list(inst.groups)
            groups[group] = {**groups[group], **values}
            new = Instance(inst.p, inst.q, inst.sizes, inst.values, groups)
        changed = set(values)
        changed |= {BY_CODE[c].symbol for c, (src, _) in STACKED_FROM.items() if BY_CODE[src].symbol in changed}
        return Walker(self.k, new, self, frozenset(changed))

    # -- sizes and symbols -------------------------------------------------------------
    def size(self, expr: sp.Expr, group: int) -> int:
        value = sp.sympify(expr).xreplace(self._size_values(group))
        if not value.is_Integer:
            raise ValueError(f"size {expr} is not concrete")
        return int(value)

    def _size_values(self, group: int) -> dict:
        i = self.inst
        return {p: sp.Integer(i.p), q: sp.Integer(i.q), J: sp.Integer(i.J), n: sp.Integer(i.sizes[group]),
                N: sp.Integer(sum(i.sizes))}

    def symbol(self, s, group: int):
        if s in (p, q, J, n, N):
            return self.k.const(sp.Integer(self.size(s, group)))
        if isinstance(s, sp.MatrixSymbol) and s.name in STACKED_FROM:
            per_group, how = STACKED_FROM[s.name]
            parts = [self.inst.groups[g][BY_CODE[per_group].symbol] for g in range(self.inst.J)]
            return blockdiag(parts, self.k) if how == "blockdiag" else vstack(parts)
        for scope in (self.inst.groups[group], self.inst.values):
            if s in scope:
                return scope[s]
        raise KeyError(f"no value for {s} at {self.inst.describe()}")

    # -- the walk ----------------------------------------------------------------------
    def value(self, expr: sp.Basic, group: int = 0) -> Any:
        key = (expr, group)
        if key in self._memo:
            return self._memo[key]
        parent = self._parent
        if parent is not None and self._changed.isdisjoint(free_symbols(expr)):
            v = parent.value(expr, group)
        else:
            v = self._value(expr, group)
        self._memo[key] = v
        return v

    def _value(self, e, g):
        k, val = self.k, (lambda x: self.value(x, g))
        if isinstance(e, (sp.Symbol, sp.MatrixSymbol)):
            return self.symbol(e, g)
        if isinstance(e, sp.MatrixBase):  # an explicit matrix, e.g. [[sigma_b^2]]
            return Mat(tuple(tuple(k.entry(val(x)) for x in row) for row in e.tolist()))
        if isinstance(e, sp.Number) or e in (sp.pi, sp.E):
            return k.const(e)
        if isinstance(e, sp.Identity):
            return eye(self.size(e.rows, g), k)
        if isinstance(e, sp.ZeroMatrix):
            return zeros(self.size(e.rows, g), self.size(e.cols, g), k)
        if isinstance(e, sp.OneMatrix):
            return ones(self.size(e.rows, g), self.size(e.cols, g), k)
        if isinstance(e, sp.MatAdd):
            parts = [val(a) for a in e.args]
            out = parts[0]
            for x in parts[1:]:
                out = out + x
            return out
        if isinstance(e, sp.MatMul):
            out, scale = None, k.const(sp.Integer(1))
            for a in e.args:
                x = val(a)
                if isinstance(x, Mat):
                    out = x if out is None else out @ x
                else:
                    scale = k.mul(scale, x)
            return out.scale(k.entry(scale))
        if isinstance(e, sp.Inverse):
            if isinstance(e.arg, sp.Inverse):  # (A^{-1})^{-1} = A
                return val(e.arg.arg)
            return val(e.arg).inverse(k)
        if isinstance(e, sp.MatPow):
            power = int(e.exp)
            base = val(e.base)
            if power < 0:
                base, power = base.inverse(k), -power
            out = eye(base.nrows, k)
            for _ in range(power):
                out = out @ base
            return out
        if isinstance(e, sp.Transpose):
            return val(e.arg).T
        if isinstance(e, sp.Determinant):
            if isinstance(e.arg, sp.Inverse):  # det(A^{-1}) = 1/det(A)
                return k.pow(k.scalar(val(e.arg.arg).det(k)), sp.Integer(-1))
            return k.scalar(val(e.arg).det(k))
        if isinstance(e, sp.Trace):
            return k.scalar(val(e.arg).trace())
        if isinstance(e, Scalar):
            m = val(e.matrix)
            return k.scalar(m.rows[0][0])
        if isinstance(e, sp.BlockMatrix):
            return block([[val(b) for b in row] for row in e.blocks.tolist()])
        if isinstance(e, KroneckerProduct):
            parts = [val(a) for a in e.args]
            out = parts[0]
            for x in parts[1:]:
                out = kron(out, x, k)
            return out
        if isinstance(e, GroupSum):
            out = k.const(sp.Integer(0))
            for h in range(self.inst.J):
                out = k.add(out, self.value(e.term, h))
            return out
        if isinstance(e, GroupMatSum):
            parts = [self.value(e.term, h) for h in range(self.inst.J)]
            out = parts[0]
            for x in parts[1:]:
                out = out + x
            return out
        if isinstance(e, GroupStack):
            return vstack([self.value(e.term, h) for h in range(self.inst.J)])
        if isinstance(e, sp.Indexed):  # y[i] of the one-way model: entry i of y_j
            i = self.size(e.indices[0], g)
            return k.scalar(self.symbol(BY_CODE["y_j"].symbol, g).rows[i - 1][0])
        if isinstance(e, sp.Sum):
            var, lo, hi = e.limits[0]
            inner = e.function if len(e.limits) == 1 else sp.Sum(e.function, *e.limits[1:])
            out = k.const(sp.Integer(0))
            for i in range(self.size(lo, g), self.size(hi, g) + 1):
                out = k.add(out, self.value(inner.xreplace({var: sp.Integer(i)}), g))
            return out
        if isinstance(e, sp.Add):
            out = val(e.args[0])
            for a in e.args[1:]:
                out = k.add(out, val(a))
            return out
        if isinstance(e, sp.Mul):
            out = val(e.args[0])
            for a in e.args[1:]:
                out = k.mul(out, val(a))
            return out
        if isinstance(e, sp.Pow):
            return k.pow(val(e.base), e.exp if e.exp.is_Number else val(e.exp))
        if isinstance(e, sp.log):
            return k.log(val(e.args[0]))
        if isinstance(e, log1p):
            return k.log(k.add(k.const(sp.Integer(1)), val(e.args[0])))
        if isinstance(e, sp.exp):
            return k.exp(val(e.args[0]))
        raise NotSettled(f"cannot evaluate {type(e).__name__}: {e}")
