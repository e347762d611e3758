"""Penalised least squares and Henderson's mixed-model equations against the GLS route.

Oracles from the model only: the design matrices X (intercept) and Z (group indicators),
the marginal covariance V = sigma2 I + sigma_b2 Z Z^T, the GLS estimate
(X^T V^-1 X)^-1 X^T V^-1 y and the BLUP sigma_b2 Z^T V^-1 (y - X beta0_hat); the joint
density maximised by scipy; exact SymPy matrices for small problems.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from scipy import optimize, stats

from shrinkage.derive import Maximiser, verify_step
from shrinkage.errors import StepError
from shrinkage.symbols import J, beta0, j, quantity, sigma2, sigma_b2


@pytest.fixture(scope="module")
def pls(checked):
    return checked["pls"]


def design(sizes):
    N, Jg = int(sum(sizes)), len(sizes)
    Z = np.zeros((N, Jg))
    Z[np.arange(N), np.repeat(np.arange(Jg), sizes)] = 1.0
    return np.ones((N, 1)), Z


def draw(rng, J_max=6, n_max=8):
    Jg = int(rng.integers(2, J_max + 1))
    sizes = rng.integers(1, n_max + 1, size=Jg)
    s2, sb2 = (float(x) for x in 10 ** rng.uniform(-1, 1, size=2))
    b0 = float(rng.normal(0, 3))
    y = b0 + np.repeat(rng.normal(0, np.sqrt(sb2), size=Jg), sizes) + rng.normal(0, np.sqrt(s2), size=int(sizes.sum()))
    return sizes, y, s2, sb2


def mme_solution(sizes, y, s2, sb2):
    """Henderson's mixed-model equations, solved as a dense linear system."""
    X, Z = design(sizes)
    C = np.block([[X.T @ X, X.T @ Z], [Z.T @ X, Z.T @ Z + (s2 / sb2) * np.eye(len(sizes))]])
    rhs = np.concatenate([X.T @ y, Z.T @ y])
    sol = np.linalg.solve(C, rhs)
    return sol[0], sol[1:]


def gls_route(sizes, y, s2, sb2):
    """GLS estimate of beta0 and BLUPs at it, from the marginal covariance."""
    X, Z = design(sizes)
    V = s2 * np.eye(len(y)) + sb2 * Z @ Z.T
    Vinv = np.linalg.inv(V)
    beta = np.linalg.solve(X.T @ Vinv @ X, X.T @ Vinv @ y)[0]
    return beta, sb2 * Z.T @ Vinv @ (y - beta)


