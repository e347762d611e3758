"""What kind of data a source is, by its type alone (no engine is imported to tell).

Its own module so that :mod:`shrinkage.sources` and the formula path (:mod:`._lmm`) both
use it without importing each other.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError


def kind_of(data) -> str:
    """Which engine reads ``data``: path, duckdb, arrow, dask, spark (out of core), or
    pandas, polars (in memory); anything else refused."""
    if isinstance(data, (str, Path)):
        return "path"
    module = type(data).__module__.split(".")[0]
    name = type(data).__name__
    if module == "duckdb":
        return "duckdb"
    if module in ("dask", "dask_expr"):
        return "dask"
    if module == "pyspark":
        return "spark"
    if module == "pandas" and name == "DataFrame":
        return "pandas"
    if module == "polars" and name in ("DataFrame", "LazyFrame"):
        return "polars"
    if module == "pyarrow" and name == "Table":
        return "arrow"
    raise InputError(f"data of type {type(data).__module__}.{name} is not supported: pass a path (CSV, Parquet, "
                     "glob), a DuckDB relation or SQL query, or a pandas, polars, Dask or PySpark DataFrame")
