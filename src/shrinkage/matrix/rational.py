"""Exact rational functions without greatest common divisors.

A :class:`Frac` is a polynomial numerator over a denominator kept as a product of
*atoms* (single variables, and other polynomials made monic), so a common denominator
is a least common multiple of atom powers and never needs a multivariate gcd, which is
what makes SymPy's own rational function field slow on these matrices.  Only the
variable atoms are cancelled (cheaply, by degree).  A value is zero exactly when its
numerator is the zero polynomial, whatever the denominator, so the representation
being non-reduced never changes an answer.

Matrices of such values are inverted through the adjugate of their polynomial
numerator matrix, computed by fraction-free (Bareiss) elimination: exact polynomial
division, no gcd.
"""

from __future__ import annotations

from collections import Counter


def _atoms_of(poly, ring):
    """poly = constant * prod(atom**e): the constant (a ground element) and the atoms."""
    if not poly:
        raise ZeroDivisionError("division by the zero polynomial")
    monom = [min(m[i] for m in poly.itermonoms()) for i in range(ring.ngens)]
    atoms = Counter()
    if any(monom):
        poly = poly.exquo(ring.from_dict({tuple(monom): ring.domain.one}))
        for i, e in enumerate(monom):
            if e:
                atoms[ring.gens[i]] += e
    if poly.is_ground:
        return poly.LC, atoms
    lc = poly.LC
    atoms[poly.quo_ground(lc)] += 1
    return lc, atoms


class Frac:
    __slots__ = ("ring", "num", "den")

    def __init__(self, ring, num, den=None):
        self.ring, self.num, self.den = ring, num, Counter(den or {})

    # -- construction helpers ----------------------------------------------------------
    def _new(self, num, den):
        out = Frac(self.ring, num, den)
        return out._cancel_variables()

    def _cancel_variables(self):
        if not self.num:
            return Frac(self.ring, self.num, {})
        for atom, e in list(self.den.items()):
            if atom in self._gens:
                i = self.ring.gens.index(atom)
                k = min(e, min(m[i] for m in self.num.itermonoms()))
                if k:
                    self.num = self.num.exquo(atom**k)
                    self.den[atom] -= k
                    if not self.den[atom]:
                        del self.den[atom]
        return self

    @property
    def _gens(self):
        return self.ring.gens

    def _with_den(self, den):
        """The numerator over the larger denominator ``den``."""
        num = self.num
        for atom, e in den.items():
            extra = e - self.den.get(atom, 0)
            if extra:
                num = num * atom**extra
        return num

    def _coerce(self, other):
        if isinstance(other, Frac):
            return other
        return Frac(self.ring, self.ring(other))

    # -- arithmetic --------------------------------------------------------------------
    def __add__(self, other):
        other = self._coerce(other)
        if not other.num:
            return self
        if not self.num:
            return other
        den = self.den | other.den  # max of exponents: the lcm of the two denominators
        return self._new(self._with_den(den) + other._with_den(den), den)

    __radd__ = __add__

    def __neg__(self):
        return Frac(self.ring, -self.num, self.den)

    def __sub__(self, other):
        return self + (-self._coerce(other))

    def __rsub__(self, other):
        return self._coerce(other) - self

    def __mul__(self, other):
        other = self._coerce(other)
        if not self.num or not other.num:
            return Frac(self.ring, self.ring.zero)
        return self._new(self.num * other.num, self.den + other.den)

    __rmul__ = __mul__

    def reciprocal(self):
        c, atoms = _atoms_of(self.num, self.ring)
        num = self.ring(self.ring.domain.one / c)
        for atom, e in self.den.items():
            num = num * atom**e
        return Frac(self.ring, num, atoms)

    def __truediv__(self, other):
        return self * self._coerce(other).reciprocal()

    def __pow__(self, k: int):
        if k < 0:
            return self.reciprocal() ** (-k)
        den = Counter({a: e * k for a, e in self.den.items()})
        return Frac(self.ring, self.num**k, den)

    def __eq__(self, other):
        return not (self - self._coerce(other)).num

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        raise TypeError("Frac values are not hashable (they are not reduced)")

    def is_constant(self) -> bool:
        return self.num.is_ground and not self.den

    def constant(self):
        return self.num.LC if self.num else self.ring.domain.zero


# --- matrices of polynomials: determinant and adjugate without fractions -------------
def bareiss_det(rows, ring):
    """Determinant of a square matrix of polynomials (fraction-free elimination)."""
    a = [list(r) for r in rows]
    size, sign, prev = len(a), 1, ring.one
    for k in range(size - 1):
        if not a[k][k]:
            swap = next((r for r in range(k + 1, size) if a[r][k]), None)
            if swap is None:
                return ring.zero
            a[k], a[swap] = a[swap], a[k]
            sign = -sign
        for i in range(k + 1, size):
            for j in range(k + 1, size):
                a[i][j] = (a[i][j] * a[k][k] - a[i][k] * a[k][j]).exquo(prev)
        prev = a[k][k]
    return a[-1][-1] * sign if size else ring.one


def adjugate(rows, ring):
    size = len(rows)
    if size == 1:
        return [[ring.one]]
    adj = [[None] * size for _ in range(size)]
    for i in range(size):
        for j in range(size):
            minor = [r[:j] + r[j + 1:] for k, r in enumerate(rows) if k != i]
            adj[j][i] = bareiss_det(minor, ring) * (-1) ** (i + j)
    return adj


def common_denominator(entries):
    den = Counter()
    for x in entries:
        den |= x.den
    return den
