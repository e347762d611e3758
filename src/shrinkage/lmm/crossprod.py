"""Per-group cross-products: the sufficient statistics of y_j = X_j beta + Z_j b_j + eps_j.

The Gaussian linear mixed model with one grouping factor depends on the data only through,
for every group j,

    n_j,  X_j'X_j (p x p),  X_j'Z_j (p x q),  Z_j'Z_j (q x q),  X_j'y_j (p),  Z_j'y_j (q),  y_j'y_j,

so one pass over the rows gives everything the fit needs; the optimisation over theta
never touches the rows again.  :class:`CrossProducts` holds them, with the conventions:

* ``X`` is stored *centred*: column k is x_k - x_centre[k], and ``y`` is y - y_centre.
  Centring is a reparametrisation only when X has an intercept column (index
  ``intercept``); without one both centres are 0.  The intercept's centre is always 0.
  Centring keeps digits when the data sit far from zero; :meth:`CrossProducts.uncentre`
  maps beta and its covariance back exactly (beta_raw = C beta_c, C unit-triangular).
* ``Z`` is stored *raw* (never centred), so theta is lme4's theta (the covariance factor
  of the user's own random-effect columns) and its boundary means what lme4's means.

Merge rule (chunks, out-of-core producers): statistics of two disjoint sets of rows, about
the same centres, add group by group (a group present in one part only is copied).  About
different centres, one part is first moved to the other's with :meth:`recentre`, exact
because the intercept row of X'X, X'Z, X'y holds the column sums it needs:
with delta = x_centre - x_centre', eps = y_centre - y_centre', s = X'1, t = y'1, z = Z'1:

    X'X += s delta' + delta s' + n delta delta'      X'Z += delta z'
    X'y += eps s + t delta + n eps delta              Z'y += eps z
    y'y += 2 eps t + n eps^2

numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import InputError

__all__ = ["CrossProducts", "cross_products"]

_FIELDS = ("XtX", "XtZ", "ZtZ", "Xty", "Zty", "yty")


def _ro(a) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class CrossProducts:
    """Sufficient statistics of J groups (see the module docstring for the centring).

    labels (J,) sorted group labels; n (J,) sizes; XtX (J,p,p); XtZ (J,p,q); ZtZ (J,q,q);
    Xty (J,p); Zty (J,q); yty (J,); x_names (p), z_names (q) column names (lme4's);
    x_centre (p,), y_centre: what was subtracted from X's columns and y; intercept: the
    index of X's intercept column or None.
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
    sums: dict = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        J, p, q = self.n.size, len(self.x_names), len(self.z_names)
        want = {"XtX": (J, p, p), "XtZ": (J, p, q), "ZtZ": (J, q, q), "Xty": (J, p), "Zty": (J, q), "yty": (J,)}
        for name, shape in want.items():
            if getattr(self, name).shape != shape:
                raise InputError(f"CrossProducts.{name} has shape {getattr(self, name).shape}, expected {shape}")
        if self.labels.shape != (J,):
            raise InputError(f"CrossProducts.labels has shape {self.labels.shape}, expected ({J},)")
        if self.intercept is None and (np.any(self.x_centre != 0) or self.y_centre != 0):
            raise InputError("CrossProducts: centring needs an intercept column in X")
        if self.intercept is not None and self.x_centre[self.intercept] != 0:
            raise InputError("CrossProducts: the intercept column is never centred")

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
    def recentre(self, x_centre, y_centre: float) -> "CrossProducts":
        """The same statistics about other centres (exact formulas of the module docstring)."""
        x_centre = np.asarray(x_centre, dtype=float)
        if x_centre.shape != (self.p,):
            raise InputError(f"x_centre must have {self.p} entries")
        d = self.x_centre - x_centre
        e = float(self.y_centre - y_centre)
        if not np.any(d) and e == 0:
            return self
        if self.intercept is None:
            raise InputError("cannot recentre: X has no intercept column")
        if d[self.intercept] != 0:
            raise InputError("the intercept column is never centred")
        i, n = self.intercept, self.n.astype(float)
        s, t, z = self.XtX[:, :, i], self.Xty[:, i], self.XtZ[:, i, :]
        XtX = self.XtX + s[:, :, None] * d[None, None, :] + d[None, :, None] * s[:, None, :] \
            + n[:, None, None] * np.outer(d, d)[None]
        XtZ = self.XtZ + d[None, :, None] * z[:, None, :]
        Xty = self.Xty + e * s + t[:, None] * d[None, :] + (n * e)[:, None] * d[None, :]
        Zty = self.Zty + e * z
        yty = self.yty + 2 * e * t + n * e * e
        return replace(self, XtX=_ro(XtX), XtZ=_ro(XtZ), Xty=_ro(Xty), Zty=_ro(Zty), yty=_ro(yty),
                       x_centre=_ro(x_centre), y_centre=float(y_centre), sums=None)

    def merge(self, other: "CrossProducts") -> "CrossProducts":
        """Statistics of the union of two disjoint sets of rows (the merge rule above);
        the result is about ``self``'s centres."""
        if not isinstance(other, CrossProducts):
            raise InputError("can only merge CrossProducts with CrossProducts")
        if (other.x_names, other.z_names, other.intercept) != (self.x_names, self.z_names, self.intercept):
            raise InputError(f"cannot merge: different models (X: {self.x_names} vs {other.x_names}, "
                             f"Z: {self.z_names} vs {other.z_names})")
        other = other.recentre(self.x_centre, self.y_centre)
        try:
            labels = np.union1d(self.labels, other.labels)
        except TypeError:
            raise InputError("cannot merge: group labels of different types") from None
        parts = {}
        for name in ("n",) + _FIELDS:
            a, b = getattr(self, name), getattr(other, name)
            out = np.zeros((labels.size,) + a.shape[1:], dtype=a.dtype)
            np.add.at(out, np.searchsorted(labels, self.labels), a)
            np.add.at(out, np.searchsorted(labels, other.labels), b)
            parts[name] = _ro(out)
        return replace(self, labels=_ro(labels), sums=None, **parts)

    def totals(self) -> dict:
        """Sums over groups of every field (cached): N, XtX, XtZ, ..., yty."""
        if self.sums is None:
            object.__setattr__(self, "sums", {"N": int(self.n.sum()),
                                              **{k: getattr(self, k).sum(axis=0) for k in _FIELDS}})
        return self.sums

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
        c = float(np.dot(nf, stats.mean) / nf.sum())
        dev = np.asarray(stats.mean, dtype=float) - c
        one = nf[:, None, None]
        return cls(_ro(stats.labels), _ro(n), _ro(one), _ro(one), _ro(one), _ro((nf * dev)[:, None]),
                   _ro((nf * dev)[:, None]), _ro(np.asarray(stats.ss, dtype=float) + nf * dev * dev),
                   ("(Intercept)",), ("(Intercept)",), _ro(np.zeros(1)), c, 0)


def cross_products(y, X, Z, codes, labels, x_names, z_names, centre: bool = True) -> CrossProducts:
    """One pass over the rows: every per-group cross-product by np.bincount, vectorised
    over groups (no loop over groups).

    ``codes`` are integer group codes 0..J-1 (every code present), ``labels[c]`` names
    code c.  Columns shared by X and Z (equal values) and constant columns are products
    computed once: the distinct columns A = [1, a_1 .. a_m, y], centred by their overall
    means, give M_j = A_j'A_j in (m+2)(m+3)/2 bincounts; every requested block is then
    G1' M_j G2 for small matrices G expressing X (centred), Z (raw) and y in A."""
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float)
    Z = np.asarray(Z, dtype=float)
    N, p, q = y.size, X.shape[1], Z.shape[1]
    J = len(labels)
    ones = [k for k in range(p) if X[0, k] == 1.0 and np.all(X[:, k] == 1.0)]
    intercept = ones[0] if ones else None
    if len(ones) > 1:
        raise InputError(f"X has {len(ones)} intercept columns: {', '.join(x_names[k] for k in ones)}")
    do_centre = centre and intercept is not None
    cols, where_x, where_z = [], [], []  # distinct non-constant columns; -1 = the constant

    def locate(col) -> int:
        if col[0] == 1.0 and np.all(col == 1.0):
            return -1
        for k, c in enumerate(cols):
            if c is col or np.array_equal(c, col):
                return k
        cols.append(col)
        return len(cols) - 1

    where_x = [locate(X[:, k]) for k in range(p)]
    where_z = [locate(Z[:, k]) for k in range(q)]
    m = len(cols)
    means = np.array([c.mean() for c in cols] + [y.mean()])
    # A_c = [1, a_1 - mean_1, ..., y - mean_y]: index 0 the constant, 1..m columns, m+1 y
    A = [None] + [c - mu for c, mu in zip(cols, means)] + [y - means[-1]]
    k = m + 2
    M = np.empty((J, k, k))
    n = np.bincount(codes, minlength=J)
    M[:, 0, 0] = n
    for a in range(1, k):
        M[:, 0, a] = M[:, a, 0] = np.bincount(codes, weights=A[a], minlength=J)
        for b in range(a, k):
            M[:, a, b] = M[:, b, a] = np.bincount(codes, weights=A[a] * A[b], minlength=J)

    def express(where, centred: bool) -> np.ndarray:
        G = np.zeros((k, len(where)))
        for j, w in enumerate(where):
            if w < 0:
                G[0, j] = 1.0
            else:
                G[1 + w, j] = 1.0
                if not centred:
                    G[0, j] = means[w]
        return G

    Gx, Gz = express(where_x, do_centre), express(where_z, False)
    gy = np.zeros(k)
    gy[k - 1] = 1.0
    if not do_centre:
        gy[0] = means[-1]
    MGx, MGz = M @ Gx, M @ Gz
    x_centre = np.array([means[w] if (do_centre and w >= 0) else 0.0 for w in where_x])
    return CrossProducts(
        labels=_ro(labels), n=_ro(n.astype(np.int64)),
        XtX=_ro(np.einsum("ka,jkb->jab", Gx, MGx)), XtZ=_ro(np.einsum("ka,jkb->jab", Gx, MGz)),
        ZtZ=_ro(np.einsum("ka,jkb->jab", Gz, MGz)), Xty=_ro(MGx.transpose(0, 2, 1) @ gy),
        Zty=_ro(MGz.transpose(0, 2, 1) @ gy), yty=_ro(gy @ M @ gy),
        x_names=tuple(x_names), z_names=tuple(z_names), x_centre=_ro(x_centre),
        y_centre=float(means[-1]) if do_centre else 0.0, intercept=intercept)
