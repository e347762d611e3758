"""A formula fit refuses, drops and names what lme4 refuses, drops and names (issue 19
items 4, 5, 8, 9, 10, 12).

* lme4's lmerControl checks, errors by default: check.nobs.vs.nlev ("number of levels of
  each grouping factor must be < number of observations") and check.nobs.vs.nRE ("number of
  observations (=N) <= number of random effects (=J*q) for term ..."), in memory, out of
  core and in the one-way fit(y, g);
* rank-deficient fixed-effect columns dropped with lme4's message (compared with lme4
  itself in tests/test_lmm_lme4.py), unused factor levels dropped silently;
* predict matches group labels by their printed form and refuses a new level of a fixed
  factor; dotted, backticked and bool column names; offsets and binomial responses named as
  unsupported; summary()'s Data: line.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import shrinkage
from shrinkage import InputError
from shrinkage.lmm.fit import RankDeficiencyWarning

NLEV = r"number of levels of each grouping factor must be < number of observations"


def frame(seed: int = 1, J: int = 20, n: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    N = J * n
    g = np.repeat(np.arange(J), n)
    x, z = rng.normal(size=N), rng.normal(size=N)
    y = 1 + 0.5 * x + rng.normal(size=J)[g] + rng.normal(size=N)
    return pd.DataFrame({"y": y, "x": x, "z": z, "g": g, "id": np.arange(N),
                         "f": rng.choice(["a", "b", "c"], size=N)})


def on_disk(df: pd.DataFrame, tmp_path) -> str:
    pytest.importorskip("duckdb")
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False, float_format="%.17g")
    return str(path)


# --- item 4: unidentifiable random effects ----------------------------------------------

@pytest.mark.parametrize("formula", ["y ~ x + (1 | id)", "y ~ 1 + (1 | id)", "y ~ x + (1 | y)"])
def test_every_row_its_own_group_is_refused_as_lme4_does(formula, tmp_path):
    df = frame()
    with pytest.raises(InputError, match=NLEV + r" \(60 groups, 60 observations"):
        shrinkage.fit(formula, data=df)
    if "(1 | y)" not in formula:  # out of core: the same check, after the engine's cross-products
        with pytest.raises(InputError, match=NLEV):
            shrinkage.fit(formula, data=on_disk(df, tmp_path))


def test_one_way_fit_refuses_every_row_its_own_group():
    with pytest.raises(InputError, match=NLEV + r" \(5 groups, 5 observations\)"):
        shrinkage.fit(np.arange(5.0), np.arange(5))


def test_as_many_random_effects_as_rows_is_refused(tmp_path):
    """(x + z | g) with 3 rows per group: J q = N random effects, as lme4's check.nobs.vs.nRE."""
    df = frame()
    message = (r"number of observations \(=60\) <= number of random effects \(=60\) for the term "
               r"\(\(Intercept\), x, z\); the random-effects parameters and the residual variance")
    with pytest.raises(InputError, match=message):
        shrinkage.fit("y ~ x + (x + z | g)", data=df)
    with pytest.raises(InputError, match=message):
        shrinkage.fit("y ~ x + (x + z | g)", data=on_disk(df, tmp_path))
    # lme4 checks term by term: (1 | g) + (0 + x | g) has 20 random effects a term, 60 rows
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a possibly singular fit is not the point here
        fitted = shrinkage.fit("y ~ x + (1 | g) + (0 + x | g)", data=df)
    assert fitted.nobs == 60
    # one row more than the random effects is allowed (lme4 refuses N <= J q only)
    extra = pd.concat([df, df.iloc[:1]], ignore_index=True)
    assert shrinkage.fit("y ~ x + (x + z | g)", data=extra, method="ML").nobs == 61


# --- item 9: rank deficiency, unused levels -----------------------------------------------

