"""The weighted least-squares algebra of y = X beta + u + e with Var(y) = diag(v + tau^2).

Every estimator of tau^2 is a function of P = W - W X (X'WX)^-1 X'W for some diagonal W:
y'Py, y'PPy and traces of products of P and V = diag(v).  P is k x k, so it is never
formed: each trace is a sum over the studies minus traces of p x p products
X' diag(d) X (one BLAS call per block of rows).  This is what lets a Fay-Herriot fit with
1e7 areas cost a few passes over the data.
"""

from __future__ import annotations

from functools import cached_property, lru_cache

import numpy as np

from .. import numeric

BLOCK = 1 << 16  # rows per BLAS call: the stacked block stays in the cache-friendly MB range
KERNEL_MIN = 1 << 15  # from this many studies on, the compiled pass (below: numpy, no numba to load)
# y and the moderators are shifted by the means of every (k // SHIFT_SAMPLE)-th row (all rows below):
# P is the same for any shift; one near the mean keeps y'Py = c - b'A^-1 b's digits (a sample's mean is
# within a small fraction of a standard deviation of it), and it costs no read of the data.
SHIFT_SAMPLE = 4096
MEMO = 8  # passes kept (a few q x q matrices each): a proof's points and the estimate are not made twice


def grams(X: np.ndarray, diagonals: list[np.ndarray]) -> np.ndarray:
    """X' diag(d) X for every d, shape (len(diagonals), p, p), by blocks of rows."""
    k, p = X.shape
    m = len(diagonals)
    if p == 1:  # intercept only: plain sums
        x2 = X[:, 0] * X[:, 0]
        return np.array([np.dot(d, x2) for d in diagonals]).reshape(m, 1, 1)
    out = np.zeros((m * p, p))
    for s in range(0, k, BLOCK):
        Xb = X[s:s + BLOCK]
        stacked = np.concatenate([Xb * d[s:s + BLOCK, None] for d in diagonals], axis=1)
        out += stacked.T @ Xb
    return out.reshape(m, p, p)


def _tr(a, b=None):
    return float(np.trace(a)) if b is None else float(np.sum(a * b.T))


