"""shrinkage.sources: the same statistics from files, DuckDB, SQL and DataFrames as from
numpy in memory, labels as the source types them, missing values refused.

Oracles: the in-memory two-pass GroupStats (checked against exact rational arithmetic
in test_stats.py) and, at y ~ 1e8, exact rational arithmetic itself."""

from __future__ import annotations

from fractions import Fraction

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pytest

from shrinkage import GroupStats, InputError, fit
from shrinkage.sources import group_stats

FIT_RTOL = 1e-10


@pytest.fixture
def frame(rng):
    g = rng.integers(0, 40, size=3000)
    y = 10.0 + rng.normal(size=40)[g] + rng.normal(size=3000)
    return pd.DataFrame({"val": y, "grp": g})


def assert_same(stats, ref, labels=None):
    assert stats.labels.tolist() == (ref.labels.tolist() if labels is None else labels)
    np.testing.assert_array_equal(stats.n, ref.n)
    np.testing.assert_allclose(stats.mean, ref.mean, rtol=1e-14)
    np.testing.assert_allclose(stats.ss, ref.ss, rtol=1e-12)
    a, b = fit(stats=stats), fit(stats=ref)
    for k in ("beta0", "sigma2", "sigma_b2", "loglik"):
        assert getattr(a, k) == pytest.approx(getattr(b, k), rel=FIT_RTOL)


def test_parquet_file_and_glob(tmp_path, frame):
    ref = GroupStats.from_data(frame.val.to_numpy(), frame.grp.to_numpy())
    frame.to_parquet(tmp_path / "all.parquet")
    assert_same(group_stats(tmp_path / "all.parquet", "val", "grp"), ref)
    (tmp_path / "parts").mkdir()
    for k in range(4):
        frame.iloc[k * 750:(k + 1) * 750].to_parquet(tmp_path / "parts" / f"p{k}.parquet")
    s = group_stats(str(tmp_path / "parts" / "*.parquet"), "val", "grp")
    assert s.labels.dtype.kind == "i"  # Parquet's int64 stays int64
    assert_same(s, ref)


def test_csv_labels_as_text(tmp_path, frame):
    text = frame.assign(grp=[f"{v:03d}" for v in frame.grp])
    text.to_csv(tmp_path / "d.csv", index=False)
    s = group_stats(tmp_path / "d.csv", "val", "grp")
    assert s.labels[0] == "000"  # "000", not 0: read as VARCHAR
    assert_same(s, GroupStats.from_data(frame.val.to_numpy(), text.grp.to_numpy()))


def test_relation_sql_and_attached_database(tmp_path, frame):
    ref = GroupStats.from_data(frame.val.to_numpy(), frame.grp.to_numpy())
    con = duckdb.connect()
    con.register("obs_view", frame)
    con.sql("CREATE TABLE obs AS SELECT * FROM obs_view")
    assert_same(group_stats(con.table("obs"), "val", "grp"), ref)
    assert_same(group_stats("SELECT val, grp FROM obs WHERE grp >= 0", "val", "grp", connection=con), ref)
    other = tmp_path / "other.duckdb"  # a database reached by ATTACH, as PostgreSQL would be
    with duckdb.connect(str(other)) as c2:
        c2.register("v", frame)
        c2.sql("CREATE TABLE runs AS SELECT * FROM v")
    con.sql(f"ATTACH '{other}' AS ext (READ_ONLY)")
    assert_same(group_stats("SELECT * FROM ext.runs", "val", "grp", connection=con), ref)


def test_dataframes_in_memory(frame):
    ref = GroupStats.from_data(frame.val.to_numpy(), frame.grp.to_numpy())
    assert_same(group_stats(frame, "val", "grp"), ref)
    assert_same(group_stats(pl.from_pandas(frame), "val", "grp"), ref)
    assert_same(group_stats(pl.from_pandas(frame).lazy(), "val", "grp"), ref)
    import pyarrow as pa
    assert_same(group_stats(pa.Table.from_pandas(frame), "val", "grp"), ref)


def exact_ss(y, g):
    out = {}
    for label in sorted(set(g.tolist())):
        vals = [Fraction(v) for v in y[g == label]]
        m = sum(vals) / len(vals)
        out[label] = float(sum((v - m) ** 2 for v in vals))
    return np.array(list(out.values()))


def test_stable_at_large_offset(tmp_path, rng):
    """y ~ 1e8 with unit noise: S_j to 1e-12 of exact arithmetic.  The test of the test:
    DuckDB's own var_pop * count (Welford) is measurably worse, and the naive
    sum y^2 - n ybar^2 loses every digit."""
    g = rng.integers(0, 8, size=4000)
    y = 1e8 + rng.normal(size=8)[g] + rng.normal(size=4000)
    pd.DataFrame({"y": y, "g": g}).to_parquet(tmp_path / "d.parquet")
    exact = exact_ss(y, g)
    ours = np.max(np.abs(group_stats(tmp_path / "d.parquet", "y", "g").ss / exact - 1))
    con = duckdb.connect()
    welford = con.sql(f"SELECT g, var_pop(y) * count(y) FROM '{tmp_path / 'd.parquet'}' GROUP BY g ORDER BY g").fetchnumpy()
    naive = con.sql(f"SELECT g, sum(y*y) - sum(y)*sum(y)/count(y) FROM '{tmp_path / 'd.parquet'}' GROUP BY g ORDER BY g").fetchnumpy()
    w_err = np.max(np.abs(list(welford.values())[1] / exact - 1))
    n_err = np.max(np.abs(list(naive.values())[1] / exact - 1))
    assert ours < 1e-12
    assert w_err > 100 * ours and n_err > 1e-3


