"""A random-slope covariate far from zero: the fit in centred columns, reported in the user's.

Shifting x by s (x -> x + s) in y ~ x + (x | g) is a reparametrisation: with
P^-1 = [[1, -s], [0, 1]] on (intercept, x), the shifted model has beta_s = P^-1 beta,
b_s,j = P^-1 b_j, D_s = P^-1 D P^-T, vcov_s = P^-1 vcov P^-T, Var_s(b_j | y) =
P^-1 Var(b_j | y) P^-T, and the same likelihood, sigma^2 and predictions.  The shifted fit
is checked against the unshifted one transformed so (the unshifted data are the shifted
values minus s, exact in floating point, so both fits see the same numbers), and against
a dense maximisation of the marginal likelihood (tests/test_lmm_dense.py).  Before the
centring, a shift of 1e3 or more left the log-likelihood short by 5 to 20 units.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import shrinkage
from shrinkage import datasets
from shrinkage.lmm import cross_products, fit_cross_products

from test_lmm_dense import dense_design, dense_fit, dense_loglik, unbalanced

SHIFTS = (1e4, 1e6)


def sleep(shift: float) -> pd.DataFrame:
    """sleepstudy with x = Days + shift (shift 0: the data set)."""
    d = pd.read_csv(datasets.load("sleepstudy").path)
    return pd.DataFrame({"y": d["Reaction"], "x": d["Days"] + shift, "g": d["Subject"]})


def random_data(shift: float, seed: int = 1) -> pd.DataFrame:
    frame, _ = unbalanced(seed)
    return frame.assign(x=frame["x"] + shift)


MAKERS = {"sleepstudy": sleep, "unbalanced": random_data}


def pair(make, shift: float, method: str):
    """(fit of the shifted data, fit of the same values minus the shift, P^-1)."""
    shifted = make(shift)
    base = shifted.assign(x=shifted["x"] - shift)  # exact (Sterbenz): the same numbers, unshifted
    f = "y ~ x + (x | g)"
    Pinv = np.array([[1.0, -shift], [0.0, 1.0]])
    return shrinkage.fit(f, data=shifted, method=method), shrinkage.fit(f, data=base, method=method), Pinv


def close(ours, want, scale, rel):
    """|ours - want| <= rel * scale elementwise (scale: the quantity's own size)."""
    ours, want = np.asarray(ours, dtype=float), np.asarray(want, dtype=float)
    assert ours.shape == want.shape
    worst = np.max(np.abs(ours - want) / np.broadcast_to(scale, want.shape))
    assert worst <= rel, f"off by {worst:.3g} x scale (allowed {rel:g}): {ours.ravel()[:4]} vs {want.ravel()[:4]}"


def cov_scale(C):
    """sqrt(C_ii C_jj) for one (q, q) or J (J, q, q) covariance matrices."""
    sd = np.sqrt(np.diagonal(C, axis1=-2, axis2=-1))
    return sd[..., :, None] * sd[..., None, :]


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("shift", SHIFTS)
@pytest.mark.parametrize("data", sorted(MAKERS))
def test_shift_is_an_exact_reparametrisation(data, shift, method):
    ours, base, Pinv = pair(MAKERS[data], shift, method)
    assert ours.loglik == pytest.approx(base.loglik, rel=1e-11)
    assert ours.sigma2 == pytest.approx(base.sigma2, rel=1e-8)
    # fixed effects: the intercept moves by -shift x slope, the slope stays
    V = Pinv @ base.vcov_matrix @ Pinv.T
    close(ours.beta, Pinv @ base.beta, np.sqrt(np.diag(V)), 1e-6)
    close(ours.vcov_matrix, V, cov_scale(V), 1e-7)
    # random effects: D, the conditional modes and their conditional covariances
    D = Pinv @ base.D @ Pinv.T
    close(ours.D, D, cov_scale(D), 1e-7)
    assert ours.D[1, 1] == pytest.approx(base.D[1, 1], rel=1e-7)  # the slope's variance is unchanged
    close(ours.b, base.b @ Pinv.T, np.sqrt(np.diag(D)), 1e-6)
    C = Pinv @ base.cond @ Pinv.T
    close(ours.cond, C, cov_scale(C), 1e-6)
    close(ours.coef()["g"].to_numpy(), base.coef()["g"].to_numpy() @ Pinv.T,
          np.sqrt(np.diag(D) + np.diag(V)), 1e-6)
    # lme4's theta: the Cholesky factor of D_s / sigma^2 by the 2 x 2 formulas, its
    # smallest entry from the invariant determinant (det D_s = det D) without cancellation
    s2 = base.sigma2
    l11 = np.sqrt(D[0, 0] / s2)
    det = max(np.linalg.det(base.D), 0.0)  # 0 at a singular fit, where rounding can give -1e-19
    want = [l11, D[1, 0] / (s2 * l11), np.sqrt(det / D[0, 0] / s2)]
    slope = np.sqrt(D[1, 1] / s2)  # |theta_21|, theta_22 <= sd(x) / sigma (theta_22 = 0 at a singular fit)
    close(ours.theta, want, [l11, slope, slope], 1e-6)
    # the same predictions, with the same prediction variances (known groups and a new one)
    unseen = ours.labels.max() + 1 if ours.labels.dtype.kind in "iu" else "new"
    new = pd.DataFrame({"x": [shift + 0.5, shift + 3.0, shift + 9.0], "g": [ours.labels[0], ours.labels[-1], unseen]})
    p, pb = ours.predict(new, variance=True), base.predict(new.assign(x=new["x"] - shift), variance=True)
    close(p["fit"], pb["fit"], np.sqrt(pb["var"]), 1e-6)
    close(p["var"], pb["var"], pb["var"], 1e-6)
    close(ours.predict(), base.predict(), np.sqrt(base.sigma2), 1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["REML", "ML"])
def test_shifted_fit_reaches_the_dense_maximum(method):
    """The dense marginal likelihood of the shifted data, built in the user's raw columns
    from the definition, at the shifted fit's estimates, equals the dense maximum (which
    the shift does not change: found on the unshifted data, where it is well posed)."""
    shift, seed = 1e4, 2
    frame, codes = unbalanced(seed)
    frame = frame.assign(x=(frame["x"] + shift) - shift)
    shifted = frame.assign(x=frame["x"] + shift)
    ours = shrinkage.fit("y ~ x + (x | g)", data=shifted, method=method)
    best, _, _ = dense_fit(frame, codes, method, seed=seed)
    y, X, Zf = dense_design(shifted, codes)
    at_ours = dense_loglik(y, X, Zf, ours.sigma2, ours.D, method, ours.beta)
    assert at_ours == pytest.approx(best, abs=1e-7 * abs(best))
    assert ours.loglik == pytest.approx(at_ours, abs=1e-7 * abs(best))


def test_chunks_about_their_own_centres_merge_to_the_whole(rng):
    """Two chunks of shifted data have different Z centres; merged (Z moved exactly to the
    first chunk's centres) they fit as the whole data do."""
    frame = sleep(1e4).assign(x=lambda d: d["x"] + rng.normal(0, 0.3, size=len(d)))
    codes, labels = pd.factorize(frame["g"], sort=True)
    y, x = frame["y"].to_numpy(), frame["x"].to_numpy()
    names = ["(Intercept)", "x"]

    def stats(rows):
        c = codes[rows]
        present = np.unique(c)
        return cross_products(y[rows], [None, x[rows]], [None, x[rows]], np.searchsorted(present, c),
                              labels[present], names, names)

    half = np.arange(y.size) < y.size // 3
    a, b, whole = stats(half), stats(~half), stats(np.ones(y.size, dtype=bool))
    assert a.z_centre[1] != b.z_centre[1]
    merged, direct = fit_cross_products(a.merge(b)), fit_cross_products(whole)
    assert merged.loglik == pytest.approx(direct.loglik, rel=1e-12)
    close(merged.beta, direct.beta, np.sqrt(np.diag(direct.vcov_matrix)), 1e-7)
    close(merged.D, direct.D, cov_scale(direct.D), 1e-7)
    close(merged.b, direct.b, np.sqrt(np.diag(direct.D)), 1e-7)


def test_recentre_matches_cross_products_computed_directly(rng):
    """CrossProducts.recentre to other X, y and Z centres equals the cross-products of the
    rows about those centres, computed directly (the merge rule's formulas)."""
    J, N = 5, 60
    codes = np.sort(rng.integers(0, J, size=N))
    x1, x2 = rng.normal(3, 1, size=N), rng.normal(-2, 2, size=N)
    y = 1 + x1 - x2 + rng.normal(size=N)
    X, Z = np.column_stack([np.ones(N), x1, x2]), np.column_stack([np.ones(N), x2])
    cp = cross_products(y, X, Z, codes, np.arange(J), ["(Intercept)", "x1", "x2"], ["(Intercept)", "x2"])
    xc, zc, yc = np.array([0.0, 2.5, -1.0]), np.array([0.0, 0.7]), 4.0
    moved = cp.recentre(xc, yc, zc)
    Xs, Zs, ys = X - xc, Z - zc, y - yc
    want = {"XtX": Xs.T @ Xs, "Xty": Xs.T @ ys, "yty": ys @ ys,
            "XtZ": np.stack([Xs[codes == j].T @ Zs[codes == j] for j in range(J)]),
            "ZtZ": np.stack([Zs[codes == j].T @ Zs[codes == j] for j in range(J)]),
            "Zty": np.stack([Zs[codes == j].T @ ys[codes == j] for j in range(J)])}
    for name, w in want.items():
        np.testing.assert_allclose(getattr(moved, name), w, rtol=1e-12, atol=1e-12 * np.abs(w).max())


def test_a_term_without_intercept_is_not_centred(rng):
    """(1 | g) + (0 + x | g): centring x would mix the two terms (D would stop being
    diagonal), so the fit moves x back to its raw values: the fit from centred statistics
    equals the fit from raw ones."""
    frame = sleep(0.0)
    codes, labels = pd.factorize(frame["g"], sort=True)
    y, x = frame["y"].to_numpy(), frame["x"].to_numpy()
    names = ["(Intercept)", "x"]
    cen = cross_products(y, [None, x], [None, x], codes, labels, names, names)
    raw = cross_products(y, [None, x], [None, x], codes, labels, names, names, centre=False)
    assert cen.z_centre[1] != 0 and raw.z_centre[1] == 0
    a, b = fit_cross_products(cen, blocks=(1, 1)), fit_cross_products(raw, blocks=(1, 1))
    assert a.loglik == pytest.approx(b.loglik, rel=1e-12)
    close(a.D, b.D, cov_scale(b.D), 1e-8)
    assert a.D[0, 1] == 0.0
    close(a.theta, b.theta, np.abs(b.theta), 1e-7)


@pytest.mark.slow
def test_profile_intervals_of_invariant_parameters_do_not_move():
    """sd(x) and sigma mean the same after the shift: their profile intervals are equal."""
    shifted, base, _ = pair(sleep, 1e4, "REML")
    a, b = shifted.confint(), base.confint()
    for name in (".sig03", ".sigma"):
        close(a.loc[name].to_numpy(), b.loc[name].to_numpy(), b.loc[name].abs().to_numpy(), 1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("shift", [1e3])
def test_profile_intervals_of_the_intercept_parameters_at_a_shift(shift):
    """sd(Intercept) and its correlation with x change with the shift: at each end of
    their profile intervals (ML), the dense ML deviance (beta by GLS) minimised
    over the centred D and sigma^2 subject to that parameter (of the user's D) at the end,
    by SLSQP, exceeds the minimum by the chi^2_1 quantile."""
    from scipy.optimize import minimize
    from scipy.stats import chi2

    from shrinkage.lmm.inference import profile_deviance, to_theta
    from shrinkage.lmm.objective import make_lambda

    frame = sleep(shift)
    ours = shrinkage.fit("y ~ x + (x | g)", data=frame, method="ML")
    ci = ours.confint()
    codes = pd.factorize(frame["g"], sort=True)[0]
    m = frame["x"].mean()
    y, X, Zf = dense_design(frame.assign(x=frame["x"] - m), codes)  # centred columns: well posed
    Tinv = np.array([[1.0, -m], [0.0, 1.0]])  # user's D = Tinv D_c Tinv'

    def unpack(par):
        C = np.array([[par[0], 0.0], [par[1], par[2]]])
        return np.exp(par[3]), C @ C.T

    def dev(par):
        s2, Dc = unpack(par)
        V = Zf @ np.kron(np.eye(Zf.shape[1] // 2), Dc) @ Zf.T + s2 * np.eye(y.size)
        Vi = np.linalg.inv(V)
        beta = np.linalg.solve(X.T @ Vi @ X, X.T @ Vi @ y)
        return -2 * dense_loglik(y, X, Zf, s2, Dc, "ML", beta)

    def user(par, name):
        D = Tinv @ unpack(par)[1] @ Tinv.T
        return np.sqrt(D[0, 0]) if name == ".sig01" else D[0, 1] / np.sqrt(D[0, 0] * D[1, 1])

    def scale(v, name):  # an sd's own size; a correlation's distance to -1 (it is near -1 here)
        return abs(v) if name == ".sig01" else 1 - abs(v)

    Dc = np.linalg.inv(Tinv) @ ours.D @ np.linalg.inv(Tinv).T
    C = np.linalg.cholesky(Dc)
    hat = np.array([C[0, 0], C[1, 0], C[1, 1], np.log(ours.sigma2)])
    best = dev(hat)
    assert best == pytest.approx(ours.deviance, rel=1e-10)
    cut = chi2.ppf(0.95, 1)
    for name in (".sig01", ".sig02"):
        k = 0 if name == ".sig01" else 1
        for v in ci.loc[name].to_numpy():
            gap = lambda p: (user(p, name) - v) / scale(v, name)  # noqa: E731
            # from the estimate, and from our profile's minimiser (a start only: the oracle
            # can only go lower from there, and must not get below the cut)
            theta_c, sigma = to_theta(profile_deviance(ours, k, v)[1], ours.problem.layout)
            L = np.linalg.cholesky(sigma ** 2 * make_lambda(theta_c, ours.problem.layout) @
                                   make_lambda(theta_c, ours.problem.layout).T)
            ends = [minimize(dev, start, method="SLSQP", constraints=[{"type": "eq", "fun": gap}],
                             options={"ftol": 1e-12, "maxiter": 500})
                    for start in (hat, np.array([L[0, 0], L[1, 0], L[1, 1], 2 * np.log(sigma)]))]
            res = min((r for r in ends if abs(gap(r.x)) <= 1e-8), key=lambda r: r.fun)
            assert res.fun - best == pytest.approx(cut, abs=1e-3), name  # the old end at 1e3: 1.55


def test_out_of_core_statistics_at_a_shift_fit_as_in_memory(tmp_path):
    """A Parquet file of the shifted data, summarised by DuckDB (Z centred by the engine),
    fits as the data frame does, and as the unshifted data transformed."""
    pytest.importorskip("duckdb")
    shift = 1e6
    frame = sleep(shift)
    frame.to_parquet(tmp_path / "d.parquet")
    f = "y ~ x + (x | g)"
    disk, memory = shrinkage.fit(f, data=str(tmp_path / "d.parquet")), shrinkage.fit(f, data=frame)
    base = shrinkage.fit(f, data=sleep(0.0))
    Pinv = np.array([[1.0, -shift], [0.0, 1.0]])
    for r in (disk, memory):
        assert r.loglik == pytest.approx(base.loglik, rel=1e-11)
        D = Pinv @ base.D @ Pinv.T
        close(r.D, D, cov_scale(D), 1e-7)
        close(r.beta, Pinv @ base.beta, np.sqrt(np.diag(Pinv @ base.vcov_matrix @ Pinv.T)), 1e-6)
    close(disk.b, memory.b, np.sqrt(np.diag(memory.D)), 1e-7)