@pytest.mark.parametrize("seed", range(20))
def test_mme_solution_is_gls_plus_blups(seed):
    rng = np.random.default_rng(7000 + seed)
    sizes, y, s2, sb2 = draw(rng)
    b0_mme, b_mme = mme_solution(sizes, y, s2, sb2)
    b0_gls, b_gls = gls_route(sizes, y, s2, sb2)
    assert b0_mme == pytest.approx(b0_gls, rel=1e-10, abs=1e-10)
    np.testing.assert_allclose(b_mme, b_gls, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("seed", range(6))
def test_mme_solution_maximises_the_joint_density(seed):
    """scipy maximises log p(y, b) over (beta0, b), written from the model's densities."""
    rng = np.random.default_rng(7100 + seed)
    sizes, y, s2, sb2 = draw(rng)
    groups = np.repeat(np.arange(len(sizes)), sizes)

    def neg_joint(theta):
        b0, bv = theta[0], theta[1:]
        return -(stats.norm.logpdf(y, b0 + bv[groups], np.sqrt(s2)).sum() + stats.norm.logpdf(bv, 0, np.sqrt(sb2)).sum())

    res = optimize.minimize(neg_joint, np.zeros(len(sizes) + 1), method="BFGS", options={"gtol": 1e-10})
    b0_mme, b_mme = mme_solution(sizes, y, s2, sb2)
    np.testing.assert_allclose(res.x, np.concatenate([[b0_mme], b_mme]), atol=1e-5)


@pytest.mark.parametrize("sizes", [(1, 2), (2, 3, 1), (3, 1, 1, 4)])
def test_mme_equals_gls_exactly_with_sympy_matrices(sizes):
    """Exact rational arithmetic: no rounding can hide a discrepancy."""
    rng = np.random.default_rng(sum(sizes))
    N, Jg = sum(sizes), len(sizes)
    y = sp.Matrix([sp.Rational(int(v), 7) for v in rng.integers(-50, 50, size=N)])
    s2, sb2 = sp.Rational(3, 2), sp.Rational(2, 5)
    X = sp.ones(N, 1)
    Z = sp.zeros(N, Jg)
    row = 0
    for g, k in enumerate(sizes):
        for _ in range(k):
            Z[row, g] = 1
            row += 1
    C = sp.BlockMatrix([[X.T * X, X.T * Z], [Z.T * X, Z.T * Z + (s2 / sb2) * sp.eye(Jg)]]).as_explicit()
    sol = C.LUsolve(sp.Matrix.vstack(X.T * y, Z.T * y))
    V = s2 * sp.eye(N) + sb2 * Z * Z.T
    Vinv = V.inv()
    beta = ((X.T * Vinv * X).inv() * X.T * Vinv * y)[0]
    blups = sb2 * Z.T * Vinv * (y - beta * X)
    assert sp.simplify(sol[0] - beta) == 0
    assert all(sp.simplify(sol[1 + g] - blups[g]) == 0 for g in range(Jg))


def test_derived_gls_estimate_matches_the_dense_route(pls, rng):
    """eq. gls of pls, evaluated for concrete groups, against the dense GLS estimate."""
    estimate = pls.result("gls")
    n_arr, ybar_arr = quantity("n").indexed, quantity("ybar").indexed
    for _ in range(10):
        sizes, y, s2, sb2 = draw(rng)
        means = [float(np.mean(g)) for g in np.split(y, np.cumsum(sizes)[:-1])]
        concrete = estimate.subs({J: len(sizes), sigma2: s2, sigma_b2: sb2}).doit()
        concrete = concrete.xreplace({n_arr[k + 1]: int(sizes[k]) for k in range(len(sizes))})
        concrete = concrete.xreplace({ybar_arr[k + 1]: means[k] for k in range(len(sizes))})
        assert float(concrete) == pytest.approx(gls_route(sizes, y, s2, sb2)[0], rel=1e-10, abs=1e-10)


def test_unweighted_mean_is_not_the_maximiser(pls, rng):
    """A wrong estimate (the plain mean of the group means) differs from GLS on
    unbalanced data, and the engine rejects it as the maximiser of eq. profile of pls."""
    sizes = np.array([1, 9, 2])
    y = rng.normal(0, 1, size=sizes.sum()) + np.repeat([3.0, -1.0, 0.5], sizes)
    means = [g.mean() for g in np.split(y, np.cumsum(sizes)[:-1])]
    assert abs(np.mean(means) - gls_route(sizes, y, 1.0, 0.3)[0]) > 1e-3
    number = pls.derivation.step_index("gls") + 1
    profile = pls.derivation.steps[number - 2].rhs
    ybar_arr = quantity("ybar").indexed
    wrong = Maximiser(sp.Sum(ybar_arr[j], (j, 1, J)) / J, var=beta0, why="unweighted mean")
    with pytest.raises(StepError):
        verify_step("pls", number, wrong, profile, pls.definitions)


def test_penalty_is_sigma2_over_sigma_b2(pls):
    """The ridge form eq. penalised of pls: the coefficient of sum_j b_j^2 inside the bracket is sigma2/sigma_b2."""
    rhs = pls.derivation.steps[pls.derivation.step_index("penalised")].rhs
    bracket = [t for t in rhs.args if t.has(quantity("b").indexed)][0]
    bj2 = sp.Sum(quantity("b").indexed[j] ** 2, (j, 1, J))
    coefficient = sp.expand(bracket).coeff(bj2)
    assert sp.simplify(coefficient + sp.Rational(1, 2) / sigma_b2) == 0  # -(1/(2 sigma2)) (sigma2/sigma_b2)
