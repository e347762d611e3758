"""glmer's objective for one scalar random intercept per group, as a function of
(theta, beta): -2 log of the Laplace (nAGQ = 1) or adaptive Gauss-Hermite (nAGQ > 1)
approximation of the marginal likelihood, on lme4's scale.

With b_j = theta u_j, u_j ~ N(0, 1), the penalised deviance of group j is
f_j(u) = -2 sum_i loglik(eta_i) + u^2, eta_i = x_i'beta + offset_i + theta u.  It is convex
in u (the weights are positive), so its minimiser, the conditional mode u_j*, is found by
Newton's method on each group at once (PIRLS: derivations/glmm_pirls.py):
u <- u - (u - theta S_j) / H_j, S_j = sum_i score_i, H_j = 1 + theta^2 sum_i weight_i.
Then (lme4's Laplace and glmerAGQ)

  nAGQ = 1:  D = sum_j f_j(u_j*) + log H_j               (the full log-likelihood)
  nAGQ = K:  D = sum_j [c_j(u_j*) + log H_j - 2 log M_j]  (deviance residuals: minus the
             saturated model), M_j = sum_k w_k e^{z_k^2/2} e^{-(c_j(u_j* + z_k/sqrt(H_j)) - c_j(u_j*))/2}

with c_j(u) = sum_i devres_i + u^2 and (z_k, w_k) the Gauss-Hermite rule for N(0, 1).
Everything is a pass over the rows summed per group by np.bincount.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..errors import InputError

__all__ = ["Problem", "Modes", "modes", "laplace", "agq", "gh_rule"]

NEWTON_TOL = 1e-11  # on the Newton step in u (u is on the N(0, 1) scale)
NEWTON_MAXIT = 200
SAFE_STEP = 1e-3  # below this Newton's step on a smooth convex f_j is in its quadratic region: not checked
COMPILED_ROWS = 20_000  # from this many rows the Laplace objective runs compiled (kernels.py; numba's import repays)


@dataclass(frozen=True, eq=False)
class Problem:
    """The data of a fit: response y (a proportion for the binomial), prior weights m
    (trials), offset, X (N, p), group codes (N,) into J groups, the family."""

    family: object
    y: np.ndarray
    m: np.ndarray
    offset: np.ndarray
    X: np.ndarray
    codes: np.ndarray
    J: int

    @cached_property
    def constant(self) -> float:
        """The log-likelihood's part free of eta (log choose, log y!), summed once."""
        return float(np.sum(self.family.constant(self.y, self.m)))

    def eta0(self, beta) -> np.ndarray:
        return self.X @ beta + self.offset

    def per_group(self, v) -> np.ndarray:
        return np.bincount(self.codes, weights=v, minlength=self.J)

    @cached_property
    def compiled(self):
        """The compiled pass (kernels.Pass: the rows sorted by group, once) for a problem of
        COMPILED_ROWS rows or more, else None (numpy's passes)."""
        return None if self.y.size < COMPILED_ROWS else compiled_pass(self)


def compiled_pass(pr: Problem):
    """kernels.Pass for ``pr``, iterating the modes as :func:`modes` does."""
    from .kernels import Pass

    return Pass(pr, NEWTON_TOL, SAFE_STEP, NEWTON_MAXIT)


@dataclass(frozen=True, eq=False)
class Modes:
    """The conditional modes u* at (theta, beta) and the sums there: S_j (score), W_j
    (weight), W1_j (sum of dweight), the row pieces, and the linear predictor."""

    u: np.ndarray
    eta: np.ndarray
    S: np.ndarray
    W: np.ndarray
    H: np.ndarray
    score: np.ndarray
    weight: np.ndarray
    dweight: np.ndarray


def _fj(pr: Problem, eta0, theta, u):
    """f_j(u) per group: -2 sum loglik + u^2, without the constant."""
    return -2 * pr.per_group(pr.family.kernel(eta0 + theta * u[pr.codes], pr.y, pr.m)) + u * u


