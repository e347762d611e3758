"""Small dense matrices over any field of numbers (mpmath numbers, or exact rational
functions): the few operations the checks need, written once for both.

Elimination picks the pivot the number kind prefers (``numbers.pivot``: the largest in
absolute value for floating point, the first non-zero for exact arithmetic).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mat:
    rows: tuple  # tuple of tuples of entries

    @property
    def nrows(self) -> int:
        return len(self.rows)

    @property
    def ncols(self) -> int:
        return len(self.rows[0]) if self.rows else 0

    @property
    def shape(self) -> tuple[int, int]:
        return (self.nrows, self.ncols)

    def _same_shape(self, other: "Mat", what: str) -> None:
        if self.shape != other.shape:
            raise ValueError(f"{what} of a {self.shape} and a {other.shape} matrix")

    def __add__(self, other: "Mat") -> "Mat":
        self._same_shape(other, "sum")
        return Mat(tuple(tuple(a + b for a, b in zip(r, s)) for r, s in zip(self.rows, other.rows)))

    def __sub__(self, other: "Mat") -> "Mat":
        self._same_shape(other, "difference")
        return Mat(tuple(tuple(a - b for a, b in zip(r, s)) for r, s in zip(self.rows, other.rows)))

    def __matmul__(self, other: "Mat") -> "Mat":
        if self.ncols != other.nrows:
            raise ValueError(f"product of a {self.shape} and a {other.shape} matrix")
        cols = list(zip(*other.rows))
        return Mat(tuple(tuple(_dot(r, c) for c in cols) for r in self.rows))

    def scale(self, s) -> "Mat":
        return Mat(tuple(tuple(s * a for a in r) for r in self.rows))

    @property
    def T(self) -> "Mat":
        return Mat(tuple(zip(*self.rows))) if self.rows else self

    def trace(self):
        out = self.rows[0][0]
        for i in range(1, self.nrows):
            out = out + self.rows[i][i]
        return out

    def entries(self):
        return [a for r in self.rows for a in r]

    def det(self, numbers):
        if hasattr(numbers, "det"):
            return numbers.det(self)
        a = [list(r) for r in self.rows]
        size, out = self.nrows, numbers.one
        for c in range(size):
            piv = numbers.pivot([a[r][c] for r in range(c, size)])
            if piv is None:
                return numbers.zero
            piv += c
            if piv != c:
                a[c], a[piv] = a[piv], a[c]
                out = -out
            out = out * a[c][c]
            for r in range(c + 1, size):
                f = a[r][c] / a[c][c]
                if f != 0:
                    a[r] = [x - f * y for x, y in zip(a[r], a[c])]
        return out

    def inverse(self, numbers) -> "Mat":
        size = self.nrows
        if size != self.ncols:
            raise ValueError(f"inverse of a non-square {self.shape} matrix")
        if hasattr(numbers, "inverse"):
            return numbers.inverse(self)
        a = [list(r) + [numbers.one if i == k else numbers.zero for k in range(size)] for i, r in enumerate(self.rows)]
        for c in range(size):
            piv = numbers.pivot([a[r][c] for r in range(c, size)])
            if piv is None:
                raise ZeroDivisionError("singular matrix")
            piv += c
            a[c], a[piv] = a[piv], a[c]
            d = a[c][c]
            a[c] = [x / d for x in a[c]]
            for r in range(size):
                if r != c and a[r][c] != 0:
                    f = a[r][c]
                    a[r] = [x - f * y for x, y in zip(a[r], a[c])]
        return Mat(tuple(tuple(r[size:]) for r in a))


def _dot(r, c):
    out = r[0] * c[0]
    for x, y in zip(r[1:], c[1:]):
        out = out + x * y
    return out


def eye(size: int, numbers) -> Mat:
    return Mat(tuple(tuple(numbers.one if i == k else numbers.zero for k in range(size)) for i in range(size)))


def zeros(r: int, c: int, numbers) -> Mat:
    return Mat(tuple(tuple(numbers.zero for _ in range(c)) for _ in range(r)))


def ones(r: int, c: int, numbers) -> Mat:
    return Mat(tuple(tuple(numbers.one for _ in range(c)) for _ in range(r)))


def vstack(parts: list[Mat]) -> Mat:
    return Mat(tuple(row for m in parts for row in m.rows))


def blockdiag(parts: list[Mat], numbers) -> Mat:
    width = sum(m.ncols for m in parts)
    rows, left = [], 0
    for m in parts:
        for r in m.rows:
            rows.append(tuple([numbers.zero] * left + list(r) + [numbers.zero] * (width - left - m.ncols)))
        left += m.ncols
    return Mat(tuple(rows))


def block(grid: list[list[Mat]]) -> Mat:
    rows = []
    for line in grid:
        for i in range(line[0].nrows):
            rows.append(tuple(a for m in line for a in m.rows[i]))
    return Mat(tuple(rows))


def kron(a: Mat, b: Mat, numbers) -> Mat:
    return Mat(tuple(
        tuple(x * y for x in ra for y in rb) for ra in a.rows for rb in b.rows
    ))


def column(entries) -> Mat:
    return Mat(tuple((x,) for x in entries))


def leading_minors_positive(a: Mat, numbers) -> bool:
    """Sylvester's criterion: a symmetric matrix is positive definite iff every leading
    principal minor is positive."""
    for k in range(1, a.nrows + 1):
        if not Mat(tuple(r[:k] for r in a.rows[:k])).det(numbers) > 0:
            return False
    return True


def cholesky_upper(a: Mat, sqrt) -> Mat:
    """R upper triangular with R^T R = a (a positive definite)."""
    size = a.nrows
    r = [[a.rows[0][0] * 0 for _ in range(size)] for _ in range(size)]
    for i in range(size):
        s = a.rows[i][i] - sum((r[k][i] ** 2 for k in range(i)), a.rows[0][0] * 0)
        r[i][i] = sqrt(s)
        for j in range(i + 1, size):
            t = a.rows[i][j] - sum((r[k][i] * r[k][j] for k in range(i)), a.rows[0][0] * 0)
            r[i][j] = t / r[i][i]
    return Mat(tuple(tuple(row) for row in r))
