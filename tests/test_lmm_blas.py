"""Many fixed effects (p >= pls_kernels.BLAS_P): the sums over groups of p-sized products
(G = sum_j Y_j'Y_j, and REML's P = sum_j W_j A^-1 W_j') are formed by BLAS from blocks the
kernels store, and R_A^-1 by LAPACK's dtrtri.  The same quantities as the scalar loops
of the kernels (forced by raising BLAS_P), to rounding, and as the dense marginal density."""

from __future__ import annotations

import numpy as np
import pytest

from shrinkage.lmm import pls_kernels
from shrinkage.lmm.crossprod import cross_products
from shrinkage.lmm.objective import (Layout, blups_at, deviance, deviance_and_gradient, evaluate,
                                     prepare)

from test_lmm_objective import dense


def _problem(rng, q: int, p: int = 45, J: int = 30):
    """p fixed effects (an intercept, a covariate, dummies of a factor), q random columns."""
    codes = np.repeat(np.arange(J), rng.integers(q + 2, 12, size=J))
    N = codes.size
    f = np.arange(N) % (p - 1)
    X = np.column_stack([np.ones(N), rng.normal(size=N)] + [(f == k).astype(float) for k in range(1, p - 1)])
    Z = X[:, :q]
    y = X @ rng.normal(size=p) + (Z * rng.normal(size=(J, q))[codes]).sum(axis=1) + rng.normal(size=N)
    names = [f"c{k}" for k in range(p)]
    cp = cross_products(y, X, Z, codes, np.arange(J), names, names[:q], centre=False)
    return (y, X, Z, codes), cp


def _everything(cp, theta, method):
    pr = prepare(cp, Layout.of((cp.q,)))
    pc = evaluate(theta, pr)
    dev, grad = deviance_and_gradient(theta, pr, method)
    b, cond = blups_at(pc, 1.7)
    return [pc.beta, pc.r2, pc.logdet_L, pc.logdet_A, pc.RA, dev, grad, deviance(theta, pr, method), b, cond]


@pytest.mark.parametrize("q", [1, 2])
@pytest.mark.parametrize("method", ["REML", "ML"])
def test_blas_sums_are_the_scalar_loops_sums(rng, monkeypatch, q, method):
    """At p = 45 (above BLAS_P) every piece, the deviance and its gradient equal those of
    the kernels' own loops to 1e-10 relative (only the order of the sums differs)."""
    assert 45 >= pls_kernels.BLAS_P
    _, cp = _problem(rng, q)
    theta = Layout.of((q,)).start() * 0.8 + np.r_[0.0, 0.3, 0.0][: Layout.of((q,)).size] * (q > 1)
    blas = _everything(cp, theta, method)
    monkeypatch.setattr(pls_kernels, "BLAS_P", 10**9)
    loops = _everything(cp, theta, method)
    for got, want in zip(blas, loops):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * np.max(np.abs(want)))


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_blas_deviance_is_the_dense_one(rng, method):
    """The BLAS path's criterion against the marginal density built densely."""
    (y, X, Z, codes), cp = _problem(rng, 2, J=12)
    lay = Layout.of((2,))
    theta = np.array([0.9, -0.2, 0.5])
    dev, beta = dense(theta, y, X, Z, codes, lay, method)[:2]
    pr = prepare(cp, lay)
    assert deviance(theta, pr, method) == pytest.approx(dev, rel=1e-10)
    np.testing.assert_allclose(evaluate(theta, pr).beta, beta, rtol=1e-8, atol=1e-9)
