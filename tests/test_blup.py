"""The generated BLUP functions against oracles built from the model alone.

The oracle is the joint log-density of (y, b) written directly from the model
(normal densities of every observation and of every b_j); it is maximised numerically
(scipy) or integrated (mpmath) and the results compared with the closed forms in
shrinkage.numeric.  A deliberately wrong shrinkage factor must fail the same comparison.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from scipy import optimize, stats

from shrinkage import numeric


def random_problem(rng, n_groups=None):
    """Random variances, intercept and an unbalanced data set drawn from the model."""
    J = n_groups or int(rng.integers(2, 9))
    sigma2 = float(10 ** rng.uniform(-1.5, 1.5))
    sigma_b2 = float(10 ** rng.uniform(-1.5, 1.5))
    beta0 = float(rng.normal(0, 5))
    sizes = rng.integers(1, 40, size=J)
    b = rng.normal(0, np.sqrt(sigma_b2), size=J)
    groups = [beta0 + b[j] + rng.normal(0, np.sqrt(sigma2), size=sizes[j]) for j in range(J)]
    return groups, beta0, sigma2, sigma_b2


def joint_logdensity(bvec, groups, beta0, sigma2, sigma_b2):
    """log p(y, b) from the model: every observation given b_j, times the density of b_j."""
    total = 0.0
    for y_j, b_j in zip(groups, bvec):
        total += stats.norm.logpdf(y_j, beta0 + b_j, np.sqrt(sigma2)).sum()
        total += stats.norm.logpdf(b_j, 0.0, np.sqrt(sigma_b2))
    return total


def numeric_maximiser(groups, beta0, sigma2, sigma_b2):
    """argmax over the whole vector b of the joint log-density, by BFGS."""
    start = np.zeros(len(groups))
    res = optimize.minimize(
        lambda bv: -joint_logdensity(bv, groups, beta0, sigma2, sigma_b2), start, method="BFGS",
        options={"gtol": 1e-10, "xrtol": 1e-14},
    )
    return res.x


def closed_form(groups, beta0, sigma2, sigma_b2):
    n = np.array([len(g) for g in groups], dtype=float)
    ybar = np.array([g.mean() for g in groups])
    return numeric.blup(ybar, n, beta0, sigma2, sigma_b2), numeric.conditional_variance(n, sigma2, sigma_b2), n, ybar


@pytest.mark.parametrize("draw", range(25))
def test_blup_is_the_numerical_maximiser_of_the_joint_density(draw):
    rng = np.random.default_rng(1000 + draw)
    groups, beta0, sigma2, sigma_b2 = random_problem(rng)
    b_opt = numeric_maximiser(groups, beta0, sigma2, sigma_b2)
    b_hat, cond_var, _, _ = closed_form(groups, beta0, sigma2, sigma_b2)
    # BFGS locates the maximum of a quadratic to a small fraction of its width.
    np.testing.assert_allclose(b_opt, b_hat, rtol=0, atol=1e-5 * np.sqrt(cond_var).min())


def test_a_wrong_shrinkage_factor_is_rejected_by_the_same_comparison():
    """lambda = sigma_b^2/(sigma_b^2 + sigma^2) forgets n_j: the optimiser exposes it."""
    rejected = 0
    for draw in range(10):
        rng = np.random.default_rng(2000 + draw)
        groups, beta0, sigma2, sigma_b2 = random_problem(rng)
        b_opt = numeric_maximiser(groups, beta0, sigma2, sigma_b2)
        _, cond_var, n, ybar = closed_form(groups, beta0, sigma2, sigma_b2)
        wrong = sigma_b2 / (sigma_b2 + sigma2) * (ybar - beta0)
        tol = 1e-5 * np.sqrt(cond_var).min()
        rejected += not np.allclose(b_opt, wrong, rtol=0, atol=tol)
    assert rejected == 10


@pytest.mark.parametrize("draw", range(10))
def test_conditional_variance_is_the_inverse_curvature(draw):
    """-1 / (d^2/db_j^2 log p(y, b)), differentiated numerically by mpmath at 30 digits."""
    rng = np.random.default_rng(3000 + draw)
    groups, beta0, sigma2, sigma_b2 = random_problem(rng, n_groups=3)
    _, cond_var, _, _ = closed_form(groups, beta0, sigma2, sigma_b2)
    with mpmath.workdps(30):
        for j, y_j in enumerate(groups):
            def group_term(b, y_j=y_j):
                resid = sum((mpmath.mpf(float(v)) - beta0 - b) ** 2 for v in y_j)
                return -resid / (2 * sigma2) - b**2 / (2 * sigma_b2)

            curvature = mpmath.diff(group_term, 0.3, 2)
            assert float(-1 / curvature) == pytest.approx(cond_var[j], rel=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("draw", range(4))
def test_conditional_distribution_moments_by_quadrature(draw):
    """Mean and variance of p(b_j | y_j) ∝ p(y_j | b_j) p(b_j), integrated by mpmath.quad,
    equal the BLUP and the conditional variance: b_j | y ~ N(b_hat_j, (1-lambda_j) sigma_b^2)."""
    rng = np.random.default_rng(4000 + draw)
    groups, beta0, sigma2, sigma_b2 = random_problem(rng, n_groups=2)
    b_hat, cond_var, _, _ = closed_form(groups, beta0, sigma2, sigma_b2)
    with mpmath.workdps(30):
        for j, y_j in enumerate(groups):
            data = [mpmath.mpf(float(v)) for v in y_j]

            def log_joint(b):
                return (sum(-(v - beta0 - b) ** 2 for v in data) / (2 * sigma2) - b**2 / (2 * sigma_b2))

            mode = mpmath.findroot(lambda b: mpmath.diff(log_joint, b), 0)
            width = mpmath.sqrt(-1 / mpmath.diff(log_joint, mode, 2))
            breaks = [-mpmath.inf, mode - 10 * width, mode, mode + 10 * width, mpmath.inf]
            peak = log_joint(mode)

            def moment(k):
                return mpmath.quad(lambda b: b**k * mpmath.exp(log_joint(b) - peak), breaks)

            z, m1, m2 = moment(0), moment(1), moment(2)
            mean = m1 / z
            var = m2 / z - mean**2
            assert float(mean) == pytest.approx(b_hat[j], rel=1e-12, abs=1e-14)
            assert float(var) == pytest.approx(cond_var[j], rel=1e-10)


def test_partial_pooling_is_a_weighted_average(rng):
    n = rng.integers(1, 100, size=50).astype(float)
    ybar, beta0 = rng.normal(size=50), 0.7
    sigma2, sigma_b2 = 2.0, 0.5
    lam = numeric.shrinkage_factor(n, sigma2, sigma_b2)
    pooled = numeric.predicted_group_mean(ybar, n, beta0, sigma2, sigma_b2)
    np.testing.assert_allclose(pooled, beta0 + numeric.blup(ybar, n, beta0, sigma2, sigma_b2), rtol=1e-14)
    assert np.all((lam > 0) & (lam < 1))
    lo, hi = np.minimum(ybar, beta0), np.maximum(ybar, beta0)
    assert np.all((pooled >= lo) & (pooled <= hi))


def test_functions_are_vectorised_and_broadcast():
    n = np.array([[1.0], [10.0]])
    sigma_b2 = np.array([0.1, 1.0, 10.0])
    lam = numeric.shrinkage_factor(n, 1.0, sigma_b2)
    assert lam.shape == (2, 3)
    np.testing.assert_allclose(lam[1], [0.5, 10 / 11, 100 / 101], rtol=1e-15)


def test_more_data_means_less_shrinkage():
    n = np.arange(1, 200, dtype=float)
    lam = numeric.shrinkage_factor(n, 3.0, 0.2)
    assert np.all(np.diff(lam) > 0)
