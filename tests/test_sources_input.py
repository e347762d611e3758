"""Out of core, data as hostile users hand them over: file names that look like SQL or
hold quotes, NaN labels in Parquet (whose statistics leave NaN out), R's NA in a CSV,
labels numpy cannot hold (DECIMAL, HUGEINT, TIMESTAMPTZ, BLOB), repeated column names.

Oracle: the in-memory fit of the same rows (shrinkage.fit(y, groups) for the one-way
model, shrinkage.lmm.lmer for formulas), which drops or refuses exactly these rows."""

from __future__ import annotations

import decimal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import shrinkage
from shrinkage import InputError, fit
from shrinkage.lmm import lmer
from shrinkage.sources import formula_cross_products, group_stats

RTOL = 1e-10


@pytest.fixture
def frame(rng):
    N, J = 2000, 20
    g = rng.integers(0, J, N)
    x = rng.normal(size=N)
    y = 5.0 + x + rng.normal(size=J)[g] + rng.normal(size=N)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def same_oneway(r, ref):
    assert r.groups.tolist() == ref.groups.tolist() and r.n.tolist() == ref.n.tolist()
    for k in ("beta0", "sigma2", "sigma_b2", "loglik"):
        assert getattr(r, k) == pytest.approx(getattr(ref, k), rel=RTOL)


def same_lmm(r, ref):
    assert r.labels.tolist() == ref.labels.tolist()
    assert (r.nobs, r.dropped) == (ref.nobs, ref.dropped)
    np.testing.assert_allclose(r.beta, ref.beta, rtol=RTOL)
    np.testing.assert_allclose(r.theta, ref.theta, rtol=RTOL, atol=RTOL)
    assert r.sigma2 == pytest.approx(ref.sigma2, rel=RTOL)
    assert r.deviance == pytest.approx(ref.deviance, rel=RTOL)


# -- a string is a path -------------------------------------------------------------------

@pytest.mark.parametrize("name", ["tables/a.parquet", "values.csv", "selection.parquet", "from x.parquet",
                                  "(1) it's a \"test\".csv", "with space/pivot.parquet"])
def test_a_file_name_is_a_path_never_sql(tmp_path, frame, name, monkeypatch):
    """Names that start like a query (table, values, select, from, '(') and hold quotes
    and spaces: read as files, equal to the in-memory fit."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False) if name.endswith(".csv") else frame.to_parquet(path)
    mem = frame.assign(g=frame.g.astype(str)) if name.endswith(".csv") else frame  # a CSV's labels are text
    ref = fit(mem.y.to_numpy(), mem.g.to_numpy())
    for data in (name, str(path), path):
        same_oneway(fit(data=data, response="y", group="g"), ref)
    same_lmm(shrinkage.fit("y ~ x + (1 | g)", data=name), lmer("y ~ x + (1 | g)", mem))
    con = duckdb.connect()  # a connection given: an existing file is still a file
    same_oneway(fit(stats=group_stats(name, "y", "g", connection=con)), ref)


def test_sql_runs_only_when_asked(tmp_path, frame):
    """Text that is a query reads nothing unless the caller says it is SQL."""
    secret = tmp_path / "secret.csv"
    frame.to_csv(secret, index=False)
    query = f"from read_csv('{secret}')"
    with pytest.raises(InputError, match="no such file"):
        fit(data=query, response="y", group="g")
    with pytest.raises(InputError, match="no such file"):
        shrinkage.fit("y ~ x + (1 | g)", data=query)
    with pytest.raises(InputError, match="no such file"):
        group_stats(query, "y", "g", connection=duckdb.connect(), sql=False)
    ref = fit(frame.y.to_numpy(), frame.g.to_numpy())
    same_oneway(fit(stats=group_stats(query, "y", "g", sql=True)), ref)
    same_oneway(fit(stats=group_stats(f"SELECT * {query}", "y", "g", connection=duckdb.connect())), ref)
    with pytest.raises(InputError, match="sql must be True, False or None"):
        group_stats(query, "y", "g", sql="yes")


# -- missing values, whatever their encoding -----------------------------------------------

def with_nan(frame, rng):
    """Real NaN (not NULL) in the float label, the response and the covariate."""
    frame = frame.assign(g=frame.g.astype(float))
    frame.loc[rng.choice(len(frame), 5, replace=False), "g"] = np.nan
    frame.loc[[11, 12], "y"] = np.nan
    frame.loc[[40], "x"] = np.nan
    return frame


def write_nan_parquet(frame, path):
    """NaN kept as NaN (pandas would write NULL), in row groups whose min/max statistics
    leave it out: DuckDB's isnan() is folded to false by them."""
    table = pa.table({c: pa.array(frame[c].to_numpy(), from_pandas=False) for c in frame.columns})
    pq.write_table(table, path, row_group_size=500)
    stats = pq.ParquetFile(path).metadata.row_group(0).column(2).statistics
    assert stats.has_min_max and not np.isnan(stats.max)
    assert duckdb.sql(f"SELECT count(*) FROM '{path}' WHERE g IS NULL").fetchall() == [(0,)]  # NaN, not NULL


