"""shrinkage.fit against two oracles that share no code with it:

* a dense-matrix marginal likelihood, V_j = sigma^2 I + sigma_b^2 1 1^T built from the
  model (checked against shrinkage.model), maximised by scipy.optimize over
  (log sigma^2, log sigma_b^2) from several starts, and on the boundary sigma_b^2 = 0;
* statsmodels MixedLM (optional: skipped when not installed).

Tolerances (one policy, here): log-likelihoods to 1e-7 absolute; estimates to 1e-5
relative against the optimisers (they stop on flat criteria), 1e-6 against statsmodels
where its fit is interior.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import minimize, minimize_scalar

import shrinkage
from shrinkage import GroupStats, InputError, datasets, fit
from shrinkage.fit import maximise, size_classes, slope

LOGLIK_ATOL = 1e-7
EST_RTOL = 1e-5
SM_RTOL = 1e-6


# ---------------------------------------------------------------------------------------
# oracle 1: the dense marginal likelihood
# ---------------------------------------------------------------------------------------
def covariance(n: int, s2: float, sb2: float) -> np.ndarray:
    """Cov(y_j) = sigma^2 I + sigma_b^2 1 1^T, as shrinkage.model states it."""
    return s2 * np.eye(n) + sb2 * np.ones((n, n))


def split(y, g):
    return [np.asarray(y, float)[np.asarray(g) == k] for k in np.unique(g)]


def dense_parts(groups, s2, sb2, beta0=None):
    """(N, log|V|, (y - beta0)^T V^-1 (y - beta0), 1^T V^-1 1, beta0) from Cholesky
    factors of V, at beta0 or at the dense GLS beta0.  One factor per distinct group size
    (groups of a size share V)."""
    by_size: dict[int, list] = {}
    for yj in groups:
        by_size.setdefault(yj.size, []).append(yj)
    blocks = []
    for n, ys in by_size.items():
        c = cho_factor(covariance(n, s2, sb2), lower=True)
        Y = np.column_stack(ys)  # n x (groups of this size)
        ones = np.ones(n)
        blocks.append((c, Y, ones @ cho_solve(c, ones), 2 * np.sum(np.log(np.diag(c[0])))))
    xvx = sum(Y.shape[1] * one_v_one for c, Y, one_v_one, _ in blocks)
    if beta0 is None:
        beta0 = sum(np.ones(Y.shape[0]) @ cho_solve(c, Y).sum(axis=1) for c, Y, _, _ in blocks) / xvx
    N = sum(Y.size for _, Y, _, _ in blocks)
    quad = sum(np.sum((Y - beta0) * cho_solve(c, Y - beta0)) for c, Y, _, _ in blocks)
    logdet = sum(Y.shape[1] * ld for _, Y, _, ld in blocks)
    return N, logdet, quad, xvx, beta0


def loglik_from_parts(N, logdet, quad, xvx, reml):
    value = -0.5 * (N * np.log(2 * np.pi) + logdet + quad)
    if reml:
        value += 0.5 * np.log(2 * np.pi) - 0.5 * np.log(xvx)
    return value


def dense_loglik(groups, s2, sb2, reml, beta0=None):
    """ML (at beta0, or at the dense GLS beta0) or REML log-likelihood, lme4's scale."""
    N, logdet, quad, xvx, beta0 = dense_parts(groups, s2, sb2, beta0)
    return loglik_from_parts(N, logdet, quad, xvx, reml), beta0


def dense_fit(y, g, reml):
    """Maximise the dense likelihood over (log s2, log sb2) from a grid of starts, and
    over log s2 on the boundary sb2 = 0; return (loglik, s2, sb2, beta0)."""
    groups = split(y, g)
    var = float(np.var(y))
    best = None

    def neg(p):
        return -dense_loglik(groups, np.exp(p[0]), np.exp(p[1]), reml)[0]

    for ratio in (1e-2, 1.0, 1e2):
        r = minimize(neg, [np.log(var / (1 + ratio)), np.log(var * ratio / (1 + ratio))], method="Nelder-Mead",
                     options=dict(xatol=1e-10, fatol=1e-13, maxiter=20000, maxfev=20000))
        if best is None or r.fun < best[0]:
            best = (r.fun, np.exp(r.x[0]), np.exp(r.x[1]))
    edge = minimize_scalar(lambda t: -dense_loglik(groups, np.exp(t), 0.0, reml)[0],
                           bounds=(np.log(var) - 20, np.log(var) + 5), method="bounded",
                           options=dict(xatol=1e-12))
    if edge.fun <= best[0]:
        best = (edge.fun, np.exp(edge.x), 0.0)
    ll, s2, sb2 = -best[0], best[1], best[2]
    return ll, s2, sb2, dense_loglik(groups, s2, sb2, reml)[1]


