"""The profiled criterion of shrinkage.lmm against a dense computation from the model's
definition (V = Z D Z' + sigma^2 I built row by row), its gradient against central
differences, and the cross-products against direct sums.  A deliberately wrong
criterion is rejected by the same comparison."""

from __future__ import annotations

import numpy as np
import pytest

from shrinkage.lmm.crossprod import CrossProducts, cross_products
from shrinkage.lmm.objective import (Layout, beta_hat, blup, conditional_cov, deviance, evaluate, gradient,
                                     prepare, sigma2_hat)


def random_data(rng, J=7, q=2, factor=True, offset=1000.0):
    sizes = rng.integers(1, 10, size=J)
    N = int(sizes.sum())
    codes = np.repeat(np.arange(J), sizes)
    x = rng.normal(size=N) * 3 + 50
    cols = [np.ones(N), x]
    if factor:
        f = rng.integers(0, 3, size=N)
        cols += [(f == 1).astype(float), (f == 2).astype(float)]
    X = np.column_stack(cols)
    Z = X[:, :q]
    b = rng.normal(size=(J, q)) * [2.0, 0.3, 0.5, 0.4][:q]
    y = X @ rng.normal(size=X.shape[1]) + (Z * b[codes]).sum(axis=1) + rng.normal(size=N) + offset
    names = [f"c{k}" for k in range(X.shape[1])]
    return y, X, Z, codes, names


def dense(theta, y, X, Z, codes, layout, method):
    """-2 log-likelihood (or REML criterion) from the marginal density, built densely."""
    N, J = y.size, codes.max() + 1
    q = Z.shape[1]
    lam = np.zeros((q, q))
    lam[layout.rows, layout.cols] = theta
    Zf = np.zeros((N, J * q))
    for j in range(J):
        Zf[codes == j, j * q:(j + 1) * q] = Z[codes == j]
    V = np.eye(N) + Zf @ np.kron(np.eye(J), lam @ lam.T) @ Zf.T  # V / sigma^2
    Vi = np.linalg.inv(V)
    A = X.T @ Vi @ X
    beta = np.linalg.solve(A, X.T @ Vi @ y)
    r = y - X @ beta
    r2 = r @ Vi @ r
    nu = N - X.shape[1] if method == "REML" else N
    s2 = r2 / nu
    dev = np.linalg.slogdet(V)[1] + nu * np.log(2 * np.pi * s2) + r2 / s2
    if method == "REML":
        dev += np.linalg.slogdet(A)[1]
    return dev, beta, s2, Vi, Zf


@pytest.mark.parametrize("specialised", [True, False])
@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("q", [1, 2, 3, 4])
def test_criterion_matches_dense(rng, method, q, specialised, monkeypatch):
    """Every q gets its own generated kernel (.pls_kernels): q = 1..4, p = 4, compiled for
    that p and for any p (the loops over the fixed effects of any length)."""
    from shrinkage.lmm import pls_kernels

    monkeypatch.setattr(pls_kernels, "P_SPECIALISED", 4 if specialised else 0)
    for _ in range(4):
        y, X, Z, codes, names = random_data(rng, J=12 if q > 2 else 7, q=q)
        cp = cross_products(y, X, Z, codes, np.arange(codes.max() + 1), names, names[:q])
        lay = Layout.of((q,))
        theta = np.abs(rng.normal(size=lay.size)) + 0.05
        dev, beta, s2, Vi, Zf = dense(theta, y, X, Z, codes, lay, method)
        assert deviance(theta, cp, method) == pytest.approx(dev, rel=1e-11)
        assert cp.uncentre(beta_hat(theta, cp))[0] == pytest.approx(beta, rel=1e-9, abs=1e-9)
        assert sigma2_hat(theta, cp, method) == pytest.approx(s2, rel=1e-10)
        # BLUP and conditional covariance from their definitions: D Z'V^-1 (y - X beta), (Z'Z/s2 + D^-1)^-1
        lam = np.zeros((q, q))
        lam[lay.rows, lay.cols] = theta
        D = s2 * lam @ lam.T
        b = (np.kron(np.eye(codes.max() + 1), lam @ lam.T) @ Zf.T @ Vi @ (y - X @ beta)).reshape(-1, q)
        beta_c = beta_hat(theta, cp)
        np.testing.assert_allclose(blup(theta, cp, beta_c), b, rtol=1e-8, atol=1e-9)
        cv = conditional_cov(theta, cp, s2)
        for j in range(codes.max() + 1):
            Zj = Z[codes == j]
            want = np.linalg.inv(Zj.T @ Zj / s2 + np.linalg.inv(D))
            np.testing.assert_allclose(cv[j], want, rtol=1e-8, atol=1e-12)


