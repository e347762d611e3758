"""The two passes of :mod:`._glmm` in each engine's terms: ``check`` counts the distinct
values of the numeric covariates (approximately: HyperLogLog; a continuous column has
far more than MAX_VALUES) and the non-positive values of a logged offset; ``table`` is
the GROUP BY over ``spec.keys`` with count(*) as n and, for a Poisson offset o, sum(o) as
so and sum(e^o) as se.  NULL and NaN keys come back as missing, for _glmm to count and
drop.  Only the reduced table comes back to Python."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ._dask import _compute
from ._duckdb import _NESTED, open_connection, quote, relation
from ._duckdb import is_sql as _is_sql
from ._spark import col

__all__ = ["ENGINES"]

_DUCKDB_NUMERIC = {"tinyint", "smallint", "integer", "bigint", "utinyint", "usmallint", "uinteger", "ubigint",
                   "float", "double", "hugeint", "decimal"}


def _continuous(spec, counts: dict, max_values: int) -> None:
    for c, k in counts.items():
        if k is not None and k > max_values:
            raise InputError(f"column {c!r} has about {int(k)} distinct values: out of core, a GLMM's covariates must "
                             f"be categorical (text, bool, categorical) or take at most {max_values} values, so that "
                             "the rows reduce to counts per (group, covariate pattern); fit data with a continuous "
                             "covariate in memory (a pandas or polars DataFrame)")


def _exposure(spec, bad: int) -> None:
    if bad:
        raise InputError(f"offset(log({spec.offset[0]})): {bad} row(s) of {spec.offset[0]!r} are not positive")


class DuckDBGlmm:
    """Files, relations, SQL: two SQL aggregates, out of core (the connection's memory
    bounded, spilling to disk, as for every source)."""

    def __init__(self, data, *, connection=None, sql=None):
        self.sql = _is_sql(data, connection, sql)
        self.con, self.own = open_connection(data, connection)
        self.data = data

    def close(self):
        if self.own:
            self.own.close()

    def open(self) -> list:
        self.rel = relation(self.data, self.con, "", self.sql)
        self.types = dict(zip(self.rel.columns, self.rel.types))
        return list(self.rel.columns)

    def is_numeric(self, c) -> bool:
        t = self.types[c]
        if t.id in _NESTED:
            raise InputError(f"column {c!r} holds {t} values: a GLMM reads numbers, text, bool or categories")
        return t.id in _DUCKDB_NUMERIC

    def _offset(self, spec) -> str:
        c = f"CAST({quote(spec.offset[0])} AS DOUBLE)"
        return f"ln({c})" if spec.offset[1] else c

    def check(self, spec, max_values: int) -> None:
        parts = [f"approx_count_distinct({quote(c)}) AS d{i}" for i, c in enumerate(spec.numeric)]
        if spec.offset and spec.offset[1]:
            parts.append(f"count(*) FILTER (WHERE CAST({quote(spec.offset[0])} AS DOUBLE) <= 0) AS bad")
        if not parts:
            return
        one = self.rel.query("src", f"SELECT {', '.join(parts)} FROM src").fetchall()[0]
        _continuous(spec, {c: one[i] for i, c in enumerate(spec.numeric)}, max_values)
        if spec.offset and spec.offset[1]:
            _exposure(spec, int(one[-1]))

    def table(self, spec):
        keys = spec.keys
        cols = [f"{quote(c)} AS k{i}" for i, c in enumerate(keys)]
        aggs = ["count(*) AS n"]
        if spec.offset and spec.summed:
            cols.append(f"{self._offset(spec)} AS o")
            aggs += ["sum(o) AS so", "sum(exp(o)) AS se"]
        by = ", ".join(f"k{i}" for i in range(len(keys)))
        q = f"SELECT {by}, {', '.join(aggs)} FROM (SELECT {', '.join(cols)} FROM src) GROUP BY {by}"
        import duckdb

        try:
            out = self.rel.query("src", q).df()
        except duckdb.Error as e:
            lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()][:3]
            raise InputError(f"DuckDB could not aggregate the data: {' / '.join(lines)}") from None
        return out.rename(columns={f"k{i}": c for i, c in enumerate(keys)})


class DaskGlmm:
    """A Dask DataFrame: Dask's group-by sums the partitions where they live."""

    def __init__(self, data, *, connection=None, sql=None):
        self.ddf = data

    def close(self):
        pass

    def open(self) -> list:
        return list(self.ddf.columns)

    def is_numeric(self, c) -> bool:
        import pandas as pd

        t = self.ddf._meta[c].dtype
        return not isinstance(t, pd.CategoricalDtype) and t.kind in "iuf"

    def check(self, spec, max_values: int) -> None:
        import dask

        counts = dask.compute(*[self.ddf[c].nunique_approx() for c in spec.numeric])
        _continuous(spec, dict(zip(spec.numeric, counts)), max_values)
        if spec.offset and spec.offset[1]:
            _exposure(spec, int(_compute((self.ddf[spec.offset[0]] <= 0).sum(), None)))

    def table(self, spec):
        keys = spec.keys
        part = self.ddf[list(dict.fromkeys(keys + ([spec.offset[0]] if spec.offset else [])))]
        new = {"n": 1}
        if spec.offset and spec.summed:
            o = part[spec.offset[0]].astype(float)
            o = np.log(o) if spec.offset[1] else o
            new.update(so=o, se=np.exp(o))
        part = part.assign(**new)[keys + list(new)]
        out = _compute(part.groupby(keys, dropna=False, observed=True).sum(), None)
        return out.reset_index()


