"""Balanced-design ML and REML estimates against numerical maximisation of dense criteria.

The oracle is the dense log-likelihood of the model, y ~ N(beta0 1, sigma2 I + sigma_b2 Z Z^T),
profiled over beta0 by dense GLS (ML), or Harville's REML log-likelihood, maximised over
sigma2 > 0 and sigma_b2 >= 0 by scipy (L-BFGS-B, several starts).  It never uses MSB/MSW
or any derived formula.  Checks: no point scipy finds beats the closed form (to 1e-10),
scipy's optimum is the closed form, the boundary sigma_b2 = 0 is hit exactly when
F <= J/(J-1) (ML) or F <= 1 (REML), and a wrong estimator is measurably worse.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from shrinkage import numeric


def balanced_data(rng, J=None, n=None):
    J = J or int(rng.integers(2, 9))
    n = n or int(rng.integers(2, 11))
    sigma2 = float(10 ** rng.uniform(-1, 1))
    sigma_b2 = sigma2 * float(10 ** rng.uniform(-3, 1))  # often small: boundary fits happen
    beta0 = float(rng.normal(0, 5))
    y = beta0 + rng.normal(0, np.sqrt(sigma_b2), size=(J, 1)) + rng.normal(0, np.sqrt(sigma2), size=(J, n))
    return y


def mean_squares(y):
    """MSB and MSW of a J x n layout, by two passes."""
    J, n = y.shape
    means = y.mean(axis=1)
    msw = np.sum((y - means[:, None]) ** 2) / (J * (n - 1))
    msb = n * np.sum((means - means.mean()) ** 2) / (J - 1)
    return msb, msw


class DenseCriteria:
    """ML and REML log-likelihoods of a J x n layout as one dense multivariate normal."""

    def __init__(self, y):
        J, n = y.shape
        self.y = y.ravel()
        self.N = J * n
        self.same = np.kron(np.eye(J), np.ones((n, n)))
        self.one = np.ones(self.N)

    def __call__(self, sigma2, sigma_b2, reml):
        V = sigma2 * np.eye(self.N) + sigma_b2 * self.same
        L = np.linalg.cholesky(V)
        solve = lambda b: np.linalg.solve(L.T, np.linalg.solve(L, b))  # noqa: E731
        Vi_one, Vi_y = solve(self.one), solve(self.y)
        xvx = self.one @ Vi_one
        beta0 = (self.one @ Vi_y) / xvx
        r = self.y - beta0
        logdet = 2 * np.sum(np.log(np.diag(L)))
        quad = r @ solve(r)
        if reml:
            return -0.5 * ((self.N - 1) * np.log(2 * np.pi) + logdet + np.log(xvx) + quad)
        return -0.5 * (self.N * np.log(2 * np.pi) + logdet + quad)

    def maximise(self, reml, scale):
        """Numerical maximum over sigma2 > 0, sigma_b2 >= 0 (several starts)."""
        best = None
        for s2, sb2 in [(1.0, 0.0), (1.0, 1.0), (0.3, 3.0), (3.0, 0.1)]:
            res = optimize.minimize(
                lambda x: -self(scale * np.exp(x[0]), scale * x[1], reml) / self.N,
                x0=[np.log(s2), sb2], method="L-BFGS-B", bounds=[(-15, 15), (0, None)],
                options={"ftol": 1e-15, "gtol": 1e-11, "maxiter": 2000},
            )
            if best is None or res.fun < best.fun:
                best = res
        return scale * np.exp(best.x[0]), scale * best.x[1], -best.fun * self.N


ESTIMATORS = {
    False: (numeric.balanced_ml_sigma2, numeric.balanced_ml_sigma_b2),
    True: (numeric.balanced_reml_sigma2, numeric.balanced_reml_sigma_b2),
}


@pytest.mark.slow  # 24 numerical maximisations each; the closed form is also proved in derivations/balanced.py
@pytest.mark.parametrize("reml", [False, True], ids=["ML", "REML"])
def test_closed_form_is_the_numerical_maximum(rng, reml):
    est_s2, est_sb2 = ESTIMATORS[reml]
    boundary = 0
    for _ in range(24):
        y = balanced_data(rng)
        J, n = y.shape
        msb, msw = mean_squares(y)
        s2, sb2 = float(est_s2(msb, msw, n, J)), float(est_sb2(msb, msw, n, J))
        dense = DenseCriteria(y)
        ours = dense(s2, sb2, reml)
        s2_opt, sb2_opt, theirs = dense.maximise(reml, scale=msw)
        # scipy finds no better point, and the point it finds is ours
        assert ours >= theirs - 1e-10 * abs(theirs), (ours, theirs)
        assert s2_opt == pytest.approx(s2, rel=1e-4)
        assert sb2_opt == pytest.approx(sb2, abs=1e-4 * (s2 + sb2))
        boundary += sb2 == 0.0
    assert 3 <= boundary <= 21  # both cases exercised


@pytest.mark.parametrize("reml", [False, True], ids=["ML", "REML"])
def test_boundary_estimate_is_a_constrained_maximum(rng, reml):
    """At sigma_b2 = 0 the dense criterion is stationary in sigma2 and decreases into sigma_b2 > 0."""
    est_s2, est_sb2 = ESTIMATORS[reml]
    seen = 0
    for _ in range(60):
        y = balanced_data(rng)
        J, n = y.shape
        msb, msw = mean_squares(y)
        if float(est_sb2(msb, msw, n, J)) > 0:
            continue
        seen += 1
        s2 = float(est_s2(msb, msw, n, J))
        dense = DenseCriteria(y)
        h = 1e-6 * s2
        d_s2 = (dense(s2 + h, 0.0, reml) - dense(s2 - h, 0.0, reml)) / (2 * h)
        d_sb2 = (dense(s2, h, reml) - dense(s2, 0.0, reml)) / h
        assert abs(d_s2) * s2 <= 1e-5 * dense.N
        assert d_sb2 <= 1e-6 * dense.N / s2
    assert seen >= 5


def test_boundary_conditions_in_terms_of_F(rng):
    """sigma_b2_hat = 0 iff F <= J/(J-1) (ML), iff F <= 1 (REML); for F between them ML
    is on the boundary and REML is not, as the dense maximisation confirms."""
    between = 0
    for _ in range(400):
        y = balanced_data(rng)
        J, n = y.shape
        msb, msw = mean_squares(y)
        F = msb / msw
        ml_zero = float(numeric.balanced_ml_sigma_b2(msb, msw, n, J)) == 0.0
        reml_zero = float(numeric.balanced_reml_sigma_b2(msb, msw, n, J)) == 0.0
        assert ml_zero == (F <= J / (J - 1))
        assert reml_zero == (F <= 1)
        if 1 < F < J / (J - 1) and between < 5:
            between += 1
            dense = DenseCriteria(y)
            assert dense.maximise(False, scale=msw)[1] <= 1e-6 * msw
            assert dense.maximise(True, scale=msw)[1] > 1e-4 * msw
    assert between >= 3


def test_a_wrong_estimator_is_rejected(rng):
    """Using the REML formula (MSB - MSW)/n for ML loses likelihood the dense oracle sees."""
    caught = interior = 0
    for _ in range(30):
        y = balanced_data(rng)
        J, n = y.shape
        msb, msw = mean_squares(y)
        if msb / msw <= J / (J - 1):
            continue
        interior += 1
        dense = DenseCriteria(y)
        right = dense(float(numeric.balanced_ml_sigma2(msb, msw, n, J)), float(numeric.balanced_ml_sigma_b2(msb, msw, n, J)), False)
        wrong = dense(msw, (msb - msw) / n, False)
        caught += wrong < right - 1e-10 * abs(right)
    assert interior >= 10 and caught == interior


def test_estimators_are_elementwise_and_validate(rng):
    msb = np.array([0.5, 2.0, 10.0])
    msw = np.array([1.0, 1.0, 1.0])
    got = numeric.balanced_reml_sigma_b2(msb, msw, 5, 4)
    assert np.array_equal(got, np.array([0.0, 0.2, 1.8]))
    from shrinkage.errors import InputError

    with pytest.raises(InputError, match="J must be whole numbers >= 2"):
        numeric.balanced_ml_sigma2(1.0, 1.0, 3, 1)