@pytest.mark.parametrize("formula", ["y ~ x + (1 | g)", "y ~ 1 + (1 | g)", "y ~ x + (x | g)"])
def test_nan_labels_and_values_dropped_as_in_memory(tmp_path, frame, rng, formula):
    dd = pytest.importorskip("dask.dataframe")
    frame = with_nan(frame, rng)
    write_nan_parquet(frame, tmp_path / "d.parquet")
    ref = lmer(formula, frame)
    used = ["y", "g"] + (["x"] if "x" in formula else [])
    assert (ref.nobs, ref.dropped, len(ref.labels)) == (2000 - ref.dropped, frame[used].isna().any(axis=1).sum(), 20)
    for data in (str(tmp_path / "d.parquet"), dd.from_pandas(frame, npartitions=3)):
        same_lmm(shrinkage.fit(formula, data=data), ref)
    with pytest.raises(InputError, match=r"column 'g' \(5 row\(s\)\), column 'y' \(2 row\(s\)\)"):
        formula_cross_products(str(tmp_path / "d.parquet"), formula, na_action="raise")


def test_nan_label_refused_by_the_one_way_fit_as_in_memory(tmp_path, frame, rng):
    frame = with_nan(frame, rng).assign(y=frame.y)
    write_nan_parquet(frame, tmp_path / "d.parquet")
    with pytest.raises(InputError, match="missing label"):
        fit(frame.y.to_numpy(), frame.g.to_numpy())
    with pytest.raises(InputError, match=r"column 'g' has 5 missing label\(s\) \(NULL or NaN\)"):
        fit(data=str(tmp_path / "d.parquet"), response="y", group="g")
    frame.loc[:, "g"] = frame.g.fillna(99.0)
    frame.loc[[3], "y"] = np.nan
    write_nan_parquet(frame, tmp_path / "y.parquet")
    with pytest.raises(InputError, match=r"column 'y' has 1 NaN or infinite"):
        fit(data=str(tmp_path / "y.parquet"), response="y", group="g")


def test_pandas_nullable_integers(frame):
    dd = pytest.importorskip("dask.dataframe")
    frame = frame.assign(g=frame.g.astype("Int64"), x=(10 * frame.x).round().astype("Int64"))
    frame.loc[[3, 50], "g"] = pd.NA
    frame.loc[[7], "x"] = pd.NA
    ref = lmer("y ~ x + (1 | g)", frame)
    assert (ref.nobs, ref.dropped, len(ref.labels)) == (1997, 3, 20)
    same_lmm(shrinkage.fit("y ~ x + (1 | g)", data=dd.from_pandas(frame, npartitions=3)), ref)
    assert lmer("y ~ 1 + (1 | g)", frame).nobs == 1998


def test_r_na_in_a_csv(tmp_path, frame):
    """A CSV as R's write.csv writes it (quoted text, NA for a missing value in any
    column): NA is missing, as R's read.csv and pandas read it."""
    frame = frame.assign(g=[f"s{v}" for v in frame.g])
    lines = ['"y","x","g"']
    for k, (y, x, g) in enumerate(zip(frame.y, frame.x, frame.g)):
        cells = [repr(y), repr(x), f'"{g}"']
        if k in (5, 6):
            cells[2] = "NA"
        if k == 9:
            cells[0] = "NA"
        lines.append(",".join(cells))
    path = tmp_path / "r.csv"
    path.write_text("\n".join(lines) + "\n")
    mem = pd.read_csv(path)
    assert mem.g.isna().sum() == 2 and mem.y.isna().sum() == 1
    for formula in ("y ~ x + (1 | g)", "y ~ 1 + (1 | g)"):
        same_lmm(shrinkage.fit(formula, data=str(path)), lmer(formula, mem))
    with pytest.raises(InputError, match=r"column 'g' has 2 missing label"):
        fit(data=str(path), response="y", group="g")


