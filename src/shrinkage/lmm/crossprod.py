"""Per-group cross-products: the sufficient statistics of y_j = X_j beta + Z_j b_j + eps_j.

The Gaussian linear mixed model with one grouping factor depends on the data only through,
for every group j,

    n_j,  X_j'X_j (p x p),  X_j'Z_j (p x q),  Z_j'Z_j (q x q),  X_j'y_j (p),  Z_j'y_j (q),  y_j'y_j,

and X_j'X_j, X_j'y_j, y_j'y_j enter the criterion only through their sums over groups
(X'V^-1X = X'X - sum_j ..., r^2 = y'y - sum_j ...: see objective.py), so those three are
stored summed (X'X, X'y, y'y) and the others per group.  One pass over the rows gives
everything the fit needs; the optimisation over theta never touches the rows again.
:class:`CrossProducts` holds them, with the conventions:

* ``X`` is stored *centred*: column k is x_k - x_centre[k], and ``y`` is y - y_centre.
  Centring is a reparametrisation only when X has an intercept column (index
  ``intercept``); without one both centres are 0.  The intercept's centre is always 0.
  Centring keeps digits when the data sit far from zero; :meth:`CrossProducts.uncentre`
  maps beta and its covariance back exactly (beta_raw = C beta_c, C unit-triangular).
* ``Z`` is stored centred too when it has an intercept column (index ``z_intercept``):
  column k is z_k - z_centre[k] (the intercept's centre 0), so Z = Z_s T with
  T = I + e_i z_centre' (i = z_intercept): a covariate far from zero no longer makes
  Z_j'Z_j nearly singular.  Without an intercept column Z is raw.  The fit
  (:mod:`.centring`) moves every column whose bar term has no intercept back to 0 and
  reports theta, VarCorr, ranef and condVar for the user's own columns (lme4's).

Merge rule (chunks, out-of-core producers): statistics of two disjoint sets of rows, about
the same centres, add: the per-group fields group by group (a group present in one part
only is copied), the summed fields as they are.  About different centres, one part is
first moved to the other's with :meth:`recentre`, exact because the intercept columns
hold the sums it needs: with delta = x_centre - x_centre', gamma = z_centre - z_centre',
eps = y_centre - y_centre', and the current sums s = X'1, z = Z'1, t = y'1 (per group
for X'Z, Z'Z and Z'y, where n is n_j; summed for the summed fields, where n is N; z is
the intercept row of X'Z or Z'Z, s the intercept column of X'X or X'Z, t the intercept
entry of X'y or Z'y):

    X'X += s delta' + delta s' + n delta delta'      X'Z += delta z' + s gamma' + n delta gamma'
    X'y += eps s + t delta + n eps delta              Z'Z += z gamma' + gamma z' + n gamma gamma'
    y'y += 2 eps t + n eps^2                          Z'y += eps z + t gamma + n eps gamma

Why centre in the pass, not on merged raw sums: raw Z_j'Z_j of x ~ 1e6 holds x^2 ~ 1e12,
whose rounding (~1e-4 per row) swamps a spread of order 1; the same exact formulas applied
to them cannot restore lost digits.  Chunks centred about their own means move to each
other's by gamma = the difference of chunk means (of the order of the spread), which
costs no digits, so the merge stays exact to rounding (tests/test_lmm_centring.py).
The in-memory pass uses the same fact: it centres about the first rows' means (no pass
of its own for the overall means) and moves the result to the overall means exactly.

The pass is compiled (:mod:`.kernels`); the rest is numpy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import numpy as np

from ..errors import InputError
from ..passes import chunk_results

__all__ = ["CrossProducts", "cross_products", "from_products"]

_CHUNK = 1 << 18  # at least this many rows per chunk in cross_products (each makes, fills and adds a table)
GROUP_FIELDS = ("n", "XtZ", "ZtZ", "Zty")  # per group (first axis J)
TOTAL_FIELDS = ("XtX", "Xty", "yty")  # summed over groups


def _ro(a) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class CrossProducts:
    """Sufficient statistics of J groups (see the module docstring for the centring).

    Per group: labels (J,) sorted group labels; n (J,) sizes; XtZ (J,p,q); ZtZ (J,q,q);
    Zty (J,q).  Summed over groups: XtX (p,p), Xty (p,), yty (float).
    x_names (p), z_names (q) column names (lme4's);
    x_centre (p,), y_centre, z_centre (q,): what was subtracted from X's columns, y and
    Z's columns; intercept, z_intercept: the index of X's / Z's intercept column or None
    (z_centre None means 0: Z raw).
    """

    labels: np.ndarray
    n: np.ndarray
    XtX: np.ndarray
    XtZ: np.ndarray
    ZtZ: np.ndarray
    Xty: np.ndarray
    Zty: np.ndarray
    yty: np.ndarray
    x_names: tuple
    z_names: tuple
    x_centre: np.ndarray
    y_centre: float = 0.0
    intercept: int | None = None
    z_centre: np.ndarray | None = None
    z_intercept: int | None = None

    def __post_init__(self):
        J, p, q = self.n.size, len(self.x_names), len(self.z_names)
        want = {"XtX": (p, p), "XtZ": (J, p, q), "ZtZ": (J, q, q), "Xty": (p,), "Zty": (J, q), "yty": ()}
        for name, shape in want.items():
            if np.shape(getattr(self, name)) != shape:
                raise InputError(f"CrossProducts.{name} has shape {getattr(self, name).shape}, expected {shape}")
        if self.labels.shape != (J,):
            raise InputError(f"CrossProducts.labels has shape {self.labels.shape}, expected ({J},)")
        if self.intercept is None and (np.any(self.x_centre != 0) or self.y_centre != 0):
            raise InputError("CrossProducts: centring needs an intercept column in X")
        if self.intercept is not None and self.x_centre[self.intercept] != 0:
            raise InputError("CrossProducts: the intercept column is never centred")
        zc = np.zeros(q) if self.z_centre is None else np.asarray(self.z_centre, dtype=float)
        if zc.shape != (q,):
            raise InputError(f"CrossProducts.z_centre has shape {zc.shape}, expected ({q},)")
        object.__setattr__(self, "z_centre", _ro(zc))
        if self.z_intercept is None and np.any(zc != 0):
            raise InputError("CrossProducts: centring Z needs an intercept column in Z")
        if self.z_intercept is not None and zc[self.z_intercept] != 0:
            raise InputError("CrossProducts: Z's intercept column is never centred")

    @property
    def n_groups(self) -> int:
        return int(self.n.size)

    @property
    def n_obs(self) -> int:
        return int(self.n.sum())

    @property
    def p(self) -> int:
        return len(self.x_names)

    @property
    def q(self) -> int:
        return len(self.z_names)

    def __repr__(self) -> str:
        return (f"CrossProducts({self.n_groups} groups, {self.n_obs} observations, "
                f"X: {', '.join(self.x_names)}; Z: {', '.join(self.z_names)})")

    # --- moving between centres, merging ----------------------------------------------
    def recentre(self, x_centre=None, y_centre: float | None = None, z_centre=None) -> "CrossProducts":
        """The same statistics about other centres (exact formulas of the module docstring);
        a centre not given stays as it is."""
        x_centre = self.x_centre if x_centre is None else np.asarray(x_centre, dtype=float)
        z_centre = self.z_centre if z_centre is None else np.asarray(z_centre, dtype=float)
        y_centre = self.y_centre if y_centre is None else float(y_centre)
        if x_centre.shape != (self.p,):
            raise InputError(f"x_centre must have {self.p} entries")
        if z_centre.shape != (self.q,):
            raise InputError(f"z_centre must have {self.q} entries")
        d, g = self.x_centre - x_centre, self.z_centre - z_centre
        e = float(self.y_centre - y_centre)
        if not np.any(d) and not np.any(g) and e == 0:
            return self
        i, zi = self.intercept, self.z_intercept
        if (np.any(d) or e != 0) and i is None:
            raise InputError("cannot recentre X or y: X has no intercept column")
        if np.any(g) and zi is None:
            raise InputError("cannot recentre Z: Z has no intercept column")
        if (i is not None and d[i] != 0) or (zi is not None and g[zi] != 0):
            raise InputError("the intercept column is never centred")
        N, n = float(self.n_obs), self.n.astype(float)
        z = self.ZtZ[:, zi, :] if zi is not None else self.XtZ[:, i, :]  # (J, q): Z_j'1
        XtZ, ZtZ, Zty = np.array(self.XtZ), np.array(self.ZtZ), np.array(self.Zty)
        XtX, Xty, yty = np.array(self.XtX), np.array(self.Xty), float(self.yty)
        if i is not None:  # X and y (the summed fields, and X'Z's X side)
            s, t = self.XtX[:, i], float(self.Xty[i])
            XtX += np.outer(s, d) + np.outer(d, s) + N * np.outer(d, d)
            Xty += e * s + t * d + N * e * d
            yty += 2 * e * t + N * e * e
            for a in np.flatnonzero(d):  # loops over the small axes: numpy's inner loops of length q are slow
                for b in range(self.q):
                    XtZ[:, a, b] += d[a] * z[:, b]
            Zty += e * z
        if zi is not None and np.any(g):  # Z's side, with the sums about the new X, y centres
            sj = XtZ[:, :, zi].copy()  # (J, p): X_j'1
            tj = Zty[:, zi].copy()  # (J,): y_j'1
            for b in np.flatnonzero(g):
                XtZ[:, :, b] += sj * g[b]
                Zty[:, b] += tj * g[b]
            for a in range(self.q):
                for b in range(self.q):
                    if g[a] or g[b]:
                        ZtZ[:, a, b] += z[:, a] * g[b] + g[a] * z[:, b] + n * (g[a] * g[b])
        return replace(self, XtX=_ro(XtX), XtZ=_ro(XtZ), ZtZ=_ro(ZtZ), Xty=_ro(Xty), Zty=_ro(Zty), yty=yty,
                       x_centre=_ro(x_centre), y_centre=y_centre, z_centre=_ro(z_centre))

    def merge(self, other: "CrossProducts") -> "CrossProducts":
        """Statistics of the union of two disjoint sets of rows (the merge rule above);
        the result is about ``self``'s centres."""
        if not isinstance(other, CrossProducts):
            raise InputError("can only merge CrossProducts with CrossProducts")
        if ((other.x_names, other.z_names, other.intercept, other.z_intercept)
                != (self.x_names, self.z_names, self.intercept, self.z_intercept)):
            raise InputError(f"cannot merge: different models (X: {self.x_names} vs {other.x_names}, "
                             f"Z: {self.z_names} vs {other.z_names})")
        other = other.recentre(self.x_centre, self.y_centre, self.z_centre)
        try:
            labels = np.union1d(self.labels, other.labels)
        except TypeError:
            raise InputError("cannot merge: group labels of different types") from None
        parts = {}
        for name in GROUP_FIELDS:
            a, b = getattr(self, name), getattr(other, name)
            out = np.zeros((labels.size,) + a.shape[1:], dtype=a.dtype)
            np.add.at(out, np.searchsorted(labels, self.labels), a)
            np.add.at(out, np.searchsorted(labels, other.labels), b)
            parts[name] = _ro(out)
        return replace(self, labels=_ro(labels), XtX=_ro(self.XtX + other.XtX), Xty=_ro(self.Xty + other.Xty),
                       yty=float(self.yty + other.yty), **parts)

    def uncentre(self, beta_c: np.ndarray, cov_c: np.ndarray | None = None):
        """beta (and its covariance) for the raw X columns from those of the centred ones:
        X_c beta_c + y_centre = X beta with beta = beta_c except
        beta[intercept] = beta_c[intercept] - x_centre . beta_c + y_centre."""
        beta = np.array(beta_c, dtype=float)
        if self.intercept is None:
            return beta, cov_c
        C = np.eye(self.p)
        C[self.intercept, :] -= self.x_centre
        beta = C @ beta
        beta[self.intercept] += self.y_centre
        return beta, (None if cov_c is None else C @ cov_c @ C.T)

    # --- other producers --------------------------------------------------------------
    @classmethod
    def from_group_stats(cls, stats) -> "CrossProducts":
        """The one-way model y ~ 1 + (1 | g) from (n_j, ybar_j, S_j): X = Z = 1, so every
        cross-product is n_j, n_j (ybar_j - c) or S_j + n_j (ybar_j - c)^2, about c =
        the overall mean (the producer shrinkage.sources.group_stats gives these)."""
        n = np.asarray(stats.n, dtype=np.int64)
        nf = n.astype(float)
        scale = float(getattr(stats, "scale", 1.0))  # GroupStats of y / scale (a power of two)
        mean = np.asarray(stats.mean, dtype=float) * scale
        ss = np.asarray(stats.ss, dtype=float) * scale * scale
        if not (np.isfinite(mean).all() and np.isfinite(ss).all()):
            raise InputError("the data are too large in magnitude for the mixed-model cross-products")
        c = float(np.dot(nf, mean) / nf.sum())
        dev = mean - c
        one = nf[:, None, None]
        yty = float(np.sum(ss) + np.dot(nf, dev * dev))
        return cls(_ro(stats.labels), _ro(n), _ro(np.full((1, 1), nf.sum())), _ro(one), _ro(one),
                   _ro(np.array([np.dot(nf, dev)])), _ro((nf * dev)[:, None]), yty,
                   ("(Intercept)",), ("(Intercept)",), _ro(np.zeros(1)), c, 0)


def _as_columns(M) -> list:
    """A 2-d array or a list of columns (None: the intercept) as a list of columns."""
    if isinstance(M, (list, tuple)):
        return [None if c is None else np.asarray(c, dtype=float) for c in M]
    M = np.asarray(M, dtype=float)
    return [M[:, k] for k in range(M.shape[1])]


def _frozen(a: np.ndarray) -> np.ndarray:
    """A read-only view: numba compiles one kernel for read-only and writable inputs alike."""
    a = a.view()
    a.flags.writeable = False
    return a


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """The same memory (a data frame's column handed over twice): equal without a pass."""
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
            and a.strides == b.strides and a.shape == b.shape and a.dtype == b.dtype)


