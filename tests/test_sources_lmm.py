"""The covariate / random-slope model fitted from cross-products computed where the data
live (DuckDB on Parquet, CSV, relations, SQL; Dask; Spark) equals the in-memory fit
(shrinkage.lmm.lmer on the same rows) to 1e-10; the cross-products themselves equal
their definition computed densely group by group; raw (uncentred) sums lose the digits
at y ~ 1e8 that the centred ones keep.

Spark tests skip where pyspark or Java is missing, never when the CI variable is set."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

import shrinkage
from shrinkage import InputError
from shrinkage.lmm import fit_cross_products, lmer
from shrinkage.sources import formula_cross_products

HERE = Path(__file__).resolve().parent
RTOL = 1e-10
FORMULAS = ["y ~ x1 + x2 + (x1 | g)", "y ~ x1 * x2 + (1 + x1 || g)", "y ~ x2 + (x1 + x2 | g)",
            "y ~ 0 + x1 + (x2 | g)"]


def make_frame(rng, N=3000, J=25, offset=10.0):
    g = rng.integers(0, J, N)
    x1 = rng.normal(size=N) + 3
    x2 = rng.uniform(size=N)
    b0, b1 = rng.normal(size=J), 0.5 * rng.normal(size=J)
    y = offset + 2 * x1 - x2 + b0[g] + b1[g] * x1 + rng.normal(size=N)
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2, "g": [f"g{v:03d}" for v in g]})


@pytest.fixture
def frame(rng):
    return make_frame(rng)


def assert_same_fit(r, ref, rtol=RTOL):
    assert r.labels.tolist() == ref.labels.tolist()
    assert (r.nobs, r.dropped, r.x_names, r.z_names, r.blocks) == (ref.nobs, ref.dropped, ref.x_names,
                                                                    ref.z_names, ref.blocks)
    scale = lambda a: rtol * max(1.0, float(np.max(np.abs(a))))  # noqa: E731  (entries near 0)
    np.testing.assert_allclose(r.beta, ref.beta, rtol=rtol, atol=scale(ref.beta))
    np.testing.assert_allclose(r.theta, ref.theta, rtol=rtol, atol=scale(ref.theta))
    np.testing.assert_allclose(r.b, ref.b, rtol=rtol, atol=scale(ref.b))
    assert r.sigma2 == pytest.approx(ref.sigma2, rel=rtol)
    assert r.deviance == pytest.approx(ref.deviance, rel=rtol)


@pytest.mark.parametrize("formula", FORMULAS)
def test_parquet_equals_in_memory(tmp_path, frame, formula):
    if formula.startswith("y ~ 0"):  # no intercept: nothing is centred, so keep y near 0
        frame = frame.assign(y=frame.y - 10 - 2 * frame.x1 + frame.x2)
    frame.to_parquet(tmp_path / "d.parquet")
    assert_same_fit(shrinkage.fit(formula, data=str(tmp_path / "d.parquet")), lmer(formula, frame))


def test_csv_relation_sql_arrow_and_glob(tmp_path, frame):
    import pyarrow as pa

    formula = FORMULAS[0]
    ref = lmer(formula, frame)
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.iloc[:1000].to_parquet(tmp_path / "a.parquet")
    frame.iloc[1000:].to_parquet(tmp_path / "b.parquet")
    con = duckdb.connect()
    for data in (tmp_path / "d.csv", f"{tmp_path}/*.parquet", con.read_csv(str(tmp_path / "d.csv")),
                 con.sql(f"SELECT * FROM '{tmp_path}/*.parquet'"), pa.Table.from_pandas(frame)):
        assert_same_fit(shrinkage.fit(formula, data=data), ref)
    cp, blocks, _ = formula_cross_products(f"SELECT * FROM '{tmp_path}/*.parquet'", formula, sql=True)
    assert_same_fit(fit_cross_products(cp, blocks=blocks), ref)


def test_attached_database_through_a_connection(tmp_path, frame):
    """A SQL query on a database DuckDB ATTACHes (here a DuckDB file; PostgreSQL the same way)."""
    with duckdb.connect(str(tmp_path / "lab.duckdb")) as db:
        db.sql("CREATE TABLE runs AS SELECT * FROM frame")
    con = duckdb.connect()
    con.sql(f"ATTACH '{tmp_path / 'lab.duckdb'}' AS lab (READ_ONLY)")
    formula = FORMULAS[1]
    cp, blocks, dropped = formula_cross_products("SELECT * FROM lab.runs", formula, connection=con)
    assert_same_fit(fit_cross_products(cp, blocks=blocks), lmer(formula, frame), rtol=RTOL)


def test_cross_products_equal_their_definition(tmp_path, frame):
    """Every field against X_j'Z_j etc. built densely per group from the raw rows (the
    centring that CrossProducts records is applied to X, y and Z)."""
    frame.to_parquet(tmp_path / "d.parquet")
    cp, blocks, dropped = formula_cross_products(str(tmp_path / "d.parquet"), "y ~ x1 * x2 + (x1 | g)")
    assert (blocks, dropped, cp.x_names, cp.z_names) == ((2,), 0, ("(Intercept)", "x1", "x2", "x1:x2"),
                                                         ("(Intercept)", "x1"))
    X = np.column_stack([np.ones(len(frame)), frame.x1, frame.x2, frame.x1 * frame.x2]) - cp.x_centre
    Z = np.column_stack([np.ones(len(frame)), frame.x1]) - cp.z_centre
    y = frame.y.to_numpy() - cp.y_centre
    np.testing.assert_allclose(cp.z_centre, [0.0, frame.x1.mean()], rtol=1e-14)
    np.testing.assert_allclose(cp.x_centre[1:], [frame.x1.mean(), frame.x2.mean(), (frame.x1 * frame.x2).mean()],
                               rtol=1e-14)
    np.testing.assert_allclose(cp.XtX, X.T @ X, rtol=1e-12, atol=1e-12 * len(frame))
    np.testing.assert_allclose(cp.Xty, X.T @ y, rtol=1e-12, atol=1e-12 * len(frame))
    assert cp.yty == pytest.approx(y @ y, rel=1e-12)
    for j, label in enumerate(cp.labels):
        rows = (frame.g == label).to_numpy()
        assert cp.n[j] == rows.sum()
        np.testing.assert_allclose(cp.XtZ[j], X[rows].T @ Z[rows], rtol=1e-11, atol=1e-11 * rows.sum())
        np.testing.assert_allclose(cp.ZtZ[j], Z[rows].T @ Z[rows], rtol=1e-12)
        np.testing.assert_allclose(cp.Zty[j], Z[rows].T @ y[rows], rtol=1e-11, atol=1e-11 * rows.sum())


def test_pieces_merge_to_the_whole(tmp_path, frame):
    """Statistics of two files merged by CrossProducts.merge equal those of both at once."""
    frame.iloc[:1700].to_parquet(tmp_path / "a.parquet")
    frame.iloc[1700:].to_parquet(tmp_path / "b.parquet")
    formula = "y ~ x1 + (x1 | g)"
    a, b, whole = (formula_cross_products(str(tmp_path / p), formula)[0] for p in ("a.parquet", "b.parquet",
                                                                                   "*.parquet"))
    merged = a.merge(b).recentre(whole.x_centre, whole.y_centre, whole.z_centre)
    assert merged.labels.tolist() == whole.labels.tolist()
    for name in ("n", "XtX", "XtZ", "ZtZ", "Xty", "Zty"):
        np.testing.assert_allclose(getattr(merged, name), getattr(whole, name), rtol=1e-11, atol=1e-9)
    assert_same_fit(fit_cross_products(merged, blocks=(2,)), fit_cross_products(whole, blocks=(2,)))


def test_a_wrong_assembly_is_caught(tmp_path, frame, monkeypatch):
    """The comparison can fail: totals assembled from raw columns while their centres are
    recorded (and the per-group blocks centred) are rejected, by the comparison or, as
    the blocks no longer fit together, by the fit itself."""
    from shrinkage.lmm import crossprod

    frame.to_parquet(tmp_path / "d.parquet")
    formula = FORMULAS[0]
    reference = lmer(formula, frame)  # in memory, before the shared assembly is broken
    real = crossprod._express
    monkeypatch.setattr(crossprod, "_express", lambda where, means, centred, k: real(where, means, False, k))
    with pytest.raises((AssertionError, InputError)):
        assert_same_fit(shrinkage.fit(formula, data=str(tmp_path / "d.parquet")), reference)


def raw_cross_products(path, formula):
    """The naive producer: sums of raw products per group, nothing centred."""
    from shrinkage.lmm.crossprod import CrossProducts, _ro

    q = duckdb.sql(f"""SELECT g, count(*) n, sum(x1) sx, sum(x1*x1) sxx, sum(y) sy, sum(x1*y) sxy, sum(y*y) syy
                       FROM '{path}' GROUP BY g ORDER BY g""").df()
    n, sx, sxx, sy, sxy = (q[c].to_numpy(dtype=float) for c in ("n", "sx", "sxx", "sy", "sxy"))
    M = np.stack([np.stack([n, sx], -1), np.stack([sx, sxx], -1)], -2)  # (J, 2, 2): [1, x1]'[1, x1]
    zty = np.stack([sy, sxy], -1)
    return CrossProducts(_ro(q.g.to_numpy()), _ro(n.astype(np.int64)), _ro(M.sum(0)), _ro(M), _ro(M),
                         _ro(zty.sum(0)), _ro(zty), float(q.syy.sum()), ("(Intercept)", "x1"), ("(Intercept)", "x1"),
                         _ro(np.zeros(2)), 0.0, 0)


def test_centring_is_needed_at_offset_1e8(tmp_path, rng):
    """Unit noise about 1e8: the centred statistics give the in-memory fit to 1e-10 and
    sum (y - c)^2 to 1e-12; raw sums (sum y^2 ~ 1e19 per group, rounded by ~1e3), moved
    to the same centre by the exact recentring rule, miss it by far more than 1%."""
    frame = make_frame(rng, offset=1e8)
    frame.to_parquet(tmp_path / "d.parquet")
    formula = "y ~ x1 + (x1 | g)"
    assert_same_fit(shrinkage.fit(formula, data=str(tmp_path / "d.parquet")), lmer(formula, frame))
    ours = formula_cross_products(str(tmp_path / "d.parquet"), formula)[0]
    exact = math.fsum((frame.y.to_numpy() - ours.y_centre) ** 2)  # y - c exact here (Sterbenz)
    assert ours.yty == pytest.approx(exact, rel=1e-12)
    naive = raw_cross_products(tmp_path / "d.parquet", formula).recentre(ours.x_centre, ours.y_centre)
    assert abs(naive.yty / exact - 1) > 1e-2


def test_missing_values_dropped_as_lmer(tmp_path, frame):
    frame = frame.copy()
    frame.loc[[5, 77], "x1"] = np.nan
    frame.loc[300, "y"] = np.nan
    frame.loc[901, "g"] = None
    frame.to_parquet(tmp_path / "d.parquet")
    formula = FORMULAS[0]
    ref = lmer(formula, frame)
    assert ref.dropped == 4
    assert_same_fit(shrinkage.fit(formula, data=str(tmp_path / "d.parquet")), ref)
    with pytest.raises(InputError, match=r"column 'g' \(1 row\(s\)\), column 'y' \(1 row\(s\)\), column 'x1' \(2 row"):
        formula_cross_products(str(tmp_path / "d.parquet"), formula, na_action="raise")


FACTOR_FORMULAS = ["y ~ x1 * f + (x1 | g)", "y ~ x1 + (f | g)", "y ~ x1 + (x1 + f || g)", "y ~ 0 + f + (1 | g)"]


def with_factor(frame):
    f = np.where(frame.x2 > 0.6, "hi", np.where(frame.x2 > 0.3, "mid", "it's"))  # a quote in a level
    frame = frame.assign(f=f, y=frame.y + 1.5 * (f == "hi"))
    frame.loc[7, "f"] = None  # dropped, as lmer drops it
    return frame


@pytest.mark.parametrize("formula", FACTOR_FORMULAS)
def test_factors_equal_in_memory(tmp_path, frame, formula):
    """A text column as a factor: levels fetched first, indicators built by the engine;
    treatment contrasts, names and (x + f || g) blocks as lmer gives them."""
    dd = pytest.importorskip("dask.dataframe")
    frame = with_factor(frame)
    frame.to_parquet(tmp_path / "d.parquet")
    frame.to_csv(tmp_path / "d.csv", index=False)
    ref = lmer(formula, frame)
    assert ref.dropped == 1
    for data in (str(tmp_path / "d.parquet"), str(tmp_path / "d.csv"), dd.from_pandas(frame, npartitions=4)):
        assert_same_fit(shrinkage.fit(formula, data=data), ref)


def test_a_bool_covariate_is_a_factor_on_every_engine(tmp_path, frame):
    """Issue 19 item 10, run again: a bool column was refused out of core ("neither numeric
    nor a text/categorical factor") where lmer codes it as a factor named bTRUE."""
    dd = pytest.importorskip("dask.dataframe")
    frame = frame.assign(b=frame.x2 > 0.5)
    frame = frame.assign(y=frame.y + 0.7 * frame.b)
    frame.to_parquet(tmp_path / "d.parquet")
    frame.to_csv(tmp_path / "d.csv", index=False)
    for formula in ("y ~ x1 + b + (1 | g)", "y ~ x1 * b + (b | g)"):
        ref = lmer(formula, frame)
        assert "bTRUE" in ref.x_names
        for data in (str(tmp_path / "d.parquet"), str(tmp_path / "d.csv"), dd.from_pandas(frame, npartitions=3)):
            assert_same_fit(shrinkage.fit(formula, data=data), ref)


def test_unsupported_and_bad_input_named(tmp_path, frame):
    frame = frame.assign(when=pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(len(frame)), "s"),
                         s=frame.g.str[1:])
    frame.to_parquet(tmp_path / "d.parquet")
    path = str(tmp_path / "d.parquet")
    cases = [("y ~ x1 + when + (1 | g)", r"fixed part: column 'when' .* is neither numeric nor a text"),
             ("y ~ log(x2) + (1 | g)", r"fixed part \('log\(x2\)'\): column 'log\(x2\)' is not a numeric column"),
             ("y ~ x1 + (I(x1 * 2) | g)", r"random part .*column 'I\(x1 \* 2\)' is not a numeric"),
             ("y ~ x9 + (x1 | g)", r"column 'x9' is not in the data"),
             ("s ~ x1 + (x1 | g)", r"response 's' is not numeric"),
             ("y ~ x1 + (x1 | h)", r"grouping factor 'h' is not a column"),
             ("y ~ x1 + g + (1 | g)", r"grouping factor 'g' is also used as a covariate")]
    for formula, message in cases:
        with pytest.raises(InputError, match=message):
            shrinkage.fit(formula, data=path)
    frame.loc[12, "x2"] = np.inf
    frame.to_parquet(tmp_path / "inf.parquet")
    with pytest.raises(InputError, match=r"column 'x2' has 1 infinite"):
        shrinkage.fit("y ~ x2 + (x2 | g)", data=str(tmp_path / "inf.parquet"))


