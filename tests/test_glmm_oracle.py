"""glmm against an oracle that shares none of its code: the marginal likelihood
prod_j int prod_i p(y_ij | x_ij'beta + b) N(b; 0, sigma_b^2) db by mpmath's quadrature at 30
digits, on small simulated data (binomial counts, Bernoulli, Poisson with an offset).

* adaptive Gauss-Hermite with 25 nodes equals the integral (to 1e-9 on the log scale) at
  many random (sigma_b, beta); the Laplace approximation does not (its error is visible);
* the maximum of the likelihood (QUADPACK's integral maximised by scipy's Nelder-Mead from
  another start) is the fit's (nagq = 25), where mpmath's integral is no lower;
* a deliberately wrong formula (the AGQ weights without e^{z^2/2}, the Laplace term without
  log H) is caught by the same comparison.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

import shrinkage
from shrinkage.glmm import objective as obj
from shrinkage.glmm.family import BINOMIAL, POISSON
from shrinkage.glmm.objective import Problem


def _simulate(rng, family, J=5, bernoulli=False):
    n = rng.integers(2, 6, size=J)
    codes = np.repeat(np.arange(J), n)
    x = rng.normal(size=codes.size)
    b = rng.normal(scale=0.8, size=J)
    eta = -0.3 + 0.7 * x + b[codes]
    if family == "binomial":
        m = np.ones(codes.size) if bernoulli else rng.integers(1, 8, size=codes.size).astype(float)
        s = rng.binomial(m.astype(int), 1 / (1 + np.exp(-eta))).astype(float)
        return pd.DataFrame({"s": s, "f": m - s, "x": x, "g": codes})
    t = rng.uniform(0.5, 3, size=codes.size)
    return pd.DataFrame({"y": rng.poisson(t * np.exp(eta)).astype(float), "x": x, "t": t, "g": codes})


FORMULA = {"binomial": "cbind(s, f) ~ x + (1 | g)", "poisson": "y ~ x + offset(log(t)) + (1 | g)"}


def _problem(d, family):
    X = np.column_stack([np.ones(len(d)), d.x])
    codes = d.g.to_numpy()
    if family == "binomial":
        m = (d.s + d.f).to_numpy()
        return Problem(BINOMIAL, (d.s / m).to_numpy(), m, np.zeros(len(d)), X, codes, codes.max() + 1)
    return Problem(POISSON, d.y.to_numpy(), np.ones(len(d)), np.log(d.t.to_numpy()), X, codes, codes.max() + 1)


def _breakpoints(logdens, sigma_b):
    """Where the quadrature should look: +-12 sigma_b, and steps of the peak's width about
    the peak (found on a grid: a peaked integrand is otherwise missed between nodes)."""
    grid = np.linspace(-12 * sigma_b, 12 * sigma_b, 961)
    values = np.array([logdens(b) for b in grid])
    top = int(np.argmax(values))
    within = grid[values > values[top] - 2]
    width = max(within.max() - within.min(), grid[1] - grid[0]) / 2
    near = grid[top] + width * np.arange(-8, 9)
    points = np.unique(np.concatenate([np.linspace(-12 * sigma_b, 12 * sigma_b, 9),
                                       near[np.abs(near) < 12 * sigma_b]]))
    return [mp.mpf(float(p)) for p in points]


def oracle_loglik(d, family, sigma_b, beta) -> float:
    """log prod_j int prod_i p(y_ij | eta_ij) phi(b / sigma_b) / sigma_b db, by mpmath's
    quadrature at 20 digits over |b| <= 12 sigma_b (the prior's mass outside is e^-72)."""
    mp.mp.dps = 20
    total = mp.mpf(0)
    s = mp.mpf(float(sigma_b))
    for j in sorted(d.g.unique()):
        rows = d[d.g == j]
        eta0 = [mp.mpf(float(beta[0])) + mp.mpf(float(beta[1])) * mp.mpf(float(x)) for x in rows.x]
        if family == "binomial":
            data = [(int(a), int(a + c)) for a, c in zip(rows.s, rows.f)]
            const = sum(mp.log(mp.binomial(m, k)) for k, m in data)

            def loglik(b, eta0=eta0, data=data, const=const):
                return const + sum(k * (e + b) - m * mp.log1p(mp.exp(e + b)) for e, (k, m) in zip(eta0, data))
        else:
            data = [(int(y), mp.log(mp.mpf(float(t)))) for y, t in zip(rows.y, rows.t)]
            const = -sum(mp.log(mp.factorial(y)) for y, _ in data)

            def loglik(b, eta0=eta0, data=data, const=const):
                return const + sum(y * (e + b + lt) - mp.exp(e + b + lt) for e, (y, lt) in zip(eta0, data))
        dens = lambda b: mp.exp(loglik(b) - b * b / (2 * s * s)) / (s * mp.sqrt(2 * mp.pi))  # noqa: E731
        total += mp.log(mp.quad(dens, _breakpoints(lambda b: float(mp.log(dens(b))), float(sigma_b))))
    return float(total)


def quadpack_loglik(d, family, sigma_b, beta) -> float:
    """The same integral in double precision by QUADPACK (scipy.integrate.quad), for the
    hundreds of evaluations a maximisation takes; each integrand scaled by its value at the
    prior's centre so that no group underflows."""
    from scipy.integrate import quad
    from scipy.special import gammaln

    total = 0.0
    for j in sorted(d.g.unique()):
        rows = d[d.g == j]
        e = beta[0] + beta[1] * rows.x.to_numpy()
        if family == "binomial":
            k, m = rows.s.to_numpy(), (rows.s + rows.f).to_numpy()
            const = np.sum(gammaln(m + 1) - gammaln(k + 1) - gammaln(m - k + 1))
            ll = lambda b, e=e, k=k, m=m: np.sum(k * (e + b) - m * np.logaddexp(0, e + b))  # noqa: E731
        else:
            y, lt = rows.y.to_numpy(), np.log(rows.t.to_numpy())
            const = -np.sum(gammaln(y + 1))
            ll = lambda b, e=e, y=y, lt=lt: np.sum(y * (e + b + lt) - np.exp(e + b + lt))  # noqa: E731
        top = max(ll(b) - b * b / (2 * sigma_b ** 2) for b in np.linspace(-6 * sigma_b, 6 * sigma_b, 241))
        f = lambda b: np.exp(ll(b) - b * b / (2 * sigma_b ** 2) - top)  # noqa: E731
        value = quad(f, -12 * sigma_b, 12 * sigma_b, epsabs=0, epsrel=1e-13, limit=200, points=[0.0])[0]
        total += const + top + np.log(value / (sigma_b * np.sqrt(2 * np.pi)))
    return float(total)


def full_loglik(pr, theta, beta, nagq):
    """Our objective on the full scale: AGQ's is relative to the saturated model, whose
    log-likelihood is loglik + devres / 2 at any eta."""
    if nagq == 1:
        return -0.5 * obj.laplace(pr, theta, beta)[0]
    eta = pr.X @ beta + pr.offset
    saturated = np.sum(pr.family.loglik(eta, pr.y, pr.m) + pr.family.devres(eta, pr.y, pr.m) / 2)
    return -0.5 * obj.agq(pr, theta, beta, nagq)[0] + saturated


CASES = [("binomial", False), ("binomial", True), ("poisson", False)]


@pytest.mark.parametrize("family,bernoulli", CASES)
def test_quadrature_is_the_integral(rng, family, bernoulli):
    laplace_off = 0.0
    for _ in range(3):
        d = _simulate(rng, family, J=4, bernoulli=bernoulli)
        pr = _problem(d, family)
        theta, beta = rng.uniform(0.2, 2.0), rng.normal(scale=0.7, size=2)
        exact = oracle_loglik(d, family, theta, beta)
        assert quadpack_loglik(d, family, theta, beta) == pytest.approx(exact, abs=1e-9)  # the two oracles agree
        off = [abs(full_loglik(pr, theta, beta, k) - exact) for k in (1, 9, 25)]
        # quadrature converges (25 nodes: a skewed integrand, an all-zero group, keeps an error near 1e-7)
        assert off[2] < 1e-6 and off[2] <= off[1] + 1e-12 and off[2] < 1e-3 * off[0]
        laplace_off = max(laplace_off, off[0])
    assert laplace_off > 1e-3  # the Laplace approximation is one (the comparison can tell)


@pytest.mark.slow
@pytest.mark.parametrize("family,bernoulli", CASES)
def test_maximum_is_the_oracle_maximum(rng, family, bernoulli):
    d = _simulate(rng, family, J=6, bernoulli=bernoulli)
    fit = shrinkage.fit(FORMULA[family] if not bernoulli else "s ~ x + (1 | g)", d, family=family, nagq=25)
    neg = lambda p: -quadpack_loglik(d, family, abs(p[0]), p[1:])  # noqa: E731
    start = fit.optimum.x + np.array([0.2, -0.2, 0.2])
    res = minimize(neg, start, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-12, "maxiter": 4000})
    theirs = np.array([abs(res.x[0]), *res.x[1:]])
    np.testing.assert_allclose(theirs, fit.optimum.x, rtol=1e-5, atol=1e-5)
    ours_at_ours = full_loglik(fit.problem, fit.theta, fit.beta, 25)
    exact_at_ours = oracle_loglik(d, family, fit.theta, fit.beta)
    assert ours_at_ours == pytest.approx(exact_at_ours, abs=1e-6)
    assert exact_at_ours >= oracle_loglik(d, family, theirs[0], theirs[1:]) - 1e-10  # not below the oracle's maximum


def test_a_wrong_formula_is_caught(rng, monkeypatch):
    d = _simulate(rng, "binomial")
    pr = _problem(d, "binomial")
    theta, beta = 1.3, np.array([-0.2, 0.5])
    exact = oracle_loglik(d, "binomial", theta, beta)
    right = full_loglik(pr, theta, beta, 25)
    z, w = obj.gh_rule(25)
    monkeypatch.setattr(obj, "gh_rule", lambda k: (z, w * np.exp(-z * z / 2)))  # the weights of exp(-z^2)
    assert abs(full_loglik(pr, theta, beta, 25) - exact) > 1e3 * abs(right - exact) + 1e-6
    monkeypatch.undo()
    v, md = obj.laplace(pr, theta, beta)
    wrong = -0.5 * (v - np.sum(np.log(md.H)))  # the Laplace term without its log-determinant
    assert abs(wrong - exact) > 10 * abs(full_loglik(pr, theta, beta, 1) - exact)
