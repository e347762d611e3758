"""What kind of data a source is, by its type alone (no engine is imported to tell).

Its own module so that :mod:`shrinkage.sources` and the formula path (:mod:`._lmm`) both
use it without importing each other.
"""

from __future__ import annotations

import os
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


def describe(data) -> str:
    """What summary() prints as lme4's ``Data:`` line.  lme4 prints the expression the
    user passed (``Data: sleepstudy``); a Python function cannot see its caller's variable
    names, so a path is printed as given and anything else by its type: <pandas DataFrame>."""
    if isinstance(data, (str, os.PathLike)):
        return str(data)
    if isinstance(data, (list, tuple)) and data and all(isinstance(v, (str, os.PathLike)) for v in data):
        return ", ".join(map(str, data))
    module = type(data).__module__.split(".")[0]
    return f"<{module} {type(data).__name__}>" if module != "builtins" else f"<{type(data).__name__}>"