def test_dense_covariance_is_the_models():
    sp = pytest.importorskip("sympy")
    from shrinkage import model
    from shrinkage.symbols import sigma2, sigma_b2

    m = model.group_marginal_covariance(3).subs({sigma2: sp.Rational(3, 2), sigma_b2: sp.Rational(1, 3)})
    np.testing.assert_allclose(np.array(m, dtype=float), covariance(3, 1.5, 1 / 3), rtol=1e-15)


def unbalanced(seed, J=12, s2=1.0, sb2=0.7, offset=0.0):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 15, size=J)
    sizes[0] = max(sizes[0], 2)
    g = np.repeat(np.arange(J), sizes)
    b = rng.normal(scale=np.sqrt(sb2), size=J)
    y = offset + 3.0 + b[g] + rng.normal(scale=np.sqrt(s2), size=g.size)
    return y, g


CASES = {
    "dyestuff": lambda: (datasets.load("dyestuff").y, datasets.load("dyestuff").groups),
    "dyestuff2": lambda: (datasets.load("dyestuff2").y, datasets.load("dyestuff2").groups),
    "sleepstudy": lambda: (datasets.load("sleepstudy").y, datasets.load("sleepstudy").groups),
    "unbalanced-1": lambda: unbalanced(1),
    "unbalanced-2": lambda: unbalanced(2, J=20, sb2=0.05),
    "unbalanced-3": lambda: unbalanced(3, J=8, sb2=5.0),
}
FAST_CASES = {"dyestuff", "dyestuff2", "unbalanced-1"}  # the rest (larger J, dense optimiser) run in the slow tier


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("case", [c if c in FAST_CASES else pytest.param(c, marks=pytest.mark.slow) for c in sorted(CASES)])
def test_matches_dense_maximisation(case, method):
    y, g = CASES[case]()
    r = fit(y, g, method=method)
    ll, s2, sb2, b0 = dense_fit(y, g, reml=method == "REML")
    assert r.loglik >= ll - 1e-9  # never worse than the oracle's maximum
    assert r.loglik == pytest.approx(ll, abs=LOGLIK_ATOL)
    assert r.sigma2 == pytest.approx(s2, rel=EST_RTOL)
    assert r.sigma_b2 == pytest.approx(sb2, rel=EST_RTOL, abs=EST_RTOL * r.sigma2)
    assert r.beta0 == pytest.approx(b0, rel=EST_RTOL, abs=EST_RTOL * np.sqrt(r.sigma2))
    # our log-likelihood is the dense one at our estimates
    dense_at_ours = dense_loglik(split(y, g), r.sigma2, r.sigma_b2, method == "REML")
    assert r.loglik == pytest.approx(dense_at_ours[0], abs=1e-9 * max(1, abs(r.loglik)))
    assert r.beta0 == pytest.approx(dense_at_ours[1], rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_evaluation_at_given_variances(method):
    y, g = unbalanced(5)
    r = fit(y, g, method=method, sigma2=1.3, sigma_b2=0.4)
    ll, b0 = dense_loglik(split(y, g), 1.3, 0.4, method == "REML")
    assert not r.fitted and r.sigma2 == 1.3 and r.sigma_b2 == 0.4
    assert r.loglik == pytest.approx(ll, abs=1e-10 * abs(ll))
    assert r.beta0 == pytest.approx(b0, rel=1e-13)
    # BLUPs at these variances, from the dense conditional mean Cov(b_j, y_j) V_j^{-1}(y_j - beta0)
    for k, yj in enumerate(split(y, g)):
        cond_mean = 0.4 * np.ones(yj.size) @ np.linalg.solve(covariance(yj.size, 1.3, 0.4), yj - b0)
        assert r.blup[k] == pytest.approx(cond_mean, rel=1e-10, abs=1e-13)
        cond_var = 0.4 - 0.4**2 * np.ones(yj.size) @ np.linalg.solve(covariance(yj.size, 1.3, 0.4), np.ones(yj.size))
        assert r.conditional_variance[k] == pytest.approx(cond_var, rel=1e-10)
    z = fit(y, g, method=method, sigma2=1.3, sigma_b2=0.0)
    assert z.singular and np.all(z.blup == 0) and np.all(z.shrinkage == 0)


# ---------------------------------------------------------------------------------------
# oracle 2: statsmodels MixedLM
# ---------------------------------------------------------------------------------------
def statsmodels_fit(y, g, reml):
    sm = pytest.importorskip("statsmodels.api")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = sm.MixedLM(np.asarray(y, float), np.ones((len(y), 1)), groups=np.asarray(g))
        # Powell with tight tolerances: statsmodels' default (BFGS) stops ~1e-5 short in
        # the variances, and L-BFGS fails outright on unscaled Dyestuff
        return m.fit(reml=reml, method="powell", xtol=1e-12, ftol=1e-14, maxiter=10000)


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_statsmodels(case, method):
    y, g = CASES[case]()
    r = fit(y, g, method=method)
    s = statsmodels_fit(y, g, reml=method == "REML")
    assert r.loglik >= s.llf - 1e-9
    assert r.loglik == pytest.approx(s.llf, abs=1e-6)
    if r.singular:  # statsmodels creeps towards 0 (5e-5 on Dyestuff2) rather than reaching it
        assert float(np.asarray(s.cov_re)[0, 0]) < 1e-3 * s.scale
        return
    assert r.sigma2 == pytest.approx(s.scale, rel=SM_RTOL)
    assert r.sigma_b2 == pytest.approx(float(np.asarray(s.cov_re)[0, 0]), rel=SM_RTOL)
    assert r.beta0 == pytest.approx(float(np.asarray(s.fe_params)[0]), rel=SM_RTOL)
    re = s.random_effects
    blups = np.array([float(np.asarray(re[k])[0]) for k in r.groups])
    np.testing.assert_allclose(r.blup, blups, rtol=SM_RTOL, atol=SM_RTOL * np.sqrt(r.sigma2))


# ---------------------------------------------------------------------------------------
# published values, verified above by both oracles
# ---------------------------------------------------------------------------------------
def test_dyestuff_values():
    """Published lme4 fits of Dyestuff (Bates, lme4 book, ch. 1): REML variances 1764 (sd
    42.00) and 2451 (sd 49.51), beta0 = 1527.5, REML criterion 319.7 (logLik -159.8); ML
    sigma_b = 37.26, logLik -163.7.  Verified here by the dense and statsmodels oracles
    (tests above); asserted to the published rounding."""
    d = datasets.load("dyestuff")
    r = fit(d.y, d.groups)
    assert r.beta0 == pytest.approx(1527.5, abs=1e-9)
    assert np.sqrt(r.sigma_b2) == pytest.approx(42.00, abs=0.005)
    assert np.sqrt(r.sigma2) == pytest.approx(49.51, abs=0.005)
    assert -2 * r.loglik == pytest.approx(319.7, abs=0.05)
    ml = fit(d.y, d.groups, method="ML")
    assert np.sqrt(ml.sigma_b2) == pytest.approx(37.26, abs=0.005)
    assert ml.loglik == pytest.approx(-163.7, abs=0.05)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_dyestuff2_is_singular(method):
    d = datasets.load("dyestuff2")
    r = fit(d.y, d.groups, method=method)
    assert r.sigma_b2 == 0.0 and r.gamma == 0.0 and r.singular
    assert np.all(r.blup == 0) and np.all(r.shrinkage == 0) and np.all(r.conditional_variance == 0)
    assert r.beta0 == pytest.approx(np.mean(d.y), rel=1e-14)
    sc = size_classes(GroupStats.from_data(d.y, d.groups))
    assert slope(sc, 0.0, method)[0] < 0  # the boundary is decided by the sign at 0
    N = d.y.size
    assert r.sigma2 == pytest.approx(np.var(d.y) * N / (N - (method == "REML")), rel=1e-13)


# ---------------------------------------------------------------------------------------
# the global maximum when the profile has several stationary points
# ---------------------------------------------------------------------------------------
def bimodal(seed):
    """Two large groups with close means (favouring a small gamma) and 50 groups of 3
    with spread-out means (favouring a larger one), all with noisy observations.  Found
    by a search over such designs; the seeds used below give profiles with two local
    maxima (seed 9: both interior; seed 4: one at the boundary gamma = 0)."""
    rng = np.random.default_rng(seed)
    y, g = [], []
    for k, centre in enumerate((-0.3, 0.3)):
        y.append(centre + 4.5 * rng.normal(size=400))
        g += [k] * 400
    centres = 2.0 * rng.normal(size=50)
    for k in range(50):
        y.append(centres[k] + 4.5 * rng.normal(size=3))
        g += [2 + k] * 3
    return np.concatenate(y), np.array(g)


def local_maxima_on_grid(y, g, method):
    """Local maxima of the profile on a fine grid (gamma = 0 included), from the dense
    likelihood: the profile in gamma is the dense log-likelihood maximised over sigma^2."""
    groups = split(y, g)
    var = float(np.var(y))

    def profile(gamma):
        # V = s2 (I + gamma 1 1^T): factor I + gamma 1 1^T once, scale by s2 in the search
        N, logdet, quad, xvx, _ = dense_parts(groups, 1.0, gamma)

        def at(s2):
            return loglik_from_parts(N, logdet + N * np.log(s2), quad / s2, xvx / s2, method == "REML")

        r = minimize_scalar(lambda t: -at(np.exp(t)),
                            bounds=(np.log(var) - 10, np.log(var) + 3), method="bounded", options=dict(xatol=1e-10))
        return -r.fun

    grid = np.concatenate([[0.0], np.geomspace(1e-4, 10.0, 41)])
    values = np.array([profile(x) for x in grid])
    up = np.diff(values) > 0
    maxima = [0] if not up[0] else []
    maxima += [k + 1 for k in range(len(up) - 1) if up[k] and not up[k + 1]]
    return grid, values, maxima


@pytest.mark.slow
@pytest.mark.parametrize("seed, method, interior", [(9, "REML", 2), (9, "ML", 2), (4, "REML", 1), (4, "ML", 1)])
def test_global_maximum_with_several_stationary_points(seed, method, interior):
    y, g = bimodal(seed)
    grid, values, maxima = local_maxima_on_grid(y, g, method)
    assert len(maxima) == 2, "the example must have two local maxima"
    assert (0 in maxima) == (interior == 1)
    r = fit(y, g, method=method)
    assert r.stationary_points == (3 if interior == 2 else 2)  # max, min, max / min, max
    assert r.loglik >= values.max() - 1e-9  # at least as high as the best grid point
    k = maxima[int(np.argmax(values[maxima]))]  # the grid point nearest the global maximum
    if k == 0:
        assert r.gamma == 0.0 and r.singular
    else:
        assert grid[k - 1] < r.gamma < grid[k + 1]  # in its basin, not at the other maximum
    dense = dense_loglik(split(y, g), r.sigma2, r.sigma_b2, method == "REML")[0]
    assert r.loglik == pytest.approx(dense, abs=1e-9 * abs(dense))


# ---------------------------------------------------------------------------------------
# numerics and degenerate data
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["REML", "ML"])
def test_large_offset_fits_like_centred_data(method):
    y, g = unbalanced(11, J=30)
    a = fit(y, g, method=method)
    b = fit(y + 1e8, g, method=method)
    assert b.beta0 - 1e8 == pytest.approx(a.beta0, abs=1e-6)
    assert b.sigma2 == pytest.approx(a.sigma2, rel=1e-6)
    assert b.sigma_b2 == pytest.approx(a.sigma_b2, rel=1e-6)
    assert b.loglik == pytest.approx(a.loglik, abs=1e-6)
    np.testing.assert_allclose(b.blup, a.blup, atol=1e-6)


