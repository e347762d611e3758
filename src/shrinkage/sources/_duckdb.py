"""DuckDB: two GROUP BY passes over files, relations and SQL, out of core.

Pass 1: per label count(*), count(y), avg(y) = m, and counts of NULL and non-finite y.
Pass 2 (the data joined to the O(J) means): sum(y - m) and sum((y - m)^2), then
mean = m + sum(y - m)/n and S = sum((y - m)^2) - sum(y - m)^2/n: the corrected two-pass
algorithm (Chan, Golub & LeVeque 1983), whose correction is tiny because m is already
close to the mean.  Not DuckDB's var_pop: its Welford update loses digits in
proportion to |mean|/sd (measured: 1.6e-8 relative in S_j at y ~ 1e8 with unit noise,
where two passes keep 1e-15; tests/test_sources.py checks both).  A CSV's group column
is read as VARCHAR (text as written); Parquet and relations keep their own types.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..stats import GroupStats

_SQL = re.compile(r"^\s*(select|with|from|values|table|pivot|\()", re.IGNORECASE)
_CSV = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".csv.zst")


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _glob_or_file(path: str) -> None:
    if any(ch in path for ch in "*?["):
        return  # DuckDB expands the glob and says when nothing matches
    p = Path(path)
    if not p.exists():
        raise InputError(f"no such file: {path}")
    if p.is_dir():
        raise InputError(f"{path} is a folder: pass a glob such as {path}/*.parquet")


def relation(data, con, group: str):
    """data -> a DuckDB relation on ``con``."""
    import duckdb

    if isinstance(data, duckdb.DuckDBPyRelation):
        return data
    if type(data).__name__ == "Table":  # pyarrow
        return con.from_arrow(data)
    text = str(data)
    if isinstance(data, str) and _SQL.match(text):
        return con.sql(text)
    _glob_or_file(text)
    low = text.lower()
    try:
        if low.endswith(".parquet") or low.endswith(".parq"):
            return con.read_parquet(text)
        if low.endswith(_CSV):
            columns = con.read_csv(text).columns  # the sniffer only: the group column must exist
            return con.read_csv(text, dtype={group: "VARCHAR"}) if group in columns else con.read_csv(text)
    except duckdb.Error as e:
        raise InputError(f"cannot read {text}: {str(e).splitlines()[0]}") from None
    raise InputError(f"{text}: not a .csv or .parquet file (or glob of them); "
                     "read other formats with DuckDB and pass the relation")


def _poll(con, bar, done: threading.Event) -> None:
    last = 0.0
    while not done.wait(0.2):
        try:
            p = float(con.query_progress())
        except Exception:  # noqa: BLE001 - progress is best effort
            return
        if p > last:
            bar.update(p - last)
            last = p


def _run(rel, con, progress):
    """fetchnumpy() of the aggregate, with a bar of DuckDB's query progress."""
    from ..progress import progress_bar

    if con is None or progress is False:
        return rel.fetchnumpy()
    done = threading.Event()
    with progress_bar(100.0, "DuckDB group-by (%)", progress) as bar:
        t = threading.Thread(target=_poll, args=(con, bar, done), daemon=True)
        t.start()
        try:
            return rel.fetchnumpy()
        finally:
            done.set()
            t.join()


def _plain(a) -> np.ndarray:
    return np.ma.getdata(a) if np.ma.isMaskedArray(a) else np.asarray(a)


TWO_PASS = """
WITH m AS (SELECT g, count(*) AS rows, count(y) AS n, count(*) FILTER (WHERE y_null) AS nulls,
                  count(*) FILTER (WHERE NOT isfinite(y)) AS nonfinite, avg(y) AS m
           FROM src GROUP BY g),
     d AS (SELECT src.g, sum(src.y - m.m) AS dsum, sum((src.y - m.m) * (src.y - m.m)) AS dss
           FROM src JOIN m ON src.g = m.g GROUP BY src.g)
SELECT m.g, m.rows, m.n, m.nulls, m.nonfinite, m.m, d.dsum, d.dss FROM m LEFT JOIN d ON m.g = d.g
"""


def duckdb_stats(data, response: str, group: str, *, connection=None, progress=None) -> GroupStats:
    import duckdb

    own = connection is None and not isinstance(data, duckdb.DuckDBPyRelation)
    con = duckdb.connect() if own else connection
    try:
        rel = relation(data, con, group)
        columns = list(rel.columns)
        for name in (response, group):
            if name not in columns:
                raise InputError(f"the data have no column {name!r}; columns: {', '.join(columns)}")
        src = rel.project(f"TRY_CAST({quote(response)} AS DOUBLE) AS y, {quote(response)} IS NULL AS y_null, "
                          f"{quote(group)} AS g")
        agg = src.query("src", TWO_PASS)
        try:
            out = _run(agg, con, progress)
        except duckdb.Error as e:
            raise InputError(f"DuckDB could not aggregate the data: {str(e).splitlines()[0]}") from None
    finally:
        if own:
            con.close()
    labels = out["g"]
    if np.ma.isMaskedArray(labels) and labels.mask.any():
        k = int(_plain(out["rows"])[labels.mask].sum())
        raise InputError(f"column {group!r} has {k} missing label(s) (NULL); drop or fill those rows first")
    rows, n, nulls = (_plain(out[k]) for k in ("rows", "n", "nulls"))
    if nulls.sum():
        raise InputError(f"column {response!r} has {int(nulls.sum())} missing value(s) (NULL)")
    if (rows != n).any():
        raise InputError(f"column {response!r} has {int((rows - n).sum())} value(s) that are not numbers")
    if _plain(out["nonfinite"]).sum():
        raise InputError(f"column {response!r} has {int(_plain(out['nonfinite']).sum())} NaN or infinite value(s)")
    if labels.size == 0:
        raise InputError("the data have no rows: no observations to fit")
    dsum, dss = _plain(out["dsum"]), _plain(out["dss"])
    mean = _plain(out["m"]) + dsum / n
    ss = np.where(n == 1, 0.0, np.maximum(dss - dsum * dsum / n, 0.0))
    return GroupStats.from_arrays(_plain(labels), n, mean, ss)
