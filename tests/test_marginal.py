"""The marginal log-likelihood of a group against oracles built from the model alone.

Oracles (none shares code with derivations/marginal.py):
* the dense multivariate normal log-density of y_j ~ N(beta0 1, sigma2 I + sigma_b2 1 1^T),
  by scipy and by numpy (slogdet, solve);
* the matrix determinant lemma and Sherman-Morrison, proved with explicit SymPy matrices
  for n_j = 1..6 (model.group_marginal_covariance);
* mpmath quadrature, at 30 digits, of the joint density p(y_j | b_j) p(b_j) over b_j.
A deliberately wrong formula must fail the same comparisons, so the tolerances bite.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy as sp
from scipy import stats

from shrinkage import model, numeric
from shrinkage.symbols import sigma2 as s_sigma2, sigma_b2 as s_sigma_b2

REL = 1e-10


def random_group(rng, size=None):
    n = int(size or rng.choice([1, 2, 3, 5, 8, 13, 30]))
    sigma2 = float(10 ** rng.uniform(-1.5, 1.5))
    sigma_b2 = float(10 ** rng.uniform(-1.5, 1.5))
    beta0 = float(rng.normal(0, 3))
    y = beta0 + rng.normal(0, np.sqrt(sigma_b2)) + rng.normal(0, np.sqrt(sigma2), size=n)
    return y, beta0 + float(rng.normal(0, 1)), sigma2, sigma_b2  # evaluate at a beta0 off the truth too


def statistics(y):
    """Sufficient statistics by two passes (mean, then squared deviations)."""
    ybar = y.mean()
    return len(y), ybar, float(np.sum((y - ybar) ** 2))


def dense_logpdf_scipy(y, beta0, sigma2, sigma_b2):
    n = len(y)
    V = sigma2 * np.eye(n) + sigma_b2 * np.ones((n, n))
    return stats.multivariate_normal(mean=np.full(n, beta0), cov=V).logpdf(y)


def dense_logpdf_numpy(y, beta0, sigma2, sigma_b2):
    n = len(y)
    V = sigma2 * np.eye(n) + sigma_b2 * np.ones((n, n))
    r = y - beta0
    sign, logdet = np.linalg.slogdet(V)
    assert sign > 0
    return -0.5 * (n * np.log(2 * np.pi) + logdet + r @ np.linalg.solve(V, r))


def wrong_marginal(n, ybar, ss, beta0, sigma2, sigma_b2):
    """A plausible slip: the determinant without n_j, log(1 + sigma_b2/sigma2)."""
    return (-n / 2 * np.log(2 * np.pi * sigma2) - 0.5 * np.log1p(sigma_b2 / sigma2) - ss / (2 * sigma2)
            - n * (ybar - beta0) ** 2 / (2 * (sigma2 + n * sigma_b2)))


def close(a, b, rel=REL):
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))


def test_marginal_loglik_matches_the_dense_normal_density(rng):
    for _ in range(300):
        y, beta0, sigma2, sigma_b2 = random_group(rng)
        n, ybar, ss = statistics(y)
        got = float(numeric._marginal_loglik(n, ybar, ss, beta0, sigma2, sigma_b2))
        for oracle in (dense_logpdf_scipy, dense_logpdf_numpy):
            want = oracle(y, beta0, sigma2, sigma_b2)
            assert close(got, want), (oracle.__name__, n, got, want)


def test_public_function_agrees_with_the_kernel_and_checks_inputs(rng):
    y, beta0, sigma2, sigma_b2 = random_group(rng, size=4)
    n, ybar, ss = statistics(y)
    assert numeric.marginal_loglik(n, ybar, ss, beta0, sigma2, sigma_b2) == numeric._marginal_loglik(
        n, ybar, ss, beta0, sigma2, sigma_b2)
    from shrinkage.errors import InputError

    with pytest.raises(InputError, match="sigma2"):
        numeric.marginal_loglik(n, ybar, ss, beta0, -1.0, sigma_b2)
    with pytest.raises(InputError, match="n"):
        numeric.marginal_loglik(2.5, ybar, ss, beta0, sigma2, sigma_b2)


def test_marginal_loglik_is_elementwise_over_groups(rng):
    groups = [random_group(rng)[0] for _ in range(7)]
    sigma2, sigma_b2, beta0 = 0.7, 2.3, 0.4
    n, ybar, ss = map(np.array, zip(*[statistics(g) for g in groups]))
    got = numeric.marginal_loglik(n, ybar, ss, beta0, sigma2, sigma_b2)
    assert got.shape == (7,)
    for g, value in zip(groups, got):
        assert close(value, dense_logpdf_numpy(g, beta0, sigma2, sigma_b2))
    # the whole data set: block-diagonal covariance, one dense density
    y = np.concatenate(groups)
    labels = np.repeat(np.arange(7), n.astype(int))
    V = sigma2 * np.eye(len(y)) + sigma_b2 * (labels[:, None] == labels[None, :])
    total = stats.multivariate_normal(mean=np.full(len(y), beta0), cov=V).logpdf(y)
    assert close(got.sum(), total)


def test_a_wrong_determinant_is_rejected(rng):
    """The oracle comparison is tight enough to catch a slip in one term."""
    caught = larger = 0
    for _ in range(50):
        y, beta0, sigma2, sigma_b2 = random_group(rng)
        n, ybar, ss = statistics(y)
        want = dense_logpdf_numpy(y, beta0, sigma2, sigma_b2)
        assert close(float(numeric._marginal_loglik(n, ybar, ss, beta0, sigma2, sigma_b2)), want)
        if n > 1:  # for n = 1 the slip is harmless
            larger += 1
            caught += not close(wrong_marginal(n, ybar, ss, beta0, sigma2, sigma_b2), want)
    assert larger > 30 and caught == larger


@pytest.mark.parametrize("size", [1, 2, 3, 4, pytest.param(5, marks=pytest.mark.slow), pytest.param(6, marks=pytest.mark.slow)])
def test_determinant_lemma_and_sherman_morrison_with_explicit_matrices(size):
    """For V = sigma2 I + sigma_b2 1 1^T (from the model): det V = sigma2^n (1 + n sigma_b2/sigma2),
    V^-1 = (I - sigma_b2/(sigma2 + n sigma_b2) 1 1^T)/sigma2, and the quadratic form splits into
    within- and between-group parts: r^T V^-1 r = S/sigma2 + n (ybar - beta0)^2/(sigma2 + n sigma_b2)."""
    V = model.group_marginal_covariance(size)
    s2, sb2 = s_sigma2, s_sigma_b2
    assert sp.simplify(V.det(method="berkowitz") - s2**size * (1 + size * sb2 / s2)) == 0
    inverse = (sp.eye(size) - sb2 / (s2 + size * sb2) * sp.ones(size, size)) / s2
    assert sp.simplify(V * inverse - sp.eye(size)) == sp.zeros(size, size)
    ys = sp.symbols(f"y1:{size + 1}", real=True)
    b0 = sp.Symbol("beta0", real=True)
    r = sp.Matrix(ys) - b0 * sp.ones(size, 1)
    ybar = sum(ys) / size
    S = sum((v - ybar) ** 2 for v in ys)
    quad = (r.T * inverse * r)[0, 0]
    assert sp.simplify(quad - (S / s2 + size * (ybar - b0) ** 2 / (s2 + size * sb2))) == 0


@pytest.mark.parametrize("size", range(1, 7))
def test_dense_symbolic_density_matches_the_generated_function(size, rng):
    """The dense log-density written with SymPy's own det and inverse (no lemma), evaluated
    at random data, against marginal_loglik."""
    V = model.group_marginal_covariance(size)
    ys = sp.symbols(f"y1:{size + 1}", real=True)
    b0 = sp.Symbol("beta0", real=True)
    r = sp.Matrix(ys) - b0 * sp.ones(size, 1)
    for _ in range(5):
        y, beta0, sigma2, sigma_b2 = random_group(rng, size=size)
        point = {s_sigma2: sp.Float(sigma2, 30), s_sigma_b2: sp.Float(sigma_b2, 30), b0: sp.Float(beta0, 30),
                 **{s: sp.Float(v, 30) for s, v in zip(ys, y)}}
        Vn = V.xreplace(point)
        rn = r.xreplace(point)
        dense = -sp.Rational(size, 2) * sp.log(2 * sp.pi) - sp.log(Vn.det()) / 2 - (rn.T * Vn.inv() * rn)[0, 0] / 2
        n, ybar, ss = statistics(y)
        assert close(float(numeric._marginal_loglik(n, ybar, ss, beta0, sigma2, sigma_b2)), float(dense))


@pytest.mark.slow
def test_marginal_loglik_is_the_integral_of_the_joint_density(rng):
    """log of the integral over b_j of p(y_j | b_j) p(b_j), by mpmath at 30 digits."""
    mpmath.mp.dps = 30
    try:
        for _ in range(12):
            y, beta0, sigma2, sigma_b2 = random_group(rng)
            ym = [mpmath.mpf(float(v)) for v in y]
            s2, sb2, b0 = mpmath.mpf(sigma2), mpmath.mpf(sigma_b2), mpmath.mpf(beta0)

            def log_joint(b):
                data = sum(-mpmath.log(2 * mpmath.pi * s2) / 2 - (v - b0 - b) ** 2 / (2 * s2) for v in ym)
                return data - mpmath.log(2 * mpmath.pi * sb2) / 2 - b**2 / (2 * sb2)

            # centre and width of the integrand, from the data (for the break points only)
            centre = mpmath.mpf(float(np.mean(y) - beta0)) * len(y) * sb2 / (s2 + len(y) * sb2)
            width = mpmath.sqrt(1 / (len(y) / s2 + 1 / sb2))
            peak = log_joint(centre)
            breaks = [-mpmath.inf] + [centre + k * width for k in (-10, -3, 0, 3, 10)] + [mpmath.inf]
            value = mpmath.log(mpmath.quad(lambda b: mpmath.exp(log_joint(b) - peak), breaks)) + peak
            n, ybar, ss = statistics(y)
            assert close(float(numeric._marginal_loglik(n, ybar, ss, beta0, sigma2, sigma_b2)), float(value), 1e-12)
    finally:
        mpmath.mp.dps = 15


def test_generated_code_uses_log1p():
    """The determinant term is evaluated as log1p(n sigma_b2/sigma2), never log(1 + x)."""
    import inspect

    source = inspect.getsource(numeric._marginal_loglik)
    assert "numpy.log1p(" in source and "numpy.log(1 +" not in source
