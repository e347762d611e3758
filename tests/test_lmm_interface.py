"""The lme4-style interface of shrinkage.fit(formula, data): inputs, outputs, errors.

Each output is checked against an independent computation: predictions and their
variances against the inverse of Henderson's mixed-model matrix built densely; the
likelihood-ratio test against a linear model fitted with numpy; missing rows against a
fit on the rows left; polars against pandas.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2

import shrinkage
from shrinkage import InputError, datasets

SLOPE = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    return pd.read_csv(datasets.load("sleepstudy").path)


@pytest.fixture(scope="module")
def fitted(sleep):
    return shrinkage.fit(SLOPE, data=sleep, method="REML")


def test_array_fit_and_one_way_formula_agree(sleep):
    for method in ("REML", "ML"):
        a = shrinkage.fit(sleep["Reaction"].to_numpy(), sleep["Subject"].to_numpy(), method=method)
        f = shrinkage.fit("Reaction ~ 1 + (1 | Subject)", data=sleep, method=method)
        assert f.loglik == pytest.approx(a.loglik, rel=1e-12)
        assert f.fixef["(Intercept)"] == pytest.approx(a.beta0, rel=1e-9)
        assert f.sigma2 == pytest.approx(a.sigma2, rel=1e-7)
        assert f.varcorr["Subject"].iloc[0, 0] == pytest.approx(a.sigma_b2, rel=1e-7)
        np.testing.assert_allclose(f.ranef["Subject"]["(Intercept)"].to_numpy(), a.blup, rtol=1e-7,
                                   atol=1e-9 * np.sqrt(a.sigma2))
        np.testing.assert_allclose(f.condvar["Subject"][:, 0, 0], a.conditional_variance, rtol=1e-7)
        assert f.icc == pytest.approx(a.sigma_b2 / (a.sigma_b2 + a.sigma2), rel=1e-7)


def test_polars_equals_pandas(sleep, fitted):
    pl = pytest.importorskip("polars")
    other = shrinkage.fit(SLOPE, data=pl.from_pandas(sleep), method="REML")
    assert other.loglik == fitted.loglik
    np.testing.assert_array_equal(other.fixef.to_numpy(), fitted.fixef.to_numpy())
    np.testing.assert_array_equal(other.ranef["Subject"].to_numpy(), fitted.ranef["Subject"].to_numpy())


def test_result_fields(fitted, sleep):
    r = fitted
    assert list(r.fixef.index) == ["(Intercept)", "Days"]
    assert list(r.vcov.index) == list(r.vcov.columns) == ["(Intercept)", "Days"]
    assert r.nobs == len(sleep) and r.ngroups == 18
    assert r.aic == pytest.approx(-2 * r.loglik + 2 * 6)
    assert r.bic == pytest.approx(-2 * r.loglik + 6 * np.log(180))
    ranef = r.ranef["Subject"]
    assert list(ranef.columns) == ["(Intercept)", "Days"] and list(ranef.index) == sorted(sleep["Subject"].unique())
    coef = r.coef()["Subject"]
    np.testing.assert_allclose(coef.to_numpy(), r.fixef.to_numpy()[None, :] + ranef.to_numpy(), rtol=1e-14)
    assert r.condvar["Subject"].shape == (18, 2, 2)


def test_missing_rows_dropped_counted_or_raised(sleep):
    damaged = sleep.copy()
    damaged.loc[[3, 50], "Days"] = np.nan
    damaged.loc[7, "Reaction"] = np.nan
    r = shrinkage.fit(SLOPE, data=damaged)
    clean = shrinkage.fit(SLOPE, data=sleep.drop(index=[3, 7, 50]))
    assert r.nobs == 177 and r.dropped == 3
    assert r.loglik == pytest.approx(clean.loglik, rel=1e-13)
    assert "(3 observations deleted due to missingness)" in r.summary()
    with pytest.raises(InputError, match=r"missing value in column 'Days' at row 3 \(index 3\); 3 incomplete"):
        shrinkage.fit(SLOPE, data=damaged, na_action="raise")


@pytest.mark.parametrize("formula, data_change, message", [
    ("Reaction ~ Dayz + (Days | Subject)", None, r"'Dayz' not in the data"),
    ("Reaction ~ Days", None, r"no random-effect term"),
    ("Reaction ~ Days + (1 | Subject/log(Days))", None, r"must be a column name, an interaction a:b or a nesting"),
    ("Reaction ~ Days - (1 | Subject)", None, r"can only be added"),
    ("Reaction ~ Days + (1 | Subject", None, r"unbalanced"),
    ("Reaction ~ Days + (1 | One)", "one group", r"a single group"),
])
def test_bad_input_is_named(sleep, formula, data_change, message):
    data = sleep.copy()
    if data_change == "one group":
        data["One"] = "a"
    with pytest.raises(InputError, match=message):
        shrinkage.fit(formula, data=data)


def test_other_bad_arguments(sleep):
    with pytest.raises(InputError, match="method must be"):
        shrinkage.fit(SLOPE, data=sleep, method="OLS")
    with pytest.raises(InputError, match="needs data="):
        shrinkage.fit(SLOPE)
    with pytest.raises(InputError, match="DataFrame"):
        shrinkage.fit(SLOPE, data=[1, 2, 3])
    with pytest.raises(InputError, match="not both"):
        shrinkage.fit(sleep["Reaction"], sleep["Subject"], data=sleep)
    with pytest.raises(InputError, match="no such file: some/file.parquet"):  # out of core: tests/test_sources_lmm.py
        shrinkage.fit(SLOPE, data="some/file.parquet")


def test_out_of_core_one_way_formula(sleep, tmp_path):
    """A path goes to shrinkage.sources.group_stats (DuckDB) and gives the in-memory numbers."""
    pytest.importorskip("duckdb")
    path = tmp_path / "sleep.csv"
    sleep.assign(Subject=sleep["Subject"].astype(str)).to_csv(path, index=False)
    for method in ("REML", "ML"):
        disk = shrinkage.fit("Reaction ~ 1 + (1 | Subject)", data=str(path), method=method)
        mem = shrinkage.fit("Reaction ~ 1 + (1 | Subject)", data=sleep, method=method)
        assert disk.loglik == pytest.approx(mem.loglik, rel=1e-12)
        assert disk.fixef["(Intercept)"] == pytest.approx(mem.fixef["(Intercept)"], rel=1e-12)
        assert disk.varcorr["Subject"].iloc[0, 0] == pytest.approx(mem.varcorr["Subject"].iloc[0, 0], rel=1e-9)


def test_factor_covariate_names_and_interactions():
    rng = np.random.default_rng(1)
    N = 120
    frame = pd.DataFrame({"y": rng.normal(size=N), "x": rng.normal(size=N),
                          "Machine": rng.choice(list("ABC"), size=N), "g": rng.integers(0, 12, size=N)})
    r = shrinkage.fit("y ~ x * Machine + (1 | g)", data=frame)
    assert list(r.fixef.index) == ["(Intercept)", "x", "MachineB", "MachineC", "x:MachineB", "x:MachineC"]


def henderson_inverse(r, frame):
    """sigma^2 C^-1 of Henderson's equations in (beta, b), built densely (raw X, Z)."""
    N, J = len(frame), r.ngroups
    X = np.column_stack([np.ones(N), frame["Days"].to_numpy()])
    codes = np.searchsorted(r.labels, frame["Subject"].to_numpy())
    Zf = np.zeros((N, 2 * J))
    for j in range(J):
        Zf[codes == j, 2 * j:2 * j + 2] = X[codes == j]
    Dinv = np.kron(np.eye(J), np.linalg.inv(r.D))
    C = np.block([[X.T @ X, X.T @ Zf], [Zf.T @ X, Zf.T @ Zf + r.sigma2 * Dinv]]) / r.sigma2
    return np.linalg.inv(C)


