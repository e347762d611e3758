"""PySpark: Spark's own GROUP BY on the executors; only O(J) rows are collected.

The corrected two-pass algorithm, as for DuckDB: pass 1 groups by label for count(*),
count(y), avg(y) = m and counts of NULL and NaN; the O(J) table of means is broadcast
back to the executors, and pass 2 groups sum(y - m) and sum((y - m)^2); then
mean = m + sum(y - m)/n and S = sum((y - m)^2) - sum(y - m)^2/n.  Partial sums of the
partitions are merged by Spark itself (sums merge exactly by addition).

Columns are named in backticks (:func:`col`: a column 'a.b' beside a struct a with a
field b is the column, as DuckDB and pandas read it); a float label that is NaN is a
missing label, as NULL is; array, map and struct labels are refused.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..stats import GroupStats


def col(name: str):
    """The top-level column ``name``, whatever its characters (a dot, a backtick)."""
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _field(sdf, name: str):
    """The one top-level field ``name``, refusing an absent or a repeated name."""
    fields = [f for f in sdf.schema.fields if f.name == name]
    if not fields:
        raise InputError(f"the data have no column {name!r}; columns: {', '.join(sdf.columns)}")
    if len(fields) > 1:
        raise InputError(f"the data have {len(fields)} columns named {name!r}: rename them so that the name is "
                         "one column")
    return fields[0]


def label_column(sdf, group: str):
    """The group column as a label: NaN made NULL (Spark groups NaN as one value);
    nested types refused."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    kind = _field(sdf, group).dataType
    if isinstance(kind, (T.ArrayType, T.MapType, T.StructType)):
        raise InputError(f"column {group!r} holds {kind.simpleString()} values, which cannot be group labels: "
                         "group by text, numbers, dates or times")
    if isinstance(kind, (T.FloatType, T.DoubleType)):
        return F.when(F.isnan(col(group)), F.lit(None)).otherwise(col(group))
    return col(group)


def spark_stats(sdf, response: str, group: str) -> GroupStats:
    from pyspark.sql import functions as F

    _field(sdf, response)
    src = sdf.select(col(response).cast("double").alias("y"), col(response).isNull().alias("y_null"),
                     label_column(sdf, group).alias("g"))
    bad_y = F.isnan("y") | (F.abs("y") == float("inf"))
    means = src.groupBy("g").agg(
        F.count(F.lit(1)).alias("rows"), F.count("y").alias("n"), F.sum(F.col("y_null").cast("long")).alias("nulls"),
        F.sum(F.when(bad_y, 1).otherwise(0)).alias("nonfinite"), F.avg("y").alias("m"))
    first = means.collect()
    if not first:
        raise InputError("the data have no rows: no observations to fit")
    if any(r["g"] is None for r in first):
        k = sum(r["rows"] for r in first if r["g"] is None)
        raise InputError(f"column {group!r} has {k} missing label(s) (NULL or NaN); drop or fill those rows first")
    nulls = sum(r["nulls"] for r in first)
    if nulls:
        raise InputError(f"column {response!r} has {nulls} missing value(s) (NULL)")
    if any(r["rows"] != r["n"] for r in first):
        raise InputError(f"column {response!r} has values that are not numbers")
    bad = sum(r["nonfinite"] for r in first)
    if bad:
        raise InputError(f"column {response!r} has {bad} NaN or infinite value(s)")
    d = F.col("y") - F.col("m")
    second = {r["g"]: (r["dsum"], r["dss"]) for r in
              src.join(F.broadcast(means.select("g", "m")), on="g").groupBy("g")
              .agg(F.sum(d).alias("dsum"), F.sum(d * d).alias("dss")).collect()}
    labels = np.array([r["g"] for r in first], dtype=object)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in labels):
        labels = labels.astype(np.int64)
    n = np.array([r["n"] for r in first], dtype=float)
    dsum, dss = (np.array([second[r["g"]][k] for r in first], dtype=float) for k in (0, 1))
    mean = np.array([r["m"] for r in first], dtype=float) + dsum / n
    ss = np.where(n == 1, 0.0, np.maximum(dss - dsum * dsum / n, 0.0))
    return GroupStats.from_arrays(labels, n, mean, ss)
