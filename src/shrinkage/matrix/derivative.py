"""A derivative in the entries of a matrix (lme4's theta: the entries of Lambda_theta).

The claim: rhs, a matrix of the variable's shape, holds in entry (r, c) the derivative of
the current expression (a scalar) in the variable's entry (r, c), for every entry a
``lower`` variable has (its lower triangle: theta).  Everything the current expression
is defined by is substituted first, so a quantity that depends on the variable through
an estimate (r^2_theta through beta_hat_theta) is differentiated with it: the check then
also proves an envelope argument the rhs relies on.

Checked numerically at the random instances (q = 1..4, dense matrices at ``DPS`` digits)
against mpmath's differentiation of the current expression along each entry, and
symbolically at q = 1 and 2 with explicit matrices of symbols: the exact derivative of
the rational functions and logarithms (:func:`derivative`) equals the rhs.
"""

from __future__ import annotations

from dataclasses import dataclass

import mpmath
import sympy as sp

from .checking import DPS, Failure, describe_value, exact_walker, explicit_sizes
from .linalg import Mat
from .numbers import LogLinear, NotExact
from .rational import Frac, _atoms_of
from .steps import MatrixStep, _all, _groups

TOL = mpmath.mpf(10) ** -(DPS // 2)  # relative: a numerical derivative at DPS + 10 digits keeps about DPS


def _entries(var: sp.MatrixSymbol, rows: int):
    """The (r, c) entries the derivative is claimed for: the lower triangle of a lower
    matrix, every entry otherwise."""
    from .notation import BY_CODE

    lower = BY_CODE[var.name].kind == "lower" if var.name in BY_CODE else False
    return [(r, c) for r in range(rows) for c in range(r + 1 if lower else rows)]


@dataclass(frozen=True)
class MatrixGradient(MatrixStep):
    """rhs[r, c] = d(current) / d var[r, c] (see the module docstring)."""

    var: sp.MatrixSymbol = None
    relation = "="
    kind = "gradient"

    def numeric(self, name, number, exprs):
        for sizes, w in self.walkers(name, number, _all(exprs)):
            at = w.value(self.var)
            claimed = w.value(exprs["rhs"])
            if not isinstance(claimed, Mat) or claimed.shape != at.shape:
                raise Failure(f"at {sizes.describe()}: the claimed derivative is not a matrix of {self.var}'s shape")
            for r, c in _entries(self.var, at.nrows):
                def f(t, r=r, c=c):
                    moved = Mat(tuple(tuple(x + t if (i, k) == (r, c) else x for k, x in enumerate(row))
                                      for i, row in enumerate(at.rows)))
                    return w.with_values({self.var: moved}).value(exprs["current"])

                got, want = claimed.rows[r][c], mpmath.diff(f, 0)
                if abs(got - want) > TOL * max(1, abs(want), abs(f(0))):
                    raise Failure(f"at {sizes.describe()}: entry ({r + 1}, {c + 1}) of this step = "
                                  f"{describe_value(got)}, the derivative = {describe_value(want)}")
        return "; against the numerical derivative along each entry"

    def symbolic(self, exprs, definitions):
        sizes = explicit_sizes(self, _groups(exprs))
        for s in sizes:
            try:
                w, _ = exact_walker(_all(exprs), s)
                value, claimed = w.value(exprs["current"]), w.value(exprs["rhs"])
                at = w.inst.values[self.var]
                for r, c in _entries(self.var, at.nrows):
                    entry = at.rows[r][c]
                    if not entry.num or entry.num.is_ground:
                        continue
                    gen = entry.num  # the entry's own symbol, a generator of the ring
                    got = _scalar(claimed.rows[r][c] if isinstance(claimed, Mat) else claimed)
                    if not (LogLinear(derivative(_scalar(value), gen)) - got).is_zero():
                        raise Failure(f"exact arithmetic at {s.describe()}: entry ({r + 1}, {c + 1}) differs "
                                      "from the derivative")
            except NotExact:
                return None, sizes
        return True, sizes


def _scalar(v):
    """A value as a LogLinear (a 1x1 matrix as its entry)."""
    if isinstance(v, Mat):
        if v.shape != (1, 1):
            raise NotExact("a matrix where a scalar was expected")
        v = v.rows[0][0]
    return v if isinstance(v, LogLinear) else LogLinear(v)


def _diff_frac(f: Frac, gen) -> Frac:
    """d/d gen of num / prod(atom^e): num'/den - num sum_i e_i atom_i' / (atom_i den)."""
    ring = f.ring
    out = Frac(ring, f.num.diff(gen), f.den)
    for atom, e in f.den.items():
        da = atom.diff(gen)
        if da:
            den = dict(f.den)
            den[atom] = den[atom] + 1
            out = out - Frac(ring, f.num * da * e, den)
    return out


def _diff_log(a: Frac, gen) -> Frac:
    """d/d gen of log(a) = num'/num - sum_i e_i atom_i'/atom_i, num = lc prod(factors)."""
    ring = a.ring
    out = Frac(ring, ring.zero)
    if a.num.diff(gen):
        lc, atoms = _atoms_of(a.num, ring)
        out = out + Frac(ring, a.num.diff(gen).quo_ground(lc), atoms)
    for atom, e in a.den.items():
        da = atom.diff(gen)
        if da:
            out = out - Frac(ring, da * e, {atom: 1})
    return out


def derivative(v: LogLinear, gen) -> Frac:
    """d/d gen of r + sum_k c_k log(a_k), exactly: a rational function."""
    out = _diff_frac(v.rat, gen)
    for arg, coefficient in v.logs:
        d = _diff_log(arg, gen)
        out = out + Frac(d.ring, d.num * coefficient, d.den)
    return out
