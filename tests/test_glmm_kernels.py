"""The compiled Laplace pass (glmm/kernels.py) against the numpy path (objective.py) it
replaces for large problems: the objective, its gradient in (theta, beta), the modes and
the per-group sums agree to 1e-12 (relative; the gradient relative to its largest entry),
for Bernoulli rows, binomial counts and Poisson counts with an offset, with groups whose
rows are all 0 or all 1 (their modes far out: Newton's step halving runs); the same
numbers whatever the number of threads; and a whole fit through either path is the same
fit (the optimiser's start from a sample of the groups included)."""

from __future__ import annotations

import numpy as np
import pytest

import shrinkage
from shrinkage.glmm import objective, optimise
from shrinkage.glmm.family import BINOMIAL, POISSON
from shrinkage.glmm.objective import Problem, laplace


def _problem(rng, family, N=3000, J=60):
    codes = rng.integers(0, J, N)
    codes[:J] = np.arange(J)  # every group seen
    X = np.column_stack([np.ones(N), rng.normal(size=N), rng.integers(0, 2, N)])
    b = rng.normal(scale=0.8, size=J)
    eta = X @ np.array([-0.4, 0.5, -0.3]) + b[codes]
    if family is POISSON:
        off = np.log(rng.uniform(0.5, 2.0, N))
        y = rng.poisson(np.exp(eta + off)).astype(float)
        return Problem(family, y, np.ones(N), off, X, codes, J)
    m = rng.integers(1, 6, N).astype(float)
    y = rng.binomial(m.astype(int), 1 / (1 + np.exp(-eta))) / m
    y[codes == 0], y[codes == 1] = 0.0, 1.0  # a group of failures only, one of successes only
    return Problem(family, y, m, np.zeros(N), X, codes, J)


@pytest.mark.parametrize("family", [BINOMIAL, POISSON])
@pytest.mark.parametrize("theta, beta", [(0.7, [-0.2, 0.3, 0.1]), (2.5, [0.5, -0.4, 0.2]), (0.05, [0, 0, 0])])
def test_compiled_pass_is_the_numpy_path(rng, family, theta, beta):
    pr = _problem(rng, family)
    v0, md0, g0 = laplace(pr, theta, np.array(beta, float), None, gradient=True)  # numpy: small problem
    assert pr.compiled is None
    v1, md1, g1 = objective.compiled_pass(pr).laplace(theta, np.array(beta, float), None, gradient=True)
    assert v1 == pytest.approx(v0, rel=1e-12)
    assert np.max(np.abs(g1 - g0)) <= 1e-12 * np.max(np.abs(g0))
    assert np.max(np.abs(md1.u - md0.u)) <= 1e-12 * max(1.0, np.max(np.abs(md0.u)))
    for a, b in ((md1.S, md0.S), (md1.W, md0.W), (md1.H, md0.H)):
        assert np.max(np.abs(a - b)) <= 1e-12 * np.max(np.abs(b))
    np.testing.assert_allclose(md1.eta, md0.eta, rtol=0, atol=1e-12 * np.max(np.abs(md0.eta)))
    np.testing.assert_allclose(md1.weight, md0.weight, rtol=1e-12)


def test_warm_start_and_threads_give_the_same_numbers(rng, monkeypatch):
    """From the last modes (the optimiser's warm start) the same objective; one thread or
    two, bit for bit (the chunks' sums are added in chunk order)."""
    pr = _problem(rng, BINOMIAL, N=20000, J=400)
    fast = objective.compiled_pass(pr)
    fast.chunk = 37  # several chunks of groups
    beta = np.array([-0.3, 0.4, -0.2])
    v0, md0, g0 = fast.laplace(0.9, beta, None, gradient=True)
    v1, md1, g1 = fast.laplace(0.9, beta, md0.u + 0.01, gradient=True)
    assert v1 == pytest.approx(v0, rel=1e-13)
    assert np.max(np.abs(g1 - g0)) <= 1e-11 * np.max(np.abs(g0))
    monkeypatch.setenv("SHRINKAGE_THREADS", "1")
    v2, md2, g2 = fast.laplace(0.9, beta, None, gradient=True)
    assert v2 == v0 and np.array_equal(g2, g0) and np.array_equal(md2.u, md0.u)


@pytest.mark.parametrize("family", ["binomial", "poisson"])
def test_a_fit_through_the_compiled_pass_is_the_numpy_fit(rng, monkeypatch, family):
    """Above COMPILED_ROWS the fit runs compiled and starts from a sample of its groups
    (SAMPLE_ROWS lowered so this small problem does): the estimates, loglik and vcov of
    the numpy path's fit from glmer's own start."""
    import pandas as pd

    N, J = 8000, 200
    g = rng.integers(0, J, N)
    x = rng.normal(size=N)
    eta = -0.5 + 0.4 * x + rng.normal(scale=0.6, size=J)[g]
    y = rng.poisson(np.exp(eta)) if family == "poisson" else (rng.random(N) < 1 / (1 + np.exp(-eta))).astype(int)
    d = pd.DataFrame({"y": y, "x": x, "g": g})
    slow = shrinkage.fit("y ~ x + (1 | g)", d, family=family)
    assert slow.problem.compiled is None
    monkeypatch.setattr(objective, "COMPILED_ROWS", 1000)
    monkeypatch.setattr(optimise, "SAMPLE_ROWS", 1500)
    fast = shrinkage.fit("y ~ x + (1 | g)", d, family=family)
    assert fast.problem.compiled is not None
    np.testing.assert_allclose(fast.beta, slow.beta, rtol=1e-9)
    assert fast.sigma_b == pytest.approx(slow.sigma_b, rel=1e-9)
    assert fast.loglik == pytest.approx(slow.loglik, rel=1e-13)
    np.testing.assert_allclose(fast.optimum.hessian, slow.optimum.hessian, rtol=1e-5)
    np.testing.assert_allclose(fast.b, slow.b, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(fast.condvar["g"], slow.condvar["g"], rtol=1e-9)
