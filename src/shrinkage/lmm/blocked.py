"""lme4's profiled criterion for several random-effect terms, by a blocked Cholesky.

The model: y = X beta + sum_k Z_k b_k + eps, b_k = Lambda_k u_k, u ~ N(0, sigma^2 I),
Lambda_k = I_{J_k} (x) T_k (T_k lower triangular, q_k x q_k, its lower triangle is the
term's part of theta).  With Lambda = blockdiag(Lambda_k) the criterion is the Cholesky
factor of the augmented matrix (lme4's and MixedModels.jl's)

    [ Lambda'Z'Z Lambda + I   Lambda'Z'X   Lambda'Z'y ]
    [ X'Z Lambda              X'X          X'y        ]  =  L L',
    [ y'Z Lambda              y'X          y'y        ]

ML deviance   = log|L_Z|^2 + N (1 + log(2 pi r^2 / N)),
REML criterion = log|L_Z|^2 + log|L_X|^2 + (N - p)(1 + log(2 pi r^2 / (N - p))),

r^2 the last diagonal entry squared (the penalised residual sum of squares).  Terms are in
lme4's order (most levels first).  The first term's block of Lambda'Z'Z Lambda + I is
block diagonal (each row has one level of the first factor), so it is factored level by
level (J_1 Cholesky factors of q_1 x q_1); the rest W = [Z_2 Lambda_2 ... | X | y] is one
dense block, its Schur complement

    S = Lambda_W' (W'W - C' blockdiag(T_1 (T_1'Z_1j'Z_1j T_1 + I)^-1 T_1') C) Lambda_W + I_r,
    C = Z_1'W (sparse: a level of the first factor meets few levels of the others),

factored densely (MixedModels.jl's blocked Cholesky, the fill-in confined to the dense
block).  The data enter only through Z_1j'Z_1j, C and W'W, computed once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numba import njit
from scipy.linalg.lapack import dpotrf

from ..errors import InputError

__all__ = ["centred", "Layout", "BlockedProblem", "Pieces", "prepare", "evaluate", "deviance", "solution", "condvar"]


@dataclass(frozen=True)
class Layout:
    """Where each term's T_k sits in theta: its lower triangle, column by column (lme4's
    order); ``lower`` is 0 on diagonal entries and -inf elsewhere."""

    q: tuple

    @property
    def sizes(self) -> tuple:
        return tuple(k * (k + 1) // 2 for k in self.q)

    @property
    def size(self) -> int:
        return sum(self.sizes)

    def tri(self, k: int):
        """(rows, cols) of the lower triangle of a q_k x q_k matrix, column by column."""
        cols, rows = np.triu_indices(self.q[k])
        return rows, cols

    @property
    def diagonal(self) -> np.ndarray:
        return np.concatenate([rows == cols for rows, cols in (self.tri(k) for k in range(len(self.q)))])

    @property
    def lower(self) -> np.ndarray:
        return np.where(self.diagonal, 0.0, -np.inf)

    def start(self) -> np.ndarray:
        """lme4's start: identity T_k."""
        return self.diagonal.astype(float)

    def factors(self, theta: np.ndarray) -> list:
        """[T_1, ..., T_K] from theta."""
        out, at = [], 0
        for k, size in enumerate(self.sizes):
            T = np.zeros((self.q[k], self.q[k]))
            T[self.tri(k)] = theta[at:at + size]
            out.append(T)
            at += size
        return out


@dataclass(frozen=True, eq=False)
class BlockedProblem:
    """The fixed products: Z_1j'Z_1j (J_1, q_1, q_1), C = Z_1'W (sparse CSR), G = W'W
    (dense), with W = [Z_2, ..., Z_K, X, y]; the terms' sizes; N and p."""

    layout: Layout
    levels: tuple
    ZtZ1: np.ndarray
    C: object
    G: np.ndarray
    N: int
    p: int
    C_dense: np.ndarray | None = None  # C as an array where small (dense products beat sparse ones there)
    pairs: object = None  # a scalar first term: C' diag(w) C's lower triangle = pairs @ w at ``targets``
    targets: np.ndarray | None = None

    @property
    def m_r(self) -> int:
        """Columns of the dense block that are random effects (terms 2..K)."""
        return sum(J * q for J, q in zip(self.levels[1:], self.layout.q[1:]))


