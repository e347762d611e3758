"""DuckDB: two GROUP BY passes over files, relations and SQL, out of core.

Pass 1: per label count(*), count(y), avg(y) = m, and counts of NULL and non-finite y.
Pass 2 (the data joined to the O(J) means): sum(y - m) and sum((y - m)^2), then
mean = m + sum(y - m)/n and S = sum((y - m)^2) - sum(y - m)^2/n: the corrected two-pass
algorithm (Chan, Golub & LeVeque 1983), whose correction is tiny because m is already
close to the mean.  Not DuckDB's var_pop: its Welford update loses digits in
proportion to |mean|/sd (measured: 1.6e-8 relative in S_j at y ~ 1e8 with unit noise,
where two passes keep 1e-15; tests/test_sources.py checks both).  A CSV's group column
is read as VARCHAR (text as written; an empty field or NA, as R writes a missing value, is
missing); Parquet and relations keep their own types.

A string is a path (or glob), read by DuckDB's own reader with the name as a parameter:
it is SQL only when the caller says so (``sql=True``, or a ``connection=`` and text that
starts as a query does).  A float label that is NaN is a missing label, as NULL is (found
by :func:`nan_sql`: DuckDB folds isnan() away by Parquet min/max statistics, which leave
NaN out).  Labels that numpy cannot hold exactly
(DECIMAL, HUGEINT, TIMESTAMPTZ, BLOB, UUID ...) come back as Python objects and are
matched between the passes by their text, so no label is rounded or shifted by a
time zone; nested types (LIST, STRUCT, MAP) are refused as labels.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..progress import progress_bar
from ..stats import GroupStats

# a query's first word, followed by a space or a parenthesis ("values.csv" is a file)
_SQL = re.compile(r"^\s*(\(|(select|with|from|values|table|pivot|unpivot)(?=[\s(]))", re.IGNORECASE)
CSV_MISSING = ["", "NA"]  # what R's write.csv writes for a missing value, and an empty field
_CSV = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".csv.zst")


MEMORY_LIMIT = "160MB"  # the buffer pool of a connection the toolkit opens itself


class OwnConnection:
    """A DuckDB connection opened for one fit of a file or a query.  DuckDB keeps decoded
    data in its buffer pool up to its memory limit (by default 80% of RAM), so the peak
    would grow with N: here the pool is bounded and spills into a private temporary
    folder, removed on close (DuckDB's default spill folder is ./.tmp, the user's)."""

    def __init__(self):
        import tempfile

        import duckdb

        self.spill = tempfile.mkdtemp(prefix="shrinkage-duckdb-")
        self.con = duckdb.connect(config={"memory_limit": MEMORY_LIMIT, "temp_directory": self.spill})

    def close(self) -> None:
        import shutil

        self.con.close()
        shutil.rmtree(self.spill, ignore_errors=True)


def open_connection(data, connection):
    """(connection to use, OwnConnection or None): the caller's connection, or the one a
    relation lives on (None: use theirs), else one opened here, to close after the fit."""
    import duckdb

    if connection is not None or isinstance(data, duckdb.DuckDBPyRelation):
        return connection, None
    own = OwnConnection()
    return own.con, own


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


def is_sql(data, connection, sql) -> bool:
    """Whether ``data`` is a query: only a str, only when the caller says so (``sql=True``)
    or passes a connection with text that starts as a query and names no existing file."""
    if sql not in (None, True, False):
        raise InputError(f"sql must be True, False or None, got {sql!r}")
    if not isinstance(data, str):
        if sql:
            raise InputError(f"sql=True needs the query as text, got {type(data).__name__}")
        return False
    if sql is not None:
        return sql
    return connection is not None and bool(_SQL.match(data)) and not Path(data).exists()


def relation(data, con, group: str, sql: bool = False):
    """data -> a DuckDB relation on ``con``; a path is passed to DuckDB's reader as a
    value, never pasted into SQL."""
    import duckdb

    if isinstance(data, duckdb.DuckDBPyRelation):
        return data
    if type(data).__name__ == "Table":  # pyarrow
        return con.from_arrow(data)
    text = str(data)
    if sql:
        return con.sql(text)
    _glob_or_file(text)
    low = text.lower()
    try:
        if low.endswith(".parquet") or low.endswith(".parq"):
            return con.read_parquet(text)
        if low.endswith(_CSV):
            columns = con.read_csv(text, na_values=CSV_MISSING).columns  # the sniffer only: the group column must exist
            text_group = {group: "VARCHAR"} if group in columns else None
            return con.read_csv(text, dtype=text_group, na_values=CSV_MISSING)
    except duckdb.Error as e:
        raise InputError(f"cannot read {text}: {str(e).splitlines()[0]}") from None
    raise InputError(f"{text}: not a .csv or .parquet file (or glob of them); "
                     "read other formats with DuckDB and pass the relation")


_EXACT = {"boolean", "tinyint", "smallint", "integer", "bigint", "utinyint", "usmallint", "uinteger", "ubigint",
          "float", "double", "varchar", "date", "timestamp", "timestamp_s", "timestamp_ms", "timestamp_ns", "enum"}
_NESTED = {"list", "struct", "map", "array", "union"}


def column(rel, name: str):
    """The one column ``name`` of ``rel`` (its DuckDB type), refusing an absent or a
    repeated name."""
    columns = list(rel.columns)
    k = columns.count(name)
    if k == 0:
        raise InputError(f"the data have no column {name!r}; columns: {', '.join(columns)}")
    if k > 1:
        raise InputError(f"the data have {k} columns named {name!r}: rename them so that the name is one column")
    return rel.types[columns.index(name)]


def label_kind(rel, group: str) -> str:
    """'exact' (numpy holds the labels exactly), 'float' (NaN is a missing label) or
    'object' (Python objects, matched by their text); nested types refused."""
    t = column(rel, group)
    if t.id in _NESTED:
        raise InputError(f"column {group!r} holds {t} values, which cannot be group labels: "
                         "group by text, numbers, dates or times (e.g. cast it to VARCHAR first)")
    return "float" if t.id in ("float", "double") else "exact" if t.id in _EXACT else "object"


def nan_sql(expr: str) -> str:
    """``expr`` is NaN, tested row by row.  Not isnan(): DuckDB folds it to false by the
    column's min/max statistics, which leave NaN out (a Parquet column holding NaN, and
    any expression of it, in a WHERE, a CASE or a HAVING), and prunes Parquet row groups
    by them.  hash() has no statistics (every NaN hashes alike), and the text of the few
    rows with NaN's hash rules out a collision (a CASE: only those rows are cast; an AND
    would cast every row, 8x slower)."""
    return (f"(CASE WHEN hash({expr}) = hash(CAST('NaN' AS DOUBLE)) THEN CAST({expr} AS VARCHAR) IN ('nan', '-nan') "
            "ELSE false END)")


def label_sql(group: str, kind: str) -> str:
    """The label as a per-row expression, NaN made NULL (a missing label)."""
    q = quote(group)
    return f"CASE WHEN {nan_sql(q)} THEN NULL ELSE {q} END" if kind == "float" else q


def _as_objects(rows: list, columns: list) -> dict:
    """fetchall()'s rows as fetchnumpy would give them: labels 'g' (and their text 'k')
    as Python objects (int64 when every one is an int that fits), NULL masked; numbers
    as float or int."""
    out = {}
    for k, name in enumerate(columns):
        vals = [r[k] for r in rows]
        mask = np.array([v is None for v in vals], dtype=bool)
        if name in ("g", "k"):
            a = np.empty(len(vals), dtype=object)
            a[:] = vals
            if all(type(v) is int and -2**63 <= v < 2**63 for v in vals):
                a = a.astype(np.int64)
        elif all(type(v) is int for v in vals):
            a = np.array(vals, dtype=np.int64)
        else:
            a = np.array([np.nan if v is None else float(v) for v in vals])
        out[name] = np.ma.masked_array(a, mask=mask) if mask.any() else a
    return out


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


def _run(rel, con, progress, objects: bool = False):
    """fetchnumpy() of the aggregate (fetchall() of its O(J) rows for labels that are
    Python objects), with a bar of DuckDB's query progress."""
    fetch = (lambda: _as_objects(rel.fetchall(), list(rel.columns))) if objects else rel.fetchnumpy
    if con is None or progress is False:
        return fetch()
    done = threading.Event()
    with progress_bar(100.0, "DuckDB group-by (%)", progress) as bar:
        t = threading.Thread(target=_poll, args=(con, bar, done), daemon=True)
        t.start()
        try:
            return fetch()
        finally:
            done.set()
            t.join()


