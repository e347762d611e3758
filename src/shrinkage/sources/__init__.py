"""Per-group statistics (n_j, ybar_j, S_j) computed where the data live.

:func:`group_stats` takes the data in whatever form they come and returns the O(J)
:class:`~shrinkage.stats.GroupStats` the fit needs; only those statistics ever reach
Python's memory from an engine:

* a path (str or Path) to Parquet or CSV files, or a glob of them: DuckDB, embedded and
  out of core (memory does not grow with the number of rows).  A string is always a
  path unless the caller says it is SQL (next item): ``"values.csv"`` is a file;
* a DuckDB relation, a SQL query (with ``connection=``, or ``sql=True``), and so any
  database DuckDB can ATTACH, e.g. PostgreSQL::

      import duckdb, shrinkage
      con = duckdb.connect()
      con.sql("INSTALL postgres; LOAD postgres; "
              "ATTACH 'dbname=lab host=db.example user=me' AS pg (TYPE postgres, READ_ONLY)")
      stats = shrinkage.sources.group_stats("SELECT yield, batch FROM pg.public.runs",
                                            "yield", "batch", connection=con)
      result = shrinkage.fit(stats=stats)

* a pandas or polars DataFrame (in memory: numpy's two passes);
* a Dask DataFrame (partitions summarised on the workers, merged by the exact rule);
* a PySpark DataFrame (Spark's own GROUP BY with its stable central-moment aggregate).

:func:`formula_cross_products` does the same for the covariate and random-slope model
(``y ~ x1 + x2 + (x1 | g)``): the per-group cross-products of
:class:`shrinkage.lmm.CrossProducts`, from the same engines (see :mod:`._lmm`).

Group labels keep the type the source gives them (text stays text: "007" is not 7; a
CSV's group column is read as text).  Missing labels (NULL, NaN, pandas NA; NA or an
empty field in a CSV) or responses are refused, never made a group.  An engine's library
(duckdb, dask, pyspark) is imported only when its kind of data is passed.
"""

from __future__ import annotations

from ..errors import InputError
from ..passes import _threads as threads
from ..stats import GroupStats
from ._dask import dask_stats
from ._duckdb import duckdb_stats
from ._frames import frame_stats
from ._kinds import kind_of
from ._spark import spark_stats

__all__ = ["group_stats", "formula_cross_products"]


def group_stats(data, response: str, group: str, *, connection=None, sql: bool | None = None,
                progress=None) -> GroupStats:
    """The sufficient statistics of ``response`` by ``group`` in ``data``.

    ``connection``: a DuckDB connection, for a SQL query given as ``data`` (or a path
    read through it).  ``sql``: True, ``data`` is a query (run on ``connection``, else on
    a connection of its own); False, a path; None (default), a query only with a
    ``connection`` and text that starts as one (SELECT, WITH, FROM, ...) and names no
    existing file.  ``progress``: see :mod:`shrinkage.progress` (DuckDB's query
    progress, the chunks of a Dask computation).
    """
    if not isinstance(response, str) or not isinstance(group, str):
        raise InputError("response and group must be column names (str)")
    if response == group:
        raise InputError(f"response and group are the same column ({response!r})")
    threads()  # a bad SHRINKAGE_THREADS is named here too, though the engines run their own threads
    kind = kind_of(data)
    if kind in ("path", "duckdb", "arrow"):
        return duckdb_stats(data, response, group, connection=connection, sql=sql, progress=progress)
    if sql:
        raise InputError(f"sql=True needs the query as text, got {type(data).__name__}")
    if kind in ("pandas", "polars"):
        return frame_stats(data, response, group)
    if kind == "dask":
        return dask_stats(data, response, group, progress=progress)
    return spark_stats(data, response, group)


def formula_cross_products(data, formula, *, na_action: str = "omit", connection=None, sql: bool | None = None,
                           progress=None):
    """(CrossProducts, Z's block sizes, rows dropped) of an lme4 formula (text or parsed)
    with numeric covariates, computed where ``data`` live (a path, DuckDB relation or SQL
    query, Arrow table, Dask or PySpark DataFrame); ``sql`` as for :func:`group_stats`;
    see :mod:`._lmm`."""
    from ._lmm import formula_cross_products as run  # with shrinkage.lmm: not loaded by the one-way fit

    if isinstance(formula, str):
        from ..lmm.formula import parse
        formula = parse(formula)
    return run(data, formula, na_action=na_action, connection=connection, sql=sql, progress=progress)
