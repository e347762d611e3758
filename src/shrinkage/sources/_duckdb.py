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


PASS1 = "SELECT g, count(*) AS rows, count(y) AS n, avg(y) AS m FROM src GROUP BY g"  # few aggregates: small state
DIAGNOSE = """SELECT count(*) FILTER (WHERE y_null) AS nulls, count(*) FILTER (WHERE y IS NULL AND NOT y_null) AS text,
       count(*) FILTER (WHERE NOT isfinite(y)) AS nonfinite FROM src"""
# The means come back to Python (O(J)) and go in again as a small table: one query that
# referred to the data twice would make DuckDB materialise them (measured: 1.3 GB at 3e7 rows).
PASS2 = """SELECT src.g AS g, sum(src.y - mm.m) AS dsum, sum((src.y - mm.m) * (src.y - mm.m)) AS dss
FROM src JOIN __shrinkage_means AS mm ON src.g = mm.g GROUP BY src.g"""


def _second_pass(src, labels, m, con, progress):
    """sum(y - m_j) and sum((y - m_j)^2) per label, in the order of ``labels``."""
    __shrinkage_means = {"g": labels, "m": m}  # noqa: F841  (numpy: no pyarrow or pandas import)
    out = _run(src.query("src", PASS2), con, progress)  # DuckDB finds __shrinkage_means in this frame
    got = _plain(out["g"])
    order = {v: k for k, v in enumerate(got.tolist())}
    at = np.array([order[v] for v in labels.tolist()])
    return _plain(out["dsum"])[at], _plain(out["dss"])[at]


def duckdb_stats(data, response: str, group: str, *, connection=None, progress=None) -> GroupStats:
    import duckdb

    con, own = open_connection(data, connection)
    try:
        rel = relation(data, con, group)
        columns = list(rel.columns)
        for name in (response, group):
            if name not in columns:
                raise InputError(f"the data have no column {name!r}; columns: {', '.join(columns)}")
        src = rel.project(f"TRY_CAST({quote(response)} AS DOUBLE) AS y, {quote(response)} IS NULL AS y_null, "
                          f"{quote(group)} AS g")
        try:
            out = _run(src.query("src", PASS1), con, progress)
            labels, n, m = _checked(out, src, response, group)
            dsum, dss = _second_pass(src, labels, m, con, progress)
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
        raise InputError(f"column {group!r} has {k} missing label(s) (NULL); drop or fill those rows first")
    if labels.size == 0:
        raise InputError("the data have no rows: no observations to fit")
    rows, n, m = _plain(out["rows"]), _plain(out["n"]), out["m"]
    if (rows != n).any() or np.ma.isMaskedArray(m) and m.mask.any() or not np.isfinite(_plain(m)).all():
        nulls, text, nonfinite = src.query("src", DIAGNOSE).fetchall()[0]
        if nulls:
            raise InputError(f"column {response!r} has {nulls} missing value(s) (NULL)")
        if text:
            raise InputError(f"column {response!r} has {text} value(s) that are not numbers")
        raise InputError(f"column {response!r} has {nonfinite} NaN or infinite value(s)")
    return _plain(labels), n, _plain(m)