def _plain(a) -> np.ndarray:
    return np.ma.getdata(a) if np.ma.isMaskedArray(a) else np.asarray(a)


PASS1 = "SELECT g{key}, count(*) AS rows, count(y) AS n, avg(y) AS m FROM src GROUP BY g"  # few aggregates: small state
DIAGNOSE = """SELECT count(*) FILTER (WHERE y_null) AS nulls, count(*) FILTER (WHERE y IS NULL AND NOT y_null) AS text,
       count(*) FILTER (WHERE isinf(y) OR {nan}) AS nonfinite FROM src"""
# The means come back to Python (O(J)) and go in again as a small table: one query that
# referred to the data twice would make DuckDB materialise them (measured: 1.3 GB at 3e7 rows).
# Labels held as Python objects go back as their text k (a DECIMAL would come back as
# a DOUBLE, a TIMESTAMPTZ as a TIMESTAMP read in the session's time zone).
PASS2 = """SELECT {g} AS g, sum(src.y - mm.m) AS dsum, sum((src.y - mm.m) * (src.y - mm.m)) AS dss
FROM src JOIN __shrinkage_means AS mm ON {g} = mm.g GROUP BY {g}"""
TEXT = "CAST(src.g AS VARCHAR)"


def _second_pass(src, keys, m, con, progress, objects: bool):
    """sum(y - m_j) and sum((y - m_j)^2) per label, in the order of ``keys`` (the labels,
    or their text for labels held as objects)."""
    if len(set(keys.tolist())) != keys.size:
        raise InputError("two group labels have the same text: the labels' type cannot be matched exactly "
                         "(cast the group column to VARCHAR first)")
    __shrinkage_means = {"g": keys, "m": m}  # noqa: F841  (numpy: no pyarrow or pandas import)
    sql = PASS2.format(g=TEXT if objects else "src.g")
    out = _run(src.query("src", sql), con, progress)  # DuckDB finds __shrinkage_means in this frame
    got = _plain(out["g"])
    order = {v: k for k, v in enumerate(got.tolist())}
    at = np.array([order[v] for v in keys.tolist()])
    return _plain(out["dsum"])[at], _plain(out["dss"])[at]


