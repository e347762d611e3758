"""The weighted least-squares algebra of y = X beta + u + e with Var(y) = diag(v + tau^2).

Every estimator of tau^2 is a function of P = W - W X (X'WX)^-1 X'W for some diagonal W:
y'Py, y'PPy and traces of products of P and V = diag(v).  P is k x k, so it is never
formed: each trace is a sum over the studies minus traces of p x p products
X' diag(d) X (one BLAS call per block of rows).  This is what lets a Fay-Herriot fit with
1e7 areas cost a few passes over the data.
"""

from __future__ import annotations

import contextlib

import numpy as np

from .. import numeric
from ..passes import chunk_results

BLOCK = 1 << 16  # rows per BLAS call: the stacked block stays in the cache-friendly MB range
SMALL_BLOCK = 8192  # rows per symmetric rank-k update in a pass: the block stays in the L2 cache
CHUNK = 1 << 18  # rows per chunk of a pass, the unit the cores share
KERNEL_MIN = 1 << 15  # from this many studies on, the compiled pass (below: numpy, no numba to load)


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


class Powers:
    """Z' W^m Z for m = 1, 2, 3 with Z = [X, y] and W = diag(1/(v + tau^2)), in one pass over blocks of rows.

    Everything the fit needs at a tau^2 follows from these small matrices (X has an intercept,
    so their first diagonal entries are sum w, sum w^2, sum w^3): beta, y'Py, y'PPy, y'PPPy,
    tr P, tr PP.  One pass per tau^2: from KERNEL_MIN studies on the compiled one of `kernel`
    (every sum in one read of each row), below it each block's products by BLAS's symmetric
    rank-k update (numpy calls it for S'S; no numba to load for small fits).  y and the moderators are centred first (P does not change), so
    y'Py = c - b'A^-1 b keeps its digits; `user` maps beta and its covariance back.
    """

    def __init__(self, M: np.ndarray, y: np.ndarray, v: np.ndarray):
        """M: the moderators (k x m, without the intercept); one column-ordered copy [1, M - means, y - ybar]."""
        from ..errors import InputError

        k, p = len(y), M.shape[1] + 1
        self.means = np.zeros(p)
        self.ybar = float(y.mean())
        Z = np.empty((k, p + 1), order="F")
        Z[:, 0] = 1.0
        for j in range(1, p):
            self.means[j] = M[:, j - 1].mean()
            np.subtract(M[:, j - 1], self.means[j], out=Z[:, j])
        np.subtract(y, self.ybar, out=Z[:, p])
        self.Z, self.v, self.p = Z, v, p
        xtx = Z[:, :p].T @ Z[:, :p]
        scale = np.sqrt(np.diag(xtx))
        if p > 1 and (np.any(scale == 0) or np.linalg.cond(xtx / np.outer(scale, scale)) > 1e12):
            raise InputError("the moderators are linearly dependent (or constant): the model matrix is not of full rank")
        self.logdet_xtx = float(np.linalg.slogdet(xtx)[1])  # = log det X'X: centring is a unit-triangular map
        self._memo: dict = {}

    def at(self, tau2: float, powers: int = 2, logs: bool = False) -> "Profile":
        """The Profile at tau2 with Z'W^mZ for m up to `powers` and, if logs, sum log(v + tau2)
        (always at tau2 = 0: the fit statistics need sum log v).  From KERNEL_MIN studies on,
        one compiled pass (`kernel`) gives all three powers and the log sum in one read."""
        key = float(tau2)
        logs = logs or key == 0.0
        have = self._memo.get(key)
        if have is not None and have.G.shape[0] >= powers and (have.log_vt is not None or not logs):
            return have
        if len(self.v) >= KERNEL_MIN:
            from .kernel import gram_powers  # numba: loaded with the first large fit

            G, slog = gram_powers(self.Z, self.v, key, logs)
            out = Profile(G, self.p, tau2, -slog if logs else None)
        else:
            G = self._grams(key, powers)
            out = Profile(G, self.p, tau2, float(np.log(self.v + key).sum()) if logs else None)
        self._memo = {t: m for t, m in self._memo.items() if t == 0.0}  # tau^2 = 0 (Cochran's Q) and the last
        self._memo[key] = out
        return out

    def _grams(self, tau2: float, powers: int) -> np.ndarray:
        """Z'W^mZ for m = 1..powers by numpy: blocked symmetric rank-k updates, chunks on the cores."""
        from threadpoolctl import threadpool_limits

        q = self.Z.shape[1]

        def work(lo, hi, buffer):
            G = np.zeros((powers, q, q))
            for s in range(lo, hi, SMALL_BLOCK):
                e = min(hi, s + SMALL_BLOCK)
                Zb = self.Z[s:e]
                root_w = np.sqrt(numeric._meta_weight(self.v[s:e], tau2))[:, None]
                S = np.multiply(Zb, root_w, out=buffer((e - s, q)))
                for m in range(powers):
                    if m:
                        S *= root_w
                    G[m] += S.T @ S  # sum of w^(m+1) z z'
            return G

        G = np.zeros((powers, q, q))
        with threadpool_limits(1) if len(self.v) > CHUNK else contextlib.nullcontext():  # BLAS threads would compete
            for part in chunk_results(work, len(self.v), CHUNK):
                G += part  # in chunk order: the same sum with any number of threads
        return G

    def scores(self, grid: np.ndarray, reml: bool) -> np.ndarray:
        """The profiled ML or REML score at every tau^2 of a grid at once (one matrix product for
        each of W and W^2 over the products z_a z_b): the scan for sign changes, for small k."""
        q, p = self.Z.shape[1], self.p
        ia, ib = np.triu_indices(q)
        pairs = self.Z[:, ia] * self.Z[:, ib]
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
    """The quantities of one tau^2 from Powers' matrices (p x p algebra only)."""

    def __init__(self, G: np.ndarray, p: int, tau2: float, log_vt: float | None = None):
        self.G, self.p, self.tau2, self.log_vt = G, p, tau2, log_vt  # log_vt: sum log(v_i + tau2), if computed
        A = G[0, :p, :p]
        self.A_inv = np.linalg.inv(A)
        beta = self.A_inv @ G[0, :p, p]
        self.u = np.append(-beta, 1.0)  # r = Z u
        self.rss = max(0.0, float(self.u @ G[0] @ self.u))
        self.ypp = max(0.0, float(self.u @ G[1] @ self.u))
        self.sumw, self.sumw2 = float(A[0, 0]), float(G[1, 0, 0])
        self.H2 = self.A_inv @ G[1, :p, :p]
        self.trP = self.sumw - float(np.trace(self.H2))
        self.logdet_A = float(np.linalg.slogdet(A)[1])

    @property
    def trPP(self) -> float:
        return self.sumw2 - 2 * float(np.sum(self.A_inv * self.G[2, :self.p, :self.p].T)) + float(np.sum(self.H2 * self.H2.T))

    def ypppy(self) -> float:
        g = self.G[1, :self.p] @ self.u  # X'W^2 r
        return float(self.u @ self.G[2] @ self.u - g @ self.A_inv @ g)