def test_rank_deficient_columns_dropped_with_lme4s_message(tmp_path):
    df = frame().assign(x2=lambda d: 2 * d["x"] + 1, x3=lambda d: d["x"] - d["z"])
    clean = shrinkage.fit("y ~ x + z + (1 | g)", data=df)
    with pytest.warns(RankDeficiencyWarning, match=r"fixed-effect model matrix is rank deficient so dropping "
                                                   r"2 columns / coefficients: x2, x3") as caught:
        r = shrinkage.fit("y ~ x + x2 + z + x3 + (1 | g)", data=df)
    assert caught[0].filename == __file__  # the warning points at the user's line
    assert list(r.fixef.index) == ["(Intercept)", "x", "z"] and r.vcov.shape == (3, 3)
    np.testing.assert_allclose(r.fixef.to_numpy(), clean.fixef.to_numpy(), rtol=1e-10)
    assert r.loglik == pytest.approx(clean.loglik, rel=1e-12)
    text = r.summary()
    assert "x2" not in text.split("Fixed effects:")[1] and "\nz " in text
    assert text.endswith("fit warnings:\nfixed-effect model matrix is rank deficient so dropping 2 columns / "
                         "coefficients\n")
    np.testing.assert_allclose(r.predict(df.iloc[:5]), clean.predict(df.iloc[:5]), rtol=1e-10)
    with pytest.warns(RankDeficiencyWarning, match="x2, x3"):  # out of core: the same columns dropped
        disk = shrinkage.fit("y ~ x + x2 + z + x3 + (1 | g)", data=on_disk(df, tmp_path))
    assert list(disk.fixef.index) == ["(Intercept)", "x", "z"]
    np.testing.assert_allclose(disk.fixef.to_numpy(), clean.fixef.to_numpy(), rtol=1e-9)


def test_a_factor_level_after_its_aliases_is_dropped():
    """A factor's indicator that the earlier columns already span (f = c exactly when w = 1)."""
    df = frame().assign(w=lambda d: (d["f"] == "c").astype(float))
    with pytest.warns(RankDeficiencyWarning, match=r"dropping 1 column / coefficient: fc$"):
        r = shrinkage.fit("y ~ w + f + (1 | g)", data=df)
    assert list(r.fixef.index) == ["(Intercept)", "w", "fb"]