def test_block_diagonal_layout_matches_dense(rng):
    y, X, Z, codes, names = random_data(rng, J=9, q=2, factor=False)
    lay = Layout.of((1, 1))
    cp = cross_products(y, X, Z, codes, np.arange(9), names, names[:2])
    theta = np.array([0.7, 0.2])
    for method in ("REML", "ML"):
        assert deviance(theta, prepare(cp, lay), method) == pytest.approx(
            dense(theta, y, X, Z, codes, lay, method)[0], rel=1e-11)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_gradient_matches_central_differences(rng, method):
    for q in (1, 2, 3):
        y, X, Z, codes, names = random_data(rng, J=8, q=min(q, 2))
        if q == 3:
            Z = np.column_stack([Z, X[:, 2]])
        cp = cross_products(y, X, Z, codes, np.arange(8), names, [f"z{k}" for k in range(Z.shape[1])])
        pr = prepare(cp)
        theta = rng.normal(size=pr.layout.size) * 0.5
        theta[pr.layout.diagonal] = np.abs(theta[pr.layout.diagonal]) + 0.1
        g = gradient(theta, pr, method)
        h = 1e-6
        fd = np.array([(deviance(theta + h * e, pr, method) - deviance(theta - h * e, pr, method)) / (2 * h)
                       for e in np.eye(theta.size)])
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-6 * np.abs(fd).max())


def test_a_wrong_criterion_is_rejected(rng):
    """The dense comparison can fail: dropping REML's log|A| term is caught."""
    y, X, Z, codes, names = random_data(rng, q=2)
    cp = cross_products(y, X, Z, codes, np.arange(codes.max() + 1), names, names[:2])
    theta = np.array([0.8, 0.1, 0.3])
    pc = evaluate(theta, cp)
    wrong = deviance(theta, cp, "REML") - pc.logdet_A
    assert wrong != pytest.approx(dense(theta, y, X, Z, codes, Layout.of((2,)), "REML")[0], rel=1e-6)


def test_cross_products_are_the_sums_they_name(rng):
    y, X, Z, codes, names = random_data(rng, J=5, q=2)
    cp = cross_products(y, X, Z, codes, np.arange(5), names, names[:2], centre=False)
    def close(a, b):  # entries that are exactly 0 come out at rounding level of the block
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14 * np.abs(b).max())

    for j in range(5):
        m = codes == j
        close(cp.XtZ[j], X[m].T @ Z[m])
        close(cp.ZtZ[j], Z[m].T @ Z[m])
        close(cp.Zty[j], Z[m].T @ y[m])
        assert cp.n[j] == m.sum()
    close(cp.XtX, X.T @ X)
    close(cp.Xty, X.T @ y)
    assert cp.yty == pytest.approx(y @ y, rel=1e-12)


def test_centring_is_undone_exactly_and_chunks_merge(rng):
    """Centred statistics (X, y and Z) equal raw ones after recentre(0, 0, 0); chunks
    about their own centres merge into the statistics of all rows."""
    y, X, Z, codes, names = random_data(rng, J=6, q=2)
    raw = cross_products(y, X, Z, codes, np.arange(6), names, names[:2], centre=False)
    cen = cross_products(y, X, Z, codes, np.arange(6), names, names[:2])
    assert np.any(cen.x_centre != 0) and cen.y_centre != 0 and np.any(cen.z_centre != 0)
    back = cen.recentre(np.zeros(raw.p), 0.0, np.zeros(raw.q))
    for name in ("XtX", "XtZ", "ZtZ", "Xty", "Zty", "yty"):
        want = np.asarray(getattr(raw, name))
        np.testing.assert_allclose(getattr(back, name), want, rtol=1e-12, atol=1e-14 * np.abs(want).max())
    cut = y.size // 2
    parts = []
    for rows in (slice(0, cut), slice(cut, None)):
        c = codes[rows]
        present = np.unique(c)
        parts.append(cross_products(y[rows], X[rows], Z[rows], np.searchsorted(present, c), present, names,
                                    names[:2]))
    merged = parts[0].merge(parts[1]).recentre(cen.x_centre, cen.y_centre, cen.z_centre)
    for name in ("n", "XtX", "XtZ", "ZtZ", "Xty", "Zty", "yty"):
        want = np.asarray(getattr(cen, name))
        np.testing.assert_allclose(getattr(merged, name), want, rtol=1e-10, atol=1e-12 * np.abs(want).max())
    theta = np.array([0.5, -0.1, 0.2])
    assert deviance(theta, merged) == pytest.approx(deviance(theta, cen), rel=1e-12)


def test_one_way_statistics_from_group_stats(rng):
    from shrinkage.stats import GroupStats

    y, X, Z, codes, names = random_data(rng, J=6, q=1, factor=False)
    gs = GroupStats.from_codes(y, codes)
    one = np.ones((y.size, 1))
    direct = cross_products(y, one, one, codes, np.arange(6), ["(Intercept)"], ["(Intercept)"])
    via = CrossProducts.from_group_stats(gs)
    for method in ("REML", "ML"):
        assert deviance(np.array([0.7]), via, method) == pytest.approx(deviance(np.array([0.7]), direct, method),
                                                                      rel=1e-12)
