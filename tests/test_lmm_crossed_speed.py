"""The fast path for scalar crossed terms ((1 | a) + (1 | b) + ...), issue 22 item 4.

The exact gradient (shrinkage.lmm.blocked_gradient) against central differences of the
criterion; the downdate through the stored pairs pattern against the compiled loop; the
moment start near the optimum; and the Newton path an expensive criterion takes (forced
here on small data) ending where the dense maximisation of the likelihood ends (the oracle
of test_lmm_crossed), with a handful of factorisations instead of COBYQA's dozens.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import shrinkage
import shrinkage.lmm.blocked as blocked
from shrinkage.lmm import blocked_optimise
from shrinkage.lmm.blocked import centred, deviance, evaluate, prepare
from shrinkage.lmm.blocked_gradient import value_and_gradient
from shrinkage.lmm.blocked_start import moment_start
from test_lmm_crossed import crossed_data, dense_loglik, dense_maximum, dense_Z


def design(seed: int, levels=(40, 15, 7), N: int = 400, x_scale: float = 1.0):
    """(codes, Z, X_c, y_c): scalar crossed terms (a random-slope-like scalar term on the
    last factor: its Z is a covariate, not ones), an intercept and a covariate."""
    rng = np.random.default_rng(seed)
    codes = [rng.integers(0, J, N) for J in levels]
    for c, J in zip(codes, levels):
        c[:J] = np.arange(J)
    x = rng.standard_normal(N) * x_scale
    X = np.column_stack([np.ones(N), x])
    Z = [np.ones((N, 1)) for _ in levels[:-1]] + [rng.uniform(0.5, 2.0, (N, 1))]
    y = X @ [1.0, 2.0] + sum(z[:, 0] * rng.standard_normal(J)[c] for z, c, J in zip(Z, codes, levels))
    y = y + rng.standard_normal(N)
    Xc, yc, _, _ = centred(X, y, ("(Intercept)", "x"))
    return codes, Z, Xc, yc


def downdate_by(monkeypatch, path: str) -> None:
    """The first term's downdate through the stored pairs, by BLAS on a dense C, or by
    the compiled loop (prepare picks by cost; forced here)."""
    if path != "dense":
        monkeypatch.setattr(blocked, "DENSE_C", 0)
        monkeypatch.setattr(blocked, "DENSE_C_SCALAR", 0)
    if path != "pairs":
        monkeypatch.setattr(blocked, "PAIRS_LIMIT", 0)


def check_path(pr, path: str) -> None:
    kept = {"pairs": (True, False), "dense": (False, True), "loop": (False, False)}[path]
    assert (pr.pairs is not None, pr.C_dense is not None) == kept


@pytest.mark.parametrize("path", ["pairs", "dense", "loop"])
@pytest.mark.parametrize("K", [2, 3])
@pytest.mark.parametrize("method", ["REML", "ML"])
def test_gradient_is_the_criterions_derivative(monkeypatch, method, K, path):
    downdate_by(monkeypatch, path)
    codes, Z, Xc, yc = design(K, levels=(40, 15, 7)[:K])
    pr = prepare(codes, Z, Xc, yc)
    check_path(pr, path)
    rng = np.random.default_rng(K)
    for theta in [rng.uniform(0.2, 2.0, K), np.r_[0.05, rng.uniform(0.5, 1.5, K - 1)]]:
        value, g = value_and_gradient(theta, pr, method)
        assert value == deviance(theta, pr, method)
        h = 1e-5 * theta
        fd = [(deviance(theta + hk * e, pr, method) - deviance(theta - hk * e, pr, method)) / (2 * hk)
              for hk, e in zip(h, np.eye(K))]
        # central differences err by h^2 f''' and by rounding ~1e-16 f / h: 1e-6 absolute here
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-5)
    _, g0 = value_and_gradient(np.r_[0.0, np.ones(K - 1)], pr, method)
    assert g0[0] == 0.0  # the criterion is even in theta_k


@pytest.mark.parametrize("path", ["dense", "loop"])
def test_stored_pairs_downdate_equals_the_others(monkeypatch, path):
    codes, Z, Xc, yc = design(5, levels=(60, 25))
    theta = np.array([0.7, 1.3])
    with monkeypatch.context() as mp:
        downdate_by(mp, "pairs")
        pr = prepare(codes, Z, Xc, yc)
    check_path(pr, "pairs")
    fast = evaluate(theta, pr)
    downdate_by(monkeypatch, path)
    pr = prepare(codes, Z, Xc, yc)
    check_path(pr, path)
    np.testing.assert_allclose(fast.LW, evaluate(theta, pr).LW, rtol=1e-12, atol=1e-12)


def test_moment_start_is_near_the_optimum():
    """On a larger crossed design the moments land within 15% of theta_hat (they are
    consistent; the optimiser only polishes)."""
    rng = np.random.default_rng(3)
    N, Ja, Jb = 20000, 600, 200
    a, b = rng.integers(0, Ja, N), rng.integers(0, Jb, N)
    x = rng.standard_normal(N)
    y = 1 + 0.3 * x + 0.5 * rng.standard_normal(Ja)[a] + 0.8 * rng.standard_normal(Jb)[b] + rng.standard_normal(N)
    X = np.column_stack([np.ones(N), x])
    Xc, yc, _, _ = centred(X, y, ("(Intercept)", "x"))
    pr = prepare([a, b], [np.ones((N, 1))] * 2, Xc, yc)
    start = moment_start(pr)
    theta = blocked_optimise.minimise(pr, "REML").theta
    np.testing.assert_allclose(start, theta, rtol=0.15)


def costly(monkeypatch):
    """Every evaluation counted as costly: the Newton path from the moment start runs."""
    monkeypatch.setattr(blocked_optimise, "_CHEAP", 0.0)


def with_c(seed: int):
    frame = crossed_data(seed)
    rng = np.random.default_rng(100 + seed)
    frame["c"] = [f"c{k}" for k in rng.integers(0, 4, len(frame))]
    frame["y"] += rng.normal(size=4)[frame["c"].str[1:].astype(int)] * 0.8
    return frame


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("formula", ["y ~ x + (1 | a) + (1 | b)", "y ~ x + (1 | a) + (1 | b) + (1 | c)"])
def test_newton_path_ends_at_the_dense_maximum(monkeypatch, formula, method, seed):
    frame = with_c(seed)
    cheap = shrinkage.fit(formula, data=frame, method=method)
    costly(monkeypatch)
    r = shrinkage.fit(formula, data=frame, method=method)
    y, X = frame["y"].to_numpy(), np.column_stack([np.ones(len(frame)), frame["x"].to_numpy()])
    Zs = dense_Z(frame, r.terms)
    ours, _ = dense_loglik(y, X, Zs, r.sigma2, r.D, method, r.beta)
    np.testing.assert_allclose(ours, r.loglik, rtol=1e-11)
    u_hat = np.r_[np.log(r.sigma2), [0.5 * np.log(max(D[0, 0], 1e-8)) for D in r.D], r.beta if method == "ML" else []]
    best, _ = dense_maximum(y, X, Zs, [1] * len(r.terms), method, [u_hat + 0.3, np.zeros_like(u_hat)])
    assert best <= r.loglik + 1e-8 * abs(r.loglik)
    assert r.loglik >= cheap.loglik - 1e-9 * abs(cheap.loglik)  # no worse than the searching path
    if not r.singular:
        np.testing.assert_allclose(r.theta, cheap.theta, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(r.beta, cheap.beta, rtol=1e-7, atol=1e-9)


def test_newton_path_needs_few_factorisations(monkeypatch):
    """COBYQA took 87 evaluations on InstEval; the Newton path from the moments a handful
    (some with the gradient: then also the dense block's inverse)."""
    rng = np.random.default_rng(7)
    N, Ja, Jb = 6000, 300, 100
    a, b = rng.integers(0, Ja, N), rng.integers(0, Jb, N)
    y = 0.6 * rng.standard_normal(Ja)[a] + 0.9 * rng.standard_normal(Jb)[b] + rng.standard_normal(N)
    frame = pd.DataFrame({"y": y, "a": a.astype(str), "b": b.astype(str)})
    expected = shrinkage.fit("y ~ 1 + (1 | a) + (1 | b)", data=frame)
    costly(monkeypatch)
    count = []
    original = blocked.evaluate

    def counted(theta, pr):
        count.append(1)
        return original(theta, pr)

    monkeypatch.setattr(blocked, "evaluate", counted)
    monkeypatch.setattr(blocked_optimise, "evaluate", counted)
    r = shrinkage.fit("y ~ 1 + (1 | a) + (1 | b)", data=frame)
    assert len(count) <= 10
    np.testing.assert_allclose(r.theta, expected.theta, rtol=1e-6)
    np.testing.assert_allclose(r.loglik, expected.loglik, rtol=1e-12)


@pytest.mark.parametrize("path", ["pairs", "dense", "loop"])
@pytest.mark.parametrize("method", ["ML", "REML"])
def test_every_downdate_route_is_right_beside_a_later_slope_term(monkeypatch, path, method):
    """A scalar first term beside (x | b): the downdate's lower triangle alone is not enough
    there (the slope block's scaling mixes rows and columns), on every route; the criterion
    equals the dense one, log|I + Z Lambda Lambda' Z'| + the profiled r^2 terms."""
    downdate_by(monkeypatch, path)
    rng = np.random.default_rng(3)
    Ja, Jb, N = 60, 40, 400
    a, b = rng.integers(0, Ja, N), rng.integers(0, Jb, N)
    a[:Ja], b[:Jb] = np.arange(Ja), np.arange(Jb)
    x = rng.uniform(-1, 1, N)
    X, y = np.column_stack([np.ones(N), x]), rng.normal(size=N) + x
    Za, Zb = np.ones((N, 1)), np.column_stack([np.ones(N), x])
    pr = blocked.prepare([a, b], [Za, Zb], X, y)
    check_path(pr, path)
    T2 = np.array([[1.1, 0.0], [0.3, 0.7]])
    theta = np.r_[0.9, T2[pr.layout.tri(1)]]
    Z = np.hstack([np.eye(Ja)[a] * Za, (np.eye(Jb)[b][:, :, None] * Zb[:, None, :]).reshape(N, 2 * Jb)])
    Lam = np.zeros((Ja + 2 * Jb,) * 2)
    Lam[:Ja, :Ja] = 0.9 * np.eye(Ja)
    Lam[Ja:, Ja:] = np.kron(np.eye(Jb), T2)
    V0 = np.eye(N) + Z @ Lam @ Lam.T @ Z.T
    A = X.T @ np.linalg.solve(V0, X)
    e = y - X @ np.linalg.solve(A, X.T @ np.linalg.solve(V0, y))
    r2, logdet = e @ np.linalg.solve(V0, e), np.linalg.slogdet(V0)[1]
    nu = N if method == "ML" else N - 2
    dense = logdet + (method == "REML") * np.linalg.slogdet(A)[1] + nu * (1 + np.log(2 * np.pi * r2 / nu))
    assert blocked.deviance(theta, pr, method) == pytest.approx(dense, rel=1e-12)
