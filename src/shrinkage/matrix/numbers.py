"""The two kinds of numbers a matrix expression is evaluated with.

:class:`Numeric` is mpmath at the working precision.  :class:`Exact` is the field of
rational functions (over the rationals, with pi as one more indeterminate) in the
entries of explicit matrices of symbols; scalars that contain logarithms are
:class:`LogLinear` combinations r + sum_k c_k log(a_k), and a difference of two claims
is decided to be zero exactly by factoring the a_k into irreducible polynomials.
"""

from __future__ import annotations

import mpmath
import sympy as sp
from sympy import QQ
from sympy.polys.rings import ring

from .rational import Frac, _atoms_of, adjugate, bareiss_det, common_denominator


class Numeric:
    """mpmath numbers; scalars and matrix entries are the same type."""

    def __init__(self):
        self.zero, self.one = mpmath.mpf(0), mpmath.mpf(1)

    def const(self, number):
        return mpmath.mpf(sp.N(number, mpmath.mp.dps + 5)) if not isinstance(number, sp.Integer) else mpmath.mpf(int(number))

    def scalar(self, entry):
        return entry

    def entry(self, scalar):
        return scalar

    def add(self, a, b):
        return a + b

    def mul(self, a, b):
        return a * b

    def pow(self, a, e):
        if isinstance(e, sp.Integer):
            return a ** int(e)
        if isinstance(e, sp.Rational):
            if a < 0:
                raise ValueError(f"power {e} of a negative number")
            return a ** (mpmath.mpf(e.p) / e.q)
        return a**e

    def log(self, a):
        if not a > 0:
            raise ValueError(f"logarithm of {mpmath.nstr(a, 8)}, not a positive number")
        return mpmath.log(a)

    def exp(self, a):
        return mpmath.exp(a)

    def pivot(self, column):
        best = max(range(len(column)), key=lambda i: abs(column[i]))
        return None if column[best] == 0 else best


class NotExact(Exception):
    """Raised when a step needs something the exact arithmetic cannot represent."""


class LogLinear:
    """r + sum_k c_k log(a_k): r and a_k exact rational functions, c_k rational numbers."""

    __slots__ = ("rat", "logs")

    def __init__(self, rat, logs=()):
        self.rat = rat
        self.logs = tuple(logs)  # (argument, coefficient) pairs

    def __add__(self, other):
        return LogLinear(self.rat + other.rat, self.logs + other.logs)

    def __sub__(self, other):
        return LogLinear(self.rat - other.rat, self.logs + tuple((a, -c) for a, c in other.logs))

    def scaled(self, c):
        if not c.is_constant():
            if self.logs:
                raise NotExact("a logarithm times a non-constant factor")
            return LogLinear(self.rat * c)
        k = c.constant()
        return LogLinear(self.rat * c, tuple((a, v * k) for a, v in self.logs) if k else ())

    def is_zero(self) -> bool:
        """Exactly zero, where every logarithm has a positive argument.  Each argument
        is split into a rational constant and powers of atoms (shrinkage.matrix.rational);
        the coefficients of equal atoms are added.  What remains must satisfy
        prod atom**(m c) = +-1 for the least m making every m c an integer: a
        polynomial identity, with r = 0 (logarithms are transcendental over rational
        functions, so the two parts vanish separately)."""
        if self.rat.num:
            return False
        if not self.logs:
            return True
        ring = self.rat.ring
        total, constants = {}, []
        for arg, c in self.logs:
            for poly, sign in [(arg.num, 1)] + [(atom, -e) for atom, e in arg.den.items()]:
                lc, atoms = _atoms_of(poly, ring)
                constants.append((lc, sign * c))
                for atom, e in atoms.items():
                    total[atom] = total.get(atom, 0) + sign * e * c
        total = {a: v for a, v in total.items() if v}
        coeffs = list(total.values()) + [c for _, c in constants]
        m = 1
        for c in coeffs:
            m = sp.ilcm(m, QQ.to_sympy(c).q)
        left, right = ring.one, ring.one
        for atom, v in total.items():
            k = int(QQ.to_sympy(v * m))
            if k > 0:
                left = left * atom**k
            else:
                right = right * atom ** (-k)
        scale = sp.Integer(1)
        for lc, c in constants:
            scale *= abs(QQ.to_sympy(lc)) ** (QQ.to_sympy(c) * m)
        if not scale.is_Rational:
            return False
        left = left * ring.domain.from_sympy(scale)
        return not (left - right) or not (left + right)


class Exact:
    """Exact numbers: rational functions over QQ in the generators and pi."""

    def __init__(self, generators):
        self.pi_symbol = sp.Dummy("pi")
        gens = sorted(set(generators), key=str) + [self.pi_symbol]
        self.ring, *elements = ring(gens, QQ)
        self.gen = {s: Frac(self.ring, e) for s, e in zip(gens, elements)}
        self.zero, self.one = Frac(self.ring, self.ring.zero), Frac(self.ring, self.ring.one)

    def element(self, symbol):
        return self.gen[symbol]

    def const(self, number):
        if number == sp.pi:
            return LogLinear(self.gen[self.pi_symbol])
        if isinstance(number, sp.Rational):
            return LogLinear(Frac(self.ring, self.ring(QQ(number.p, number.q))))
        raise NotExact(f"the constant {number} is not rational")

    def scalar(self, entry):
        return LogLinear(entry)

    def entry(self, scalar):
        if scalar.logs:
            raise NotExact("a logarithm inside a matrix")
        return scalar.rat

    def add(self, a, b):
        return a + b

    def mul(self, a, b):
        if a.logs and b.logs:
            raise NotExact("a product of logarithms")
        if a.logs:
            return a.scaled(b.rat)
        return b.scaled(a.rat)

    def pow(self, a, e):
        if not isinstance(e, sp.Integer):
            raise NotExact(f"the power {e}")
        if a.logs:
            raise NotExact("a power of a logarithm")
        return LogLinear(a.rat ** int(e))

    def log(self, a):
        if a.logs:
            raise NotExact("a logarithm of a logarithm")
        if not a.rat.num:
            raise ZeroDivisionError("logarithm of zero")
        return LogLinear(self.zero.__class__(self.ring, self.ring.zero), ((a.rat, QQ(1)),))

    def exp(self, a):
        raise NotExact("an exponential")

    def pivot(self, column):
        for i, x in enumerate(column):
            if x.num:
                return i
        return None

    # matrices: through the polynomial numerator matrix, no gcd
    def _numerators(self, mat):
        den = common_denominator(mat.entries())
        return [[x._with_den(den) for x in row] for row in mat.rows], den

    def det(self, mat):
        rows, den = self._numerators(mat)
        return Frac(self.ring, bareiss_det(rows, self.ring), {a: e * mat.nrows for a, e in den.items()})._cancel_variables()

    def inverse(self, mat):
        from .linalg import Mat

        rows, den = self._numerators(mat)
        det = bareiss_det(rows, self.ring)
        lc, atoms = _atoms_of(det, self.ring)
        scale = self.ring.one
        for atom, e in den.items():
            scale = scale * atom**e
        scale = scale.quo_ground(lc)
        adj = adjugate(rows, self.ring)
        return Mat(tuple(tuple(Frac(self.ring, a * scale, atoms)._cancel_variables() for a in row) for row in adj))
