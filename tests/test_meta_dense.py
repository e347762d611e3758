"""shrinkage.meta against an independent dense oracle, over many random draws.

The oracle writes the model from its definition, y ~ N(X beta, diag(v) + tau^2 I), with
dense k x k matrices: ML maximises the multivariate normal log-density over (beta, tau^2)
with scipy (tau^2 >= 0, bounded search plus the boundary); REML is the log-density of the
error contrasts K'y ~ N(0, K'VK), K an orthonormal basis of the complement of X (which is
metafor's REML log-likelihood, its (1/2) log det X'X included).  The moment estimators are evaluated from the
k x k matrix P itself, and Paule-Mandel's root by scipy's brentq on Q(tau^2) - (k - p).
Our log-likelihood is never below the oracle's maximum, and tau^2 agrees to the
optimiser's precision; the closed forms agree to 1e-10.  A wrong weight is rejected.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg, optimize, stats

import shrinkage
from shrinkage.metaanalysis import estimators

DRAWS = 60


def draw(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(3, 25))
    p = int(rng.integers(1, min(3, k - 1) + 1))
    X = np.column_stack([np.ones(k)] + [rng.normal(size=k) for _ in range(p - 1)])
    v = rng.gamma(2.0, 0.05, size=k) * 10 ** rng.uniform(-1, 1)
    tau2 = rng.choice([0.0, 0.3 * v.mean(), 3 * v.mean()])
    y = X @ rng.normal(size=p) + rng.normal(scale=np.sqrt(v + tau2))
    return X, y, v


def dense_loglik(X, y, v, t, reml):
    V = np.diag(v + t)
    if not reml:
        Vi = np.linalg.inv(V)
        beta = np.linalg.solve(X.T @ Vi @ X, X.T @ Vi @ y)
        return stats.multivariate_normal(X @ beta, V).logpdf(y)
    K = linalg.null_space(X.T)
    return stats.multivariate_normal(np.zeros(K.shape[1]), K.T @ V @ K).logpdf(K.T @ y)


def oracle_max(X, y, v, reml):
    top = 100 * (np.var(y) + v.max())
    f = lambda t: -dense_loglik(X, y, v, t, reml)  # noqa: E731
    grid = np.concatenate([[0.0], np.geomspace(1e-6, top, 60)])
    values = [f(t) for t in grid]
    i = int(np.argmin(values))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    best = optimize.minimize_scalar(f, bounds=(lo, hi), method="bounded", options={"xatol": 1e-12})
    return min([(best.fun, best.x), (values[0], 0.0)])


def dense_P(X, w):
    W = np.diag(w)
    return W - W @ X @ np.linalg.solve(X.T @ W @ X, X.T @ W)


@pytest.mark.parametrize("method", ["ML", "REML"])
def test_likelihood_estimates_are_the_dense_maximum(method):
    for seed in range(DRAWS):
        X, y, v = draw(seed)
        r = shrinkage.meta(y, v, method, mods=X[:, 1:] if X.shape[1] > 1 else None)
        neg, t_oracle = oracle_max(X, y, v, method == "REML")
        ll_ours = dense_loglik(X, y, v, r.tau2, method == "REML")
        assert abs(ll_ours - r.loglik) <= 1e-9 * (1 + abs(ll_ours)), (seed, ll_ours, r.loglik)
        assert ll_ours >= -neg - 1e-10 * (1 + abs(neg)), (seed, method, ll_ours, -neg)
        assert abs(r.tau2 - t_oracle) <= 1e-4 * (v.mean() + t_oracle), (seed, r.tau2, t_oracle)


def test_moment_estimators_equal_the_dense_formulas():
    for seed in range(DRAWS):
        X, y, v = draw(seed)
        k, p = X.shape
        mods = X[:, 1:] if p > 1 else None
        P = dense_P(X, 1 / v)
        Q = y @ P @ y
        want = {"DL": max(0.0, (Q - (k - p)) / np.trace(P)), "HS": max(0.0, (Q - k) / np.sum(1 / v))}
        P0 = np.eye(k) - X @ np.linalg.solve(X.T @ X, X.T)
        want["HE"] = max(0.0, (y @ P0 @ y - np.trace(P0 @ np.diag(v))) / (k - p))
        t0 = np.var(y, ddof=1) * (k - 1) / k
        want["SJ"] = t0 * (y @ dense_P(X, 1 / (v + t0)) @ y) / (k - p)
        q = lambda t: y @ dense_P(X, 1 / (v + t)) @ y - (k - p)  # noqa: E731
        want["PM"] = 0.0 if q(0) <= 0 else optimize.brentq(q, 0, 1e6 * (np.var(y) + v.max()), xtol=1e-15, rtol=1e-15)
        want["EB"] = want["PM"]
        for method, t in want.items():
            got = shrinkage.meta(y, v, method, mods=mods).tau2
            assert abs(got - t) <= 1e-10 * max(t, v.mean()), (seed, method, got, t)
            if t == 0:
                assert got == 0.0, (seed, method, got)


def test_blup_is_the_dense_conditional_mean():
    """E[theta | y] with beta at its GLS estimate, and metafor's prediction variance, from dense matrices."""
    for seed in range(20):
        X, y, v = draw(seed)
        r = shrinkage.meta(y, v, "REML", mods=X[:, 1:] if X.shape[1] > 1 else None)
        t = r.tau2
        V = np.diag(v + t)
        beta = np.linalg.solve(X.T @ np.linalg.solve(V, X), X.T @ np.linalg.solve(V, y))
        mean = X @ beta + t * np.linalg.solve(V, y - X @ beta)
        assert np.allclose(r.blup, mean, rtol=1e-10, atol=1e-12 * np.abs(y).max())
        # Var(theta_hat - theta): the dense covariance of the prediction error L y - theta.
        Vb = np.linalg.inv(X.T @ np.linalg.solve(V, X))
        L = np.diag(t / (v + t)) + np.diag(v / (v + t)) @ X @ Vb @ X.T @ np.linalg.inv(V)
        k = len(y)
        # theta_hat - theta = (L - I) u + L e with u ~ N(0, t I), e ~ N(0, diag v)
        cov = t * (L - np.eye(k)) @ (L - np.eye(k)).T + L @ np.diag(v) @ L.T
        assert np.allclose(r.blup_se ** 2, np.diag(cov), rtol=1e-9), seed


def test_a_wrong_weight_is_rejected(monkeypatch):
    """A weight 1/(v + 1.01 tau^2) moves the maximum off the dense one."""
    from shrinkage import numeric

    real = numeric._meta_weight
    monkeypatch.setattr(estimators.numeric, "_meta_weight", lambda v, t: real(v, 1.01 * t))
    with pytest.raises(AssertionError):
        test_likelihood_estimates_are_the_dense_maximum("REML")
