"""Several grouping factors (crossed, nested, interactions) against dense matrices.

On small random unbalanced data, y ~ N(X beta, sigma^2 I + sum_k Z_k (I kron D_k) Z_k') is
written densely from the model's definition, independent of the blocked Cholesky
(shrinkage.lmm.blocked): its (REML) log-likelihood at our estimates equals ours, scipy's
maximisation of it from several starts finds nothing higher, and beta, vcov, the BLUPs
D Z'V^-1(y - X beta) and the conditional variances Lambda (Lambda'Z'Z Lambda + I)^-1
Lambda' sigma^2 agree.  Also: the parse (lme4's expandSlash names and order), a single
term through the blocked path equal to the one-factor fit, and refusals.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.stats import norm

import shrinkage
from shrinkage.errors import InputError
from shrinkage.lmm.formula import parse
from shrinkage.lmm.several_result import SeveralResult


def crossed_data(seed: int, slope: bool = False):
    """Two crossed factors a (J_a levels) and b (J_b levels), unbalanced (some cells empty,
    some repeated), a covariate x; a random slope of x on a when ``slope``."""
    rng = np.random.default_rng(seed)
    Ja, Jb = int(rng.integers(5, 10)), int(rng.integers(3, 7))
    N = int(rng.integers(40, 90))
    a, b = rng.integers(0, Ja, N), rng.integers(0, Jb, N)
    a[:Ja], b[:Jb] = np.arange(Ja), np.arange(Jb)  # every level present
    x = rng.uniform(-2, 2, N)
    sa, sb, ss = 10 ** rng.uniform(-1, 0.3, 3)
    y = (1 + 0.5 * x + rng.normal(size=Ja)[a] * sa + rng.normal(size=Jb)[b] * sb
         + (rng.normal(size=Ja)[a] * ss * x if slope else 0) + rng.normal(size=N))
    return pd.DataFrame({"y": y, "x": x, "a": [f"a{k}" for k in a], "b": [f"b{k}" for k in b]})


def dense_Z(frame, terms):
    """Per term a dense (N, J q) Z_k: each row's random-effect columns in its level's block."""
    out = []
    for t in terms:
        N = len(frame)
        Zk = np.column_stack([np.ones(N) if c is None else c for c in t.z_cols])
        full = np.zeros((N, t.levels * t.q))
        for k in range(t.q):
            full[np.arange(N), t.codes * t.q + k] = Zk[:, k]
        out.append(full)
    return out


def dense_loglik(y, X, Zs, s2, Ds, method, beta=None):
    """(log-likelihood, V) of the model from its definition: ML at beta, or REML with
    beta profiled by GLS (with the (N - p) log 2 pi constant, as lme4)."""
    N, p = X.shape
    V = s2 * np.eye(N)
    for Z, D in zip(Zs, Ds):
        V += Z @ np.kron(np.eye(Z.shape[1] // D.shape[0]), D) @ Z.T
    Vi = np.linalg.inv(V)
    logdet = np.linalg.slogdet(V)[1]
    if method == "ML":
        r = y - X @ beta
        return -0.5 * (logdet + r @ Vi @ r + N * np.log(2 * np.pi)), V
    A = X.T @ Vi @ X
    bh = np.linalg.solve(A, X.T @ Vi @ y)
    r = y - X @ bh
    return -0.5 * (logdet + np.linalg.slogdet(A)[1] + r @ Vi @ r + (N - p) * np.log(2 * np.pi)), V


def _unpack(u, qs, p, method):
    """(s2, [D_k], beta) from an unconstrained vector: log sigma^2, each D_k's Cholesky
    factor (log diagonal), beta for ML."""
    s2, at, Ds = np.exp(u[0]), 1, []
    for q in qs:
        L = np.zeros((q, q))
        rows, cols = np.tril_indices(q)
        L[rows, cols] = u[at:at + rows.size]
        L[np.diag_indices(q)] = np.exp(L[np.diag_indices(q)])
        Ds.append(L @ L.T)
        at += rows.size
    return s2, Ds, (u[at:at + p] if method == "ML" else None)


def dense_maximum(y, X, Zs, qs, method, starts):
    """The best of scipy's maximisations of the dense log-likelihood from ``starts``."""
    p = X.shape[1]

    def neg(u):
        s2, Ds, beta = _unpack(u, qs, p, method)
        return -dense_loglik(y, X, Zs, s2, Ds, method, beta)[0]

    best = None
    for u0 in starts:
        res = minimize(neg, u0, method="BFGS", options={"gtol": 1e-9, "maxiter": 5000})
        if best is None or res.fun < best.fun:
            best = res
    return -best.fun, _unpack(best.x, qs, p, method)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("formula", ["y ~ x + (1 | a) + (1 | b)", "y ~ x + (x | a) + (1 | b)"])