# -- labels numpy cannot hold ----------------------------------------------------------------

LABELS = {  # DuckDB's expression of k, and the same label in memory
    "timestamptz": ("TIMESTAMPTZ '2026-03-08 05:00:00+00' + to_minutes(CAST(k * 30 AS INTEGER))",
                    lambda k: pd.Timestamp("2026-03-08 05:00", tz="UTC") + pd.Timedelta(minutes=30 * k)),
    "decimal": ("CAST('1.00000000000000000001' AS DECIMAL(38, 20)) + CAST(k AS DECIMAL(18, 0)) * "
                "CAST('0.00000000000000000001' AS DECIMAL(20, 20))",
                lambda k: decimal.Decimal("1.00000000000000000001") + k * decimal.Decimal("1e-20")),
    "hugeint": ("CAST('18446744073709551616' AS HUGEINT) + k", lambda k: 2**64 + k),
    "small hugeint": ("CAST(k AS HUGEINT) - 3", lambda k: k - 3),
    "blob": ("CAST('b' || k AS BLOB)", lambda k: f"b{k}".encode()),
}


@pytest.mark.parametrize("kind", list(LABELS))
def test_labels_numpy_cannot_hold_are_grouped_exactly(frame, kind):
    """Labels distinct in the source stay distinct (not rounded to float64), and a
    time-zone-aware time is not shifted between the passes by a session in New York
    (across the start of its summer time)."""
    sql, label = LABELS[kind]
    con = duckdb.connect()
    con.sql("SET TimeZone = 'America/New_York'")
    con.register("frame", frame.rename(columns={"g": "k"}))
    rel = con.sql(f"SELECT y, x, {sql} AS g FROM frame")
    groups = np.empty(len(frame), dtype=object)
    groups[:] = [label(k) for k in frame.g.tolist()]
    mem = frame.assign(g=groups if kind != "timestamptz" else pd.DatetimeIndex(list(groups)))
    r = fit(data=rel, response="y", group="g")
    same_oneway(r, fit(frame.y.to_numpy(), groups))
    if kind == "small hugeint":  # int64 holds them: int64 labels, not float64 (or objects)
        assert r.groups.dtype == np.int64
    ref = lmer("y ~ x + (1 | g)", mem)
    assert len(ref.labels) == 20
    same_lmm(shrinkage.fit("y ~ x + (1 | g)", data=rel), ref)


@pytest.mark.parametrize("sql, shown", [("[k, k]", r"BIGINT\[\]"), ("{'a': k}", r"STRUCT\(a BIGINT\)"),
                                        ("map([k], [k])", r"MAP\(BIGINT, BIGINT\)")])
def test_nested_labels_refused_naming_the_column(frame, sql, shown):
    con = duckdb.connect()
    con.register("frame", frame.rename(columns={"g": "k"}))
    rel = con.sql(f"SELECT y, x, {sql} AS g FROM frame")
    for call in (lambda: fit(data=rel, response="y", group="g"), lambda: shrinkage.fit("y ~ x + (1 | g)", data=rel)):
        with pytest.raises(InputError, match=rf"column 'g' holds {shown} values, which cannot be group labels"):
            call()


def test_repeated_column_names_refused_naming_them(frame):
    dd = pytest.importorskip("dask.dataframe")
    twice = pd.concat([frame, frame[["x"]].rename(columns={"x": "y"})], axis=1)
    message = r"the data have 2 columns named 'y'"
    for data in (twice, dd.from_pandas(twice, npartitions=2), duckdb.sql("SELECT y, x, g, x AS y FROM frame")):
        with pytest.raises(InputError, match=message):
            fit(data=data, response="y", group="g")
        with pytest.raises(InputError, match=message):
            shrinkage.fit("y ~ x + (1 | g)", data=data)


def test_polars_lazy_frame_in_a_formula_fit(frame):
    pl = pytest.importorskip("polars")
    lazy = pl.from_pandas(frame).lazy()
    same_lmm(shrinkage.fit("y ~ x + (1 | g)", data=lazy), lmer("y ~ x + (1 | g)", frame))
    same_oneway(fit(data=lazy, response="y", group="g"), fit(frame.y.to_numpy(), frame.g.to_numpy()))
