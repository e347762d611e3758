"""Engines that span machines: a Dask LocalCluster with worker processes and a local Spark
session compute the statistics where the data live; the result equals numpy in memory.

Skipped where pyspark or Java is missing, never when the CI variable is set."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shrinkage import GroupStats, InputError, fit
from shrinkage.sources import group_stats

HERE = Path(__file__).resolve().parent
FIT_RTOL = 1e-10


def write_partitions(folder: Path, rng, offset=10.0, parts=6, rows=2000, J=30):
    folder.mkdir(exist_ok=True)
    for k in range(parts):
        g = rng.integers(0, J, size=rows)
        y = offset + np.sin(g) + rng.normal(size=rows)
        pd.DataFrame({"y": y, "g": [f"g{v:02d}" for v in g]}).to_parquet(folder / f"part{k}.parquet")


@pytest.mark.slow
@pytest.mark.parametrize("offset", [10.0, 1e8])
def test_dask_local_cluster_equals_in_memory(tmp_path, rng, offset):
    write_partitions(tmp_path / "data", rng, offset)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, str(HERE / "cluster_dask.py"), str(tmp_path / "data")],
                         capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    r = json.loads(run.stdout.strip().splitlines()[-1])
    assert r["workers"] == 2
    assert r["labels"] == r["ref_labels"] and r["n"] == r["ref_n"]
    np.testing.assert_allclose(r["mean"], r["ref_mean"], rtol=1e-13)  # summation order differs
    np.testing.assert_allclose(r["ss"], r["ref_ss"], rtol=1e-12)  # one pass with merges: 3.6e-9 at 1e8
    if offset < 1e3:
        np.testing.assert_allclose(r["fit"], r["ref_fit"], rtol=FIT_RTOL)


def test_dask_in_process_and_missing_label(rng):
    dd = pytest.importorskip("dask.dataframe")
    g = rng.integers(0, 12, size=900)
    pdf = pd.DataFrame({"y": 5 + rng.normal(size=900), "g": g})
    s = group_stats(dd.from_pandas(pdf, npartitions=7), "y", "g")
    ref = GroupStats.from_data(pdf.y.to_numpy(), g)
    assert s.labels.tolist() == ref.labels.tolist()
    np.testing.assert_allclose(s.ss, ref.ss, rtol=1e-12)
    assert fit(stats=s).loglik == pytest.approx(fit(stats=ref).loglik, rel=FIT_RTOL)
    pdf.loc[417, "g"] = None
    with pytest.raises(InputError, match="missing label in the row with index 417"):
        group_stats(dd.from_pandas(pdf, npartitions=7), "y", "g")


def _spark_or_skip():
    have = shutil.which("java") is not None
    try:
        import pyspark  # noqa: F401
    except ImportError:
        have = False
    if not have:
        if os.environ.get("CI"):
            pytest.fail("pyspark and Java are required when CI is set")
        pytest.skip("pyspark or Java is not installed")


@pytest.fixture(scope="module")
def spark():
    _spark_or_skip()
    from pyspark.sql import SparkSession
    session = (SparkSession.builder.master("local[2]").appName("shrinkage-tests")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "4").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.mark.slow
@pytest.mark.parametrize("offset", [10.0, 1e8])
def test_spark_equals_in_memory(spark, rng, offset):
    g = rng.integers(0, 25, size=5000)
    y = offset + np.cos(g) + rng.normal(size=5000)
    labels = [f"{v:03d}" for v in g]
    sdf = spark.createDataFrame(list(zip(y.tolist(), labels)), "y double, g string").repartition(5)
    s = group_stats(sdf, "y", "g")
    ref = GroupStats.from_data(y, np.array(labels, dtype=object))
    assert s.labels.tolist() == ref.labels.tolist() and s.n.tolist() == ref.n.tolist()
    np.testing.assert_allclose(s.mean, ref.mean, rtol=1e-13)  # summation order differs
    np.testing.assert_allclose(s.ss, ref.ss, rtol=1e-12)
    if offset < 1e3:
        a, b = fit(stats=s), fit(stats=ref)
        for k in ("beta0", "sigma2", "sigma_b2", "loglik"):
            assert getattr(a, k) == pytest.approx(getattr(b, k), rel=FIT_RTOL)


@pytest.mark.slow
def test_spark_refuses_missing(spark):
    sdf = spark.createDataFrame([(1.0, "a"), (2.0, None), (3.0, "b")], "y double, g string")
    with pytest.raises(InputError, match="1 missing label"):
        group_stats(sdf, "y", "g")
    sdf = spark.createDataFrame([(1.0, "a"), (None, "a"), (2.0, "b")], "y double, g string")
    with pytest.raises(InputError, match="1 missing value"):
        group_stats(sdf, "y", "g")


@pytest.mark.slow
def test_spark_names_quoted_and_nan_labels_missing(spark, rng):
    """A column 'a.b' beside a struct a with a field b (holding other numbers) is the
    column, as in pandas; a name with a backtick is read too; a NaN in a double label
    is a missing label: refused by the one-way fit, dropped by a formula fit as lmer
    drops it in memory."""
    from shrinkage.lmm import lmer

    N = 1000
    k = rng.integers(0, 10, N)
    x = rng.normal(size=N)
    y = x + rng.normal(size=10)[k] + rng.normal(size=N)
    g = k.astype(float)
    g[[1, 2, 3]] = np.nan
    rows = [(a, b, c, (-a,), a, f"s{d}") for a, b, c, d in zip(y.tolist(), x.tolist(), g.tolist(), k.tolist())]
    sdf = spark.createDataFrame(rows, "y double, x double, g double, a struct<b: double>, `a.b` double, `k``1` string")
    s = group_stats(sdf, "a.b", "k`1")
    ref = GroupStats.from_data(y, np.array([f"s{v}" for v in k], dtype=object))
    assert s.labels.tolist() == ref.labels.tolist() and s.n.tolist() == ref.n.tolist()
    np.testing.assert_allclose(s.mean, ref.mean, rtol=1e-13)
    np.testing.assert_allclose(s.ss, ref.ss, rtol=1e-12)
    with pytest.raises(InputError, match=r"column 'g' has 3 missing label\(s\) \(NULL or NaN\)"):
        group_stats(sdf, "y", "g")
    frame = pd.DataFrame({"y": y, "x": x, "g": g})
    for formula in ("y ~ x + (1 | g)", "y ~ 1 + (1 | g)"):
        r, mem = fit(formula, data=sdf), lmer(formula, frame)
        assert (r.nobs, r.dropped, r.labels.tolist()) == (mem.nobs, mem.dropped, mem.labels.tolist()) == \
            (997, 3, list(range(10)))
        np.testing.assert_allclose(r.beta, mem.beta, rtol=FIT_RTOL)
        assert r.deviance == pytest.approx(mem.deviance, rel=FIT_RTOL)


def test_second_pass_is_what_keeps_the_digits(rng):
    """The test of the test: merging one-pass partials at y ~ 1e8 loses ~1e-9 of S_j;
    partials of y - m_j (the second pass) keep ~1e-15."""
    from shrinkage.sources._partials import merge_frames, piece_stats
    g = rng.integers(0, 10, size=6000)
    pdf = pd.DataFrame({"y": 1e8 + np.sin(g) + rng.normal(size=6000), "g": g})
    exact = GroupStats.from_data(pdf.y.to_numpy(), g).ss  # numpy's two passes: ~1e-15 of exact (test_stats)
    pieces = [pdf.iloc[k::6] for k in range(6)]
    one = merge_frames(pd.concat([piece_stats(p, "y", "g") for p in pieces])).sort_values("label")
    means = merge_frames(pd.concat([piece_stats(p, "y", "g") for p in pieces]))
    shift = pd.Series(means["mean"].to_numpy(), index=means["label"])
    two = merge_frames(pd.concat([piece_stats(p, "y", "g", shift=shift) for p in pieces])).sort_values("label")
    err_one = np.max(np.abs(one.ss.to_numpy() / exact - 1))
    err_two = np.max(np.abs(two.ss.to_numpy() / exact - 1))
    assert err_two < 1e-12 and err_one > 100 * err_two
