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