def term_matrix(codes: np.ndarray, Zk: np.ndarray, J: int):
    """Z_k, sparse (N, J q): row i has its q values in the columns of its level."""
    N, q = Zk.shape
    cols = (codes[:, None] * q + np.arange(q)[None, :]).ravel()
    rows = np.repeat(np.arange(N), q)
    return sp.csr_matrix((Zk.ravel(), (rows, cols)), shape=(N, J * q))


def prepare(codes: list, Z: list, X: np.ndarray, y: np.ndarray) -> BlockedProblem:
    """The products of a design: per term its level codes (N,) and Z block (N, q_k)."""
    levels = tuple(int(c.max()) + 1 for c in codes)
    q = tuple(z.shape[1] for z in Z)
    N, p = X.shape
    Z1 = Z[0]
    ZtZ1 = np.zeros((levels[0], q[0], q[0]))
    for a in range(q[0]):
        for b in range(a, q[0]):
            ZtZ1[:, a, b] = ZtZ1[:, b, a] = np.bincount(codes[0], Z1[:, a] * Z1[:, b], minlength=levels[0])
    W = sp.hstack([term_matrix(c, z, J) for c, z, J in zip(codes[1:], Z[1:], levels[1:])]
                  + [sp.csr_matrix(np.column_stack([X, y]))], format="csc")
    C = (term_matrix(codes[0], Z1, levels[0]).T @ W).tocsr()
    C.sort_indices()
    G = (W.T @ W).toarray()
    small = C.shape[0] * C.shape[1] <= DENSE_C
    pairs, targets = None, None
    if q[0] == 1:
        sizes = np.diff(C.indptr).astype(float)
        count = (sizes * (sizes + 1) / 2).sum()  # the pattern's work; a dense C'diag(w)C's is J_1 m^2 at BLAS speed
        if count > C.shape[0] * C.shape[1] ** 2 / 20 and C.shape[0] * C.shape[1] <= DENSE_C_SCALAR:
            small = True  # few levels in W, many rows per level of the first factor: BLAS beats pairs
        elif count <= PAIRS_LIMIT:
            pairs, targets = _pair_pattern(C)
    return BlockedProblem(Layout(q), levels, ZtZ1, C, G, N, p, C.toarray() if small else None, pairs, targets)


DENSE_C = 2e5  # entries of C below which it is also kept dense
DENSE_C_SCALAR = 3e7  # ... and for a scalar first term, where its downdate by BLAS is cheaper than by pairs
PAIRS_LIMIT = 3e7  # pairs of nonzeros in a row of C above which the downdate is looped, not stored


@njit(cache=True)
def _pairs(indptr, indices, data, m):  # pragma: no cover - compiled
    """Per row k of C (in order) and pair b <= a of its nonzeros: the flat lower-triangle
    position i_a m + i_b and c_ka c_kb."""
    count = 0
    for k in range(indptr.size - 1):
        n = indptr[k + 1] - indptr[k]
        count += n * (n + 1) // 2
    pos = np.empty(count, np.int64)
    val = np.empty(count)
    at = 0
    for k in range(indptr.size - 1):
        for a in range(indptr[k], indptr[k + 1]):
            for b in range(indptr[k], a + 1):
                pos[at] = indices[a] * m + indices[b]
                val[at] = data[a] * data[b]
                at += 1
    return pos, val


