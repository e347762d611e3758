"""Several grouping factors for the matrix checks: the quantities, and random crossed designs.

The first term's levels are the groups j = 1..J of shrinkage.matrix.notation (Z_j, n_j,
Lambda_theta = T_1, q = q_1), so its block of Lambda'Z'Z Lambda + I is block diagonal by
construction; the other terms (2..K) are one design Z_r (N x m) with relative covariance
factor Lambda_r = blockdiag(I_{J_k} (x) T_k), and R_j its rows in level j of the first term.

A random instance is a real crossed design: every row has one level of each other term
(drawn at random, so levels of different terms share rows or not), its values in that
level's q_k columns, zero elsewhere; 1 or 2 other terms of 2-3 levels, q_k = 1 or 2.  The
selector E_j ((J q + m) x q) is the columns of level j of the first term among all effects, and
Lambda_a = I_J (x) Lambda_theta is computed from Lambda_theta (as Z_a = diag(Z_j) from the Z_j).
This module only adds to the one-factor library: its notation and checks are unchanged.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

import sympy as sp

from ..derive.notation import Quantity
from ..derive.points import seed as _seed
from ..errors import DerivationError
from .checking import NUMERIC, POINTS
from .evaluate import Instance, Walker
from .instances import _draw, scalar_sample, symbols_of
from .linalg import Mat, blockdiag, eye, kron
from .nodes import GroupStack
from .notation import BY_CODE, MATRICES, MatrixQuantity, J, N, n, p, q

SIZE_M = Quantity("m_r", "m_r", r"number of the other terms' random effects, $\sum_{k \ge 2} J_k q_k$", "count")
m = SIZE_M.symbol
CROSSED_SCALARS = (
    SIZE_M,
    Quantity("sigma2_a", r"\sigma_a^2", r"variance of the first factor's random intercept ($q = 1$)", "positive"),
)
sigma2_a = CROSSED_SCALARS[1].symbol


def _m(code, latex, meaning, rows, cols, kind="defined", scope="defined"):
    return MatrixQuantity(code, latex, meaning, rows, cols, kind, scope)


CROSSED = (
    _m("Z_r", r"\mathbf Z_r", r"the other terms' design $[\mathbf Z_2 \cdots \mathbf Z_K]$ ($N \times m$)", N, m,
       "design", "global"),
    _m("R_j", r"\mathbf R_j", r"the rows of $\mathbf Z_r$ in level $j$ of the first factor", n, m, "design", "group"),
    _m("Lambda_r", r"\boldsymbol\Lambda_r", r"$\operatorname{diag}(\mathbf I_{J_k}\otimes\mathbf T_k)_{k \ge 2}$, the "
       r"other terms' relative covariance factor", m, m, "factor", "global"),
    _m("E_j", r"\mathbf E_j", r"the columns of level $j$ of the first term among all effects ($(Jq + m) \times q$)",
       J * q + m, q, "selector", "group"),
    _m("Lambda_a", r"\boldsymbol\Lambda_a", r"the first term's relative covariance factor, "
       r"$\mathbf I_J\otimes\boldsymbol\Lambda_\theta$", J * q, J * q, "kron", "global"),
    _m("u_a", r"\mathbf u_a", r"the first term's spherical effects, level by level ($Jq \times 1$)", J * q, 1,
       "real", "global"),
    _m("u_r", r"\mathbf u_r", r"the other terms' spherical effects ($m \times 1$)", m, 1, "real", "global"),
    _m("Z_c", r"\mathbf Z", r"all random-effects columns $[\mathbf Z_a\ \mathbf Z_r]$", N, J * q + m),
    _m("Lambda_c", r"\boldsymbol\Lambda", r"$\operatorname{diag}(\mathbf I_J\otimes\boldsymbol\Lambda_\theta, "
       r"\boldsymbol\Lambda_r)$", J * q + m, J * q + m),
    _m("u_c", r"\mathbf u", r"all spherical effects $[\mathbf u_a; \mathbf u_r]$", J * q + m, 1),
    _m("M_c", r"\mathbf M", r"lme4's $\mathbf L_\theta\mathbf L_\theta^{\mathsf T}$ for all terms", J * q + m, J * q + m),
    _m("ZtR_j", r"\mathbf Z_j^{\mathsf T}\mathbf R_j", r"level $j$'s first-term columns against the other terms'",
       q, m),
    _m("RtR", r"\mathbf Z_r^{\mathsf T}\mathbf Z_r", r"a cross-product of the other terms' columns", m, m),
    _m("RtX", r"\mathbf Z_r^{\mathsf T}\mathbf X", r"a cross-product of the other terms' columns", m, p),
    _m("Rty", r"\mathbf Z_r^{\mathsf T}\mathbf y", r"a cross-product of the other terms' columns", m, 1),
    _m("W1_j", r"\mathbf w_j", r"the first-block weights $\boldsymbol\Lambda_\theta\mathbf M_j^{-1}"
       r"\boldsymbol\Lambda_\theta^{\mathsf T}$ of level $j$", q, q),
    _m("Dn_r", r"\boldsymbol\Delta_r", r"the Schur downdate: the first term's part of "
       r"$\mathbf Z_r^{\mathsf T}\mathbf Z_r$", m, m),
    _m("S_r", r"\mathbf S_r", r"the Schur complement of $\mathbf M$ onto the other terms", m, m),
    _m("F_r", r"\mathbf F_r", r"the other terms' block of the fixed-effect columns, after the first term", m, p),
    _m("f_r", r"\mathbf f_r(\boldsymbol\beta)", r"the other terms' part of the right side at $\boldsymbol\beta$, "
       r"after the first term", m, 1),
    _m("b_r", r"\mathbf b_r", r"the other terms' random effects $\boldsymbol\Lambda_r\mathbf u_r$", m, 1),
    _m("b1_j", r"\hat{\mathbf b}_{aj}", r"level $j$'s first-term effects at the backfitting update", q, 1),
    _m("b_r_hat", r"\hat{\mathbf b}_r", r"the BLUP of the other terms' effects", m, 1),
    _m("V_r", r"\mathbf V_r", r"$\operatorname{Var}(\mathbf b_r \mid \mathbf y)$", m, m),
    _m("V1_j", r"\mathbf V_{aj}", r"$\operatorname{Var}(\mathbf b_{aj} \mid \mathbf y)$, level $j$ of the first term",
       q, q),
)
ALL = {e.code: e for e in MATRICES + CROSSED}
LAMBDA_A = ALL["Lambda_a"].symbol  # evaluated as I_J (x) Lambda_theta, as Z_all is as diag(Z_j)


def matrix(code: str) -> sp.MatrixSymbol:
    return ALL[code].symbol


class LevelDiag(GroupStack):
    """diag(term_1, ..., term_J): a square per-level block on the diagonal, zero elsewhere
    (the first term's block: each row has one level of the first factor); ``rows`` is its size."""

    @property
    def shape(self):
        return (self.args[1], self.args[1])

    def _latex(self, printer):
        return rf"\operatorname{{diag}}_{{j}}\left({printer._print(self.term)}\right)"


# --- instances ----------------------------------------------------------------------
@dataclass
class CrossedInstance(Instance):
    m: int = 1
    terms: tuple = ()  # (levels, q_k) of the other terms

    def describe(self) -> str:
        return f"q={self.q}, p={self.p}, n_j={self.sizes}, other terms (levels, q_k)={list(self.terms)}"


class CrossedWalker(Walker):
    """Walker over a crossed instance: knows m, and the first term's block diagonal."""

    def with_values(self, values: dict, group: int | None = None) -> "CrossedWalker":
        inst = self.inst
        if group is None:
            new = replace(inst, values={**inst.values, **values})
        else:
            groups = list(inst.groups)
            groups[group] = {**groups[group], **values}
            new = replace(inst, groups=groups)
        changed = set(values) | ({LAMBDA_A} if BY_CODE["Lambda_theta"].symbol in values else set())
        return CrossedWalker(self.k, new, self, frozenset(changed))

    def _size_values(self, group: int) -> dict:
        return {**super()._size_values(group), m: sp.Integer(self.inst.m)}

    def symbol(self, s, group: int):
        if s == m:
            return self.k.const(sp.Integer(self.inst.m))
        if s == LAMBDA_A:  # I_J (x) Lambda_theta, from Lambda_theta's current value
            return kron(eye(self.inst.J, self.k), self.symbol(BY_CODE["Lambda_theta"].symbol, group), self.k)
        return super().symbol(s, group)

    def _value(self, e, g):
        if isinstance(e, LevelDiag):
            return blockdiag([self.value(e.term, h) for h in range(self.inst.J)], self.k)
        return super()._value(e, g)


def _lower(rng, size):
    return _draw(BY_CODE["Lambda_theta"], (size, size), rng)


def _other_terms(rng, inst: CrossedInstance):
    """Z_r row by row (one level of each other term), and Lambda_r, as rational lists."""
    width = inst.m
    rows = []
    for size in inst.sizes:
        for _ in range(size):
            row, at = [sp.Integer(0)] * width, 0
            for levels, qk in inst.terms:
                level = rng.randrange(levels)
                for c in range(qk):
                    row[at + level * qk + c] = sp.Rational(rng.randint(-3000, 3000), 1000) if c else (
                        sp.Integer(1) if qk == 1 else sp.Rational(rng.randint(500, 3000), 1000))
                at += levels * qk
            rows.append(row)
    lam = sp.zeros(width, width)
    at = 0
    for levels, qk in inst.terms:
        T = sp.Matrix(_lower(rng, qk))
        for level in range(levels):
            lam[at + level * qk:at + (level + 1) * qk, at + level * qk:at + (level + 1) * qk] = T
        at += levels * qk
    return rows, lam.tolist()


def draw(exprs, q_first: int, rng: random.Random, numbers=NUMERIC) -> CrossedInstance:
    """A random crossed design and a value for every symbol of ``exprs``."""
    matrices, scalars = symbols_of(exprs)
    if LAMBDA_A in matrices:  # computed from Lambda_theta
        matrices.add(BY_CODE["Lambda_theta"].symbol)
    sizes = [rng.randint(1, 3) for _ in range(rng.randint(2, 3))]
    p_ = rng.randint(1, 2)
    while sum(sizes) <= p_ + 1:
        sizes[-1] += 1
    terms = tuple((rng.randint(2, 3), rng.randint(1, 2)) for _ in range(rng.randint(1, 2)))
    inst = CrossedInstance(p_, q_first, sizes, {}, [{} for _ in sizes], m=sum(a * b for a, b in terms), terms=terms)
    conv = lambda rows: Mat(tuple(tuple(numbers.const(x) for x in row) for row in rows))  # noqa: E731
    zr, lam = _other_terms(rng, inst)
    start = 0
    for g, size in enumerate(sizes):
        inst.groups[g][matrix("R_j")] = conv(zr[start:start + size])
        start += size
        inst.groups[g][matrix("E_j")] = Mat(tuple(eye(len(sizes) * q_first + inst.m, numbers).rows[g * q_first + c]
                                                  for c in range(q_first))).T
    inst.values[matrix("Z_r")], inst.values[matrix("Lambda_r")] = conv(zr), conv(lam)
    sizer = CrossedWalker(numbers, inst)
    for s in sorted(matrices, key=lambda s: s.name):
        e = ALL.get(s.name)
        if e is None:
            raise DerivationError(f"matrix {s.name} has no entry in shrinkage.matrix.crossed")
        if e.scope in ("stacked", "blockdiag") or e.code in ("R_j", "E_j", "Z_r", "Lambda_r", "Lambda_a"):
            continue
        if e.scope == "defined":
            raise DerivationError(f"matrix {s.name} is used but not defined by a Define step")
        shape = lambda g: (sizer.size(e.rows, g), sizer.size(e.cols, g))  # noqa: E731
        if e.scope == "group":
            for g in range(len(sizes)):
                inst.groups[g][s] = conv(_draw(e, shape(g), rng))
        else:
            inst.values[s] = conv(_draw(e, shape(0), rng))
    for s in sorted(scalars, key=lambda s: s.name):
        own = {x.code: x for x in CROSSED_SCALARS}.get(s.name)
        inst.values[s] = numbers.const(own.sample(rng) if own else scalar_sample(s, rng))
    return inst


def crossed_walkers(step, name: str, number: int, exprs):
    """(instance, walker) at each random crossed design of this step (seeded by derivation
    and step, so a build is deterministic): the first term's q = 1, 2, 3 in turn."""
    rng = random.Random(_seed(name, number, "crossed"))
    for k in range(POINTS):
        inst = draw(exprs, step.fixed("q") or 1 + k % 3, rng)
        yield inst, CrossedWalker(NUMERIC, inst)
