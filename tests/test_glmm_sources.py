"""A GLMM out of core (sources/_glmm.py): the rows reduced to counts per (group,
covariate pattern) by an engine's GROUP BY, then fitted in memory, are the row-level fit:
estimates to 1e-10 (Laplace) and loglik, deviance, AIC and BIC to 1e-10 relative, on
DuckDB (Parquet), Dask and Spark, for 0/1 rows, cbind counts (whose log choose(m, s)
constants differ between rows and cells) and Poisson counts with an exposure offset;
rows with a missing value dropped and counted as in memory; what does not reduce (a
continuous covariate) and bad counts refused with the column named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import shrinkage
from shrinkage import InputError
from test_cluster import _spark_or_skip

CASES = [("y ~ a + b + (1 | g)", "binomial"),
         ("cbind(s, f) ~ a + (1 | g)", "binomial"),
         ("c ~ a + b + offset(log(t)) + (1 | g)", "poisson")]


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(20261208)
    N, J = 3000, 30
    g = rng.integers(0, J, N)
    a = rng.choice(["lo", "mid", "hi"], N)
    b = rng.integers(0, 3, N)
    eta = -0.3 + (a == "hi") * 0.5 - 0.2 * b + rng.normal(scale=0.7, size=J)[g]
    t = rng.uniform(0.5, 3, N)
    m = rng.integers(0, 6, N)
    s = rng.binomial(m, 1 / (1 + np.exp(-eta)))
    return pd.DataFrame({"y": (rng.random(N) < 1 / (1 + np.exp(-eta))).astype(int), "s": s, "f": m - s,
                         "c": rng.poisson(t * np.exp(eta)), "a": a, "b": b, "t": t,
                         "g": [f"g{v:02d}" for v in g]})


def same(r, ref, rel=1e-10):
    """The reduced fit is the row fit (``rel`` None: estimates within 1e-5 standard
    errors, the adaptive-quadrature optimiser's precision)."""
    assert r.nobs == ref.nobs and r.dropped == ref.dropped and r.cells < ref.nobs
    if rel is None:
        se = np.sqrt(np.diag(ref.vcov_matrix))
        assert np.max(np.abs(r.beta - ref.beta) / se) < 1e-5
        assert r.theta == pytest.approx(ref.theta, rel=1e-6)
    else:
        np.testing.assert_allclose(r.beta, ref.beta, rtol=rel)
        assert r.theta == pytest.approx(ref.theta, rel=rel)
    for name in ("loglik", "aic", "bic"):  # stationary at the optimum: to 1e-10 whatever the estimates' precision
        assert getattr(r, name) == pytest.approx(getattr(ref, name), rel=1e-10), name
    assert r.deviance == pytest.approx(ref.deviance, rel=1e-10 if rel else 1e-9)  # not stationary
    np.testing.assert_allclose(r.b, ref.b, rtol=1e-9 if rel else 1e-6, atol=1e-12 if rel else 1e-7)


@pytest.mark.parametrize("formula, family", CASES)
def test_parquet_through_duckdb_is_the_row_fit(frame, tmp_path, formula, family):
    path = tmp_path / "d.parquet"
    frame.to_parquet(path)
    r, ref = shrinkage.fit(formula, data=str(path), family=family), shrinkage.fit(formula, frame, family=family)
    same(r, ref)
    assert f"Number of obs: {ref.nobs}," in r.summary()
    np.testing.assert_allclose(r.predict(frame, type="response"), ref.predict(type="response"), rtol=1e-8)
    with pytest.raises(InputError, match=r"predict\(newdata=...\)"):
        r.predict()


@pytest.mark.parametrize("formula, family", [CASES[0], CASES[2]])
def test_adaptive_quadrature_keeps_lme4s_scale(frame, tmp_path, formula, family):
    """nAGQ > 1: lme4's loglik subtracts the saturated model, which differs between rows
    and cells; the shift puts it back (the optimiser's gradient there is a difference
    quotient: estimates to 1e-5 standard errors, loglik to 1e-10)."""
    path = tmp_path / "d.parquet"
    frame.to_parquet(path)
    same(shrinkage.fit(formula, data=str(path), family=family, nagq=5),
         shrinkage.fit(formula, frame, family=family, nagq=5), rel=None)


def test_missing_values_are_dropped_as_in_memory(frame, tmp_path):
    d = frame.astype({"y": float, "a": object}).copy()
    d.loc[[3, 40], "a"] = None
    d.loc[7, "y"] = np.nan
    d.loc[9, "b"] = None
    path = tmp_path / "d.parquet"
    d.to_parquet(path)
    ref = shrinkage.fit(CASES[0][0], d, family="binomial")
    assert ref.dropped == 4
    same(shrinkage.fit(CASES[0][0], data=str(path), family="binomial"), ref)
    with pytest.raises(InputError, match=r"missing values .* 4 row"):
        shrinkage.fit(CASES[0][0], data=str(path), family="binomial", na_action="raise")


def test_dask(frame):
    dd = pytest.importorskip("dask.dataframe")
    for formula, family in CASES:
        same(shrinkage.fit(formula, dd.from_pandas(frame, npartitions=3), family=family),
             shrinkage.fit(formula, frame, family=family))


@pytest.mark.slow
def test_spark(frame):
    _spark_or_skip()
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[2]").appName("shrinkage-glmm")
             .config("spark.ui.enabled", "false").getOrCreate())
    try:
        cols = ["y", "s", "f", "c", "a", "b", "t", "g"]
        rows = [tuple(v.item() if hasattr(v, "item") else v for v in r) for r in frame[cols].itertuples(index=False)]
        sdf = spark.createDataFrame(rows, "y long, s long, f long, c long, a string, b long, t double, g string")
        for formula, family in CASES:
            same(shrinkage.fit(formula, sdf, family=family), shrinkage.fit(formula, frame, family=family))
    finally:
        spark.stop()


def test_what_does_not_reduce_and_bad_counts_are_refused(frame, tmp_path):
    d = frame.assign(x=np.random.default_rng(1).normal(size=len(frame)), y2=frame.y * 2,
                     cf=frame.c + 0.5, cn=-frame.c)
    path = str(tmp_path / "d.parquet")
    d.to_parquet(path)
    refused = [
        ("y ~ x + (1 | g)", "binomial", {}, r"column 'x' has about \d+ distinct values: out of core"),
        ("y2 ~ a + (1 | g)", "binomial", {}, r"'y2' must be 0 or 1 .*2\.0"),
        ("cf ~ a + (1 | g)", "poisson", {}, r"'cf' must hold whole non-negative counts: \d+\.5"),
        ("cn ~ a + (1 | g)", "poisson", {}, r"'cn' must hold whole non-negative counts: -\d"),
        ("y ~ a + (1 | g)", "binomial", {"weights": "t"}, r"weights= out of core"),
        ("y ~ a + (1 + b | g)", "binomial", {}, r"one random intercept"),
        ("y ~ z + (1 | g)", "binomial", {}, r"column 'z' is not in the data"),
        ("c ~ a + offset(log(b)) + (1 | g)", "poisson", {}, r"offset\(log\(b\)\): \d+ row\(s\) of 'b' are not positive"),
    ]
    for formula, family, options, message in refused:
        with pytest.raises(InputError, match=message):
            shrinkage.fit(formula, data=path, family=family, **options)