def _pair_pattern(C):
    """(Q, targets): C' diag(w) C's lower triangle is Q @ w at the flat positions targets
    (a sparse matrix-vector product over the pairs of levels that share a row: MixedModels.jl's
    precomputed pattern); (None, None) where W is too wide to index."""
    m = C.shape[1]
    if m * m > 2**31:
        return None, None
    pos, val = _pairs(C.indptr, C.indices, C.data, m)
    mark = np.zeros(m * m, dtype=np.int32)
    mark[pos] = 1
    targets = np.flatnonzero(mark)
    mark[targets] = np.arange(targets.size, dtype=np.int32)
    sizes = np.diff(C.indptr)
    indptr = np.concatenate([[0], np.cumsum(sizes * (sizes + 1) // 2)])  # row k's pairs are contiguous
    Qt = sp.csr_matrix((val, mark[pos], indptr), shape=(C.shape[0], targets.size))
    return Qt.T, targets  # CSC: no sort


@dataclass(frozen=True, eq=False)
class Pieces:
    """The factors at theta: T_k, L_1j (J_1, q_1, q_1) and the dense factor L_W of S."""

    T: list
    L1: np.ndarray
    LW: np.ndarray


def _lambda_w(pr: BlockedProblem, T: list):
    """Lambda_W = blockdiag(I_{J_k} (x) T_k for k >= 2, I_{p+1}), sparse."""
    blocks = [sp.kron(sp.identity(J, format="csr"), sp.csr_matrix(Tk), format="csr")
              for J, Tk in zip(pr.levels[1:], T[1:])]
    return sp.block_diag(blocks + [sp.identity(pr.p + 1, format="csr")], format="csr")


def _scale(pr: BlockedProblem, T: list, M: np.ndarray) -> np.ndarray:
    """Lambda_W' M Lambda_W for a dense symmetric M, in place, term by term (no sparse
    matrix: a scalar term is a scaling of its rows and columns, a q_k > 1 term a small
    product)."""
    if all(q == 1 for q in pr.layout.q[1:]):  # a diagonal Lambda_W: one pass over the rows, one over the columns
        d = np.ones(M.shape[0])
        d[:pr.m_r] = np.repeat([Tk[0, 0] for Tk in T[1:]], pr.levels[1:])
        M *= d[:, None]
        M *= d[None, :]
        return M
    at = 0
    for J, q, Tk in zip(pr.levels[1:], pr.layout.q[1:], T[1:]):
        rows = slice(at, at + J * q)
        if q == 1:
            M[rows, :] *= Tk[0, 0]
            M[:, rows] *= Tk[0, 0]
        else:
            m = M.shape[0]
            M[rows, :] = np.einsum("ab,jam->jbm", Tk, M[rows, :].reshape(J, q, m)).reshape(J * q, m)
            M[:, rows] = np.einsum("mja,ab->mjb", M[:, rows].reshape(m, J, q), Tk).reshape(m, J * q)
        at += J * q
    return M


def _first_weights(T1: np.ndarray, L1: np.ndarray) -> np.ndarray:
    """blockdiag_j T_1 (L_1j L_1j')^-1 T_1' as its blocks (J_1, q_1, q_1)."""
    M = np.linalg.solve(L1, np.broadcast_to(T1.T, L1.shape))  # L_1j^-1 T_1'
    return np.einsum("jki,jkl->jil", M, M)


@njit(nogil=True, cache=True)
def _gram_downdate(indptr, indices, data, w, G, out):  # pragma: no cover - compiled
    """out = G - C' diag(w) C on the lower triangle (C in CSR, column indices sorted): each
    row of C adds w_k c_k c_k' over its nonzeros only (a level of the first factor meets
    few levels of the others), no sparse product built."""
    m = G.shape[0]
    for i in range(m):
        for j in range(m):
            out[i, j] = G[i, j] if j <= i else 0.0
    for k in range(indptr.size - 1):
        wk = w[k]
        for a in range(indptr[k], indptr[k + 1]):
            i = indices[a]
            ci = wk * data[a]
            for b in range(indptr[k], a + 1):
                out[i, indices[b]] -= ci * data[b]


def _schur_scalar_first(pr: BlockedProblem, w: np.ndarray) -> np.ndarray:
    """G - C' diag(w) C (a scalar first term), the lower triangle by the compiled loop and
    mirrored when a later term has q > 1 (its scaling mixes rows and columns)."""
    out = np.empty_like(pr.G)
    _gram_downdate(pr.C.indptr, pr.C.indices, pr.C.data, w, pr.G, out)
    return _symmetric(pr, out)


def _symmetric(pr: BlockedProblem, lower: np.ndarray) -> np.ndarray:
    """A matrix whose lower triangle alone is right, made whole where :func:`_scale` needs
    it (a later term with q > 1 mixes rows and columns; scalar terms only scale them)."""
    if all(q == 1 for q in pr.layout.q[1:]):
        return lower
    lower = np.tril(lower)
    return lower + np.tril(lower, -1).T


def _downdate(pr: BlockedProblem, T1: np.ndarray, L1: np.ndarray) -> np.ndarray:
    """C' blockdiag(T_1 (L_1j L_1j')^-1 T_1') C, dense (m x m), for a first term with
    q_1 > 1: through C's dense copy when it is small, else sparse products."""
    J, q = L1.shape[0], L1.shape[1]
    w = _first_weights(T1, L1)
    if pr.C_dense is not None:
        Cb = pr.C_dense.reshape(J, q, -1)
        return np.einsum("jam,jab,jbn->mn", Cb, w, Cb, optimize=True)
    D = sp.bsr_matrix((w, np.arange(J), np.arange(J + 1)), shape=(J * q, J * q))
    return (pr.C.T @ (D @ pr.C)).toarray()


def evaluate(theta: np.ndarray, pr: BlockedProblem) -> Pieces:
    """The blocked Cholesky at theta (InputError where S is not positive definite in
    floating point)."""
    T = pr.layout.factors(np.asarray(theta, dtype=float))
    T1 = T[0]
    A11 = np.einsum("ki,jkl,lm->jim", T1, pr.ZtZ1, T1)
    A11[:, np.arange(T1.shape[0]), np.arange(T1.shape[0])] += 1.0
    L1 = np.linalg.cholesky(A11)
    if pr.pairs is not None:
        S = pr.G.copy()
        S.ravel()[pr.targets] -= pr.pairs @ ((T1[0, 0] / L1[:, 0, 0]) ** 2)
        S = _symmetric(pr, S)
    elif T1.shape[0] == 1 and pr.C_dense is not None:
        S = pr.G - (pr.C_dense.T * (T1[0, 0] / L1[:, 0, 0]) ** 2) @ pr.C_dense
    elif T1.shape[0] == 1:
        S = _schur_scalar_first(pr, (T1[0, 0] / L1[:, 0, 0]) ** 2)
    else:
        S = _downdate(pr, T1, L1)
        np.subtract(pr.G, S, out=S)
    S = _scale(pr, T, S)
    S[np.arange(pr.m_r), np.arange(pr.m_r)] += 1.0
    # LAPACK in place on S' (Fortran order, its upper triangle is S's lower): no copy of S
    U, info = dpotrf(S.T, lower=0, overwrite_a=1, clean=1)
    LW = U.T
    if info != 0 or not np.all(np.isfinite(np.diagonal(LW))):
        raise InputError("the criterion cannot be evaluated at this theta (a Schur complement is not "
                         "positive definite in floating point)") from None
    return Pieces(T, L1, LW)


def deviance(theta: np.ndarray, pr: BlockedProblem, method: str = "REML", pc: Pieces | None = None) -> float:
    """ML deviance or REML criterion at theta (see the module docstring)."""
    pc = evaluate(theta, pr) if pc is None else pc
    d1 = np.diagonal(pc.L1, axis1=1, axis2=2)
    dW = np.diagonal(pc.LW)
    m_r, p = pr.m_r, pr.p
    logdet_z = 2.0 * (np.log(d1).sum() + np.log(dW[:m_r]).sum())
    r2 = dW[-1] ** 2
    if method == "ML":
        return float(logdet_z + pr.N * (1.0 + np.log(2.0 * np.pi * r2 / pr.N)))
    nu = pr.N - p
    return float(logdet_z + 2.0 * np.log(dW[m_r:m_r + p]).sum() + nu * (1.0 + np.log(2.0 * np.pi * r2 / nu)))


def solution(pc: Pieces, pr: BlockedProblem):
    """(beta, [b_k as (J_k, q_k)], r^2, (L_X L_X')^-1) at theta: the back-substitution
    through L' (the last row of L is L^-1 times the right-hand side)."""
    import scipy.linalg as sla

    m = pc.LW.shape[0] - 1
    v = sla.solve_triangular(pc.LW[:m, :m], pc.LW[m, :m], lower=True, trans="T")  # [u_2..u_K, beta]
    beta = v[pr.m_r:]
    u_W = _lambda_w(pr, pc.T)[:m, :m] @ v  # [b_2..b_K, beta]
    c = pr.C[:, [m]].toarray().ravel() - pr.C[:, :m] @ u_W
    J1, q1 = pr.levels[0], pr.layout.q[0]
    T1 = pc.T[0]
    rhs = (c.reshape(J1, q1) @ T1)[:, :, None]  # T_1' c_j
    u1 = np.linalg.solve(np.transpose(pc.L1, (0, 2, 1)), np.linalg.solve(pc.L1, rhs))[:, :, 0]
    bs, at = [u1 @ T1.T], 0
    for J, q in zip(pr.levels[1:], pr.layout.q[1:]):
        bs.append(u_W[at:at + J * q].reshape(J, q))
        at += J * q
    LX = pc.LW[pr.m_r:m, pr.m_r:m]
    LXinv = sla.solve_triangular(LX, np.eye(pr.p), lower=True)
    return beta, bs, float(pc.LW[m, m] ** 2), LXinv.T @ LXinv


CONDVAR_LIMIT = 5e7  # entries of the dense J_1 q_1 x m_r product condvar needs


def condvar(pc: Pieces, pr: BlockedProblem) -> list:
    """Per term, Var(b_kj | y) / sigma^2 with beta known (lme4's condVar): the diagonal
    blocks of Lambda (Lambda'Z'Z Lambda + I)^-1 Lambda', as (J_k, q_k, q_k).  For the first
    term, block j of the inverse is L_1j^-T (I + V_j V_j') L_1j^-1 with V = L_21 L_rr^-T
    (L_21 = blockdiag(L_1j^-1 T_1') C Lambda_W on the random columns); for the others, the
    blocks of L_rr^-T L_rr^-1."""
    import scipy.linalg as sla

    m_r, J1, q1 = pr.m_r, pr.levels[0], pr.layout.q[0]
    if J1 * q1 * m_r > CONDVAR_LIMIT:
        raise InputError(f"condvar: the conditional variances of {J1} x {m_r} crossed random effects need a "
                         "dense product too large for memory; not computed")
    T = pc.T
    Linv1 = np.linalg.inv(pc.L1)  # L_1j^-1
    out = []
    if m_r:
        Lrr_inv = sla.solve_triangular(pc.LW[:m_r, :m_r], np.eye(m_r), lower=True)
        Crr = (pr.C[:, :m_r] @ _lambda_w(pr, T)[:m_r, :m_r]).toarray().reshape(J1, q1, m_r)
        L21 = np.einsum("jab,cb,jcm->jam", Linv1, T[0], Crr)  # L_1j^-1 T_1' C_j Lambda_r
        V = L21 @ Lrr_inv.T
        inner = np.eye(q1)[None] + V @ np.transpose(V, (0, 2, 1))
    else:
        inner = np.broadcast_to(np.eye(q1), (J1, q1, q1))
    A1 = np.transpose(Linv1, (0, 2, 1)) @ inner @ Linv1
    out.append(np.einsum("ab,jbc,dc->jad", T[0], A1, T[0]))
    at = 0
    for J, q, Tk in zip(pr.levels[1:], pr.layout.q[1:], T[1:]):
        cols = Lrr_inv[:, at:at + J * q].reshape(m_r, J, q)
        blocks = np.einsum("mja,mjb->jab", cols, cols)
        out.append(np.einsum("ab,jbc,dc->jad", Tk, blocks, Tk))
        at += J * q
    return out


def centred(X: np.ndarray, y: np.ndarray, names: tuple):
    """(X_c, y_c, M, shift): with an intercept, y and X's other columns less their means
    (the same likelihood, the intercept absorbs the shift; the criterion's y'y and X'X
    no longer cancel in the Schur complement), and beta = M beta_c + shift back."""
    p = X.shape[1]
    if "(Intercept)" not in names:
        return X, y, np.eye(p), np.zeros(p)
    i = names.index("(Intercept)")
    c = X.mean(axis=0)
    c[i] = 0.0
    ybar = float(y.mean())
    M = np.eye(p)
    M[i] -= c
    shift = np.zeros(p)
    shift[i] = ybar
    return X - c, y - ybar, M, shift
