"""Shrinkage-factor facts, the unbounded joint density and the Laplace view, against
oracles built from the model alone (dense covariance matrices, scipy densities, mpmath).

The derivations' own checks are not trusted here: the oracles never use a derived
formula, and deliberately wrong claims must be rejected by the engine.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy as sp
from scipy import stats

from shrinkage.derive import Derivative, Equals, Limit, Sign, verify_step
from shrinkage.errors import StepError
from shrinkage.symbols import b, beta0, n, sigma2, sigma_b2, ss_within, ybar


@pytest.fixture(scope="module")
def facts(checked):
    return checked["shrinkage_facts"]


@pytest.fixture(scope="module")
def unbounded(checked):
    return checked["joint_unbounded"]


@pytest.fixture(scope="module")
def laplace(checked):
    return checked["laplace"]


# --- an oracle for lambda from the model: the regression of b_j on ybar_j ------------
def dense_lambda(size: int, s2: float, sb2: float) -> float:
    """lambda_j = Cov(b_j, ybar_j) / Var(ybar_j), both from the dense covariance of (y_j, b_j)."""
    V = s2 * np.eye(size) + sb2 * np.ones((size, size))  # Cov(y_j)
    c = sb2 * np.ones(size)  # Cov(y_j, b_j)
    mean = np.ones(size) / size
    return float(mean @ c / (mean @ V @ mean))


# --- shrinkage_facts -------------------------------------------------------------
def test_every_fact_is_proved_symbolically(facts):
    kinds = {}
    for cs in facts.steps:
        if cs.step.kind in ("sign", "derivative", "limit"):
            assert cs.verdict.symbolic is True, f"step {cs.number} ({cs.step.kind}) not proved"
            kinds[cs.step.kind] = kinds.get(cs.step.kind, 0) + 1
    assert kinds == {"sign": 5, "derivative": 3, "limit": 3}
    first = facts.steps[0]  # lambda_j itself is recalled from blup, not re-derived here
    assert first.step.kind == "citation" and "of \\emph{blup}" in first.verdict.method


def test_lambda_matches_the_dense_regression_oracle(facts, rng):
    lam = sp.lambdify((n, sigma2, sigma_b2), facts.result("lambda"))
    for _ in range(50):
        size = int(rng.integers(1, 30))
        s2, sb2 = 10 ** rng.uniform(-2, 2, size=2)
        assert lam(size, s2, sb2) == pytest.approx(dense_lambda(size, s2, sb2), rel=1e-12)
        assert 0 < dense_lambda(size, s2, sb2) < 1


def test_monotonicity_against_the_dense_oracle(facts, rng):
    """Finite differences of the dense oracle have the signs the derivation proves, and
    the derivatives agree with central differences of lambda itself (mpmath, 40 digits)."""
    d_sb2 = sp.lambdify((n, sigma2, sigma_b2), facts.result("d_sigma_b2"), "mpmath")
    d_s2 = sp.lambdify((n, sigma2, sigma_b2), facts.result("d_sigma2"), "mpmath")
    d_n = sp.lambdify((n, sigma2, sigma_b2), facts.result("d_n"), "mpmath")
    with mpmath.workdps(40):
        lam = lambda nn, s2, sb2: sb2 / (sb2 + s2 / nn)  # noqa: E731  (the model's regression coefficient)
        for _ in range(30):
            size = int(rng.integers(1, 30))
            s2, sb2 = (mpmath.mpf(float(x)) for x in 10 ** rng.uniform(-2, 2, size=2))
            assert dense_lambda(size, float(s2), float(sb2) * 1.01) > dense_lambda(size, float(s2), float(sb2))
            assert dense_lambda(size, float(s2) * 1.01, float(sb2)) < dense_lambda(size, float(s2), float(sb2))
            assert dense_lambda(size + 1, float(s2), float(sb2)) > dense_lambda(size, float(s2), float(sb2))
            nn = mpmath.mpf(size) + mpmath.mpf("0.37")  # n_j real: between the integers too
            assert d_sb2(nn, s2, sb2) == pytest.approx(mpmath.diff(lambda x: lam(nn, s2, x), sb2), rel=1e-25)
            assert d_s2(nn, s2, sb2) == pytest.approx(mpmath.diff(lambda x: lam(nn, x, sb2), s2), rel=1e-25)
            assert d_n(nn, s2, sb2) == pytest.approx(mpmath.diff(lambda x: lam(x, s2, sb2), nn), rel=1e-25)


def test_limits_against_the_dense_oracle():
    assert dense_lambda(4, 2.0, 1e12) == pytest.approx(1, abs=1e-11)  # sigma_b2 -> oo: no pooling
    assert dense_lambda(4, 2.0, 1e-12) == pytest.approx(0, abs=1e-11)  # sigma_b2 -> 0+: complete pooling
    assert dense_lambda(4000, 2.0, 0.5) > 0.998  # n_j -> oo
    assert dense_lambda(4000, 2.0, 0.5) > dense_lambda(400, 2.0, 0.5)


LAM = sigma_b2 / (sigma_b2 + sigma2 / n)


@pytest.mark.parametrize(
    "step, current",
    [
        (Sign(sp.S.Zero, sign=1, why="wrong: lambda increases with sigma2"), sp.diff(LAM, sigma2)),
        (Sign(sp.S.Zero, sign=-1, why="wrong: lambda decreases with n"), sp.diff(LAM, n)),
        (Sign(sp.S.Zero, sign=-1, why="wrong: 1 - lambda < 0"), 1 - LAM),
        (Derivative(sigma2 / (sigma2 + n * sigma_b2) ** 2, var=sigma_b2, why="wrong: n_j dropped"), LAM),
        (Limit(sp.S.One, var=sigma_b2, point=sp.S.Zero, why="wrong: no pooling at sigma_b2 -> 0"), LAM),
        (Limit(sp.S.Half, var=n, point=sp.oo, why="wrong limit in n"), LAM),
        (Limit(sp.oo, var=sigma_b2, point=sp.oo, why="wrong: lambda unbounded"), LAM),
    ],
)
def test_wrong_facts_are_rejected(step, current):
    with pytest.raises(StepError):
        verify_step("wrong", 1, step, current, {})


# --- joint_unbounded ---------------------------------------------------------------
def joint_at_zero(groups, beta0_, s2, sb2):
    """log p(y, b=0) from the model (scipy densities), every observation."""
    return sum(stats.norm.logpdf(g, beta0_, np.sqrt(s2)).sum() + stats.norm.logpdf(0.0, 0.0, np.sqrt(sb2)) for g in groups)


def test_joint_density_grows_without_bound_as_sigma_b2_vanishes(unbounded, rng):
    assert unbounded.steps[unbounded.derivation.step_index("unbounded")].verdict.symbolic is True
    groups = [rng.normal(3, 1, size=k) for k in (2, 5, 3)]
    values = [joint_at_zero(groups, 3.0, 1.0, 10.0 ** -k) for k in range(1, 12)]
    steps = np.diff(values)
    # each decade of sigma_b2 adds exactly (J/2) log 10 = 1.5 log 10
    np.testing.assert_allclose(steps, 1.5 * np.log(10), rtol=1e-9)


def test_questioners_product_loses_the_group_size(unbounded, rng):
    """The maximiser of the question's per-group term is the BLUP of a group of size one;
    the correct term's maximiser depends on n_j.  Oracle: numerical maximisation of
    the model's densities."""
    from scipy import optimize

    wrong = unbounded.result("wrong_maximiser")
    right = unbounded.result("right_maximiser")
    y1 = sp.Indexed(sp.IndexedBase("y", real=True), 1)
    for _ in range(10):
        k = int(rng.integers(2, 12))
        s2, sb2, b0 = float(10 ** rng.uniform(-1, 1)), float(10 ** rng.uniform(-1, 1)), float(rng.normal())
        yj = rng.normal(b0, 2.0, size=k)

        def neg(bj, obs):
            return -(stats.norm.logpdf(obs, b0 + bj, np.sqrt(s2)).sum() + stats.norm.logpdf(bj, 0, np.sqrt(sb2)))

        full = optimize.minimize_scalar(lambda x: neg(x, yj), bracket=(-5, 5), tol=1e-12).x
        one = optimize.minimize_scalar(lambda x: neg(x, yj[:1]), bracket=(-5, 5), tol=1e-12).x
        pt = {sigma2: s2, sigma_b2: sb2, beta0: b0}
        assert float(right.subs({**pt, ybar: yj.mean(), n: k})) == pytest.approx(full, abs=1e-7)
        assert float(wrong.subs(pt).xreplace({y1: yj[0]})) == pytest.approx(one, abs=1e-7)
        assert abs(full - one) > 1e-4  # the slip changes the answer