def test_unused_levels_of_a_factor_dropped_silently():
    df = frame()
    cat = df.assign(f=pd.Categorical(df["f"], categories=["a", "b", "c", "unused"]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = shrinkage.fit("y ~ x + f + (1 | g)", data=cat)
        gone = shrinkage.fit("y ~ x + f + (1 | g)", data=cat[cat["f"] != "c"].reset_index(drop=True))
    assert list(r.fixef.index) == ["(Intercept)", "x", "fb", "fc"]
    np.testing.assert_allclose(r.fixef.to_numpy(), shrinkage.fit("y ~ x + f + (1 | g)", data=df).fixef.to_numpy(),
                               rtol=1e-12)
    assert list(gone.fixef.index) == ["(Intercept)", "x", "fb"]  # a level unused after a subset, too


# --- item 5: labels in predict ----------------------------------------------------------

def test_predict_matches_labels_by_their_printed_form():
    df = frame()
    as_text = shrinkage.fit("y ~ x + (1 | g)", data=df.assign(g=df["g"].astype(str)))
    as_int = shrinkage.fit("y ~ x + (1 | g)", data=df)
    new = pd.DataFrame({"x": [0.5, 0.5, 0.5], "g": [3, 7, 99]})
    known = as_int.predict(new)
    assert known[0] != known[1] and known[2] == pytest.approx(as_int.fixef["(Intercept)"] + 0.5 * as_int.fixef["x"])
    np.testing.assert_allclose(as_text.predict(new), known, rtol=1e-9)  # ints against text labels
    np.testing.assert_allclose(as_int.predict(new.assign(g=["3", "7", "99"])), known, rtol=1e-12)  # and reverse
    np.testing.assert_allclose(as_int.predict(new.assign(g=[3.0, 7.0, 99.0])), known, rtol=1e-12)
    np.testing.assert_allclose(as_text.predict(new.assign(g=[3.0, 7.0, 99.0])), known, rtol=1e-9)
    out = as_text.predict(new, variance=True)
    assert out["known_group"].tolist() == [True, True, False]


def test_predict_refuses_a_new_level_of_a_fixed_factor():
    df = frame()
    r = shrinkage.fit("y ~ x + f + (1 | g)", data=df)
    with pytest.raises(InputError, match=r"newdata: factor 'f' has new level 'zzz'"):
        r.predict(pd.DataFrame({"x": [0.0], "f": ["zzz"], "g": [1]}))
    fine = r.predict(pd.DataFrame({"x": [0.0], "f": ["c"], "g": [1]}))
    assert fine[0] == pytest.approx(r.fixef["(Intercept)"] + r.fixef["fc"] + r.ranef["g"].loc[1].iloc[0])


# --- item 10: column names --------------------------------------------------------------

def test_dotted_backticked_and_quoted_names_in_memory():
    df = frame()
    plain = shrinkage.fit("y ~ x + (x | g)", data=df)
    for y, x, g in [("Sepal.Length", "Petal.Width", "Species.id"), ("a b", "c|d", "e~f"), ("a`b", "x.1", "g"),
                    ("y", "c`d", "h")]:
        renamed = df.rename(columns={"y": y, "x": x, "g": g})
        q = {v: (f"`{v.replace('`', chr(92) + '`')}`" if not v.replace(".", "").replace("_", "").isalnum() else v)
             for v in (y, x, g)}
        r = shrinkage.fit(f"{q[y]} ~ {q[x]} + ({q[x]} | {q[g]})", data=renamed)
        assert list(r.fixef.index) == ["(Intercept)", x] and r.group == g and list(r.ranef) == [g]
        assert r.loglik == pytest.approx(plain.loglik, rel=1e-12)


def test_bool_covariate_named_as_lme4_names_it():
    df = frame().assign(b=lambda d: d["x"] > 0)
    r = shrinkage.fit("y ~ b + (1 | g)", data=df)
    numeric = shrinkage.fit("y ~ b01 + (1 | g)", data=df.assign(b01=df["b"].astype(float)))
    assert list(r.fixef.index) == ["(Intercept)", "bTRUE"]
    np.testing.assert_allclose(r.fixef.to_numpy(), numeric.fixef.to_numpy(), rtol=1e-12)
    assert list(shrinkage.fit("y ~ 0 + b + (1 | g)", data=df).fixef.index) == ["bFALSE", "bTRUE"]
    assert r.predict(pd.DataFrame({"b": [True], "g": [0]}))[0] == pytest.approx(
        numeric.predict(pd.DataFrame({"b01": [1.0], "g": [0]}))[0], rel=1e-12)


# --- item 8: what is not supported yet ----------------------------------------------------

@pytest.mark.parametrize("formula, message", [
    ("y ~ x + offset(z) + (1 | g)", r"offset\(z\): offsets are supported with family=.*not yet in a Gaussian fit"),
    ("cbind(s, f) ~ x + (1 | g)", r"the response cbind\(s, f\): .*fit it with family='binomial'"),
])
def test_offsets_and_binomial_responses_named(formula, message):
    with pytest.raises(InputError, match=message):
        shrinkage.fit(formula, data=frame().assign(s=1))


# --- item 12: the Data: line ----------------------------------------------------------------

def test_summary_names_the_data(tmp_path):
    df = frame()
    lines = shrinkage.fit("y ~ x + (1 | g)", data=df).summary().splitlines()
    assert lines[1:3] == ["Formula: y ~ x + (1 | g)", "   Data: <pandas DataFrame>"]
    path = on_disk(df, tmp_path)
    assert shrinkage.fit("y ~ x + (1 | g)", data=path).summary().splitlines()[2] == f"   Data: {path}"