def test_crossed_fit_is_the_dense_maximum(formula, method, seed):
    frame = crossed_data(seed, slope="(x | a)" in formula)
    r = shrinkage.fit(formula, data=frame, method=method)
    assert isinstance(r, SeveralResult)
    y, X = frame["y"].to_numpy(), np.column_stack([np.ones(len(frame)), frame["x"].to_numpy()])
    Zs, qs = dense_Z(frame, r.terms), [t.q for t in r.terms]
    ours, V = dense_loglik(y, X, Zs, r.sigma2, r.D, method, r.beta)
    np.testing.assert_allclose(ours, r.loglik, rtol=1e-11)  # the criterion is the likelihood
    # scipy from our estimates (perturbed) and from a generic start finds nothing higher
    u_hat = [np.log(r.sigma2)]
    for D in r.D:
        L = np.linalg.cholesky(D + 1e-10 * np.eye(len(D)))
        L[np.diag_indices(len(D))] = np.log(np.diag(L))
        u_hat += list(L[np.tril_indices(len(D))])
    u_hat = np.array(u_hat + (list(r.beta) if method == "ML" else []))
    generic = np.zeros_like(u_hat)
    best, (s2, Ds, _) = dense_maximum(y, X, Zs, qs, method, [u_hat + 0.3, generic])
    assert best <= r.loglik + 1e-8 * abs(r.loglik)
    if not r.singular:
        assert best >= r.loglik - 1e-7 * abs(r.loglik)
        np.testing.assert_allclose(s2, r.sigma2, rtol=1e-4)
        for D, Dr in zip(Ds, r.D):
            np.testing.assert_allclose(D, Dr, rtol=1e-3, atol=1e-4 * r.sigma2)
    # GLS beta and its covariance, BLUPs and conditional variances at our estimates
    Vi = np.linalg.inv(V)
    A = X.T @ Vi @ X
    np.testing.assert_allclose(r.beta, np.linalg.solve(A, X.T @ Vi @ y), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(r.vcov_matrix, np.linalg.inv(A), rtol=1e-7, atol=1e-12)
    resid = y - X @ r.beta
    Zall = np.hstack(Zs)
    Dall = [np.kron(np.eye(t.levels), D) for t, D in zip(r.terms, r.D)]
    from scipy.linalg import block_diag

    G = block_diag(*Dall)
    np.testing.assert_allclose(np.concatenate([b.ravel() for b in r.b]), G @ Zall.T @ Vi @ resid, atol=1e-8)
    lam = block_diag(*[np.kron(np.eye(t.levels), T) for t, T in zip(r.terms, r.T)])
    cond = r.sigma2 * lam @ np.linalg.inv(lam.T @ Zall.T @ Zall @ lam + np.eye(lam.shape[0])) @ lam.T
    at = 0
    for name, t in zip(r.names, r.terms):
        got = r.condvar[name]
        for j in range(t.levels):
            i = at + j * t.q
            np.testing.assert_allclose(got[j], cond[i:i + t.q, i:i + t.q], rtol=1e-7, atol=1e-12)
        at += t.levels * t.q
    np.testing.assert_allclose(r.predict(), X @ r.beta + Zall @ np.concatenate([b.ravel() for b in r.b]),
                               rtol=1e-12)


def test_parse_lists_the_terms_as_lme4_expands_them():
    f = parse("y ~ x + (1 | batch/cask)")
    assert [t.name for t in f.terms] == ["cask:batch", "batch"]
    f = parse("y ~ (1 | a/b/c)")
    assert [t.name for t in f.terms] == ["c:b:a", "b:a", "a"]
    f = parse("y ~ (x || a) + (1 | a:b)")
    assert [(t.expr, t.correlated, t.factors) for t in f.terms] == [("x", False, ("a",)), ("1", True, ("a", "b"))]
    assert parse("y ~ (x | g)").several is False
    assert parse("y ~ (1 | g) + (0 + x | g)").several is False  # one factor: the per-group fast path


def test_terms_in_lme4_order_and_names():
    frame = crossed_data(3)
    r = shrinkage.fit("y ~ 1 + (1 | b) + (1 | a)", data=frame)
    assert [t.factor for t in r.terms] == ["a", "b"]  # most levels first, as lme4's mkReTrms
    frame["c"] = np.where(frame["x"] > 0, "p", "n")
    r = shrinkage.fit("y ~ 1 + (1 | a/c)", data=frame)
    assert r.names == ["c:a", "a"] and all(":" in lab for lab in r.ranef["c:a"].index)


def test_one_interaction_term_equals_the_one_factor_fit_on_the_combined_column():
    frame = crossed_data(5)
    r = shrinkage.fit("y ~ x + (1 | a:b)", data=frame)
    frame["ab"] = frame["a"] + ":" + frame["b"]
    one = shrinkage.fit("y ~ x + (1 | ab)", data=frame)
    np.testing.assert_allclose(r.loglik, one.loglik, rtol=1e-10)
    np.testing.assert_allclose(r.beta, one.beta, rtol=1e-6)
    np.testing.assert_allclose(r.varcorr["a:b"].to_numpy(), one.varcorr["ab"].to_numpy(), rtol=1e-5)
    ours = r.ranef["a:b"]
    np.testing.assert_allclose(ours.to_numpy()[:, 0], one.ranef["ab"].loc[list(ours.index)].to_numpy()[:, 0],
                               rtol=1e-5, atol=1e-8)


def test_predict_new_levels_get_zero_for_that_factor_only():
    frame = crossed_data(2)
    r = shrinkage.fit("y ~ x + (1 | a) + (1 | b)", data=frame)
    new = pd.DataFrame({"x": [0.5, 0.5], "a": ["a0", "zz"], "b": ["zz", "b1"]})
    got = r.predict(new)
    ra, rb = r.ranef["a"].iloc[:, 0], r.ranef["b"].iloc[:, 0]
    fixed = r.beta[0] + 0.5 * r.beta[1]
    np.testing.assert_allclose(got, [fixed + ra["a0"], fixed + rb["b1"]], rtol=1e-12)


def test_missing_rows_dropped_and_counted_and_lrt():
    frame = crossed_data(4)
    frame.loc[[3, 7], "b"] = None
    r = shrinkage.fit("y ~ x + (1 | a) + (1 | b)", data=frame)
    assert r.dropped == 2 and r.nobs == len(frame) - 2
    assert "(2 observations deleted due to missingness)" in r.summary()
    with pytest.raises(InputError, match=r"missing value in column 'b' at row 3"):
        shrinkage.fit("y ~ x + (1 | a) + (1 | b)", data=frame, na_action="raise")
    stat, p = r.lrt("b")
    alone = shrinkage.fit("y ~ x + (1 | a)", data=frame.dropna())
    np.testing.assert_allclose(stat, max(alone.deviance - r.deviance, 0.0), rtol=1e-7, atol=1e-9)
    assert 0 <= p <= 0.5 or p == 1.0


def test_refusals_name_the_problem():
    frame = crossed_data(1)
    frame["one"] = "x"
    with pytest.raises(InputError, match=r"grouping factor 'one' has a single level"):
        shrinkage.fit("y ~ x + (1 | a) + (1 | one)", data=frame)
    with pytest.raises(InputError, match=r"no such file: nowhere.parquet"):
        shrinkage.fit("y ~ x + (1 | a) + (1 | b)", data="nowhere.parquet")
    r = shrinkage.fit("y ~ x + (1 | a) + (1 | b)", data=frame)
    with pytest.raises(InputError, match=r"confint\(method='profile'\) is not supported yet for several"):
        r.confint()
    ci = r.confint(0.9, method="Wald")  # as lme4's: NaN variance rows, beta -+ z se
    assert list(ci.index) == [".sig01", ".sig02", ".sigma", "(Intercept)", "x"]
    assert list(ci.columns) == ["5 %", "95 %"] and ci.iloc[:3].isna().all().all()
    se = np.sqrt(np.diag(r.vcov_matrix))
    z = norm.ppf(0.95)
    np.testing.assert_allclose(ci.iloc[3:].to_numpy(), np.column_stack([r.beta - z * se, r.beta + z * se]), rtol=1e-12)


def test_crossed_shrinkage_one_factor_blup_given_the_others():
    """What crossed shrinkage means, at the fit's variances (Henderson's equations, the
    row of a_i): a_i = lambda_i * mean over a_i's rows of (y - X beta - b_j(row)), with
    lambda_i = n_i s_a^2 / (n_i s_a^2 + s^2): the one-factor shrinkage of a residual that
    has the other factor's BLUPs taken out.  In balanced data (every a-level meets every
    b-level once) the b's cancel from the row mean: a_i = lambda (ybar_i. - ybar..)."""
    frame = crossed_data(6)
    r = shrinkage.fit("y ~ x + (1 | a) + (1 | b)", data=frame)
    ta, tb = r.terms[0], r.terms[1]
    sa, sb = float(r.D[0][0, 0]), float(r.D[1][0, 0])
    resid = frame["y"].to_numpy() - r.design.X @ r.beta
    for t, other, s2k, b_own, b_other in ((ta, tb, sa, r.b[0], r.b[1]), (tb, ta, sb, r.b[1], r.b[0])):
        n = np.bincount(t.codes, minlength=t.levels)
        mean = np.bincount(t.codes, resid - b_other[other.codes, 0], minlength=t.levels) / n
        np.testing.assert_allclose(b_own[:, 0], n * s2k / (n * s2k + r.sigma2) * mean, rtol=1e-8, atol=1e-10)
    I, J = 7, 5
    rng = np.random.default_rng(11)
    a, b = np.repeat(np.arange(I), J), np.tile(np.arange(J), I)
    y = 2 + rng.normal(size=I)[a] * 0.8 + rng.normal(size=J)[b] * 1.3 + rng.normal(size=I * J)
    bal = shrinkage.fit("y ~ 1 + (1 | a) + (1 | b)", data=pd.DataFrame({"y": y, "a": a, "b": b}))
    lam = J * bal.D[0][0, 0] / (J * bal.D[0][0, 0] + bal.sigma2)
    row_means = np.bincount(a, y) / J
    np.testing.assert_allclose(bal.ranef["a"].iloc[:, 0], lam * (row_means - y.mean()), rtol=1e-8, atol=1e-10)
