"""The fit's global optimum against a dense maximisation of the marginal likelihood.

On random unbalanced data (groups of 1 to 15 rows, a random slope), the Gaussian
log-likelihood of y ~ N(X beta, Z D Z' + sigma^2 I) (ML), or the REML likelihood with beta
profiled by GLS, is built densely from its definition and maximised by scipy from several
starts over sigma^2 and the Cholesky factor of D (and beta for ML): independent of the
profiled criterion in theta that shrinkage.lmm optimises.  Ours must reach the best of
those maxima, and the estimates must agree.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

import shrinkage


def unbalanced(seed: int):
    rng = np.random.default_rng(seed)
    J = int(rng.integers(6, 14))
    sizes = rng.integers(1, 16, size=J)
    g = np.repeat([f"g{j:02d}" for j in range(J)], sizes)
    codes = np.repeat(np.arange(J), sizes)
    N = int(sizes.sum())
    x = rng.uniform(-2, 2, size=N)
    sd = 10 ** rng.uniform(-1.5, 0.3, size=2)
    b = rng.normal(size=(J, 2)) * sd
    y = 3 + 0.7 * x + b[codes, 0] + b[codes, 1] * x + rng.normal(size=N)
    return pd.DataFrame({"y": y, "x": x, "g": g}), codes


def dense_design(frame, codes):
    """y, X = [1, x] and the dense Z (N x 2J: each group's [1, x] in its own columns)."""
    y = frame["y"].to_numpy()
    N, J = y.size, codes.max() + 1
    X = np.column_stack([np.ones(N), frame["x"].to_numpy()])
    Zf = np.zeros((N, 2 * J))
    for j in range(J):
        m = codes == j
        Zf[m, 2 * j] = 1.0
        Zf[m, 2 * j + 1] = X[m, 1]
    return y, X, Zf


def dense_loglik(y, X, Zf, s2, D, method: str, beta=None) -> float:
    """The log-likelihood of y ~ N(X beta, Z (I_J kron D) Z' + s2 I) from its definition
    (ML, at beta), or the REML log-likelihood with beta profiled by GLS."""
    N, J = y.size, Zf.shape[1] // 2
    V = Zf @ np.kron(np.eye(J), D) @ Zf.T + s2 * np.eye(N)
    Lv = np.linalg.cholesky(V)
    Vi = np.linalg.inv(V)
    logdet = 2 * np.log(np.diag(Lv)).sum()
    if method == "ML":
        r = y - X @ beta
        return -0.5 * (logdet + r @ Vi @ r + N * np.log(2 * np.pi))
    A = X.T @ Vi @ X
    b = np.linalg.solve(A, X.T @ Vi @ y)
    r = y - X @ b
    p = X.shape[1]
    return -0.5 * (logdet + np.linalg.slogdet(A)[1] + r @ Vi @ r + (N - p) * np.log(2 * np.pi))


def dense_fit(frame, codes, method: str, starts: int = 6, seed: int = 0):
    """Maximise the dense (REML) log-likelihood over (log sigma^2, chol(D) [, beta])."""
    y, X, Zf = dense_design(frame, codes)

    def unpack(par):
        s2 = np.exp(par[0])
        C = np.array([[par[1], 0.0], [par[2], par[3]]])
        return s2, C @ C.T

    def negll(par):
        s2, D = unpack(par)
        return -dense_loglik(y, X, Zf, s2, D, method, par[4:])

    rng = np.random.default_rng(seed)
    ols = np.linalg.lstsq(X, y, rcond=None)[0]
    best = None
    for _ in range(starts):
        par = np.concatenate([[np.log(rng.uniform(0.3, 3))], rng.normal(size=3) * rng.uniform(0.05, 2)])
        if method == "ML":
            par = np.concatenate([par, ols])
        res = minimize(negll, par, method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 5000})
        res = minimize(negll, res.x, method="Nelder-Mead",
                       options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 40000, "maxfev": 40000})
        if best is None or res.fun < best.fun:
            best = res
    s2, D = unpack(best.x)
    return -best.fun, s2, D


