"""The profiled criterion in theta, its gradient, the BLUPs and conditional covariances.

Model y_j = X_j beta + Z_j b_j + eps_j, b_j ~ N(0, D), eps_j ~ N(0, sigma^2 I), with
lme4's relative covariance factor D = sigma^2 Lambda Lambda' (Lambda lower-triangular,
block-diagonal when the formula has several bar terms for the factor, entries theta).

Penalised least squares (Bates et al. 2015, J. Stat. Softw. 67(1), sec. 3; lme4's PLS,
Henderson's equations in u = Lambda^-1 b), group by group, from cross-products alone:

  (1) S_j = Lambda' Z_j'Z_j Lambda + I = L_j L_j'                       (Cholesky)
  (2) Y_j = L_j^-1 Lambda' [Z_j'X_j | Z_j'y_j]                          (R_ZX,j | c_u,j)
  (3) A = X'X - sum_j Y_jx'Y_jx = X' V_theta^-1 X,  V_theta = I + Z Lambda Lambda' Z'
  (4) beta_hat = A^-1 c,  c = X'y - sum_j Y_jx'Y_jy                     (GLS = PLS)
  (5) r^2 = y'y - sum_j |Y_jy|^2 - c' A^-1 c                           (penalised RSS)
  (6) ML:   -2 l(theta)   = log|L|^2 + N (1 + log(2 pi r^2 / N))
      REML: -2 l_R(theta) = log|L|^2 + log|A| + (N-p)(1 + log(2 pi r^2 / (N-p)))
      with log|L|^2 = sum_j log|S_j|, sigma_hat^2 = r^2/N (ML) or r^2/(N-p) (REML).

Gradient (dLambda/dtheta_k = E_rc, the unit matrix at theta_k's entry; derived and checked in
the document lmm_gradient, steps d_logdet_L, d_r2 (the envelope argument), d_logdet_RX):
  (7) d log|L|^2 = 2 [sum_j Z_j'Z_j Lambda S_j^-1]_rc
  (8) d r^2      = -2 [sum_j (Z_j'e_j) u_j']_rc   (envelope theorem; e_j the residual,
                   u_j = S_j^-1 Lambda' Z_j'(y_j - X_j beta_hat), Z_j'e_j = Z_j'(y_j - X_j beta) - Z_j'Z_j Lambda u_j)
  (9) d log|A|   = -2 [sum_j W_j A^-1 W_j' Lambda]_rc,   W_j = Z_j'V_j^-1 X_j
                 = Z_j'X_j - Z_j'Z_j Lambda S_j^-1 Lambda' Z_j'X_j.

Steps (1)-(2), the BLUPs and condVar, and the sums over groups of (7)-(8) run group by
group in kernels compiled for the model's q (any p) whose formulas the code generator
writes from those derivations' steps (:mod:`.pls_kernels`, :mod:`.derived`); what is left
here is the p x p algebra of (3)-(6) and (9)'s sum_j W_j A^-1 W_j' (BLAS on the W_j the
kernel stores).  O(J q^3 + J q p^2 + p^3) per evaluation, independent of N; from
pls_kernels.BLAS_P fixed effects on, the J q p^2 sum of (3) is a BLAS product of the
blocks the kernel stores too (a 1000-level fixed factor: seconds a fit, not a minute).
The summary (1)-(9) above is the route, not the code: the numbers in front of the sums,
M_j = S_j, W_j, u_j come from the steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from .crossprod import CrossProducts

__all__ = ["Layout", "Problem", "prepare", "make_lambda", "deviance", "gradient", "profiled_ml",
           "profiled_reml", "deviance_and_gradient", "gradient_parts", "beta_hat", "sigma2_hat", "blup", "conditional_cov", "evaluate",
           "deviances"]

LOG2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class Layout:
    """Where theta's entries sit in Lambda: lme4's order (block by block, each block's
    lower triangle column by column); ``lower`` is 0 on diagonals, -inf elsewhere."""

    q: int
    blocks: tuple
    rows: np.ndarray
    cols: np.ndarray

    @classmethod
    def of(cls, blocks) -> "Layout":
        rows, cols, start = [], [], 0
        for size in blocks:
            for c in range(size):
                for r in range(c, size):
                    rows.append(start + r)
                    cols.append(start + c)
            start += size
        return cls(start, tuple(blocks), np.array(rows, dtype=int), np.array(cols, dtype=int))

    @property
    def size(self) -> int:
        return self.rows.size

    @property
    def diagonal(self) -> np.ndarray:
        return self.rows == self.cols

    @property
    def lower(self) -> np.ndarray:
        return np.where(self.diagonal, 0.0, -np.inf)

    def start(self) -> np.ndarray:
        """lme4's starting value: identity (1 on diagonals, 0 elsewhere)."""
        return self.diagonal.astype(float)

    def from_lambda(self, lam: np.ndarray) -> np.ndarray:
        return np.asarray(lam)[self.rows, self.cols].copy()