def test_all_groups_same_size_has_closed_form():
    """Balanced REML: sigma_b^2 = (MSB - MSW)/n when positive (ANOVA), sigma^2 = MSW."""
    y, g = unbalanced(4, J=10)
    sizes = np.bincount(g)
    keep = np.concatenate([np.flatnonzero(g == k)[:2] for k in range(10) if sizes[k] >= 2])
    y, g = y[keep], g[keep]
    J, n = np.unique(g).size, 2
    means = np.array([y[g == k].mean() for k in np.unique(g)])
    msw = sum(((y[g == k] - y[g == k].mean()) ** 2).sum() for k in np.unique(g)) / (J * (n - 1))
    msb = n * ((means - means.mean()) ** 2).sum() / (J - 1)
    r = fit(y, g)
    if msb > msw:
        assert r.sigma2 == pytest.approx(msw, rel=1e-10)
        assert r.sigma_b2 == pytest.approx((msb - msw) / n, rel=1e-9)
    else:
        assert r.singular


@pytest.mark.slow
def test_one_huge_group_and_many_singletons():
    rng = np.random.default_rng(3)
    y = np.concatenate([rng.normal(size=1500), 0.4 + rng.normal(scale=1.5, size=300)])
    g = np.concatenate([np.zeros(1500, int), np.arange(1, 301)])
    for method in ("REML", "ML"):
        r = fit(y, g, method=method)
        assert np.isfinite([r.beta0, r.sigma2, r.sigma_b2, r.loglik]).all()
        groups = [y[:1500]] + [y[1500 + k:1501 + k] for k in range(300)]
        dense = dense_loglik(groups, r.sigma2, r.sigma_b2, method == "REML")[0]
        assert r.loglik == pytest.approx(dense, abs=1e-9 * abs(dense))
        # no better point nearby in the dense likelihood
        for f2, fb in ((1.01, 1), (0.99, 1), (1, 1.05), (1, 0.95)):
            assert dense_loglik(groups, r.sigma2 * f2, r.sigma_b2 * fb, method == "REML")[0] <= r.loglik + 1e-9