@pytest.mark.slow
@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("seed", range(4))
def test_global_optimum_matches_dense_maximisation(seed, method):
    frame, codes = unbalanced(seed)
    ours = shrinkage.fit("y ~ x + (x | g)", data=frame, method=method)
    ll, s2, D = dense_fit(frame, codes, method, seed=seed)
    # never below the best dense maximum; equal to its optimisation accuracy
    assert ours.loglik >= ll - 1e-8 * abs(ll)
    assert ours.loglik == pytest.approx(ll, abs=1e-7 * abs(ll))
    assert ours.sigma2 == pytest.approx(s2, rel=1e-4)
    sd = np.sqrt(np.maximum(np.diag(ours.D), 1e-4 * ours.sigma2))
    np.testing.assert_array_less(np.abs(ours.D - D), 1e-3 * np.outer(sd, sd) + 1e-12)


def factor_data(levels: int, N: int, J: int, seed: int = 3):
    """y ~ x + h + (1 | g) with a fixed factor h of ``levels`` levels (every level twice or
    more), J groups: the wide fixed part a formula with many factor levels makes."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, J, size=N)
    h = np.arange(N) % levels
    x = rng.normal(size=N)
    y = 1 + 0.5 * x + rng.normal(size=J)[g] + rng.normal(size=levels)[h] + rng.normal(size=N)
    return pd.DataFrame({"y": y, "x": x, "h": [f"h{k:04d}" for k in h], "g": g}), g


def dense_profile(frame, codes, levels: int, method: str):
    """The profiled criterion in theta (V_theta = I + theta^2 Z Z', sigma^2 and beta
    profiled out) from the dense design: X = [1, x, treatment dummies of h], Z the group
    indicators; V^-1 by Woodbury and log|V| by the determinant lemma (J x J), the rest
    dense p x p.  Independent of the per-group cross-products and the compiled kernels."""
    y = frame["y"].to_numpy()
    N, J = y.size, codes.max() + 1
    h = frame["h"].str[1:].astype(int).to_numpy()
    X = np.column_stack([np.ones(N), frame["x"].to_numpy(), (h[:, None] == np.arange(1, levels)).astype(float)])
    Z = (codes[:, None] == np.arange(J)).astype(float)
    XtX, XtZ, Xty, ZtZ, Zty, yty = X.T @ X, X.T @ Z, X.T @ y, Z.T @ Z, Z.T @ y, y @ y
    p = X.shape[1]
    nu = N - p if method == "REML" else N

    def criterion(theta: float):
        K = np.eye(J) + theta ** 2 * ZtZ  # V^-1 = I - theta^2 Z K^-1 Z'
        XVX = XtX - theta ** 2 * XtZ @ np.linalg.solve(K, XtZ.T)
        XVy = Xty - theta ** 2 * XtZ @ np.linalg.solve(K, Zty)
        yVy = yty - theta ** 2 * Zty @ np.linalg.solve(K, Zty)
        beta = np.linalg.solve(XVX, XVy)
        r2 = yVy - XVy @ beta
        dev = np.linalg.slogdet(K)[1] + nu * (1 + np.log(2 * np.pi * r2 / nu))
        return (dev + np.linalg.slogdet(XVX)[1] if method == "REML" else dev), beta, r2 / nu

    return criterion, p


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("levels, N, J", [(40, 400, 12), pytest.param(1000, 2500, 10, marks=pytest.mark.slow)])
def test_a_fixed_factor_with_many_levels_matches_the_dense_profile(levels, N, J, method):
    """A fixed factor of 40 and of 1000 levels (p = 41, 1001): the kernels, generic in p,
    compile once per q (written out per (q, p), the 40-level fit did not end in 600 s);
    the fit's theta minimises the dense profiled criterion (a bounded 1-d search on it),
    and the criterion, beta and sigma^2 there are the dense ones."""
    from scipy.optimize import minimize_scalar

    frame, codes = factor_data(levels, N, J)
    ours = shrinkage.fit("y ~ x + h + (1 | g)", data=frame, method=method)
    criterion, p = dense_profile(frame, codes, levels, method)
    assert len(ours.fixef) == p
    dev, beta, s2 = criterion(float(ours.theta[0]))
    assert ours.deviance == pytest.approx(dev, rel=1e-10)
    np.testing.assert_allclose(ours.fixef.to_numpy(), beta, rtol=1e-8, atol=1e-8)
    assert ours.sigma2 == pytest.approx(s2, rel=1e-9)
    best = minimize_scalar(lambda t: criterion(t)[0], bounds=(0.0, 10.0), method="bounded",
                           options={"xatol": 1e-9})
    assert ours.deviance <= best.fun + 1e-9 * abs(best.fun)
    assert float(ours.theta[0]) == pytest.approx(best.x, rel=1e-4)
