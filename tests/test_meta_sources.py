"""shrinkage.meta(data=...) from files and engines: the same fit as from the arrays.

The used columns are fetched in the source's row order (DuckDB on Parquet, CSV, a glob, a
relation and a SQL query; Dask; PySpark), so every estimate equals the in-memory fit's
bit for bit.  Missing values and absent columns are named.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import shrinkage
from shrinkage import InputError
from shrinkage.metaanalysis import algebra
from test_cluster import _spark_or_skip


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(3)
    k = 500
    df = pd.DataFrame({"x1": rng.normal(size=k), "x2": rng.uniform(size=k), "v": rng.uniform(0.1, 1.0, k)})
    df["y"] = 0.5 + 0.3 * df.x1 - 0.2 * df.x2 + rng.normal(scale=np.sqrt(df.v + 0.2))
    return df


@pytest.fixture(scope="module")
def moderate(tmp_path_factory):
    """40,000 studies: above KERNEL_MIN, so the compiled pass (rows centred as read) does the fit."""
    rng = np.random.default_rng(4)
    k = 40_000
    assert k >= algebra.KERNEL_MIN
    df = pd.DataFrame({"x1": rng.normal(size=k), "x2": rng.uniform(size=k) * 100 + 1e4, "v": rng.uniform(0.1, 2.0, k)})
    df["y"] = 3.0 + 0.3 * df.x1 - 0.02 * df.x2 + rng.normal(scale=np.sqrt(df.v + 0.25))
    path = tmp_path_factory.mktemp("meta") / "moderate.parquet"
    df.to_parquet(path)
    return df, path


def close(r, ref):
    """The same fit to 1e-10 (relative), tau^2, beta, their errors, the log-likelihood and the BLUPs."""
    for name in ("tau2", "se_tau2", "beta", "se", "QE", "loglik", "blup", "blup_se"):
        np.testing.assert_allclose(getattr(r, name), getattr(ref, name), rtol=1e-10, err_msg=name)


def test_moderate_fit_from_files_and_engines(moderate):
    import duckdb

    df, path = moderate
    ref = reference(df)
    close(shrinkage.meta("y", "v", mods=["x1", "x2"], data=path), ref)
    con = duckdb.connect()
    close(shrinkage.meta("y", "v", mods="~ x1 + x2", data=con.read_parquet(str(path))), ref)
    dd = pytest.importorskip("dask.dataframe")
    close(shrinkage.meta("y", "v", mods=["x1", "x2"], data=dd.read_parquet(str(path))), ref)


def reference(df, mods=("x1", "x2")):
    return shrinkage.meta(df.y.to_numpy(), df.v.to_numpy(), "REML", mods=df[list(mods)].to_numpy() if mods else None)


def same(r, ref):
    assert r.tau2 == ref.tau2 and np.array_equal(r.beta, ref.beta) and r.loglik == ref.loglik
    assert np.array_equal(r.blup, ref.blup)


def test_paths_relations_and_queries(frame, tmp_path):
    import duckdb

    ref = reference(frame)
    frame.to_parquet(tmp_path / "a.parquet")
    frame.iloc[:250].to_parquet(tmp_path / "p1.parquet")
    frame.iloc[250:].to_parquet(tmp_path / "p2.parquet")
    frame.to_csv(tmp_path / "a.csv", index=False, float_format="%.17g")
    for data in (tmp_path / "a.parquet", str(tmp_path / "a.csv")):
        same(shrinkage.meta("y", "v", mods="~ x1 + x2", data=data), ref)
        same(shrinkage.meta("y", "v", mods=["x1", "x2"], data=data), ref)
    con = duckdb.connect()
    rel = con.read_parquet(str(tmp_path / "a.parquet"))
    same(shrinkage.meta("y", "v", mods=["x1", "x2"], data=rel), ref)
    same(shrinkage.meta("y", "v", mods=["x1", "x2"], data=f"SELECT * FROM '{tmp_path / 'a.parquet'}'",
                        connection=con), ref)
    r = shrinkage.meta("y", "v", data=str(tmp_path / "p*.parquet"))
    assert r.tau2 == pytest.approx(reference(frame, None).tau2, rel=1e-14)  # a glob: DuckDB's file order


def test_dask(frame):
    dd = pytest.importorskip("dask.dataframe")
    same(shrinkage.meta("y", "v", mods="~ x1 + x2", data=dd.from_pandas(frame, npartitions=4)), reference(frame))


def test_missing_values_and_columns_are_named(frame, tmp_path):
    bad = frame.copy()
    bad.loc[17, "v"] = np.nan
    bad.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(InputError, match=r"column 'v': row 17 is missing"):
        shrinkage.meta("y", "v", data=tmp_path / "bad.parquet")
    with pytest.raises(InputError, match="no column 'x3' in data"):
        shrinkage.meta("y", "v", mods=["x3"], data=frame)


@pytest.mark.slow
def test_spark(frame, moderate):
    _spark_or_skip()
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[2]").appName("shrinkage-meta")
             .config("spark.ui.enabled", "false").getOrCreate())
    try:
        rows = list(zip(*(frame[c].tolist() for c in ("x1", "x2", "v", "y"))))
        sdf = spark.createDataFrame(rows, "x1 double, x2 double, v double, y double")
        same(shrinkage.meta("y", "v", mods=["x1", "x2"], data=sdf), reference(frame))
        big, path = moderate
        close(shrinkage.meta("y", "v", mods=["x1", "x2"], data=spark.read.parquet(str(path))), reference(big))
    finally:
        spark.stop()
