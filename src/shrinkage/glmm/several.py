"""glmer's Laplace objective for any random-effects structure: vector terms on one factor,
``(1 + x | g)``, and several terms, crossed or nested, ``(1 | a) + (1 | b)``.

With b = Lambda u, u ~ N(0, I), Lambda = blockdiag(I_{J_k} (x) T_k) (lme4's, T_k lower
triangular, its lower triangle the term's part of theta) and A = Z Lambda, the penalised
deviance is f(u) = -2 sum_i loglik(eta_i) + u'u, eta = X beta + offset + A u.  PIRLS is
Newton's method on f: u <- u - H^-1 (u - A's), H = A'WA + I (s the scores, W the working
weights), and lme4's Laplace deviance is f(u*) + log|H| at the mode u*.

H is factored as :mod:`shrinkage.lmm.blocked` factors the Gaussian system: the first term
(most levels) is block diagonal (a row meets one of its levels), J_1 Cholesky factors of
q_1 x q_1; the other terms' columns are a dense block whose Schur complement
S = D - B'A_1^-1 B is factored densely.  With one factor the dense block is empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from scipy.linalg import solve_triangular

from ..errors import InputError
from ..lmm.blocked import Layout

__all__ = ["TermsProblem", "TermsModes", "modes", "laplace", "condvar"]

NEWTON_TOL = 1e-10   # on the Newton step in u; one more step follows (quadratic convergence)
NEWTON_MAXIT = 200


def _term_matrix(codes, Zk, J):
    """Z_k T_k as a sparse (N, J q) matrix: row i has its q values in its level's columns."""
    N, q = Zk.shape
    cols = (codes[:, None] * q + np.arange(q)[None, :]).ravel()
    return sp.csr_matrix((Zk.ravel(), (np.repeat(np.arange(N), q), cols)), shape=(N, J * q))


@dataclass(frozen=True, eq=False)
class TermsProblem:
    """The data of a fit: y (a proportion for the binomial), prior weights m, offset, X,
    and per term (lme4's order) its level codes, its Z columns (N, q_k) and levels J_k."""

    family: object
    y: np.ndarray
    m: np.ndarray
    offset: np.ndarray
    X: np.ndarray
    codes: tuple
    Z: tuple
    levels: tuple

    @cached_property
    def layout(self) -> Layout:
        return Layout(tuple(z.shape[1] for z in self.Z))

    @cached_property
    def constant(self) -> float:
        return float(np.sum(self.family.constant(self.y, self.m)))

    @property
    def size(self) -> int:
        """The length of u: sum_k J_k q_k."""
        return sum(J * q for J, q in zip(self.levels, self.layout.q))

    def parts(self, theta):
        """(T_k list, Z_1 T_1 (N, q_1), A_1 sparse, A_rest sparse CSC or None)."""
        T = self.layout.factors(np.asarray(theta, dtype=float))
        ZT = [z @ t for z, t in zip(self.Z, T)]
        A1 = _term_matrix(self.codes[0], ZT[0], self.levels[0])
        rest = [_term_matrix(c, zt, J) for c, zt, J in zip(self.codes[1:], ZT[1:], self.levels[1:])]
        return T, ZT[0], A1, (sp.hstack(rest, format="csc") if rest else None)


class _Factor:
    """The Cholesky factor of H = A'WA + I in two blocks (see the module docstring): the
    first term's L_1j, kept as the sparse blockdiag(L_1j^-1), and the Schur complement's
    dense factor.  X1 = L_1^-1 B stays sparse (B's pattern: a level of the first factor
    meets few levels of the others)."""

    def __init__(self, pr: TermsProblem, ZT1, A1, Ar, w):
        J1, q1 = pr.levels[0], pr.layout.q[0]
        blocks = np.zeros((J1, q1, q1))
        for a in range(q1):
            for b in range(a, q1):
                blocks[:, a, b] = blocks[:, b, a] = np.bincount(pr.codes[0], w * ZT1[:, a] * ZT1[:, b], minlength=J1)
        blocks += np.eye(q1)
        L1 = np.linalg.cholesky(blocks)
        self.L1, self.q1 = L1, q1
        self.logdet = 2 * float(np.sum(np.log(np.diagonal(L1, axis1=1, axis2=2))))
        at = np.arange(J1 * q1).reshape(J1, q1)
        rows, cols = np.broadcast_to(at[:, :, None], L1.shape), np.broadcast_to(at[:, None, :], L1.shape)
        self.Linv = sp.csr_matrix((np.linalg.inv(L1).ravel(), (rows.ravel(), cols.ravel())), shape=(J1 * q1,) * 2)
        self.m_r = 0 if Ar is None else Ar.shape[1]
        if self.m_r:
            self.X1 = (self.Linv @ (A1.T.multiply(w).tocsr() @ Ar)).tocsr()
            D = (Ar.T.multiply(w).tocsr() @ Ar).toarray() + np.eye(self.m_r)
            self.LS = np.linalg.cholesky(D - (self.X1.T @ self.X1).toarray())
            self.logdet += 2 * float(np.sum(np.log(np.diag(self.LS))))

    def solve(self, r: np.ndarray) -> np.ndarray:
        """H^-1 r."""
        n1 = self.Linv.shape[0]
        y1 = self.Linv @ r[:n1]
        if not self.m_r:
            return self.Linv.T @ y1
        yr = solve_triangular(self.LS, r[n1:] - self.X1.T @ y1, lower=True)
        xr = solve_triangular(self.LS, yr, lower=True, trans="T")
        return np.concatenate([self.Linv.T @ (y1 - self.X1 @ xr), xr])


