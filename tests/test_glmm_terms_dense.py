"""The Laplace objective for vector and several random-effect terms against a dense
computation that shares none of its code: Z and Lambda as full matrices, the conditional
mode by dense Newton steps on -2 log p(y | u) + u'u (log p from scipy.stats' pmfs), log|I + A'WA|
by slogdet; at random (theta, beta) and at the fit's optimum, which Nelder-Mead on the dense
objective from another start reaches too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.special import expit
from scipy.stats import binom, poisson

import shrinkage
from shrinkage.glmm.several import laplace

FORMULAS = {"crossed": "cbind(s, f) ~ x + (1 | a) + (1 | b)", "slope": "y ~ x + (x | a)"}


def _data(rng, kind):
    a, b = np.repeat(np.arange(5), 6), np.tile(np.arange(3), 10)
    x = rng.normal(size=a.size)
    if kind == "crossed":
        n = rng.integers(1, 9, size=a.size)
        s = rng.binomial(n, expit(-0.4 + 0.6 * x + rng.normal(0, 0.8, 5)[a] + rng.normal(0, 0.5, 3)[b]))
        return pd.DataFrame({"s": s.astype(float), "f": (n - s).astype(float), "x": x, "a": a, "b": b}), "binomial"
    eta = 0.5 + 0.3 * x + rng.normal(0, 0.6, 5)[a] + rng.normal(0, 0.3, 5)[a] * x
    return pd.DataFrame({"y": rng.poisson(np.exp(eta)).astype(float), "x": x, "a": a}), "poisson"


def _dense(r):
    """The dense pieces of a fitted design: X, A(theta) = Z Lambda(theta), the log-pmf."""
    pr, terms = r.problem, r.terms
    d = r.design
    y = pr.y
    loglik = ((lambda eta: binom.logpmf(np.round(y * pr.m), pr.m, expit(eta))) if r.family.name == "binomial"
              else (lambda eta: poisson.logpmf(y, np.exp(eta))))

    def A(theta):
        blocks, at = [], 0
        for t in terms:
            q = t.q
            rows, cols = np.triu_indices(q)[1], np.triu_indices(q)[0]
            T = np.zeros((q, q))
            T[rows, cols] = theta[at:at + q * (q + 1) // 2]
            at += q * (q + 1) // 2
            Zk = np.zeros((y.size, t.levels * q))
            for i in range(y.size):
                Zk[i, t.codes[i] * q:(t.codes[i] + 1) * q] = t.Z[i] @ T
            blocks.append(Zk)
        return np.hstack(blocks)

    def objective(theta, beta):
        Am, eta0 = A(theta), d.X @ beta
        f = lambda u: -2 * np.sum(loglik(eta0 + Am @ u)) + u @ u  # noqa: E731
        u = np.zeros(Am.shape[1])
        for _ in range(100):  # Newton on f with dense matrices: score m (y - mu), weight m v(mu)
            mu = expit(eta0 + Am @ u) if r.family.name == "binomial" else np.exp(eta0 + Am @ u)
            w = pr.m * mu * (1 - mu) if r.family.name == "binomial" else mu
            H = np.eye(Am.shape[1]) + Am.T @ (w[:, None] * Am)
            step = np.linalg.solve(H, u - Am.T @ (pr.m * (y - mu)))
            u = u - step
            if np.max(np.abs(step)) < 1e-13:
                break
        mu = expit(eta0 + Am @ u) if r.family.name == "binomial" else np.exp(eta0 + Am @ u)
        w = pr.m * mu * (1 - mu) if r.family.name == "binomial" else mu
        return f(u) + np.linalg.slogdet(np.eye(Am.shape[1]) + Am.T @ (w[:, None] * Am))[1]

    return objective


@pytest.mark.parametrize("kind", list(FORMULAS))
def test_laplace_equals_dense(rng, kind):
    d, family = _data(rng, kind)
    r = shrinkage.fit(FORMULAS[kind], d, family=family)
    dense = _dense(r)
    nth = r.theta.size
    for _ in range(3):
        x = r.optimum.x * rng.uniform(0.6, 1.4, size=r.optimum.x.size)
        np.testing.assert_allclose(laplace(r.problem, x[:nth], x[nth:])[0], dense(x[:nth], x[nth:]), rtol=1e-12, atol=1e-9)
    other = minimize(lambda v: dense(v[:nth], v[nth:]), r.optimum.x * 1.05, method="Nelder-Mead",
                     options={"xatol": 1e-7, "fatol": 1e-11, "maxfev": 3000})
    assert other.fun >= -2 * r.loglik - 1e-9       # the dense minimum is no lower than the fit's
    assert other.fun - (-2 * r.loglik) < 1e-6
    np.testing.assert_allclose(other.x[nth:], r.beta, rtol=1e-3)  # Nelder-Mead's own precision