class SparkGlmm:
    """A PySpark DataFrame: Spark's GROUP BY on the executors (a NaN key made NULL)."""

    def __init__(self, data, *, connection=None, sql=None):
        self.sdf = data

    def close(self):
        pass

    def open(self) -> list:
        self.kinds = dict(self.sdf.dtypes)
        return list(self.sdf.columns)

    def is_numeric(self, c) -> bool:
        return self.kinds[c].startswith(("tinyint", "smallint", "int", "bigint", "float", "double", "decimal"))

    def check(self, spec, max_values: int) -> None:
        from pyspark.sql import functions as F

        aggs = [F.approx_count_distinct(col(c)).alias(f"d{i}") for i, c in enumerate(spec.numeric)]
        if spec.offset and spec.offset[1]:
            aggs.append(F.sum(F.when(col(spec.offset[0]) <= 0, 1).otherwise(0)).alias("bad"))
        if not aggs:
            return
        one = self.sdf.agg(*aggs).collect()[0]
        _continuous(spec, {c: one[f"d{i}"] for i, c in enumerate(spec.numeric)}, max_values)
        if spec.offset and spec.offset[1]:
            _exposure(spec, int(one["bad"] or 0))

    def table(self, spec):
        from pyspark.sql import functions as F

        keys = spec.keys
        sel = []
        for i, c in enumerate(keys):
            x = col(c)
            if self.kinds[c] in ("float", "double"):
                x = F.when(F.isnan(x), F.lit(None)).otherwise(x)
            sel.append(x.alias(f"k{i}"))
        aggs = [F.count(F.lit(1)).alias("n")]
        if spec.offset and spec.summed:
            o = col(spec.offset[0]).cast("double")
            sel.append((F.log(o) if spec.offset[1] else o).alias("o"))
            aggs += [F.sum("o").alias("so"), F.sum(F.exp("o")).alias("se")]
        import pandas as pd

        got = self.sdf.select(*sel).groupBy(*[f"k{i}" for i in range(len(keys))]).agg(*aggs).collect()
        names = [f"k{i}" for i in range(len(keys))] + [a for a in ("n", "so", "se") if a == "n" or len(aggs) > 1]
        out = pd.DataFrame({c: pd.Series([r[c] for r in got], dtype=object) for c in names})
        out["n"] = out["n"].astype(np.int64)
        for c in names[len(keys) + 1:]:
            out[c] = out[c].astype(float)
        for i, c in enumerate(keys):  # numbers as numbers (None a missing one), text as objects
            if self.is_numeric(c):
                out[f"k{i}"] = pd.to_numeric(out[f"k{i}"].astype(object).where(out[f"k{i}"].notna(), np.nan))
        return out.rename(columns={f"k{i}": c for i, c in enumerate(keys)})


ENGINES = {"path": DuckDBGlmm, "duckdb": DuckDBGlmm, "arrow": DuckDBGlmm, "dask": DaskGlmm, "spark": SparkGlmm}