@dataclass(frozen=True, eq=False)
class TermsModes:
    """The conditional modes u* at (theta, beta), eta there, and H's factor."""

    u: np.ndarray
    eta: np.ndarray
    T: list
    factor: _Factor
    weight: np.ndarray


def _f(pr, eta0, A, u):
    return -2 * float(np.sum(pr.family.kernel(eta0 + A @ u, pr.y, pr.m))) + float(u @ u)


def modes(pr: TermsProblem, theta, beta, u0=None) -> TermsModes:
    """PIRLS: Newton's method on f(u), a step halved while it raises f (the logistic
    log-likelihood is flat far from the mode); after a step below NEWTON_TOL one more."""
    T, ZT1, A1, Ar = pr.parts(theta)
    A = A1 if Ar is None else sp.hstack([A1, Ar], format="csr")
    eta0 = pr.X @ beta + pr.offset
    u = np.zeros(pr.size) if u0 is None else np.array(u0, dtype=float)
    f, last = _f(pr, eta0, A, u), False
    for _ in range(NEWTON_MAXIT):
        s, w, _ = pr.family.pieces(eta0 + A @ u, pr.y, pr.m)
        step = _Factor(pr, ZT1, A1, Ar, w).solve(u - A.T @ s)
        f_new = _f(pr, eta0, A, u - step)
        for _ in range(60):
            if not f_new > f + 1e-12 * (1 + abs(f)):
                break
            step = step / 2
            f_new = _f(pr, eta0, A, u - step)
        u, f = u - step, f_new
        if last:
            break
        last = np.max(np.abs(step), initial=0.0) < NEWTON_TOL * (1 + np.max(np.abs(u), initial=0.0))
    else:
        raise InputError(f"the conditional modes did not converge in {NEWTON_MAXIT} Newton steps; "
                         "the data may be separated")
    eta = eta0 + A @ u
    w = pr.family.pieces(eta, pr.y, pr.m)[1]
    return TermsModes(u, eta, T, _Factor(pr, ZT1, A1, Ar, w), w)


def laplace(pr: TermsProblem, theta, beta, u0=None):
    """lme4's Laplace deviance -2 loglik(eta*) + u*'u* + log|H| and the modes."""
    md = modes(pr, theta, beta, u0)
    value = -2 * (float(np.sum(pr.family.kernel(md.eta, pr.y, pr.m))) + pr.constant) + float(md.u @ md.u)
    return value + md.factor.logdet, md


def b_of(pr: TermsProblem, md: TermsModes) -> list:
    """The conditional modes b_k = (I (x) T_k) u_k per term, (J_k, q_k) each."""
    out, at = [], 0
    for J, q, T in zip(pr.levels, pr.layout.q, md.T):
        out.append(md.u[at:at + J * q].reshape(J, q) @ T.T)
        at += J * q
    return out


def condvar(pr: TermsProblem, md: TermsModes) -> list:
    """lme4's condVar for a GLMM: the diagonal blocks of Lambda H^-1 Lambda' per term and
    level, (J_k, q_k, q_k) (beta held at its estimate).  H^-1's first block is
    A_1^-1 + V S^-1 V' with V = L_1'^-1 X1; its last block is S^-1."""
    F = md.factor
    inv_L1 = np.linalg.inv(F.L1)
    blocks1 = np.swapaxes(inv_L1, 1, 2) @ inv_L1                  # (L_1j L_1j')^-1
    J1 = blocks1.shape[0]
    out = []
    if F.m_r:
        Sinv = np.linalg.inv(F.LS @ F.LS.T)
        V = (F.Linv.T @ F.X1).toarray().reshape(J1, F.q1, F.m_r)
        blocks1 = blocks1 + np.einsum("jam,mn,jbn->jab", V, Sinv, V, optimize=True)
    out.append(md.T[0] @ blocks1 @ md.T[0].T)
    at = 0
    for J, q, T in zip(pr.levels[1:], pr.layout.q[1:], md.T[1:]):
        idx = at + np.arange(J * q).reshape(J, q)
        out.append(T @ Sinv[idx[:, :, None], idx[:, None, :]] @ T.T)
        at += J * q
    return out
