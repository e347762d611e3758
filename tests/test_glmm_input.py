"""glmm's bad input named with its position, and what lme4 does with odd but valid data
(an all-zero group, a two-level text response, missing values, weights)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import shrinkage
from shrinkage import InputError


@pytest.fixture
def counts(rng):
    g = np.repeat(np.arange(8), 6)
    x = rng.normal(size=g.size)
    y = rng.poisson(np.exp(0.5 + 0.3 * x + rng.normal(scale=0.7, size=8)[g])).astype(float)
    m = y + rng.integers(0, 5, size=g.size)
    return pd.DataFrame({"y": y, "m": m, "x": x, "g": g, "t": rng.uniform(1, 2, size=g.size)})


@pytest.mark.parametrize("formula,family,edit,message", [
    ("cbind(y, m - y) ~ x + (1 | g)", "binomial", ("y", 3, -1.0), r"successes y must not be negative: -1\.0 at row 3"),
    ("cbind(y, m - y) ~ x + (1 | g)", "binomial", ("m", 5, -1.0), r"failures m - y must not be negative.* at row 5"),
    ("cbind(y, m - y) ~ x + (1 | g)", "binomial", ("y", 2, 1.5), r"successes y must be whole numbers: 1\.5 at row 2"),
    ("y ~ x + (1 | g)", "poisson", ("y", 4, 2.5), r"Poisson counts y must be whole numbers: 2\.5 at row 4"),
    ("y ~ x + (1 | g)", "poisson", ("y", 7, -2.0), r"response y must not be negative: -2\.0 at row 7"),
    ("y / m ~ x + (1 | g)", "binomial", ("y", 1, 1e3), r"proportion .* at row 1"),
])
def test_bad_counts_named_with_their_row(counts, formula, family, edit, message):
    column, row, value = edit
    counts.loc[row, column] = value
    with pytest.raises(InputError, match=message):
        shrinkage.fit(formula, counts, family=family)


@pytest.mark.parametrize("options,message", [
    ({"family": "gamma"}, r"family must be 'binomial' or 'poisson'"),
    ({"family": "poisson", "nagq": 0}, r"nagq must be a whole number from 1 to 25"),
    ({"family": "poisson", "nagq": 26}, r"nagq must be a whole number from 1 to 25"),
    ({"family": "poisson", "weights": [1.0, 2.0]}, r"weights must be a column name or 48 numbers"),
    ({"family": "poisson", "weights": "nope"}, r"weights: column 'nope' not in the data"),
])
def test_bad_options(counts, options, message):
    with pytest.raises(InputError, match=message):
        shrinkage.fit("y ~ x + (1 | g)", counts, **options)


def test_one_group_refused(counts):
    """One level leaves its variance unidentified: refused for (1 | g), for a second
    factor and for a slope's factor alike (lme4's check.nlev.gtr.1)."""
    for formula in ("y ~ x + (1 | g) + (1 | h)", "y ~ x + (x | h)"):
        with pytest.raises(InputError, match=r"the grouping factor 'h' has a single level"):
            shrinkage.fit(formula, counts.assign(h=1), family="poisson")
    with pytest.raises(InputError, match=r"a single group"):
        shrinkage.fit("y ~ x + (1 | g)", counts.assign(g=1), family="poisson")
    with pytest.raises(InputError, match=r"offset\(log\(w\)\)|column 'w'"):
        shrinkage.fit("y ~ x + offset(log(w)) + (1 | g)", counts, family="poisson")


def test_all_zero_group_is_fitted_as_lme4_fits_it(counts):
    """An all-zero group has a finite conditional mode (the prior holds it), below the
    others: lme4 fits it without a message."""
    counts.loc[counts.g == 3, "y"] = 0.0
    r = shrinkage.fit("y ~ x + (1 | g)", counts, family="poisson", nagq=5)
    b = r.ranef["g"]["(Intercept)"]
    assert np.isfinite(b).all() and b.loc[3] == b.min()


def test_text_response_missing_rows_and_weights(counts, rng):
    """A two-level text response is 0/1 with the first level (sorted) a failure, as R's
    factor; a row with a missing value is dropped and counted; cbind equals the
    proportion with weights= equals the rows expanded to 0/1."""
    d = counts.assign(z=(counts.y > 2).astype(float))
    a = shrinkage.fit("z ~ x + (1 | g)", d, family="binomial")
    b = shrinkage.fit("z ~ x + (1 | g)", d.assign(z=np.where(d.z > 0, "yes", "no")), family="binomial")
    np.testing.assert_allclose(b.optimum.x, a.optimum.x, rtol=1e-10)
    d.loc[4, "x"] = np.nan
    c = shrinkage.fit("z ~ x + (1 | g)", d, family="binomial")
    assert c.dropped == 1 and c.nobs == len(d) - 1
    long = counts.loc[counts.index.repeat(counts.m.astype(int))].copy()
    long["z"] = (long.groupby(level=0).cumcount() < long.y).astype(float)
    e = shrinkage.fit("z ~ x + (1 | g)", long, family="binomial")
    f = shrinkage.fit("cbind(y, m - y) ~ x + (1 | g)", counts, family="binomial")
    np.testing.assert_allclose(f.optimum.x, e.optimum.x, rtol=1e-7)


def test_offset_and_predict(counts):
    r = shrinkage.fit("y ~ x + offset(log(t)) + (1 | g)", counts, family="poisson")
    eta = r.beta[0] + r.beta[1] * counts.x + np.log(counts.t) + r.ranef["g"]["(Intercept)"].to_numpy()[counts.g]
    np.testing.assert_allclose(r.predict(), eta, rtol=1e-12)
    np.testing.assert_allclose(r.predict(counts.iloc[:5], type="response"), np.exp(eta[:5]), rtol=1e-12)
    np.testing.assert_allclose(r.predict(counts.iloc[:5], random=False),
                               eta[:5] - r.ranef["g"]["(Intercept)"].to_numpy()[counts.g[:5]], rtol=1e-12)
    with pytest.raises(InputError, match=r"group 99 of 'g' is not in the fit"):
        r.predict(counts.iloc[:2].assign(g=99))
    ci = r.confint()
    se = np.sqrt(np.diag(r.vcov_matrix))
    np.testing.assert_allclose(ci.iloc[:, 1] - ci.iloc[:, 0], 2 * 1.959963984540054 * se, rtol=1e-12)


def test_link_scale_shrinkage(counts):
    """lambda_j = sigma_b^2 / (sigma_b^2 + 1 / W_j), W_j the summed Poisson weights (the
    fitted means) at the modes, from predict()."""
    r = shrinkage.fit("y ~ x + (1 | g)", counts, family="poisson")
    W = np.bincount(counts.g, weights=r.predict(type="response"))
    np.testing.assert_allclose(r.shrinkage, r.sigma_b ** 2 / (r.sigma_b ** 2 + 1 / W), rtol=1e-12)


@pytest.mark.parametrize("formula", ["z ~ x + (1 | g)", "z ~ w + x + (1 | g) + (1 | h)", "z ~ x + (x | g)"])
def test_separation_refused_naming_the_column(counts, rng, formula):
    """x > 0 exactly where z = 1: the likelihood rises along beta_x -> infinity for every
    sigma, so no estimate exists (lme4 stops at huge values with convergence warnings);
    refused naming x (not w, which the linear program may also move)."""
    d = counts.assign(z=(counts.x > 0).astype(float), w=rng.normal(size=len(counts)), h=np.arange(len(counts)) % 5)
    with pytest.raises(InputError, match=r"perfectly separated by the fixed effect x:"):
        shrinkage.fit(formula, d, family="binomial")


def test_poisson_zero_level_refused(counts):
    """A fixed factor's level with only zero counts: its coefficient runs to -infinity."""
    d = counts.assign(f=np.where(counts.index % 3 == 0, "a", np.where(counts.index % 3 == 1, "b", "c")))
    d.loc[d.f == "c", "y"] = 0.0
    with pytest.raises(InputError, match=r"perfectly separated by the fixed effect fc:"):
        shrinkage.fit("y ~ x + f + (1 | g)", d, family="poisson")


def test_all_zero_group_with_a_second_factor(counts):
    """An all-zero group beside a crossed factor: fitted, its mode finite and the lowest."""
    counts.loc[counts.g == 3, "y"] = 0.0
    r = shrinkage.fit("y ~ x + (1 | g) + (1 | h)", counts.assign(h=np.arange(len(counts)) % 4), family="poisson")
    b = r.ranef["g"]["(Intercept)"]
    assert np.isfinite(b).all() and b.loc[3] == b.min()