def cross_products(y, X, Z, codes, labels, x_names, z_names, centre: bool = True) -> CrossProducts:
    """One pass over the rows (:func:`.kernels.group_products`, chunk by chunk on the
    worker threads): the per-group cross-products; the summed ones are their sums over
    groups, and the pairs no group needs are summed over the rows in the same sweep.

    ``codes`` are integer group codes 0..J-1, ``labels[c]`` names code c (a code with
    no rows is dropped with its label); X and Z are matrices or lists of columns (None for the intercept).  Columns shared by X and Z (equal values) and constant columns are computed
    once: the distinct columns A = [1, a_1 .. a_m, y], centred by their overall means,
    give the per-group products M_j[:, S] = A_j' A_j[:, S] for the columns S that Z uses
    (and the constant), and M = A'A in total; every block is then G1' M G2 for small
    matrices G expressing X, Z (centred when they have an intercept) and y in terms of A."""
    from .kernels import UNROLL_MAX, move_kernel, wide_kernels  # numba: loaded with the first fit, not with shrinkage

    y = np.asarray(y, dtype=float)
    codes = _frozen(np.asarray(codes, dtype=np.intp))
    xs, zs = _as_columns(X), _as_columns(Z)
    p, J = len(xs), len(labels)
    distinct = _Distinct()
    locate, cols = distinct.locate, distinct.cols

    where_x = [locate(c) for c in xs]
    where_z = [locate(c) for c in zs]
    ones = [k for k in range(p) if where_x[k] == 0]
    if len(ones) > 1:
        raise InputError(f"X has {len(ones)} intercept columns: {', '.join(x_names[k] for k in ones)}")
    k = len(cols) + 2
    head = slice(0, 1 << 16)  # provisional centres from the first rows: no pass of its own (exact means below)
    shifts = np.array([0.0] + [c[head].mean() for c in cols] + [y[head].mean()])
    S = sorted({0, *where_z})
    sources = tuple(_frozen(np.ascontiguousarray(c, dtype=float)) for c in cols + [y])  # one numba type
    sums = _sums_unrolled if k <= UNROLL_MAX else _sums_wide
    per_group, total = sums(codes, sources, shifts, S, J)
    if not np.isfinite(total).all():
        raise InputError("the cross-products overflow (values too large to square in floating point)")

    # to the overall means, exactly: delta = the columns' means about the shifts (a
    # column's sum is total[0, a]); (v_a - d_a)(v_b - d_b) expanded
    delta = total[0] / total[0, 0]
    delta[0] = 0.0
    if k <= UNROLL_MAX:
        move_kernel(k, tuple(S))(per_group, delta)
    else:
        wide_kernels()[1](per_group, delta, np.array(S, dtype=np.intp))
    t = total[0].copy()
    total = total - np.outer(t, delta) - np.outer(delta, t) + total[0, 0] * np.outer(delta, delta)
    M = per_group.reshape(J, k, len(S))  # M_j[b, s] = sum of A_b A_S[s]
    n = M[:, 0, S.index(0)]
    if not n.all():  # codes with no rows: not groups of these data
        M, n, labels = M[n > 0], n[n > 0], np.asarray(labels)[n > 0]
    return from_products(labels, n, M, S, total, shifts + delta, where_x, where_z, x_names, z_names, centre=centre)