def make_lambda(theta, layout: Layout) -> np.ndarray:
    """Lambda (q x q, lower-triangular, block-diagonal) from theta."""
    lam = np.zeros((layout.q, layout.q))
    lam[layout.rows, layout.cols] = theta
    return lam


@dataclass(frozen=True, eq=False)
class Problem:
    """Cross-products rearranged once for the criterion: per-group blocks as (J, a, b)
    arrays (and (a, b, J) views), totals over groups, N, p, and the layout of theta."""

    cp: CrossProducts
    layout: Layout
    ZtZ_g: np.ndarray  # (J, q, q), group first: the compiled steps' layout (.pls_kernels)
    ZtXy_g: np.ndarray  # (J, q, p+1): [Z'X | Z'y]
    XtX: np.ndarray  # (p, p), sum over groups
    Xty: np.ndarray  # (p,)
    yty: float
    N: int
    p: int
    scratch: dict = field(default_factory=dict, repr=False)  # reused L_j, Y_j of pieces nobody keeps

    @property
    def ZtZ(self) -> np.ndarray:
        """(q, q, J): components first, for the numpy steps vectorised over groups (a view)."""
        return self.ZtZ_g.transpose(1, 2, 0)

    @property
    def ZtXy(self) -> np.ndarray:
        """(q, p+1, J), a view."""
        return self.ZtXy_g.transpose(1, 2, 0)


def prepare(cp: CrossProducts, layout: Layout | None = None, z_centre=None) -> Problem:
    """Rearrange the cross-products for the criterion (once per fit), with Z's columns
    about ``z_centre`` (default 0: the user's own columns, so theta is lme4's theta; the
    fit passes its centres, see .centring), moved there exactly by CrossProducts.recentre."""
    layout = layout or Layout.of((cp.q,))
    if layout.q != cp.q:
        raise InputError(f"theta layout is for {layout.q} random-effect columns, the data have {cp.q}")
    cp = cp.recentre(z_centre=np.zeros(cp.q) if z_centre is None else z_centre)
    J, q, p = cp.n_groups, cp.q, cp.p
    ZtXy = np.empty((J, q, p + 1))
    for a in range(q):  # one strided copy per entry: numpy's transposing copy of the whole was 5x slower
        for b in range(p):
            ZtXy[:, a, b] = cp.XtZ[:, b, a]
        ZtXy[:, a, p] = cp.Zty[:, a]
    return Problem(cp, layout, np.ascontiguousarray(cp.ZtZ, dtype=float), ZtXy,
                   np.asarray(cp.XtX), np.asarray(cp.Xty), float(cp.yty), cp.n_obs, p)


def _as_problem(stats) -> Problem:
    return stats if isinstance(stats, Problem) else prepare(stats)