def duckdb_stats(data, response: str, group: str, *, connection=None, sql=None, progress=None) -> GroupStats:
    import duckdb

    query = is_sql(data, connection, sql)
    con, own = open_connection(data, connection)
    try:
        rel = relation(data, con, group, query)
        column(rel, response)
        kind = label_kind(rel, group)
        objects = kind == "object"
        src = rel.project(f"TRY_CAST({quote(response)} AS DOUBLE) AS y, {quote(response)} IS NULL AS y_null, "
                          f"{label_sql(group, kind)} AS g")
        try:
            out = _run(src.query("src", PASS1.format(key=f", {TEXT} AS k" if objects else "")), con, progress, objects)
            labels, n, m = _checked(out, src, response, group)
            dsum, dss = _second_pass(src, _plain(out["k"]) if objects else labels, m, con, progress, objects)
        except duckdb.Error as e:
            lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()][:3]
            what = f"column {response!r} is not numeric" if "convert" in str(e) else "DuckDB could not aggregate the data"
            raise InputError(f"{what}: {' / '.join(lines)}") from None
    finally:
        if own:
            own.close()
    mean = m + dsum / n
    ss = np.where(n == 1, 0.0, np.maximum(dss - dsum * dsum / n, 0.0))
    return GroupStats.from_arrays(labels, n, mean, ss)


def _checked(out: dict, src, response: str, group: str):
    """Labels, counts and first means of pass 1, after refusing missing values (a NULL
    label is a NULL group; a NULL, non-numeric or non-finite y shows in count or avg,
    and only then is the data scanned again to say which)."""
    labels = out["g"]
    if np.ma.isMaskedArray(labels) and labels.mask.any():
        k = int(_plain(out["rows"])[labels.mask].sum())
        raise InputError(f"column {group!r} has {k} missing label(s) (NULL or NaN); drop or fill those rows first")
    if labels.size == 0:
        raise InputError("the data have no rows: no observations to fit")
    rows, n, m = _plain(out["rows"]), _plain(out["n"]), out["m"]
    if (rows != n).any() or np.ma.isMaskedArray(m) and m.mask.any() or not np.isfinite(_plain(m)).all():
        nulls, text, nonfinite = src.query("src", DIAGNOSE.format(nan=nan_sql("y"))).fetchall()[0]
        if nulls:
            raise InputError(f"column {response!r} has {nulls} missing value(s) (NULL)")
        if text:
            raise InputError(f"column {response!r} has {text} value(s) that are not numbers")
        raise InputError(f"column {response!r} has {nonfinite} NaN or infinite value(s)")
    return _plain(labels), n, _plain(m)