class _Distinct:
    """The distinct non-constant columns (``cols``) and each column's index among them.
    A column is compared with those that agree with it at both ends (a cheap test that
    separates a formula's few columns), and where many agree there (a factor's 0/1
    columns: comparing every pair cost minutes for 1000 levels) with those of the same
    digest of its bytes, O(N) a column; columns equal but for the sign of a zero stay
    two, which costs only time."""

    CROWD = 8  # columns agreeing at both ends past which digests are compared

    def __init__(self):
        self.cols: list = []
        self.ends: dict = {}  # (first, last) -> indices in cols
        self.digest_of: dict = {}  # index -> digest, for the columns of crowded ends
        self.by_digest: dict = {}  # digest -> indices

    @staticmethod
    def _digest(col) -> bytes:
        return hashlib.blake2b(np.ascontiguousarray(col, dtype=float).data, digest_size=16).digest()

    def _note(self, k: int, digest: bytes) -> None:
        self.digest_of[k] = digest
        self.by_digest.setdefault(digest, []).append(k)

    def locate(self, col) -> int:
        """Index in A = [1, cols..., y] (0 = the constant)."""
        if col is None or (col[0] == 1.0 and np.all(col == 1.0)):
            return 0
        bucket = self.ends.setdefault((float(col[0]), float(col[-1])), [])
        digest = None
        if len(bucket) >= self.CROWD:
            for k in bucket:
                if k not in self.digest_of:
                    self._note(k, self._digest(self.cols[k]))
            digest = self._digest(col)
            candidates = self.by_digest.get(digest, [])
        else:
            candidates = bucket
        for k in candidates:
            if _same(self.cols[k], col) or np.array_equal(self.cols[k], col):
                return k + 1
        self.cols.append(col)
        bucket.append(len(self.cols) - 1)
        if digest is not None:
            self._note(len(self.cols) - 1, digest)
        return len(self.cols)


