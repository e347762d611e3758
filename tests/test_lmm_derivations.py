"""The matrix derivations (lmm_*): checked, wrong claims rejected, and the generated
numpy functions against dense computations written from the model alone.

The oracle never uses a derived formula: the BLUP and conditional covariance are the
conditional mean and covariance of b_j given y_j from the joint normal distribution,
D Z^T V^{-1} (y - X beta) and D - D Z^T V^{-1} Z D with the dense V = Z D Z^T + sigma^2 I;
the marginal log-likelihood is scipy's multivariate normal log-density; GLS is the
dense weighted least-squares solution.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from scipy import stats

from shrinkage.codegen import generate
from shrinkage.errors import StepError
from shrinkage.matrix.nodes import mtimes, tr
from shrinkage.matrix.notation import D, Lambda_theta, Z_j, sigma2

DERIVATIONS = Path(__file__).resolve().parent.parent / "derivations"
NAMES = ("lmm_blup", "lmm_marginal", "lmm_profile", "lmm_henderson", "lmm_gradient")


def load(name):
    spec = importlib.util.spec_from_file_location(f"lmm_test_{name}", DERIVATIONS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def lmm_checked(checked):
    """The lmm_* derivations as the session checked them (tests/conftest.py: once, cached)."""
    return {name: checked[name] for name in NAMES}


@pytest.fixture(scope="module")
def generated(lmm_checked):
    """The generated module for the lmm derivations, executed in its own namespace."""
    source = generate(list(lmm_checked.values()))
    namespace: dict = {}
    exec(compile(source.replace("from ._validation import require", "from shrinkage._validation import require"),
                 "<generated lmm>", "exec"), namespace)
    return namespace


def test_every_step_is_proved_for_q_1_and_2_and_checked_at_random_sizes(lmm_checked):
    for cd in lmm_checked.values():
        checked = [s for s in cd.steps if s.verdict.symbolic != "n/a"]
        assert checked, cd.derivation.name
        for s in checked:
            assert s.verdict.symbolic is True, (cd.derivation.name, s.number, s.step.why)
            assert s.verdict.points == 12 and "random points" in s.verdict.method
            assert "SymPy" in s.verdict.method, (cd.derivation.name, s.number, s.verdict.method)


def _with_step(d, label, **changes):
    k = d.step_index(label)
    steps = list(d.steps)
    steps[k] = replace(steps[k], **changes)
    return replace(d, steps=tuple(steps)), k + 1


@pytest.mark.parametrize("case", ["precision", "theta", "one_way", "woodbury", "sigma2_ml", "reml_no_rx",
                                  "reml_precision", "deviance_scale", "pls", "henderson", "henderson_at_beta",
                                  "gradient_factor", "gradient_no_rx", "gradient_transposed"])
def test_a_wrong_step_is_rejected_and_named(case):
    blup, marginal, profile = load("lmm_blup"), load("lmm_marginal"), load("lmm_profile")
    henderson, gradient = load("lmm_henderson"), load("lmm_gradient")
    if case == "gradient_factor":  # d log|L|^2 without its factor 2
        d, number = _with_step(gradient.derivation(), "d_logdet_L", rhs=gradient.d_logdet_L / 2)
    elif case == "gradient_no_rx":  # the REML gradient without the derivative of log|R_X|^2
        d, number = _with_step(gradient.derivation(), "reml_gradient", rhs=gradient.mplus(
            gradient.d_logdet_L, gradient.mneg(gradient.times(gradient.frac(gradient.nu, gradient.r2),
                                                             gradient.minus_d_r2(gradient.beta_hat)))))
    elif case == "gradient_transposed":  # Lambda M^-1 Z'Z for Z'Z Lambda M^-1: equal at q = 1 only
        d, number = _with_step(gradient.derivation(), "d_logdet_L", rhs=gradient.times(2, gradient.GroupMatSum(
            mtimes(Lambda_theta, sp.Inverse(gradient.M_j), gradient.ZtZ))))
    elif case == "henderson":  # Henderson's matrix without sigma^2 in front of the prior precision
        wrong = henderson.henderson.xreplace({henderson.mtimes(sigma2, henderson.prior): henderson.prior})
        d, number = _with_step(henderson.derivation(), "henderson", rhs=henderson.mtimes(sp.Inverse(wrong), henderson.right_side))
    elif case == "henderson_at_beta":  # the BLUPs at the true beta instead of at the GLS estimate
        d = henderson.derivation()
        rhs = d.step("henderson_solution").rhs
        d, number = _with_step(d, "henderson_solution", rhs=rhs.xreplace({henderson.GroupStack(
            rhs.blocks[1, 0].term, rhs.blocks[1, 0].shape[0]): henderson.GroupStack(
            rhs.blocks[1, 0].term.xreplace({henderson.beta_hat: henderson.beta}), rhs.blocks[1, 0].shape[0])}))
    elif case == "sigma2_ml":  # REML's sigma^2 estimate claimed for ML
        d, number = _with_step(profile.derivation(), "sigma2_ml", rhs=profile.sigma2_reml)
    elif case == "reml_no_rx":  # the REML criterion without log|R_X|^2
        d, number = _with_step(profile.derivation(), "reml_criterion", rhs=profile.profiled(profile.nu))
    elif case == "reml_precision":  # the precision of the REML integral without its 1/sigma^2
        d, number = _with_step(profile.derivation(), "reml_integral", precision=profile.gls_precision)
    elif case == "deviance_scale":  # -2 l_p claimed for -l_p
        d, number = _with_step(profile.derivation(), "ml_deviance", factor=sp.Integer(-1))
    elif case == "pls":  # the penalised RSS without the penalty |u|^2
        pls = profile.derivation().step("r2_pls").rhs
        d, number = _with_step(profile.derivation(), "r2_pls", rhs=pls.args[0])
    elif case == "precision":  # the maximiser's precision taken as D instead of C_j
        d, number = _with_step(blup.derivation(), "blup", precision=D)
    elif case == "theta":  # lme4's condVar without its sigma^2
        d, number = _with_step(blup.derivation(), "condvar_theta",
                               rhs=mtimes(Lambda_theta, sp.Inverse(blup.M_theta), tr(Lambda_theta)))
    elif case == "one_way":  # the one-way factor forgetting n_j
        d, number = _with_step(blup.derivation(), "shrinkage_one_way",
                               rhs=blup.frac(blup.sigma_b2, blup.terms(blup.sigma_b2, sigma2)))
    else:  # V_j without its sigma^2 I
        d = marginal.derivation()
        k = d.step_index("marginal") - 1
        steps = list(d.steps)
        steps[k] = replace(steps[k], rhs=mtimes(Z_j, D, tr(Z_j)))
        d, number = replace(d, steps=tuple(steps)), k + 2
    err = first_rejection(d, number)
    assert err is not None, f"{case}: the corrupted step {number} of {d.name} was accepted"
    assert f"step {number} " in str(err) and d.name in str(err)


def first_rejection(d, number):
    """The StepError of the corrupted step ``number`` or (a corrupted definition) of the
    first later step that rejects it, replaying the build's checks from there; None if
    every step passes.  Only the corrupted part is replayed: the rest is checked once."""
    from shrinkage.derive.checks import verify
    from shrinkage.derive.walk import walk

    start = list(walk(d))[number - 1]
    try:
        for ctx in walk(d, start=number, resume=start):
            verify(ctx, symbolic=ctx.number == number)
    except StepError as e:
        return e
    return None


# --- generated functions against the dense model ------------------------------------
def random_model(rng, q, p, groups):
    L = np.tril(rng.normal(size=(q, q)))
    np.fill_diagonal(L, np.exp(rng.normal(size=q) * 0.5))
    D_ = L @ L.T
    sigma2_ = float(np.exp(rng.normal()))
    beta_ = rng.normal(size=p)
    data = []
    for n_j in rng.integers(1, 9, size=groups):
        X = rng.normal(size=(n_j, p))
        Z = rng.normal(size=(n_j, q))
        y = X @ beta_ + Z @ rng.multivariate_normal(np.zeros(q), D_) + rng.normal(size=n_j) * np.sqrt(sigma2_)
        data.append((X, Z, y))
    return D_, sigma2_, beta_, data


def cross_products(data):
    ZtZ = np.array([Z.T @ Z for X, Z, y in data])
    ZtX = np.array([Z.T @ X for X, Z, y in data])
    XtX = np.array([X.T @ X for X, Z, y in data])
    Zty = np.array([Z.T @ y for X, Z, y in data])
    Xty = np.array([X.T @ y for X, Z, y in data])
    yty = np.array([y @ y for X, Z, y in data])
    n = np.array([len(y) for X, Z, y in data], dtype=float)
    return ZtZ, ZtX, XtX, Zty, Xty, yty, n


def dense(D_, sigma2_, beta_, data):
    blups, covs, logliks = [], [], []
    for X, Z, y in data:
        V = Z @ D_ @ Z.T + sigma2_ * np.eye(len(y))
        Vinv_Z = np.linalg.solve(V, Z)
        blups.append(D_ @ Z.T @ np.linalg.solve(V, y - X @ beta_))
        covs.append(D_ - D_ @ Z.T @ Vinv_Z @ D_)
        logliks.append(stats.multivariate_normal(X @ beta_, V).logpdf(y))
    A = sum(X.T @ np.linalg.solve(Z @ D_ @ Z.T + sigma2_ * np.eye(len(y)), X) for X, Z, y in data)
    c = sum(X.T @ np.linalg.solve(Z @ D_ @ Z.T + sigma2_ * np.eye(len(y)), y) for X, Z, y in data)
    return np.array(blups), np.array(covs), np.array(logliks), np.linalg.solve(A, c)


@pytest.mark.parametrize("draw", range(12))
def test_generated_functions_equal_the_dense_model(generated, draw):
    rng = np.random.default_rng(7000 + draw)
    q, p = 1 + draw % 4, 1 + draw % 3
    D_, sigma2_, beta_, data = random_model(rng, q, p, groups=int(rng.integers(2, 7)))
    ZtZ, ZtX, XtX, Zty, Xty, yty, n = cross_products(data)
    blup, cov, loglik, gls = dense(D_, sigma2_, beta_, data)
    Lam = np.linalg.cholesky(D_ / sigma2_)
    np.testing.assert_allclose(generated["lmm_blup"](ZtZ, ZtX, Zty, beta_, D_, sigma2_), blup, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(generated["lmm_blup_theta"](ZtZ, ZtX, Zty, beta_, Lam), blup, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(generated["lmm_conditional_covariance"](ZtZ, D_, sigma2_), cov, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(generated["lmm_condvar_theta"](ZtZ, Lam, sigma2_), cov, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(
        generated["lmm_marginal_loglik"](n, yty, Xty, Zty, XtX, ZtX, ZtZ, beta_, D_, sigma2_), loglik, rtol=1e-9)
    np.testing.assert_allclose(generated["lmm_gls_beta"](XtX, ZtX, ZtZ, Xty, Zty, D_, sigma2_), gls, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(
        generated["lmm_marginal_loglik_theta"](n, yty, Xty, Zty, XtX, ZtX, ZtZ, beta_, Lam, sigma2_), loglik, rtol=1e-9)
    np.testing.assert_allclose(generated["lmm_gls_beta_theta"](XtX, ZtX, ZtZ, Xty, Zty, Lam), gls, rtol=1e-8, atol=1e-10)


def test_the_same_comparison_rejects_a_wrong_blup(generated):
    """Without the sigma^2 in C_j = ZtZ/sigma^2 + D^{-1} the dense BLUP differs."""
    rng = np.random.default_rng(99)
    D_, sigma2_, beta_, data = random_model(rng, 2, 2, groups=5)
    ZtZ, ZtX, XtX, Zty, Xty, yty, n = cross_products(data)
    blup = dense(D_, sigma2_, beta_, data)[0]
    u = Zty - np.einsum("jqp,p->jq", ZtX, beta_)
    wrong = np.linalg.solve(ZtZ + np.linalg.inv(D_), u[..., None])[..., 0] / sigma2_
    assert not np.allclose(wrong, blup, rtol=1e-6)
    assert np.allclose(generated["lmm_blup"](ZtZ, ZtX, Zty, beta_, D_, sigma2_), blup, rtol=1e-9)


def test_one_group_and_boundary_inputs(generated):
    """A single group's arrays without the leading axis work; Lambda_theta = 0 (a singular
    fit) gives BLUPs and condVar of zero in the theta forms."""
    rng = np.random.default_rng(5)
    D_, sigma2_, beta_, data = random_model(rng, 2, 1, groups=1)
    ZtZ, ZtX, XtX, Zty, Xty, yty, n = cross_products(data)
    one = generated["lmm_blup"](ZtZ[0], ZtX[0], Zty[0], beta_, D_, sigma2_)
    np.testing.assert_allclose(one, generated["lmm_blup"](ZtZ, ZtX, Zty, beta_, D_, sigma2_)[0])
    zero = np.zeros((2, 2))
    assert np.all(generated["lmm_blup_theta"](ZtZ, ZtX, Zty, beta_, zero) == 0)
    assert np.all(generated["lmm_condvar_theta"](ZtZ, zero, sigma2_) == 0)
    with pytest.raises(ValueError, match="not finite"):
        generated["lmm_blup"](ZtZ, ZtX, Zty * np.nan, beta_, D_, sigma2_)


# --- the fit (shrinkage.lmm) against the derivation's generated functions -------------
@pytest.mark.parametrize("draw", range(8))
def test_the_lmm_fit_computes_what_the_derivations_derive(generated, draw):
    """shrinkage.lmm.objective (the fit's criterion, BLUPs, condVar, beta_hat) at random
    theta equals the functions generated from lmm_blup and lmm_marginal: the profiled ML
    deviance is -2 sum_j log p(y_j) at beta_hat(theta), sigma_hat^2 = r^2/N."""
    objective = pytest.importorskip("shrinkage.lmm.objective")
    from shrinkage.lmm.crossprod import CrossProducts

    rng = np.random.default_rng(8000 + draw)
    q, p = 1 + draw % 3, 1 + draw % 2
    D_, sigma2_, beta_, data = random_model(rng, q, p, groups=int(rng.integers(3, 8)))
    ZtZ, ZtX, XtX, Zty, Xty, yty, n = cross_products(data)
    cp = CrossProducts(labels=np.arange(len(n)), n=n.astype(int), XtX=XtX.sum(0), XtZ=ZtX.transpose(0, 2, 1).copy(),
                       ZtZ=ZtZ, Xty=Xty.sum(0), Zty=Zty, yty=np.array(yty.sum()),
                       x_names=tuple(f"x{i}" for i in range(p)), z_names=tuple(f"z{i}" for i in range(q)),
                       x_centre=np.zeros(p))
    Lam = np.tril(rng.normal(size=(q, q)))
    np.fill_diagonal(Lam, np.abs(np.diag(Lam)) + 0.1)
    theta = objective.Layout.of((q,)).from_lambda(Lam)  # lme4's theta: Lambda's entries column by column
    beta_fit = objective.beta_hat(theta, cp)
    np.testing.assert_allclose(beta_fit, generated["lmm_gls_beta_theta"](XtX, ZtX, ZtZ, Xty, Zty, Lam), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(objective.blup(theta, cp, beta_),
                               generated["lmm_blup_theta"](ZtZ, ZtX, Zty, beta_, Lam), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(objective.conditional_cov(theta, cp, sigma2_),
                               generated["lmm_condvar_theta"](ZtZ, Lam, sigma2_), rtol=1e-8, atol=1e-12)
    s2 = objective.sigma2_hat(theta, cp, "ML")
    loglik = generated["lmm_marginal_loglik_theta"](n, yty, Xty, Zty, XtX, ZtX, ZtZ, beta_fit, Lam, s2).sum()
    np.testing.assert_allclose(objective.profiled_ml(theta, cp), -2 * loglik, rtol=1e-10)
    # the same comparison rejects a criterion missing its log-determinant term
    logdet = np.linalg.slogdet(np.swapaxes(Lam, 0, 1) @ ZtZ @ Lam + np.eye(q))[1].sum()
    assert not np.isclose(objective.profiled_ml(theta, cp), -2 * loglik - logdet, rtol=1e-8)


# --- the profiled criteria: generated, the fit's, and a dense maximisation --------------
def dense_profiled(lam, data):
    """-2 x the maximised log-likelihood (ML) and REML log-likelihood over beta and sigma^2
    at Lambda, from the dense N x N model: beta by whitened least squares, sigma^2 by a
    numerical 1-D maximisation of scipy's normal log-density (no derived formula)."""
    from scipy import linalg, optimize

    X = np.vstack([X for X, Z, y in data])
    y = np.concatenate([y for X, Z, y in data])
    Z = linalg.block_diag(*[Z @ lam for X, Z, y in data])
    V = np.eye(len(y)) + Z @ Z.T  # V_j / sigma^2, all groups
    W = np.linalg.cholesky(V)
    beta_ = np.linalg.lstsq(np.linalg.solve(W, X), np.linalg.solve(W, y), rcond=None)[0]
    p_ = X.shape[1]

    def ml(log_s2):
        return -2 * stats.multivariate_normal(X @ beta_, np.exp(log_s2) * V).logpdf(y)

    def reml(log_s2):
        s2 = np.exp(log_s2)
        info = X.T @ np.linalg.solve(s2 * V, X)
        return ml(log_s2) + np.linalg.slogdet(info)[1] - p_ * np.log(2 * np.pi)

    out = []
    for f in (ml, reml):
        best = optimize.minimize_scalar(f, bounds=(-30, 30), method="bounded", options={"xatol": 1e-11})
        out.append(best.fun)
    return out


def theta_case(seed: int, draw: int, floor: float):
    """Random data (q = 1..4, p = 1..3 by draw), the fit's statistics, a random Lambda
    (diagonal at least ``floor``), its theta, and the generated functions' arguments."""
    from shrinkage.lmm.objective import Layout

    rng = np.random.default_rng(seed)
    q, p = 1 + draw % 4, 1 + draw % 3
    D_, sigma2_, beta_, data = random_model(rng, q, p, groups=int(rng.integers(3, 8)))
    ZtZ, ZtX, XtX, Zty, Xty, yty, n = cross_products(data)
    cp = fit_statistics(ZtZ, ZtX, XtX, Zty, Xty, yty, n)
    lam = np.tril(rng.normal(size=(q, q)))
    np.fill_diagonal(lam, np.abs(np.diag(lam)) + floor)
    return data, cp, lam, Layout.of((q,)).from_lambda(lam), (n, yty, Xty, Zty, XtX, ZtX, ZtZ, lam)


@pytest.mark.parametrize("draw", range(8))
def test_profiled_criteria_equal_the_fit_and_a_dense_maximisation(generated, draw):
    """lmm_ml_profiled_deviance and lmm_reml_criterion (generated from lmm_profile) equal
    shrinkage.lmm.objective's profiled criteria and a dense maximisation over beta and
    sigma^2 at random theta, to 1e-10; the sigma^2 estimates equal the fit's."""
    objective = pytest.importorskip("shrinkage.lmm.objective")
    data, cp, lam, theta, args = theta_case(9000 + draw, draw, 0.1)
    ml, reml = generated["lmm_ml_profiled_deviance"](*args), generated["lmm_reml_criterion"](*args)
    np.testing.assert_allclose(ml, objective.profiled_ml(theta, cp), rtol=1e-10)
    np.testing.assert_allclose(reml, objective.profiled_reml(theta, cp), rtol=1e-10)
    dense_ml, dense_reml = dense_profiled(lam, data)
    np.testing.assert_allclose(ml, dense_ml, rtol=1e-10)
    np.testing.assert_allclose(reml, dense_reml, rtol=1e-10)
    np.testing.assert_allclose(generated["lmm_sigma2_ml"](*args), objective.sigma2_hat(theta, cp, "ML"), rtol=1e-10)
    np.testing.assert_allclose(generated["lmm_sigma2_reml"](*args), objective.sigma2_hat(theta, cp, "REML"), rtol=1e-10)
    # the same comparison rejects a REML criterion without log|R_X|^2 (|log det A| > 1e-3 here)
    logdet_A = np.linalg.slogdet(objective.evaluate(theta, cp).A)[1]
    assert not np.isclose(reml - logdet_A, dense_reml, rtol=1e-8, atol=0)


@pytest.mark.parametrize("draw", range(8))
def test_the_fits_gradient_is_the_derived_one_and_the_dense_criterions_slope(generated, draw):
    """The fit's compiled gradient (objective.gradient, steps (7)-(9)) at random theta
    equals lmm_ml_gradient / lmm_reml_gradient (generated from lmm_gradient) at theta's
    entries, q = 1..4, and central differences of the dense criterion of
    dense_profiled (sigma^2 maximised numerically, beta by least squares: no derived
    formula)."""
    objective = pytest.importorskip("shrinkage.lmm.objective")
    data, cp, lam, theta, args = theta_case(9500 + draw, draw, 0.3)
    layout = objective.Layout.of((lam.shape[0],))
    h = 1e-4
    slopes = []
    for k in range(theta.size):
        up, down = theta.copy(), theta.copy()
        up[k] += h
        down[k] -= h
        ends = [dense_profiled(objective.make_lambda(t, layout), data) for t in (up, down)]
        slopes.append([(a - b) / (2 * h) for a, b in zip(*ends)])
    for m, (method, name) in enumerate((("ML", "lmm_ml_gradient"), ("REML", "lmm_reml_gradient"))):
        derived = generated[name](*args)[layout.rows, layout.cols]
        np.testing.assert_allclose(objective.gradient(theta, cp, method), derived, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(derived, [s[m] for s in slopes], rtol=1e-5, atol=1e-6)


def fit_statistics(ZtZ, ZtX, XtX, Zty, Xty, yty, n):
    """The fit's CrossProducts (uncentred) from per-group cross-products."""
    from shrinkage.lmm.crossprod import CrossProducts

    p, q = XtX.shape[1], ZtZ.shape[1]
    return CrossProducts(labels=np.arange(len(n)), n=n.astype(int), XtX=XtX.sum(0), XtZ=ZtX.transpose(0, 2, 1).copy(),
                         ZtZ=ZtZ, Xty=Xty.sum(0), Zty=Zty, yty=np.array(yty.sum()),
                         x_names=tuple(f"x{i}" for i in range(p)), z_names=tuple(f"z{i}" for i in range(q)),
                         x_centre=np.zeros(p))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


@pytest.mark.parametrize("dim", [1, 2])
def test_the_quadrature_alone_rejects_a_wrong_gaussian_integral(monkeypatch, dim):
    """Shift both the closed-form Gaussian integral and the claim by 1e-8 at dimension
    ``dim`` only: they still agree, so only the quadrature can notice, and it must."""
    import mpmath

    from shrinkage.derive.walk import walk
    from shrinkage.matrix.gaussian import MatrixLogIntegral

    gaussian, claimed = MatrixLogIntegral.gaussian, MatrixLogIntegral.claimed

    def shift(w, exprs):
        return mpmath.mpf("1e-8") if w.value(exprs["precision"]).nrows == dim else 0

    d = load("lmm_marginal").derivation()
    ctx = next(c for c in walk(d) if isinstance(c.step, MatrixLogIntegral))
    ctx.step.verify(ctx.derivation, ctx.number, ctx.current, ctx.definitions, symbolic=False)  # as derived: passes
    monkeypatch.setattr(MatrixLogIntegral, "gaussian", lambda self, w, e: gaussian(self, w, e) + shift(w, e))
    monkeypatch.setattr(MatrixLogIntegral, "claimed", lambda self, w, e, L: claimed(self, w, e, L) + shift(w, e))
    with pytest.raises(StepError, match="quadrature gives"):
        ctx.step.verify(ctx.derivation, ctx.number, ctx.current, ctx.definitions, symbolic=False)
