"""Conditional variance and prediction error variance of a BLUP against dense oracles.

Two oracles built from the model alone:
* Henderson: PEV(b) = sigma2 * (inverse of the mixed-model-equation matrix)[b, b];
* direct: b_hat = A y is linear in y (GLS, then BLUP), so
  Var(b_hat - b) = A V A^T - A Cov(y, b) - Cov(b, y) A^T + sigma_b2 I, with
  Cov(y, b) = sigma_b2 Z, from the joint normal distribution of (y, b).
The generated functions are taken from the checked derivation itself (in memory), so
the test does not depend on a rebuilt numeric.py.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from shrinkage.answer import generated_functions
from shrinkage.derive import verify, walk
from shrinkage.errors import StepError


@pytest.fixture(scope="module")
def checked_uncertainty(checked):
    return checked["uncertainty"]


@pytest.fixture(scope="module")
def fns(checked_uncertainty):
    return generated_functions([checked_uncertainty])


def design(sizes):
    N, Jg = int(sum(sizes)), len(sizes)
    Z = np.zeros((N, Jg))
    Z[np.arange(N), np.repeat(np.arange(Jg), sizes)] = 1.0
    return np.ones((N, 1)), Z


def henderson_pev(sizes, s2, sb2):
    X, Z = design(sizes)
    C = np.block([[X.T @ X, X.T @ Z], [Z.T @ X, Z.T @ Z + (s2 / sb2) * np.eye(len(sizes))]])
    Cinv = np.linalg.inv(C)
    return s2 * np.diag(Cinv)[1:], s2 * Cinv[0, 0]


def direct_pev(sizes, s2, sb2):
    """Var(b_hat - b) from the linear map y -> b_hat and the joint covariance of (y, b)."""
    X, Z = design(sizes)
    V = s2 * np.eye(int(sum(sizes))) + sb2 * Z @ Z.T
    Vinv = np.linalg.inv(V)
    G = np.linalg.solve(X.T @ Vinv @ X, X.T @ Vinv)  # beta0_hat = G y
    A = sb2 * Z.T @ Vinv @ (np.eye(len(V)) - X @ G)  # b_hat = A y
    cov_yb = sb2 * Z
    P = A @ V @ A.T - A @ cov_yb - cov_yb.T @ A.T + sb2 * np.eye(len(sizes))
    return np.diag(P), float((G @ V @ G.T)[0, 0])


def draw(rng):
    Jg = int(rng.integers(1, 7))
    sizes = rng.integers(1, 12, size=Jg)
    s2, sb2 = (float(x) for x in 10 ** rng.uniform(-1.5, 1.5, size=2))
    return sizes, s2, sb2


@pytest.mark.parametrize("seed", range(25))
def test_pev_matches_henderson_and_the_direct_oracle(fns, seed):
    rng = np.random.default_rng(8000 + seed)
    sizes, s2, sb2 = draw(rng)
    n = sizes.astype(float)
    var_beta0 = fns["gls_beta0_variance"](n, s2, sb2)
    pev = fns["prediction_error_variance"](n, s2, sb2, var_beta0)
    pev_h, vb_h = henderson_pev(sizes, s2, sb2)
    pev_d, vb_d = direct_pev(sizes, s2, sb2)
    np.testing.assert_allclose(var_beta0, vb_h, rtol=1e-9)
    np.testing.assert_allclose(var_beta0, vb_d, rtol=1e-8)
    np.testing.assert_allclose(pev, pev_h, rtol=1e-9)
    np.testing.assert_allclose(pev, pev_d, rtol=1e-7)


def test_conditional_variance_is_lme4_condvar_and_below_pev(fns, rng):
    from shrinkage import numeric

    for _ in range(20):
        sizes, s2, sb2 = draw(rng)
        n = sizes.astype(float)
        cond = numeric.conditional_variance(n, s2, sb2)
        np.testing.assert_allclose(cond, 1 / (n / s2 + 1 / sb2), rtol=1e-13)  # (n_j/sigma2 + 1/sigma_b2)^-1
        pev = fns["prediction_error_variance"](n, s2, sb2, fns["gls_beta0_variance"](n, s2, sb2))
        assert np.all(pev > cond)


def test_gls_beta0_variance_is_vectorised_over_problems(fns):
    n = np.array([[2.0, 3.0, 5.0], [1.0, 1.0, 1.0]])
    got = fns["gls_beta0_variance"](n, 2.0, 0.5)
    want = [1 / np.sum(1 / (0.5 + 2.0 / row)) for row in n]
    np.testing.assert_allclose(got, want, rtol=1e-14)


def test_pev_without_lambda_squared_is_wrong(checked_uncertainty, rng):
    """A plausible wrong formula, (1 - lambda) sigma_b2 + Var(beta0_hat), fails both the
    dense oracle and the engine."""
    sizes = np.array([2, 7, 3])
    s2, sb2 = 1.3, 0.4
    n = sizes.astype(float)
    lam = sb2 / (sb2 + s2 / n)
    vb = 1 / np.sum(1 / (sb2 + s2 / n))
    wrong = (1 - lam) * sb2 + vb
    assert not np.allclose(wrong, henderson_pev(sizes, s2, sb2)[0], rtol=1e-3)
    cd = checked_uncertainty
    number = cd.derivation.step_index("pev_decomposition") + 1
    ctx = next(c for c in walk(cd.derivation) if c.number == number)
    from shrinkage.symbols import lam as lam_sym, sigma_b2

    right = ctx.step.rhs
    total = [t for t in right.args if t.has(lam_sym**2)][0] / lam_sym**2  # 1 / sum of precisions
    wrong = replace(ctx.step, rhs=(1 - lam_sym) * sigma_b2 + total)  # lambda^2 dropped
    verify(ctx)  # the step as derived passes its check ...
    with pytest.raises(StepError):
        verify(replace(ctx, step=wrong))  # ... and the wrong formula, read off the same density, does not


def test_variance_steps_are_proved(checked_uncertainty):
    for label in ("var_mean", "var_beta0", "pev_decomposition", "pev"):
        k = checked_uncertainty.derivation.step_index(label)
        assert checked_uncertainty.steps[k].verdict.symbolic is True, label