def test_backticked_names_with_bar_tilde_and_backtick(tmp_path, frame):
    """A column named we|ird~`n (and a factor named f`b), read in the formula escaped as
    `we|ird~\\`n`, fits out of core as in memory (issue 19 item 10: out of core the escaped
    name was compared with the column's and refused as 'Unable to evaluate factor')."""
    frame = with_factor(frame).rename(columns={"y": "Sepal.Length", "x1": "we|ird~`n", "f": "f`b"})
    frame.to_parquet(tmp_path / "n.parquet")
    for formula in ["`Sepal.Length` ~ `we|ird~\\`n` + (1|g)", "`Sepal.Length` ~ `we|ird~\\`n` * `f\\`b` + (1|g)"]:
        ref = lmer(formula, frame)
        assert "we|ird~`n" in ref.x_names
        assert_same_fit(shrinkage.fit(formula, data=str(tmp_path / "n.parquet")), ref)


def test_many_fixed_columns_refused_before_the_query(tmp_path, frame, monkeypatch):
    """A 1000-level fixed factor needs half a million sums per group (the query ran over
    10 minutes at 5 GB, issue 19 item 7): refused at once, naming the counts and what to do,
    before the engine's per-group query runs (which would fail this test at once)."""
    from shrinkage.sources._lmm_engines import DuckDBEngine

    frame = frame.assign(h=[f"h{k % 1000:04d}" for k in range(len(frame))])
    frame.to_parquet(tmp_path / "h.parquet")

    def ran(*_):
        raise AssertionError("the per-group query ran")

    monkeypatch.setattr(DuckDBEngine, "moments", ran)
    m = 1 + 999 + 1  # x1, h's 999 indicators, y
    with pytest.raises(InputError, match=rf"formula's 1000 model columns .* need {m * (m + 1) // 2} sums per group "
                                         r"of 'g', more than \d+: fit the data in memory"):
        shrinkage.fit("y ~ x1 + h + (1 | g)", data=str(tmp_path / "h.parquet"))