def test_predict_and_prediction_variance(fitted, sleep):
    r = fitted
    new = pd.DataFrame({"Days": [0.0, 4.5, 9.0], "Subject": [308, 335, 99999]})
    out = r.predict(new, variance=True)
    b = r.ranef["Subject"]
    x = np.column_stack([np.ones(3), new["Days"]])
    want = x @ r.fixef.to_numpy()
    want[:2] += [b.loc[308].to_numpy() @ x[0], b.loc[335].to_numpy() @ x[1]]
    np.testing.assert_allclose(out["fit"].to_numpy(), want, rtol=1e-12)
    assert list(out["known_group"]) == [True, True, False]
    Cinv = henderson_inverse(r, sleep)
    for row, subject in enumerate([308, 335]):
        j = int(np.searchsorted(r.labels, subject))
        l = np.zeros(Cinv.shape[0])
        l[:2] = x[row]
        l[2 + 2 * j:4 + 2 * j] = x[row]
        assert out["var"][row] == pytest.approx(l @ Cinv @ l + r.sigma2, rel=1e-8)
    new_var = x[2] @ r.vcov_matrix @ x[2] + x[2] @ r.D @ x[2] + r.sigma2
    assert out["var"][2] == pytest.approx(new_var, rel=1e-12)
    np.testing.assert_allclose(r.predict(sleep), r.predict(), rtol=1e-13)


def test_lrt_against_a_linear_model_fitted_directly(sleep):
    for method in ("REML", "ML"):
        r = shrinkage.fit("Reaction ~ Days + (1 | Subject)", data=sleep, method=method)
        y = sleep["Reaction"].to_numpy()
        X = np.column_stack([np.ones(y.size), sleep["Days"].to_numpy()])
        beta = np.linalg.lstsq(X, y, rcond=None)[0]
        rss = float(np.sum((y - X @ beta) ** 2))
        N, p = X.shape
        if method == "ML":
            dev0 = N * (1 + np.log(2 * np.pi * rss / N))
        else:
            dev0 = (N - p) * (1 + np.log(2 * np.pi * rss / (N - p))) + np.linalg.slogdet(X.T @ X)[1]
        stat, pval = r.lrt()
        assert stat == pytest.approx(dev0 - r.deviance, rel=1e-10)
        assert pval == pytest.approx(0.5 * chi2.sf(dev0 - r.deviance, 1), rel=1e-8)
    with pytest.raises(InputError, match="random intercept alone"):
        shrinkage.fit(SLOPE, data=sleep).lrt()