@pytest.mark.parametrize("rows, message", [
    ("y,g\n1,a\n2,\n3,b\n", "missing label"),
    ("y,g\n1,a\n,a\n3,b\n", "missing value"),
    ("y,g\n1,a\nabc,a\n3,b\n", 'not numeric: .*Line: 3 / Original Line: abc,a'),
    ("y,g\n1,a\nnan,a\n3,b\n", "NaN or infinite"),
    ("y,h\n1,a\n", "no column 'g'"),
    ("y,g\n", "no rows"),
])
def test_bad_csv_named(tmp_path, rows, message):
    (tmp_path / "d.csv").write_text(rows)
    with pytest.raises(InputError, match=message):
        group_stats(tmp_path / "d.csv", "y", "g")


def test_bad_sources_named(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        group_stats(tmp_path / "nope.parquet", "y", "g")
    with pytest.raises(InputError, match="not supported"):
        group_stats([1, 2, 3], "y", "g")
    with pytest.raises(InputError, match="not a .csv or .parquet"):
        (tmp_path / "d.json").write_text("{}")
        group_stats(tmp_path / "d.json", "y", "g")
    with pytest.raises(InputError, match="missing label"):
        group_stats(pd.DataFrame({"y": [1.0, 2.0], "g": ["a", None]}), "y", "g")


def test_progress_callback_is_called(tmp_path, frame):
    frame.to_parquet(tmp_path / "d.parquet")
    seen = []
    group_stats(tmp_path / "d.parquet", "val", "grp", progress=lambda done, total: seen.append((done, total)))
    assert all(total == 100.0 and 0 <= done <= 100 for done, total in seen)  # may be empty: a fast query


def test_fit_with_data_keyword(tmp_path, frame):
    frame.to_parquet(tmp_path / "d.parquet")
    ref = fit(frame.val.to_numpy(), frame.grp.to_numpy())
    for data in (tmp_path / "d.parquet", frame):
        r = fit(data=data, response="val", group="grp")
        assert r.loglik == pytest.approx(ref.loglik, rel=FIT_RTOL) and r.groups.tolist() == ref.groups.tolist()
    with pytest.raises(InputError, match="response='...' and group='...'"):
        fit(data=frame)
    with pytest.raises(InputError, match="give one of"):
        fit(frame.val, frame.grp, data=frame, response="val", group="grp")


def test_csv_progress_reaches_the_file_size(tmp_path, frame):
    from shrinkage.table import stream_stats
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    seen = []
    s = stream_stats(path, "val", "grp", chunk_rows=500, progress=lambda done, total: seen.append((done, total)))
    size = path.stat().st_size
    assert seen and all(t == size for _, t in seen)
    assert seen[-1][0] == size and all(a[0] < b[0] for a, b in zip(seen, seen[1:]))
    pytest.importorskip("tqdm")
    bar = stream_stats(path, "val", "grp", chunk_rows=500, progress=True)  # a tqdm bar on stderr
    np.testing.assert_array_equal(bar.ss, s.ss)
    with pytest.raises(InputError, match="progress must be"):
        stream_stats(path, "val", "grp", progress="yes")


def test_text_response_in_a_relation_is_named():
    con = duckdb.connect()
    rel = con.sql("SELECT * FROM (VALUES ('1', 'a'), ('x', 'a'), ('2', 'b'), (NULL, 'b')) t(y, g)")
    with pytest.raises(InputError, match="1 missing value"):
        group_stats(rel, "y", "g")
    rel = con.sql("SELECT * FROM (VALUES ('1', 'a'), ('x', 'a'), ('2', 'b')) t(y, g)")
    with pytest.raises(InputError, match="1 value\\(s\\) that are not numbers"):
        group_stats(rel, "y", "g")


def test_an_own_connection_has_a_bounded_pool_and_leaves_no_spill_folder(tmp_path, monkeypatch):
    """DuckDB's pool would otherwise grow to 80% of RAM (the peak growing with N), and
    spill into ./.tmp of the user's folder."""
    from pathlib import Path

    from shrinkage.sources._duckdb import MEMORY_LIMIT, OwnConnection

    monkeypatch.chdir(tmp_path)
    own = OwnConnection()
    ((limit, spill),) = own.con.sql("SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchall()
    assert limit.endswith("MiB") and float(limit.split()[0]) * 2**20 <= int(MEMORY_LIMIT[:-2]) * 10**6, limit
    assert Path(spill).is_dir() and Path(spill) != tmp_path / ".tmp"
    own.close()
    assert not Path(spill).exists() and not (tmp_path / ".tmp").exists()