def modes(pr: Problem, theta: float, beta, u0=None) -> Modes:
    """The conditional modes by Newton's method on every group at once; a long step that
    does not lower f_j is halved (the logistic log-likelihood is flat far from the mode,
    where a full Newton step can overshoot)."""
    eta0 = pr.eta0(beta)
    u = np.zeros(pr.J) if u0 is None else np.array(u0, dtype=float)
    f = None
    for _ in range(NEWTON_MAXIT):
        s, w, _ = pr.family.pieces(eta0 + theta * u[pr.codes], pr.y, pr.m)
        step = (u - theta * pr.per_group(s)) / (1 + theta * theta * pr.per_group(w))
        size = np.max(np.abs(step), initial=0.0)
        if size > SAFE_STEP:  # a long step is checked (and halved where f_j rose); a short one is Newton's own
            f = _fj(pr, eta0, theta, u) if f is None else f
            f_new = _fj(pr, eta0, theta, u - step)
            for _ in range(60):
                worse = f_new > f + 1e-12 * (1 + np.abs(f))
                if not worse.any():
                    break
                step = np.where(worse, step / 2, step)
                f_new = _fj(pr, eta0, theta, u - step)
            f = f_new
        else:
            f = None
        u = u - step
        if size < NEWTON_TOL:
            break
    else:
        raise InputError(f"the conditional modes did not converge in {NEWTON_MAXIT} Newton steps "
                         f"(theta = {theta:.6g}); the data may be separated")
    eta = eta0 + theta * u[pr.codes]
    s, w, dw = pr.family.pieces(eta, pr.y, pr.m)
    W = pr.per_group(w)
    return Modes(u, eta, pr.per_group(s), W, 1 + theta * theta * W, s, w, dw)


def laplace(pr: Problem, theta: float, beta, u0=None, gradient: bool = False):
    """The Laplace objective (lme4's nAGQ = 1 deviance) and, if asked, its exact gradient
    in (theta, beta): the envelope theorem for f_j at its minimum, plus log H_j's
    derivative through eta = x'beta + theta u*(theta, beta), with the implicit
    derivatives du*/dbeta = -theta sum_i w_i x_i / H_j and
    du*/dtheta = (S_j - theta u_j W_j) / H_j.  A large problem: the same in one compiled pass."""
    if pr.compiled is not None:
        return pr.compiled.laplace(theta, beta, u0, gradient)
    md = modes(pr, theta, beta, u0)
    value = -2 * (np.sum(pr.family.kernel(md.eta, pr.y, pr.m)) + pr.constant) + md.u @ md.u + np.sum(np.log(md.H))
    if not gradient:
        return value, md
    c, u, H = pr.codes, md.u, md.H
    t2 = theta * theta
    # d log H_j = (theta^2 sum_i dw_i d eta_i + 2 theta W_j d theta) / H_j
    a = (t2 * md.dweight / H[c])                                   # per row
    du_db = -theta * (pr.X * md.weight[:, None])                   # rows, summed per group below
    Du_db = np.stack([pr.per_group(du_db[:, k]) for k in range(pr.X.shape[1])], axis=1) / H[:, None]
    deta_db = pr.X + theta * Du_db[c]
    g_beta = -2 * (md.score @ pr.X) + a @ deta_db
    du_dt = (md.S - theta * u * md.W) / H
    deta_dt = u[c] + theta * du_dt[c]
    g_theta = -2 * (md.score @ u[c]) + a @ deta_dt + np.sum(2 * theta * md.W / H)
    return value, md, np.concatenate([[g_theta], g_beta])


def gh_rule(k: int):
    """Gauss-Hermite nodes and weights for the standard normal density (lme4's GHrule):
    sum_k w_k g(z_k) = E g(Z), exact for polynomials of degree 2k - 1."""
    x, w = np.polynomial.hermite.hermgauss(k)
    return np.sqrt(2.0) * x, w / np.sqrt(np.pi)


def agq(pr: Problem, theta: float, beta, nagq: int, u0=None):
    """lme4's glmerAGQ deviance at (theta, beta) with ``nagq`` nodes per group."""
    md = modes(pr, theta, beta, u0)
    z, w = gh_rule(nagq)
    eta0 = md.eta - theta * md.u[pr.codes]
    dev = pr.family.devres

    def c_of(u):
        return pr.per_group(dev(eta0 + theta * u[pr.codes], pr.y, pr.m)) + u * u

    c0 = c_of(md.u)
    sd = 1 / np.sqrt(md.H)
    mult = np.zeros(pr.J)
    for zk, wk in zip(z, w):
        mult += wk if zk == 0 else wk * np.exp(zk * zk / 2 - (c_of(md.u + zk * sd) - c0) / 2)
    return float(np.sum(c0) + np.sum(np.log(md.H)) - 2 * np.sum(np.log(mult))), md
