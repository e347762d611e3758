"""One model, one answer type (issue 20 item 3): fit(y, g) and fit("y ~ 1 + (1 | g)", data)
answer by the same names and agree to 1e-9, on Dyestuff, sleepstudy with (1 | Subject) and
random unbalanced data, by REML and ML.  Each result computes the other's names from its own
fields (shrinkage.oneway_names, LmmResult's one-way properties); the two fits are
independent (a 1-d search in gamma over size classes; the formula fit's theta optimiser
over per-group cross-products), so agreement checks both.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import shrinkage
from shrinkage import InputError, datasets

# name -> how the two answers are compared (scalars, arrays, pandas objects, dicts of them)
SHARED = ["method", "singular", "fitted", "sigma2", "sigma_b2", "sigma", "gamma", "beta0", "loglik", "deviance",
          "aic", "bic", "df", "icc", "theta", "beta", "n_obs", "nobs", "n_groups", "ngroups", "groups", "labels",
          "n", "ybar", "blup", "shrinkage", "conditional_variance", "group_means", "fixef", "vcov", "vcov_matrix",
          "D", "varcorr", "ranef", "condvar", "x_names", "z_names"]


def data_sets():
    dye = datasets.load("dyestuff")
    sleep = datasets.load("sleepstudy")
    rng = np.random.default_rng(20261207)
    sizes = rng.integers(1, 12, size=40)
    g = np.repeat(rng.permutation(40) * 7 + 3, sizes)  # unsorted int labels, unbalanced, some singletons
    y = 50 + rng.normal(0, 2, size=40)[np.repeat(np.arange(40), sizes)] + rng.normal(0, 3, size=g.size)
    return {"dyestuff": (dye.y, dye.groups), "sleepstudy": (sleep.y, sleep.groups), "random": (y, g)}


def _values(v):
    if isinstance(v, dict):
        return [_values(x) for x in v.values()]
    if isinstance(v, (pd.Series, pd.DataFrame)):
        return [np.asarray(v.to_numpy(), dtype=float), [str(i) for i in v.index],
                [str(c) for c in getattr(v, "columns", [])]]
    return v


def _agree(a, b, name):
    a, b = _values(a), _values(b)
    if isinstance(a, list) and not (a and isinstance(a[0], (int, float, np.number))):
        assert len(a) == len(b), name
        for x, y in zip(a, b):
            _agree(x, y, name)
        return
    if isinstance(a, (str, bool, tuple)) or np.asarray(a).dtype.kind not in "iuf":
        assert np.array_equal(np.asarray(a, dtype=object), np.asarray(b, dtype=object)) if not isinstance(a, str) \
            else a == b, name
        return
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape, name
    scale = np.max(np.abs(b)) if b.size else 0.0
    assert np.all(np.abs(a - b) <= 1e-9 * np.maximum(np.abs(b), scale)), f"{name}: {a.ravel()[:4]} vs {b.ravel()[:4]}"


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("case", ["dyestuff", "sleepstudy", "random"])
def test_one_way_and_formula_fits_answer_alike(case, method):
    y, g = data_sets()[case]
    one_way = shrinkage.fit(y, g, method=method)
    formula = shrinkage.fit("y ~ 1 + (1 | group)", data=pd.DataFrame({"y": y, "group": g}), method=method)
    for name in SHARED:
        _agree(getattr(one_way, name), getattr(formula, name), name)
    _agree(one_way.coef(), formula.coef(), "coef")
    # each against its definition: lambda_j = n_j sigma_b^2 / (n_j sigma_b^2 + sigma^2), blup = lambda (ybar - beta0)
    lam = one_way.n * one_way.sigma_b2 / (one_way.n * one_way.sigma_b2 + one_way.sigma2)
    _agree(formula.shrinkage, lam, "shrinkage by its definition")
    _agree(formula.blup, lam * (formula.ybar - formula.beta0), "blup by its definition")
    w = 1 / (one_way.sigma_b2 + one_way.sigma2 / one_way.n)
    _agree(one_way.vcov_matrix, np.array([[1 / w.sum()]]), "vcov by its definition")


def test_one_way_names_refused_where_they_mean_nothing():
    sleep = pd.read_csv(datasets.load("sleepstudy").path)
    slope = shrinkage.fit("Reaction ~ Days + (Days | Subject)", data=sleep)
    for name in ("sigma_b2", "blup", "shrinkage", "conditional_variance", "group_means"):
        with pytest.raises(InputError, match="random intercept alone"):
            getattr(slope, name)
    covariate = shrinkage.fit("Reaction ~ Days + (1 | Subject)", data=sleep)
    with pytest.raises(InputError, match="no covariates"):
        covariate.group_means
    assert covariate.beta0 == covariate.fixef["(Intercept)"]
    # lambda_j still shrinks the group's mean residual when X has covariates
    resid = sleep["Reaction"] - covariate.fixef["(Intercept)"] - covariate.fixef["Days"] * sleep["Days"]
    mean_resid = resid.groupby(sleep["Subject"]).mean().to_numpy()
    np.testing.assert_allclose(covariate.blup, covariate.shrinkage * mean_resid, rtol=1e-8)
