"""The columns a meta-analysis needs, from wherever the studies are: a path (CSV, Parquet, a
glob; read by DuckDB), a DuckDB relation or SQL query, a Dask or PySpark DataFrame, or a
pandas/polars DataFrame.

A meta-analysis (or a Fay-Herriot model) needs every study's y_i, v_i and moderators at
every tau^2 it tries, so only those columns are fetched, in the source's row order, as one
pandas DataFrame (k rows): the engine does the reading and the selection, never the fit.
"""

from __future__ import annotations

import re

from ..errors import InputError
from ..sources._kinds import kind_of

_NAME = re.compile(r"[A-Za-z_.][A-Za-z0-9_.]*")


def _source_columns(data, kind, con, sql):
    if kind in ("path", "duckdb", "arrow"):
        from ..sources._duckdb import relation

        rel = relation(data, con, group="", sql=sql)
        return rel, list(rel.columns)
    return data, list(data.columns)


def used_columns(columns: list, yi: str, vi: str, mods) -> list:
    """yi, vi and the moderators' columns: a list of names, or every column a formula names."""
    wanted = [yi, vi]
    if isinstance(mods, str):
        wanted += [t for t in _NAME.findall(mods) if t in columns]
    elif mods is not None:
        wanted += list(mods)
    for name in wanted:
        if name not in columns:
            raise InputError(f"no column {name!r} in data (columns: {', '.join(map(str, columns))})")
    return list(dict.fromkeys(wanted))


def fetch(data, yi: str, vi: str, mods=None, *, connection=None, sql=None):
    """(a pandas DataFrame of the used columns, mods as the in-memory fit takes it)."""
    import pandas as pd

    kind = kind_of(data)
    own = None
    if kind in ("path", "duckdb", "arrow"):
        from ..sources._duckdb import is_sql, open_connection

        sql = is_sql(data, connection, sql)
        con, own = open_connection(data, connection)
    else:
        con = None
    try:
        src, columns = _source_columns(data, kind, con, sql)
        names = used_columns(columns, yi, vi, mods)
        if kind in ("path", "duckdb", "arrow"):
            from ..sources._duckdb import quote

            frame = src.select(", ".join(quote(n) for n in names)).df()
        elif kind == "dask":
            frame = src[names].compute()
        elif kind == "spark":
            chosen = src.select(*names)  # arrow: pyspark's toPandas warns on pandas >= 3
            frame = chosen.toArrow().to_pandas() if hasattr(chosen, "toArrow") else chosen.toPandas()
        elif kind == "polars":
            frame = src.select(names).lazy().collect().to_pandas()
        else:
            frame = src[names]
    finally:
        if own is not None:
            own.close()
    frame = frame.reset_index(drop=True)
    for name in names:
        col = pd.to_numeric(frame[name], errors="coerce")
        bad = col.isna().to_numpy().nonzero()[0]
        if bad.size:
            raw = frame[name].iloc[bad[0]]
            what = "is missing" if pd.isna(raw) else f"({str(raw)!r}) is not a number"
            raise InputError(f"column {name!r}: row {int(bad[0])} {what}")
        frame[name] = col.astype(float)
    return frame, (frame[list(mods)] if mods is not None and not isinstance(mods, str) else mods)