# --- laplace -------------------------------------------------------------------------
def test_laplace_equals_the_dense_marginal(laplace, rng):
    """The corrected h-likelihood (and the integral) equal log N(y_j; beta0 1, sigma2 I + sigma_b2 11^T)."""
    marginal = sp.lambdify((n, ybar, ss_within, beta0, sigma2, sigma_b2), laplace.result("laplace"))
    integral = sp.lambdify((n, ybar, ss_within, beta0, sigma2, sigma_b2), laplace.result("marginal"))
    for _ in range(20):
        k = int(rng.integers(1, 15))
        s2, sb2, b0 = float(10 ** rng.uniform(-1, 1)), float(10 ** rng.uniform(-1, 1)), float(rng.normal())
        yj = rng.normal(b0, 2.0, size=k)
        V = s2 * np.eye(k) + sb2 * np.ones((k, k))
        oracle = stats.multivariate_normal(np.full(k, b0), V).logpdf(yj)
        args = (k, yj.mean(), float(((yj - yj.mean()) ** 2).sum()), b0, s2, sb2)
        assert marginal(*args) == pytest.approx(oracle, rel=1e-11, abs=1e-11)
        assert integral(*args) == pytest.approx(oracle, rel=1e-11, abs=1e-11)


def test_laplace_without_the_curvature_term_is_rejected(laplace):
    """Dropping the -1/2 log(curvature / 2 pi) correction makes the Laplace step false:
    the h-likelihood at its mode is not the marginal log-likelihood."""
    number = laplace.derivation.step_index("laplace") + 1
    corrected = laplace.derivation.steps[number - 2].rhs  # the Laplace approximation, the step before it
    bare = sp.Add(*corrected.args[:-1])  # without the last term, the correction
    assert corrected.args[-1].has(sp.log) and len(corrected.args) == len(bare.args) + 1
    with pytest.raises(StepError):
        verify_step("laplace", number, laplace.derivation.steps[number - 1], bare, laplace.definitions)


def test_engine_unrolls_merged_nested_sums_and_cancels_shifted_sums():
    """Engine additions used by joint_unbounded: Sum(f, (i, 2, n[j]), (j, 1, J)) is
    instantiated, and Sum from 1 minus first term minus Sum from 2 is proved zero."""
    from shrinkage.derive import is_zero
    from shrinkage.symbols import J, i, j

    y = sp.IndexedBase("y", real=True)
    nn = sp.IndexedBase("n", integer=True, positive=True)
    f = (y[i, j] - beta0) ** 2
    lhs = sp.Sum(sp.Sum(f, (i, 1, nn[j])), (j, 1, J))
    rhs = sp.Sum(f.subs(i, 1), (j, 1, J)) + sp.Sum(sp.Sum(f, (i, 2, nn[j])), (j, 1, J))
    assert is_zero(lhs - rhs) is True
    verify_step("sums", 1, Equals(rhs, why="split off i = 1"), lhs, {})
    with pytest.raises(StepError):
        verify_step("sums", 1, Equals(rhs + sp.Sum(f.subs(i, 1), (j, 1, J)), why="counted twice"), lhs, {})