def _code_error(codes, bad: int, J: int) -> InputError:
    return InputError(f"group code {int(codes[bad])} at row {bad} is outside 0..{J - 1}")


def _sums_unrolled(codes, sources, shifts, S, J):
    """The pass with the kernel written out for the shape (:func:`.kernels.row_kernel`), chunk
    by chunk on the worker threads: per group v[S]v' for the shifted rows v = A_i - shifts
    (J, k len(S)), and A'A (k, k) about the shifts, the pairs in S summed over groups and
    the others (no group needs them) over the rows."""
    from .kernels import row_kernel

    k = len(shifts)
    rest = [(a, b) for a in range(1, k) for b in range(a, k) if a not in S and b not in S]  # totals only
    group_products = row_kernel(k, tuple(S), tuple(rest))
    chunk = max(_CHUNK, 8 * J)  # rows per chunk; per-chunk tables of J rows stay a small cost

    def sums_of(lo: int, hi: int, _):
        out, dots = np.zeros((J, len(S) * k)), np.zeros(len(rest))
        bad = group_products(codes, sources, shifts, lo, hi, out, dots)
        if bad >= 0:
            raise _code_error(codes, bad, J)
        return out, dots

    per_group = dots = None
    for part, part_dots in chunk_results(sums_of, codes.size, chunk):  # folded in chunk order: as one thread adds
        if per_group is None:  # the first chunk's table is the sum so far (0 + x is x)
            per_group, dots = part, part_dots
        else:
            per_group += part
            dots += part_dots
    if per_group is None:  # no rows
        per_group, dots = np.zeros((J, len(S) * k)), np.zeros(len(rest))
    M = per_group.reshape(J, k, len(S))
    total = np.zeros((k, k))
    for si, a in enumerate(S):
        for b in range(k):  # pairwise sums over groups, one contiguous vector each
            total[a, b] = total[b, a] = np.ascontiguousarray(M[:, b, si]).sum()
    for (a, b), v in zip(rest, dots):
        total[a, b] = total[b, a] = v
    return per_group, total