# --- small dense linear algebra, vectorised over the last axis (groups) ---------------
def _lsolve(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """L^-1 B for lower-triangular L (q, q, J) and B (q, m, J)."""
    Y = np.empty_like(B)
    for i in range(L.shape[0]):
        acc = B[i] - (L[i, :i, None] * Y[:i]).sum(axis=0) if i else B[i]
        Y[i] = acc / L[i, i]
    return Y


@dataclass(frozen=True, eq=False)
class Pieces:
    """Steps (1)-(5) at one theta: Lambda, L_j, Y_j, A, its Cholesky factor R_A (A = R_A R_A',
    lower-triangular), beta_hat
    (centred X), r^2, log|L|^2, log|A|."""

    lam: np.ndarray
    L_g: np.ndarray | None  # (J, q, q); None for an evaluation that keeps no pieces
    Y_g: np.ndarray | None  # (J, q, p+1)
    A: np.ndarray
    RA: np.ndarray
    beta: np.ndarray
    r2: float
    logdet_L: float
    logdet_A: float
    problem: Problem | None = None  # the cross-products these are of (the BLUPs read Z_j'X_j, Z_j'y_j)

    @property
    def L(self) -> np.ndarray | None:
        """(q, q, J), components first (a view)."""
        return None if self.L_g is None else self.L_g.transpose(1, 2, 0)

    @property
    def Y(self) -> np.ndarray | None:
        """(q, p+1, J), a view."""
        return None if self.Y_g is None else self.Y_g.transpose(1, 2, 0)


def evaluate(theta, stats, keep: bool = True, scratch: bool = False) -> Pieces:
    """Steps (1)-(5) of the module docstring at theta; without ``keep`` the pieces L_j,
    Y_j (what the gradient, the BLUPs and condVar need) are not stored: L and Y are None.
    With ``scratch`` they are stored in the problem's one reused pair of arrays (for a
    caller done with them before the next such evaluation: fresh arrays of this size cost
    their page faults again, on every evaluation)."""
    pr = _as_problem(stats)
    theta = np.asarray(theta, dtype=float)
    if theta.shape != (pr.layout.size,):
        raise InputError(f"theta must have {pr.layout.size} entries, got shape {theta.shape}")
    from .pls_kernels import BLAS_P, pls_kernels  # numba: loaded with the first fit

    lam = make_lambda(theta, pr.layout)
    J, q, m = pr.ZtXy_g.shape
    if m - 1 >= BLAS_P:
        return _evaluate_blas(pr, lam, keep, scratch)
    criterion_terms = pls_kernels(q, m - 1)[0]
    rows = J if keep else 1
    if keep and scratch:
        if "L" not in pr.scratch:
            pr.scratch.update(L=np.empty((J, q, q)), Y=np.empty((J, q, m)))
        L, Y = pr.scratch["L"], pr.scratch["Y"]
    else:
        L, Y = np.empty((rows, q, q)), np.empty((rows, q, m))
    G = np.empty((m, m))
    logdet_L = criterion_terms(lam, pr.ZtZ_g, pr.ZtXy_g, L, Y, G, keep)  # (1), (2) and sum_j Y_j'Y_j
    if math.isnan(logdet_L):  # S_j >= I in exact arithmetic: lost to rounding
        raise InputError(_LOST)
    return _completed(pr, lam, L if keep else None, Y if keep else None, G, logdet_L)


def _evaluate_blas(pr: Problem, lam, keep: bool, scratch: bool) -> Pieces:
    """:func:`evaluate` for many fixed effects: the kernel stores every Y_j (J, q, p+1) and
    G = sum_j Y_j'Y_j is one BLAS product Yf'Yf of the stacked Yf (Jq, p+1), not the kernel's
    O(J q p^2) scalar loop (at p = 1000, 10x faster).  Without ``keep`` Y lives in a scratch
    array of its own (so pieces kept in the shared one stay valid)."""
    from .pls_kernels import blocks_kernels

    J, q, m = pr.ZtXy_g.shape
    key = ("L", "Y") if keep and scratch else ("L1", "Yb")
    if keep and not scratch:
        L, Y = np.empty((J, q, q)), np.empty((J, q, m))
    else:
        if key[1] not in pr.scratch:
            pr.scratch.update({key[0]: np.empty((J if keep else 1, q, q)), key[1]: np.empty((J, q, m))})
        L, Y = pr.scratch[key[0]], pr.scratch[key[1]]
    logdet_L = blocks_kernels(q)(lam, pr.ZtZ_g, pr.ZtXy_g, L, Y, keep)  # (1), (2)
    if math.isnan(logdet_L):
        raise InputError(_LOST)
    Yf = Y.reshape(J * q, m)
    G = Yf.T @ Yf  # sum_j Y_j'Y_j
    return _completed(pr, lam, L if keep else None, Y if keep else None, G, logdet_L)


_LOST = ("Lambda'Z_j'Z_j Lambda + I lost its positive definiteness to rounding: the random "
         "terms' columns are far from zero relative to their spread (centre them)")


def _completed(pr: Problem, lam, L, Y, G, logdet_L) -> Pieces:
    """Steps (3)-(5) from the sum G of Y_j'Y_j: the p x p algebra."""
    p = pr.p
    A = pr.XtX - G[:p, :p]  # (3)
    c = pr.Xty - G[:p, p]
    try:
        RA = np.linalg.cholesky(A)
    except np.linalg.LinAlgError:
        raise InputError("X'V^-1X is not positive definite: the fixed-effect columns are collinear") from None
    w, beta = _solved(RA, c)  # (4)
    r2 = pr.yty - G[p, p] - float(w @ w)  # (5)
    logdet_A = 2.0 * float(np.log(np.diag(RA)).sum())
    return Pieces(lam, L, Y, A, RA, beta, float(r2), float(logdet_L), logdet_A, pr)


def _solved(RA: np.ndarray, c: np.ndarray) -> tuple:
    """(w = R_A^-1 c, beta = R_A^-T w): two triangular solves, no inverse of R_A (at p = 1000
    an inverse was the largest p-sized step; the gradient solves for its W_j likewise)."""
    from scipy.linalg import solve_triangular

    w = solve_triangular(RA, c, lower=True, check_finite=False)
    return w, solve_triangular(RA, w, lower=True, trans="T", check_finite=False)


def deviances(thetas, stats, method: str = "REML") -> list:
    """:func:`deviance` at each theta (inf where it cannot be evaluated in floating
    point), from one sweep over the groups for them all (the optimiser's starts)."""
    from .pls_kernels import pls_kernels

    pr = _as_problem(stats)
    J, q, m = pr.ZtXy_g.shape
    lams = np.array([make_lambda(np.asarray(t, dtype=float), pr.layout) for t in thetas]).reshape(-1, q, q)
    G, logdet, bad = np.empty((len(lams), m, m)), np.empty(len(lams)), np.empty(len(lams), dtype=np.bool_)
    pls_kernels(q, m - 1)[4](lams, pr.ZtZ_g, pr.ZtXy_g, G, logdet, bad)
    out = []
    for k in range(len(lams)):
        try:  # (bad: S_j lost to rounding, as evaluate's error)
            out.append(np.inf if bad[k] else _deviance(_completed(pr, lams[k], None, None, G[k], logdet[k]), pr, method))
        except InputError:
            out.append(np.inf)
    return out


def deviance(theta, stats, method: str = "REML") -> float:
    """-2 x the profiled log-likelihood (ML) or REML criterion at theta: step (6)."""
    pr = _as_problem(stats)
    return _deviance(evaluate(theta, pr, keep=False), pr, method)


def _deviance(pc: Pieces, pr: Problem, method: str) -> float:
    """Step (6): lmm_profile's ml_deviance or reml_criterion, generated (.derived)."""
    from .pls_kernels import criteria

    if not pc.r2 > 0:
        raise InputError("the penalised residual sum of squares is 0: the model fits the data exactly")
    f = criteria(pr.layout.q, pr.p)
    if method == "REML":
        return f.reml_criterion(pc.logdet_L, pc.logdet_A, pc.r2, pr.N, pr.p)
    return f.ml_deviance(pc.logdet_L, pc.r2, pr.N)


def profiled_ml(theta, stats) -> float:
    """The profiled ML deviance -2 l(theta): step (6), ML."""
    return deviance(theta, stats, "ML")


def profiled_reml(theta, stats) -> float:
    """The profiled REML criterion -2 l_R(theta): step (6), REML."""
    return deviance(theta, stats, "REML")


def beta_hat(theta, stats) -> np.ndarray:
    """GLS beta_hat(theta) for the centred X (step (4)); CrossProducts.uncentre maps it back."""
    return evaluate(theta, stats).beta


def sigma2_hat(theta, stats, method: str = "REML") -> float:
    """sigma_hat^2(theta): lmm_profile's sigma2_ml = r^2 / N or sigma2_reml = r^2 / (N - p)."""
    from .pls_kernels import criteria

    pr = _as_problem(stats)
    r2, f = evaluate(theta, pr).r2, criteria(pr.layout.q, pr.p)
    return f.sigma2_reml(r2, pr.N, pr.p) if method == "REML" else f.sigma2_ml(r2, pr.N)


def blups_at(pc: Pieces, sigma2: float, beta=None, transform=None) -> tuple[np.ndarray, np.ndarray]:
    """b_j = Lambda u_j, u_j = M_j^-1 Lambda' Z_j'(y_j - X_j beta), and sigma^2 Lambda M_j^-1 Lambda',
    (J, q) and (J, q, q), in one call of the compiled kernel (a fit needs both); beta for
    the centred X (default beta_hat(theta)).  With ``transform`` (q x q) T: T b_j and
    T (sigma^2 Lambda M_j^-1 Lambda') T' (the fit's map from centred columns back to the user's)."""
    from .pls_kernels import pls_kernels

    J, q, m = pc.problem.ZtXy_g.shape
    b, cond = np.empty((J, q)), np.empty((J, q, q))
    beta = pc.beta if beta is None else np.asarray(beta, dtype=float)
    T = np.eye(q) if transform is None else np.ascontiguousarray(transform, dtype=float)
    pls_kernels(q, m - 1)[3](pc.lam, pc.problem.ZtXy_g, pc.L_g, beta, float(sigma2), T, b, cond)
    return b, cond


def blup(theta, stats, beta=None) -> np.ndarray:
    """The conditional modes b_j = Lambda u_j (lme4's ranef), (J, q); beta for the
    centred X (default beta_hat(theta)).  Completing the square in b_j (Henderson)."""
    return blup_at(evaluate(theta, stats), beta)


def blup_at(pc: Pieces, beta=None) -> np.ndarray:
    """:func:`blup` from the pieces at theta (a fit reuses the evaluation at theta_hat)."""
    return blups_at(pc, 1.0, beta)[0]


def conditional_cov(theta, stats, sigma2: float) -> np.ndarray:
    """Var(b_j | y) = sigma^2 Lambda S_j^-1 Lambda' with beta known (lme4's condVar), (J, q, q)."""
    return conditional_cov_at(evaluate(theta, stats), sigma2)


def conditional_cov_at(pc: Pieces, sigma2: float) -> np.ndarray:
    """:func:`conditional_cov` from the pieces at theta."""
    return blups_at(pc, sigma2)[1]


def gradient(theta, stats, method: str = "REML") -> np.ndarray:
    """d deviance / d theta: steps (7)-(9), at the entries of theta."""
    pr = _as_problem(stats)
    return _gradient(evaluate(theta, pr, scratch=True), pr, method)


def deviance_and_gradient(theta, stats, method: str = "REML") -> tuple[float, np.ndarray]:
    """Both at once (one pass of steps (1)-(5)), for the optimiser."""
    pr = _as_problem(stats)
    pc = evaluate(theta, pr, scratch=True)
    return _deviance(pc, pr, method), _gradient(pc, pr, method)


def _gradient(pc: Pieces, pr: Problem, method: str) -> np.ndarray:
    """lmm_gradient's ml_gradient or reml_gradient (generated, .derived) of the steps' values."""
    from .pls_kernels import criteria

    d_logdet_L, d_r2, d_logdet_RX = _gradient_steps(pc, pr, method == "REML")
    f = criteria(pr.layout.q, pr.p)
    if method == "REML":
        return f.reml_gradient(d_logdet_L, d_r2, d_logdet_RX, pc.r2, pr.N, pr.p)
    return f.ml_gradient(d_logdet_L, d_r2, pc.r2, pr.N, pr.p)


def gradient_parts(pc: Pieces, pr: Problem, method: str) -> tuple[np.ndarray, np.ndarray]:
    """d(log|L|^2 [+ log|A|, REML]) / d theta (steps (7), (9)) and d r^2 / d theta (step (8)),
    so that the profiled gradient is the first + (nu / r^2) x the second, and the gradient
    of the deviance at a given sigma (for profiles) the first + the second / sigma^2."""
    d_logdet_L, d_r2, d_logdet_RX = _gradient_steps(pc, pr, method == "REML")
    return (d_logdet_L if d_logdet_RX is None else d_logdet_L + d_logdet_RX), d_r2


def _gradient_steps(pc: Pieces, pr: Problem, reml: bool) -> tuple:
    """The values of lmm_gradient's d_logdet_L, d_r2 and (REML, else None) d_logdet_RX at
    theta's entries.  The kernel adds the first two over the groups and stores the W_j of
    the third, whose sum sum_j W_j A^-1 W_j' is BLAS's (:func:`_sum_WAinvW`)."""
    from .pls_kernels import pls_kernels, rx_scale

    q, p = pr.layout.q, pr.p
    dlog, dr2 = np.empty((2, q, q))
    J = pr.ZtZ_g.shape[0]
    W = np.empty((J if reml else 1, q, p))
    pls_kernels(q, p)[1](pc.lam, pr.ZtZ_g, pr.ZtXy_g, pc.L_g, pc.beta, W, reml, dlog, dr2)  # (7)-(9)
    at = (pr.layout.rows, pr.layout.cols)
    drx = (rx_scale(q, p) * (_sum_WAinvW(W, pc.RA) @ pc.lam))[at] if reml else None
    return dlog[at], dr2[at], drx


def _sum_WAinvW(W: np.ndarray, RA: np.ndarray) -> np.ndarray:
    """sum_j W_j A^-1 W_j' = sum_j V_j V_j' with V_j = W_j R_A^-T (A = R_A R_A'), for W (J, q, p):
    below BLAS_P fixed effects R_A^-T by inversion and one product (a triangular solve with
    2J right-hand sides took 14 ms at J = 1e4, p = 3), beyond by one triangular solve (at
    p = 1000 an inverse was the largest p-sized step)."""
    from .pls_kernels import BLAS_P

    J, q, p = W.shape
    Wf = W.reshape(J * q, p)
    if p < BLAS_P:
        V = Wf @ np.linalg.inv(RA).T
    else:
        from scipy.linalg import solve_triangular

        V = solve_triangular(RA, Wf.T, lower=True, check_finite=False).T
    Vt = np.ascontiguousarray(V.reshape(J, q, p).transpose(0, 2, 1)).reshape(J * p, q)
    return Vt.T @ Vt