def test_zero_variation_in_some_groups_is_fine():
    y = np.array([1.0, 1.0, 1.0, 2.0, 2.5, 3.0, 5.0, 5.0])
    g = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    r = fit(y, g)
    ll, *_ = dense_fit(y, g, reml=True)
    assert r.loglik == pytest.approx(ll, abs=LOGLIK_ATOL)


@pytest.mark.parametrize("y, g, message", [
    ([1.0, 1.0, 2.0, 2.0], [0, 0, 1, 1], "no within-group variation"),
    ([1.0, 2.0, 3.0], [0, 0, 0], "single group"),
    ([1.0, 2.0, 3.0], [0, 1, 2], "no group has two or more observations"),
    ([], [], "empty"),
    ([1.0, np.nan, 3.0, 4.0], [0, 0, 1, 1], "NaN"),
    ([1.0, -np.inf, 3.0, 4.0], [0, 0, 1, 1], "infinite"),
    ([1.0, 2.0, 3.0, 4.0], [0, 0, 1], "different lengths"),
])
def test_unusable_data_is_named(y, g, message):
    with pytest.raises(InputError, match=message):
        fit(y, g)


@pytest.mark.parametrize("kw, message", [
    (dict(method="REMLX"), "method"),
    (dict(sigma2=1.0), "both"),
    (dict(sigma2=0.0, sigma_b2=1.0), "sigma2 must be"),
    (dict(sigma2=-1.0, sigma_b2=1.0), "sigma2 must be"),
    (dict(sigma2=np.nan, sigma_b2=1.0), "sigma2 must be"),
    (dict(sigma2=1.0, sigma_b2=-1.0), "sigma_b2 must be"),
    (dict(sigma2=1.0, sigma_b2=np.inf), "sigma_b2 must be"),
])
def test_bad_arguments_are_named(kw, message):
    y, g = unbalanced(1)
    with pytest.raises(InputError, match=message):
        fit(y, g, **kw)


def test_stats_or_data_not_both():
    y, g = unbalanced(1)
    with pytest.raises(InputError, match="not both"):
        fit(y, g, stats=GroupStats.from_data(y, g))
    with pytest.raises(InputError, match="give y and groups"):
        fit(y)


def test_result_is_frozen_and_labelled():
    d = datasets.load("dyestuff")
    r = fit(d.y, d.groups)
    assert r.groups.tolist() == list("ABCDEF") and r.n.tolist() == [5] * 6 and r.method == "REML"
    with pytest.raises(AttributeError):
        r.beta0 = 0.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        r.blup[0] = 0.0
    np.testing.assert_allclose(r.group_means, r.shrinkage * r.ybar + (1 - r.shrinkage) * r.beta0, rtol=1e-13)
    assert "REML fit" in repr(r)


def test_fit_does_not_import_sympy():
    code = ("import sys, numpy as np, shrinkage; "
            "r = shrinkage.fit(np.array([1., 2, 4, 3, 5, 9]), np.array([0, 0, 1, 1, 2, 2])); "
            "shrinkage.datasets.load('dyestuff'); "
            "assert 'sympy' not in sys.modules, 'sympy imported'; print(r.loglik)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