class Weighted:
    """Weighted least squares with weights w: beta, residuals, y'Py, y'PPy, y'PPPy, traces.

    The residuals are computed explicitly and beta refined once from them, so y'Py keeps its
    digits when the mean is large beside the spread (y'Wy - b'A^-1 b would not).
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, w: np.ndarray):
        self.X, self.y, self.w = X, y, w
        A, A2 = grams(X, [w, w * w])
        self.A, self.G2 = A, A2
        self.A_inv = np.linalg.inv(A)
        beta = self.A_inv @ (X.T @ (w * y))
        r = y - X @ beta
        beta = beta + self.A_inv @ (X.T @ (w * r))
        self.beta = beta
        self.r = y - X @ beta
        self.wr = w * self.r  # = P y
        self.rss = float(np.dot(self.wr, self.r))      # y'Py
        self.ypp = float(np.dot(self.wr, self.wr))     # y'PPy
        self.sumw = float(w.sum())
        self.sumw2 = float(np.dot(w, w))
        self.H2 = self.A_inv @ A2                       # A^-1 X'W^2 X

    @property
    def trP(self) -> float:
        return self.sumw - _tr(self.H2)

    @property
    def trPP(self) -> float:
        (G3,) = grams(self.X, [self.w ** 3])
        return self.sumw2 - 2 * _tr(self.A_inv @ G3) + _tr(self.H2, self.H2)

    def ypppy(self) -> float:
        """y'PPPy = (Py)' P (Py)."""
        u = self.w * self.wr
        g = self.X.T @ u
        return float(np.dot(self.wr, u) - g @ self.A_inv @ g)

    def logdet_A(self) -> float:
        return float(np.linalg.slogdet(self.A)[1])

    def traces_v(self, v: np.ndarray) -> tuple[float, float, float]:
        """tr(PV), tr(PVPV), tr(PPV) with V = diag(v)."""
        w = self.w
        Gv, Gvv, Gpv = grams(self.X, [w * w * v, w ** 3 * v * v, w ** 3 * v])
        Hv = self.A_inv @ Gv
        trPV = float(np.dot(w, v)) - _tr(Hv)
        wv = w * v
        trPVPV = float(np.dot(wv, wv)) - 2 * _tr(self.A_inv @ Gvv) + _tr(Hv, Hv)
        trPPV = float(np.dot(w * w, v)) - 2 * _tr(self.A_inv @ Gpv) + _tr(Hv, self.H2)
        return trPV, trPVPV, trPPV


@lru_cache(maxsize=None)
def _upper(q: int) -> tuple:
    return np.triu_indices(q)


class Powers:
    """Z' W^m Z for m = 1, 2, 3 with Z = [X, y] and W = diag(1/(v + tau^2)), in one pass over blocks of rows.

    Everything the fit needs at a tau^2 follows from these small matrices (X has an intercept,
    so their first diagonal entries are sum w, sum w^2, sum w^3): beta, y'Py, y'PPy, y'PPPy,
    tr P, tr PP.  One pass per tau^2: from KERNEL_MIN studies on the compiled one of `kernel`
    (every sum in one read of each row, the rows centred as they are read: no copy of the
    data), below it one BLAS product of the weights' powers with the column products of a
    centred copy `Z` (no numba to load for small fits).  y and the moderators are centred (P does not
    change), so y'Py = c - b'A^-1 b keeps its digits; `user` maps beta and its covariance back.
    """

    def __init__(self, M: np.ndarray, y: np.ndarray, v: np.ndarray):
        """M: the moderators (k x m, without the intercept).  From KERNEL_MIN studies on, the pass at
        tau^2 = 0 is made here (with X'X): `finite` is False if its sums are not (a bad value somewhere)."""
        from ..errors import InputError

        k, p = len(y), M.shape[1] + 1
        self.M, self.y, self.v, self.p = M, y, v, p
        rows = slice(None, None, max(1, k // SHIFT_SAMPLE))
        self.means = np.concatenate([[0.0], M[rows].mean(axis=0)])  # the shifts: see SHIFT_SAMPLE
        self.ybar = float(y[rows].mean())
        self.big, self.finite = k >= KERNEL_MIN, True
        self._memo: dict = {}
        if self.big:
            from .kernel import gram_powers  # numba: loaded with the first large fit

            G, slog = gram_powers(M, y, v, self._shift, 0.0, True, plain=True)
            self.finite = bool(np.isfinite(G).all() and np.isfinite(slog))
            if not self.finite:
                return
            self.plain = G[3]
        else:
            self.plain = self.Z.T @ self.Z
        xtx = self.plain[:p, :p]
        if p > 1:
            scale = np.sqrt(np.diag(xtx))
            if np.any(scale == 0) or np.linalg.cond(xtx / np.outer(scale, scale)) > 1e12:
                raise InputError("the moderators are linearly dependent (or constant): the model matrix is not of "
                                 "full rank")
        # = log det X'X: centring is a unit-triangular map
        self.logdet_xtx = float(np.log(xtx[0, 0]) if p == 1 else np.linalg.slogdet(xtx)[1])
        if self.big:  # the pass at tau^2 = 0 is every fit's (Cochran's Q): kept
            self._memo[0.0] = Profile(G[:3], p, 0.0, -slog, v)

    @cached_property
    def v_range(self) -> tuple[float, float]:
        return float(self.v.min()), float(self.v.max())

    @property
    def _shift(self) -> np.ndarray:
        return np.append(self.means[1:], self.ybar)

    @cached_property
    def Z(self) -> np.ndarray:
        """The centred columns [1, M - means, y - ybar], column-ordered: made when a small fit, HE, SJ
        or a per-study result needs them."""
        k, p = len(self.y), self.p
        Z = np.empty((k, p + 1), order="F")
        Z[:, 0] = 1.0
        for j in range(1, p):
            np.subtract(self.M[:, j - 1], self.means[j], out=Z[:, j])
        np.subtract(self.y, self.ybar, out=Z[:, p])
        return Z

    def at(self, tau2: float, powers: int = 2, logs: bool = False) -> "Profile":
        """The Profile at tau2 with Z'W^mZ for m up to `powers`.  From KERNEL_MIN studies on, one
        compiled pass (`kernel`) gives all three powers and, if logs, sum log(v + tau2) in the same
        read (a numpy pass would cost one read more: below KERNEL_MIN it is computed when asked)."""
        key = float(tau2)
        have = self._memo.get(key)
        if have is not None and have.G.shape[0] >= powers and (have._log_vt is not None or not logs or not self.big):
            return have
        if self.big:
            from .kernel import gram_powers

            G, slog = gram_powers(self.M, self.y, self.v, self._shift, key, logs)
            out = Profile(G, self.p, tau2, -slog if logs else None, self.v)
        else:
            out = Profile(self._grams(key, 3), self.p, tau2, None, self.v)  # the third power costs little here
        recent = [t for t in self._memo if t != 0.0][-(MEMO - 1):]  # tau^2 = 0 (Cochran's Q) and the last few
        self._memo = {t: self._memo[t] for t in [0.0, *recent] if t in self._memo}
        self._memo[key] = out
        return out

    @cached_property
    def _pairs(self) -> tuple:
        """The products z_a z_b (a <= b) of the centred columns, k x q(q+1)/2, and their indices: a
        pass of the numpy path is then one product of [w, w^2, w^3] with them."""
        ia, ib = _upper(self.Z.shape[1])
        pairs = np.empty((len(ia), len(self.y))).T  # column by column (numpy's fancy indexing of Z: 15x slower)
        for j, (a, b) in enumerate(zip(ia, ib)):
            np.multiply(self.Z[:, a], self.Z[:, b], out=pairs[:, j])
        return pairs, ia, ib

    def _grams(self, tau2: float, powers: int) -> np.ndarray:
        """Z'W^mZ for m = 1..powers by numpy: the weights' powers times the column products, one BLAS
        product (below KERNEL_MIN studies, where this runs, the products fit in a few MB)."""
        pairs, ia, ib = self._pairs
        W = np.empty((powers, len(self.v)))
        W[0] = numeric._meta_weight(self.v, tau2)
        for m in range(1, powers):
            np.multiply(W[m - 1], W[0], out=W[m])
        q = self.Z.shape[1]
        G = np.empty((powers, q, q))
        G[:, ia, ib] = G[:, ib, ia] = W @ pairs
        return G

    def scores(self, grid: np.ndarray, reml: bool) -> np.ndarray:
        """The profiled ML or REML score at every tau^2 of a grid at once (one matrix product for
        each of W and W^2 over the products z_a z_b): the scan for sign changes, when `certify` gives up."""
        q, p = self.Z.shape[1], self.p
        pairs, ia, ib = self._pairs
        W = numeric._meta_weight(self.v[None, :], grid[:, None])
        G1, G2 = np.zeros((2, len(grid), q, q))
        G1[:, ia, ib] = G1[:, ib, ia] = W @ pairs
        G2[:, ia, ib] = G2[:, ib, ia] = (W * W) @ pairs
        A = G1[:, :p, :p]
        beta = np.linalg.solve(A, G1[:, :p, p:])
        u = np.concatenate([-beta, np.ones((len(grid), 1, 1))], axis=1)[..., 0]
        ypp = np.einsum("ga,gab,gb->g", u, G2, u)
        if not reml:
            return 0.5 * (ypp - G1[:, 0, 0])
        trP = G1[:, 0, 0] - np.trace(np.linalg.solve(A, G2[:, :p, :p]), axis1=1, axis2=2)
        return 0.5 * (ypp - trP)

    def _map(self) -> np.ndarray:
        M = np.eye(self.p)
        M[0, 1:] = -self.means[1:]
        return M

    def centred(self, beta: np.ndarray) -> np.ndarray:
        """The user's beta in the centred columns (without y's mean)."""
        b = np.linalg.solve(self._map(), beta)
        b[0] -= self.ybar
        return b

    def centred_cov(self, vb: np.ndarray) -> np.ndarray:
        Minv = np.linalg.inv(self._map())
        return Minv @ vb @ Minv.T

    def user(self, prof: "Profile") -> tuple[np.ndarray, np.ndarray]:
        """beta and (X'WX)^-1 in the user's columns (undo the centring: beta_0 -= sum_j m_j beta_j, + ybar)."""
        M = np.eye(self.p)
        M[0, 1:] = -self.means[1:]
        beta = M @ -prof.u[:-1]
        beta[0] += self.ybar
        return beta, M @ prof.A_inv @ M.T


class Profile:
    """The quantities of one tau^2 from Powers' matrices (p x p algebra only; each computed when first
    asked, sum log(v + tau^2) too unless the pass gave it)."""

    def __init__(self, G: np.ndarray, p: int, tau2: float, log_vt: float | None = None, v=None):
        self.G, self.p, self.tau2, self._log_vt, self._v = G, p, tau2, log_vt, v
        A = G[0, :p, :p]
        self.A_inv = 1.0 / A if p == 1 else np.linalg.inv(A)
        self.u = np.empty(p + 1)  # r = Z u
        self.u[:p] = -(self.A_inv @ G[0, :p, p])
        self.u[p] = 1.0
        self.rss = max(0.0, float(self.u @ G[0] @ self.u))
        self.ypp = max(0.0, float(self.u @ G[1] @ self.u))
        self.sumw, self.sumw2 = float(A[0, 0]), float(G[1, 0, 0])

    @cached_property
    def log_vt(self) -> float:
        """sum log(v_i + tau^2)."""
        return float(np.log(self._v + self.tau2).sum()) if self._log_vt is None else self._log_vt

    @cached_property
    def H2(self) -> np.ndarray:
        return self.A_inv @ self.G[1, :self.p, :self.p]

    @cached_property
    def trP(self) -> float:
        return self.sumw - float(np.trace(self.H2))

    @cached_property
    def logdet_A(self) -> float:
        A = self.G[0, :self.p, :self.p]
        return float(np.log(A[0, 0]) if self.p == 1 else np.linalg.slogdet(A)[1])

    @cached_property
    def trPP(self) -> float:
        return self.sumw2 - 2 * float(np.sum(self.A_inv * self.G[2, :self.p, :self.p].T)) + float(np.sum(self.H2 * self.H2.T))

    def ypppy(self) -> float:
        g = self.G[1, :self.p] @ self.u  # X'W^2 r
        return float(self.u @ self.G[2] @ self.u - g @ self.A_inv @ g)