def test_singular_fit_lrt_is_one():
    y = datasets.load("dyestuff2")
    frame = pd.DataFrame({"y": y.y, "g": y.groups})
    r = shrinkage.fit("y ~ 1 + (1 | g)", data=frame)
    assert r.singular and r.D[0, 0] == 0.0
    assert r.lrt() == (0.0, 1.0)
    assert "boundary (singular) fit" in r.summary()


def test_double_bar_is_the_uncorrelated_model(sleep):
    a = shrinkage.fit("Reaction ~ Days + (Days || Subject)", data=sleep)
    b = shrinkage.fit("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", data=sleep)
    assert a.blocks == b.blocks == (1, 1)
    assert a.loglik == pytest.approx(b.loglik, rel=1e-13)
    assert a.D[0, 1] == 0.0 and a.D[1, 1] > 0


def test_fit_from_merged_chunks_equals_fit_from_rows(sleep, fitted):
    """Statistics of two chunks (each about its own centres) merge into the same fit."""
    from shrinkage.lmm import cross_products, fit_cross_products

    parts = []
    for rows in (sleep.iloc[:70], sleep.iloc[70:]):
        N = len(rows)
        X = np.column_stack([np.ones(N), rows["Days"].to_numpy(float)])
        labels, codes = np.unique(rows["Subject"].to_numpy(), return_inverse=True)
        parts.append(cross_products(rows["Reaction"].to_numpy(float), X, X, codes, labels,
                                    ["(Intercept)", "Days"], ["(Intercept)", "Days"]))
    merged = fit_cross_products(parts[0].merge(parts[1]), "REML")
    assert merged.loglik == pytest.approx(fitted.loglik, rel=1e-12)
    np.testing.assert_allclose(merged.beta, fitted.beta, rtol=1e-10)
    np.testing.assert_allclose(merged.b, fitted.b, rtol=1e-7, atol=1e-8)


def test_integer_labels_with_gaps_are_the_groups_that_occur(sleep):
    """Subjects 308..372 hold 18 labels: coded by their shift, the 47 labels of the range
    with no rows are dropped by the pass; the fit is the one of the same labels as text."""
    r = shrinkage.fit(SLOPE, data=sleep)
    as_text = shrinkage.fit(SLOPE, data=sleep.assign(Subject="s" + sleep["Subject"].astype(str)))
    assert r.ngroups == 18 and list(r.ranef["Subject"].index) == sorted(sleep["Subject"].unique())
    assert r.loglik == pytest.approx(as_text.loglik, rel=1e-13)
    np.testing.assert_allclose(r.ranef["Subject"].to_numpy(), as_text.ranef["Subject"].to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(r.predict(), as_text.predict(), rtol=1e-12)  # the rows' codes renumbered too
    new = pd.DataFrame({"Days": [1.0, 2.0], "Subject": [372, 311]})  # 311: in the range, not in the data
    np.testing.assert_allclose(r.predict(new), [r.coef()["Subject"].loc[372] @ [1.0, 1.0], r.fixef @ [1.0, 2.0]],
                               rtol=1e-12)


@pytest.mark.parametrize("column", ["Days", "Reaction"])
def test_an_infinite_value_is_an_error_naming_its_column(sleep, column):
    """The pass's sums see a NaN or an infinity (the float columns are not searched first);
    the fit then searches them and names what it finds."""
    damaged = sleep.astype({column: float})
    damaged.loc[11, column] = np.inf
    with pytest.raises(InputError, match=rf"column '{column}' has an infinite value at row 11"):
        shrinkage.fit(SLOPE, data=damaged)


def test_a_plain_grouping_name_is_what_formulae_parses_it_to(monkeypatch):
    """Plain names skip formulae (its import is 0.4 s of a first fit): the same name as
    formulae's parse gives, for names of every shape the shortcut takes, and names it
    does not take still go to formulae (a dotted name, backticks, True)."""
    import random
    import string

    from shrinkage.lmm import formula

    rng = random.Random(3)
    names = ["g", "Subject", "C", "I", "lambda", "x_1", "a1b2"] + [
        rng.choice(string.ascii_letters) + "".join(rng.choice(string.ascii_letters + string.digits + "_")
                                                   for _ in range(rng.randint(0, 8))) for _ in range(40)]
    fast = [formula._factors(n, f"(1 | {n})") for n in names]
    monkeypatch.setattr(formula, "_NAME", re.compile(r"(?!)"))  # never: every name through formulae
    assert fast == [formula._factors(n, f"(1 | {n})") for n in names] == [[(n,)] for n in names]
    assert formula._factors("`my group`", "(1 | `my group`)") == [("my group",)]
    with pytest.raises(InputError, match="must be a column name"):
        formula._factors("True", "(1 | True)")
