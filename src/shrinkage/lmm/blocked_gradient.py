"""The gradient of :mod:`.blocked`'s criterion when every term is scalar ((1 | a) + (1 | b)
+ ...), from the factor the criterion already computed: no difference quotients, so an
optimiser needs a few factorisations where a derivative-free one needs dozens.

With Lambda = blockdiag(theta_k I_{J_k}) and Omega = Lambda'Z'Z Lambda + I (ML) or Omega
bordered by X (REML; then log|Omega| = log|L_Z|^2 + log|L_X|^2), since dOmega/dtheta_k =
E_k Z'Z Lambda + Lambda Z'Z E_k and Lambda Z'Z Lambda E_k = (Omega - I) E_k,

    d log|Omega| / d theta_k = (2 / theta_k) (J_k - tr_k Omega^-1)

(tr_k: the trace of term k's diagonal block).  By the envelope argument (r^2 is a minimum
over u and beta, whose minimiser has u_k = theta_k Z_k' res), d r^2 / d theta_k =
-2 res'Z_k u_k = -2 |u_k|^2 / theta_k.  So the criterion's derivative is

    (2 / theta_k) (J_k - tr_k - nu |u_k|^2 / r^2),   nu = N (ML) or N - p (REML),

and 0 at theta_k = 0 (the criterion is even in theta_k).  The traces from the blocked
factor: with P the dense block's leading part (the random columns, and X's under REML),
P = L_P L_P', term k >= 2's block of Omega^-1 is P^-1's (LAPACK's dpotri on L_P); the first
term's is A_11^-1 + A_11^-1 A_12 P^-1 A_21 A_11^-1, whose trace is sum_j 1/a_j +
sum_j theta_1^2 / a_j^2 c_j' Lambda_W P^-1 Lambda_W c_j (a_j = 1 + theta_1^2 n_j, c_j row j of
C): quadratic forms over the pairs of levels that share a row, as the downdate.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
from numba import njit
from scipy.linalg.lapack import dpotri

from .blocked import BlockedProblem, Pieces, deviance, evaluate

__all__ = ["scalar_terms", "value_and_gradient"]


def scalar_terms(pr: BlockedProblem) -> bool:
    """Whether every term is a scalar one (the gradient here applies)."""
    return all(q == 1 for q in pr.layout.q)


@njit(nogil=True, cache=True)
def _quadratic_forms(indptr, indices, data, M, size):  # pragma: no cover - compiled
    """Per row k of C: c_k' M c_k over the columns below ``size`` (M's lower triangle)."""
    out = np.zeros(indptr.size - 1)
    for k in range(indptr.size - 1):
        s = 0.0
        for a in range(indptr[k], indptr[k + 1]):
            i = indices[a]
            if i >= size:
                continue
            for b in range(indptr[k], a):
                j = indices[b]
                if j < size:
                    s += 2.0 * data[a] * data[b] * (M[i, j] if i >= j else M[j, i])
            s += data[a] * data[a] * M[i, i]
        out[k] = s
    return out


def _first_forms(pr: BlockedProblem, M: np.ndarray, size: int) -> np.ndarray:
    """c_j' M c_j per level j of the first term, M symmetric given by its lower triangle,
    over C's first ``size`` columns: by BLAS where C is kept dense, through the stored pairs
    where there are, else a compiled loop."""
    if pr.pairs is None and pr.C_dense is not None:
        Cp = pr.C_dense[:, :size]
        return np.einsum("ji,ji->j", Cp @ (np.tril(M) + np.tril(M, -1).T), Cp)
    if pr.pairs is None:
        return _quadratic_forms(pr.C.indptr, pr.C.indices, pr.C.data, M, size)
    m = pr.G.shape[0]
    i, j = np.divmod(pr.targets, m)
    keep = i < size
    vals = np.zeros(pr.targets.size)
    vals[keep] = M[i[keep], j[keep]] * np.where(i[keep] == j[keep], 1.0, 2.0)
    return pr.pairs.T @ vals


def value_and_gradient(theta: np.ndarray, pr: BlockedProblem, method: str = "REML",
                       pc: Pieces | None = None) -> tuple[float, np.ndarray]:
    """The criterion and its gradient at theta (scalar terms; see the module docstring)."""
    theta = np.asarray(theta, dtype=float)
    pc = evaluate(theta, pr) if pc is None else pc
    value = deviance(theta, pr, method, pc)
    m_r, p, J1 = pr.m_r, pr.p, pr.levels[0]
    m = pc.LW.shape[0] - 1
    size = m_r + (p if method == "REML" else 0)
    nu = pr.N - p if method == "REML" else pr.N
    r2 = pc.LW[m, m] ** 2
    Pinv, info = dpotri(np.asfortranarray(pc.LW[:size, :size]), lower=1)
    if info != 0:
        raise np.linalg.LinAlgError("the dense block's inverse failed")
    diag = np.diagonal(Pinv)[:m_r].copy()  # P^-1's own diagonal: the traces of terms 2..K
    d = np.ones(size)
    d[:m_r] = np.repeat(theta[1:], pr.levels[1:])
    Pinv *= d[:, None]
    Pinv *= d[None, :]  # Lambda_W P^-1 Lambda_W
    v = sla.solve_triangular(pc.LW[:m, :m], pc.LW[m, :m], lower=True, trans="T", check_finite=False)  # [u_2..u_K, beta]
    t1 = theta[0]
    n = pr.ZtZ1[:, 0, 0]
    a = 1.0 + t1 * t1 * n
    u_w = v.copy()
    u_w[:m_r] *= d[:m_r]  # [b_2..b_K, beta]
    resid = -(pr.C @ np.append(u_w, -1.0)) / a  # u_1 / theta_1 = (c_jy - C_j u_W) / a_j
    forms = _first_forms(pr, Pinv, size) if size else np.zeros(J1)
    g = np.empty(theta.size)
    g[0] = 2.0 * t1 * (np.sum(n / a) - np.sum(forms / a**2) - nu * np.sum(resid**2) / r2)
    at = 0
    for k, J in enumerate(pr.levels[1:], start=1):
        tk = theta[k]
        if tk == 0.0:
            g[k] = 0.0
        else:
            uk = v[at:at + J]
            g[k] = 2.0 / tk * (J - diag[at:at + J].sum() - nu * (uk @ uk) / r2)
        at += J
    return value, g