def test_dask_in_process(frame):
    dd = pytest.importorskip("dask.dataframe")
    frame = frame.copy()
    frame.loc[[3, 2500], "x2"] = np.nan
    for formula in FORMULAS[:3]:
        assert_same_fit(shrinkage.fit(formula, data=dd.from_pandas(frame, npartitions=7)), lmer(formula, frame))


@pytest.mark.slow
@pytest.mark.parametrize("offset", [10.0, 1e8])
def test_dask_local_cluster_equals_in_memory(tmp_path, rng, offset):
    folder = tmp_path / "data"
    folder.mkdir()
    frame = with_factor(make_frame(rng, N=6000, offset=offset))
    for k in range(6):
        frame.iloc[k * 1000:(k + 1) * 1000].to_parquet(folder / f"part{k}.parquet")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")])}
    formulas = [FORMULAS[0], FACTOR_FORMULAS[0]]
    run = subprocess.run([sys.executable, str(HERE / "cluster_dask_lmm.py"), str(folder), *formulas],
                         capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    assert [r["ref_nobs"] for r in results] == [6000, 5999]  # the row with a missing level dropped
    for r in results:
        assert r["workers"] == 2 and r["labels"] == r["ref_labels"] and r["nobs"] == r["ref_nobs"]
        for key in ("beta", "theta", "sigma2", "deviance"):
            np.testing.assert_allclose(r[key], r["ref_" + key], rtol=RTOL,
                                       atol=RTOL * np.max(np.abs(r["ref_" + key])))


def _spark_or_skip():
    import shutil

    try:
        import pyspark  # noqa: F401
        if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
            raise ImportError("java")
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("pyspark and Java are required when CI is set")
        pytest.skip("pyspark or Java is not installed")


@pytest.fixture(scope="module")
def spark():
    _spark_or_skip()
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[2]").appName("shrinkage-lmm-tests")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "4").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.mark.slow
@pytest.mark.parametrize("offset", [10.0, 1e8])
def test_spark_equals_in_memory(spark, rng, offset):
    frame = make_frame(rng, offset=offset)
    frame.loc[17, "x1"] = np.nan  # Spark keeps it as NaN: dropped like lmer's NA
    rows = list(zip(*(frame[c].tolist() for c in ("y", "x1", "x2", "g"))))
    sdf = spark.createDataFrame(rows, "y double, x1 double, x2 double, g string").repartition(5)
    for formula in FORMULAS[:2]:
        assert_same_fit(shrinkage.fit(formula, data=sdf), lmer(formula, frame))
    frame = with_factor(frame)
    rows = list(zip(*(frame[c].tolist() for c in ("y", "x1", "x2", "g")),
                    [None if pd.isna(v) else v for v in frame.f.tolist()]))  # NULL, not the text 'nan'
    sdf = spark.createDataFrame(rows, "y double, x1 double, x2 double, g string, f string").repartition(3)
    assert_same_fit(shrinkage.fit(FACTOR_FORMULAS[0], data=sdf), lmer(FACTOR_FORMULAS[0], frame))