def _sums_wide(codes, sources, shifts, S, J):
    """:func:`_sums_unrolled` for many columns (a factor with many levels): blocks of rows
    made a matrix V (rows, k) about the shifts, A'A summed as the blocks' V'V (BLAS), the
    per-group products by the loop over the columns of :func:`.kernels.wide_kernels`; one
    table, the blocks in row order (a table per chunk would be J x k x len(S) each)."""
    from .kernels import wide_kernels

    group_products = wide_kernels()[0]
    k, N = len(shifts), codes.size
    rows = max(256, (1 << 20) // k)  # a block of about 8 MB
    per_group, total = np.zeros((J, len(S) * k)), np.zeros((k, k))
    S_ = np.array(S, dtype=np.intp)
    for lo in range(0, N, rows):
        hi = min(lo + rows, N)
        V = np.empty((hi - lo, k))
        V[:, 0] = 1.0
        for a, c in enumerate(sources, start=1):
            np.subtract(c[lo:hi], shifts[a], out=V[:, a])
        bad = group_products(codes, V, S_, lo, per_group)
        if bad >= 0:
            raise _code_error(codes, bad, J)
        total += V.T @ V
    return per_group, total


def _express(where, means, centred: bool, k: int) -> np.ndarray:
    """G with A @ G = the columns of A at ``where`` (centred, or raw: e_a + mu_a * 1)."""
    G = np.zeros((k, len(where)))
    for j, w in enumerate(where):
        G[w, j] = 1.0
        if w and not centred:
            G[0, j] = means[w]
    return G


def _pick(B: np.ndarray, index, shift, constant: int, axis: int) -> np.ndarray:
    """B's slices ``index`` along ``axis``, slice i plus shift[i] x the constant's slice:
    B @ G (axis 2) or G' B (axis 1) for a G of :func:`_express`, without the product."""
    out = np.take(B, index, axis=axis)
    for i, mu in enumerate(shift):
        if mu:
            target = out[:, :, i] if axis == 2 else out[:, i, :]
            target += mu * (B[:, :, constant] if axis == 2 else B[:, constant, :])
    return out


def from_products(labels, n, M, S, total, shifts, where_x, where_z, x_names, z_names,
                  centre: bool = True) -> CrossProducts:
    """CrossProducts from the products of the distinct columns A = [1, a_1 .. a_m, y],
    each about shifts[a] (shifts[0] = 0: the constant): per group M_j = A_j'A_j[:, S]
    (J, k, len(S)) for the columns S Z uses (and the constant), in total A'A (k, k);
    where_x, where_z: each X and Z column's index in A (0: the constant).  X and y are
    centred when ``centre`` and X has an intercept, Z when ``centre`` and Z has one, about
    the shifts.
    The one assembly of the in-memory pass and the out-of-core engines."""
    k = total.shape[0]
    intercept = next((j for j, w in enumerate(where_x) if w == 0), None)
    z_intercept = next((j for j, w in enumerate(where_z) if w == 0), None)
    x_centred, z_centred = centre and intercept is not None, centre and z_intercept is not None
    Gx, gy = _express(where_x, shifts, x_centred, k), _express((k - 1,), shifts, x_centred, k)[:, 0]
    # the totals are Gx' A'A Gx ...; per group, G_x, G_z (see _express) have one 1 a column
    # (and the shift in row 0 for a raw column), so G' M_j G is picking rows and columns
    # plus a multiple of the constant's (no matrix products)
    MGz = _pick(M, [S.index(w) for w in where_z], [shifts[w] if w and not z_centred else 0.0 for w in where_z],
                S.index(0), axis=2)

    def left(where, centred: bool) -> np.ndarray:
        """G' M_j Gz for every group, (J, len(where), q)."""
        return _pick(MGz, where, [shifts[w] if w and not centred else 0.0 for w in where], 0, axis=1)

    return CrossProducts(
        labels=_ro(labels), n=_ro(np.asarray(n).astype(np.int64)),
        XtX=_ro(Gx.T @ total @ Gx), XtZ=_ro(left(where_x, x_centred)), ZtZ=_ro(left(where_z, z_centred)),
        Xty=_ro(Gx.T @ total @ gy),
        Zty=_ro(left((k - 1,), x_centred)[:, 0, :]), yty=float(gy @ total @ gy),
        x_names=tuple(x_names), z_names=tuple(z_names),
        x_centre=_ro(np.array([shifts[w] if (x_centred and w) else 0.0 for w in where_x])),
        y_centre=float(shifts[k - 1]) if x_centred else 0.0, intercept=intercept,
        z_centre=_ro(np.array([shifts[w] if z_centred else 0.0 for w in where_z])), z_intercept=z_intercept)
