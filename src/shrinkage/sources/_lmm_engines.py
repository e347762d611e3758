"""The two passes of :mod:`._lmm` in each engine's own terms: DuckDB SQL, Dask partitions
reduced by Dask's group-by, Spark's GROUP BY.  Each engine object has ``open(group)``
(the column names), ``numeric()`` (the names of numeric columns: without pandas on
DuckDB, so a formula of numeric columns never loads it), ``schema()`` (an empty pandas
frame with the data's column types, for formulaic), ``levels(column)`` (a factor's
levels, sorted), ``means(plan)`` -> (rows, complete
rows, missing counts, infinite counts, mu) and ``moments(plan, mu)`` -> (labels, n,
sums (J, m), {(a, b): sums of products}), then ``close()``.  Only O(J) rows come back."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ._dask import _compute
from ._duckdb import _plain, _run, is_sql, label_kind, label_sql, nan_sql, open_connection, quote, relation
from ._spark import col, label_column

_G = "__shrinkage_g"


def known_levels(meta, v):
    """A categorical column's own level order (as formulaic uses it in memory), or None."""
    import pandas as pd

    dtype = meta[v].dtype
    if isinstance(dtype, pd.CategoricalDtype) and dtype.categories is not None:
        cats = list(dtype.categories)
        if "__UNKNOWN_CATEGORIES__" not in cats:
            return cats
    return None


def sorted_levels(values, v: str) -> list:
    """A factor's levels as Python sorts them (the reference level is the first, as in memory)."""
    try:
        return sorted(set(values))
    except TypeError:
        raise InputError(f"the levels of factor {v!r} cannot be sorted (mixed types?)") from None


def _literal(level) -> str:
    """A factor level as a SQL literal (text quoted, numbers as Python writes them)."""
    if isinstance(level, str):
        return "'" + level.replace("'", "''") + "'"
    if isinstance(level, (bool, np.bool_)):
        return "true" if level else "false"  # a bool column is a factor of levels False < True (lme4: bTRUE)
    if not isinstance(level, (int, float, np.integer, np.floating)):
        raise InputError(f"factor level {level!r} ({type(level).__name__}): only text and number levels out of core")
    return repr(level.item() if hasattr(level, "item") else level)


def _names(plan):
    sums = [f"s{a}" for a in range(1, plan.m + 1)]
    prods = [f"p{a}_{b}" for a, b in plan.pairs()]
    return sums, prods


_DUCKDB_NUMERIC = {"tinyint", "smallint", "integer", "bigint", "utinyint", "usmallint", "uinteger", "ubigint",
                   "float", "double"}  # what pandas holds as int, uint or float (kinds 'iuf')


class DuckDBEngine:
    """Files, relations, SQL, Arrow tables: two SQL aggregates, out of core.  NaN is found
    by :func:`._duckdb.nan_sql` (DuckDB's isnan() is folded away by Parquet statistics)."""

    def __init__(self, data, *, connection=None, sql=None, progress=None):
        self.sql = is_sql(data, connection, sql)
        self.con, self.own = open_connection(data, connection)
        self.data, self.progress = data, progress

    def close(self):
        if self.own:
            self.own.close()

    def open(self, group: str) -> list:
        self.rel = relation(self.data, self.con, group, self.sql)
        self.kind = label_kind(self.rel, group) if list(self.rel.columns).count(group) == 1 else "exact"
        return list(self.rel.columns)

    def numeric(self) -> set:
        """The columns of plain numbers, from DuckDB's types (no pandas)."""
        return {c for c, t in zip(self.rel.columns, self.rel.types) if t.id in _DUCKDB_NUMERIC}

    def schema(self):
        meta = self.rel.limit(0).df()
        meta.columns = list(self.rel.columns)  # a repeated name as DuckDB has it (pandas would rename it)
        return meta

    def _query(self, plan, sql: str):
        import duckdb

        cols = [f"CAST({quote(c)} AS DOUBLE) AS c{i}" for i, c in enumerate(plan.columns)]
        cols += [f"{quote(c)} AS f{i}" for i, c in enumerate(plan.factors)]
        src = self.rel.project(f"{label_sql(plan.group, self.kind)} AS g, {', '.join(cols)}")
        try:
            out = _run(src.query("src", sql), self.con, self.progress, objects=self.kind == "object")
        except duckdb.Error as e:
            lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()][:3]
            raise InputError(f"DuckDB could not aggregate the data: {' / '.join(lines)}") from None
        return out

    def levels(self, v: str) -> list:
        known = known_levels(self.rel.limit(0).df(), v)
        if known is not None:
            return known
        rows = self.rel.query("src", f"SELECT DISTINCT {quote(v)} FROM src").fetchall()
        return sorted_levels([r[0] for r in rows if r[0] is not None], v)

    def _expr(self, plan, a: int) -> str:
        return " * ".join(f"c{plan.columns.index(v)}" if isinstance(v, str) else
                          f"CAST(f{plan.factors.index(v[0])} = {_literal(v[1])} AS DOUBLE)" for v in plan.pieces(a))

    def _miss(self, plan) -> str:
        return " OR ".join(["g IS NULL"] + [f"c{i} IS NULL OR {nan_sql(f'c{i}')}" for i in range(len(plan.columns))]
                           + [f"f{i} IS NULL" for i in range(len(plan.factors))])

    def means(self, plan):
        ok = f"NOT ({self._miss(plan)})"
        parts = ["count(*) AS rows", f"count(*) FILTER (WHERE {ok}) AS kept", "count(*) FILTER (WHERE g IS NULL) AS mg"]
        for i in range(len(plan.columns)):
            parts += [f"count(*) FILTER (WHERE c{i} IS NULL OR {nan_sql(f'c{i}')}) AS m{i}",
                      f"count(*) FILTER (WHERE isinf(c{i})) AS i{i}"]
        parts += [f"count(*) FILTER (WHERE f{i} IS NULL) AS n{i}" for i in range(len(plan.factors))]
        parts += [f"avg({self._expr(plan, a)}) FILTER (WHERE {ok}) AS mu{a}" for a in range(1, plan.m + 1)]
        out = self._query(plan, f"SELECT {', '.join(parts)} FROM src")
        one = {k: _plain(v)[0] for k, v in out.items()}
        missing = {plan.group: int(one["mg"]), **{c: int(one[f"m{i}"]) for i, c in enumerate(plan.columns)},
                   **{c: int(one[f"n{i}"]) for i, c in enumerate(plan.factors)}}
        infinite = {c: int(one[f"i{i}"]) for i, c in enumerate(plan.columns)}
        mu = np.array([float(one[f"mu{a}"]) if int(one["kept"]) else 0.0 for a in range(1, plan.m + 1)])
        return int(one["rows"]), int(one["kept"]), missing, infinite, mu

    def moments(self, plan, mu):
        sums, prods = _names(plan)
        # repr() round-trips and DuckDB parses a decimal string to the nearest double: the
        # centres used are exactly mu
        e = ", ".join(f"({self._expr(plan, a)}) - CAST('{float(mu[a - 1])!r}' AS DOUBLE) AS e{a}"
                      for a in range(1, plan.m + 1))
        aggs = ["count(*) FILTER (WHERE ok) AS n"]
        aggs += [f"sum(e{a}) FILTER (WHERE ok) AS {s}" for a, s in zip(range(1, plan.m + 1), sums)]
        aggs += [f"sum(e{a} * e{b}) FILTER (WHERE ok) AS {p}" for (a, b), p in zip(plan.pairs(), prods)]
        out = self._query(plan, f"SELECT g, {', '.join(aggs)} FROM (SELECT g, {e}, NOT ({self._miss(plan)}) AS ok "
                                "FROM src) GROUP BY g")
        keep = _plain(out["n"]) > 0  # the missing label's row, and groups with no complete row
        out = {k: _plain(v)[keep] for k, v in out.items()}
        return (out["g"], out["n"], np.column_stack([out[s] for s in sums]),
                {ab: out[p] for ab, p in zip(plan.pairs(), prods)})


def _values(frame, plan) -> dict:
    """Numeric columns as float arrays (NaN for missing) and factor indicators as 0/1."""
    vals = {c: frame[c].to_numpy(dtype=float, na_value=np.nan) for c in plan.columns}
    for t in plan.terms:
        for v in t:
            if not isinstance(v, str) and v not in vals:
                vals[v] = (frame[v[0]] == v[1]).fillna(False).to_numpy(dtype=bool).astype(float)
    return vals


def _piece_means(frame, plan):
    """One pandas partition -> one row: counts and sums of A's columns over complete rows."""
    import pandas as pd

    vals = _values(frame, plan)
    g_miss = frame[plan.group].isna().to_numpy()
    ok = ~g_miss
    row = {"rows": len(frame), "mg": int(g_miss.sum())}
    for i, c in enumerate(plan.factors):
        miss = frame[c].isna().to_numpy()
        row[f"n{i}"] = int(miss.sum())
        ok = ok & ~miss
    for i, c in enumerate(plan.columns):
        row[f"m{i}"] = int(np.isnan(vals[c]).sum())
        row[f"i{i}"] = int(np.isinf(vals[c]).sum())
        ok = ok & ~np.isnan(vals[c])
    row["kept"] = int(ok.sum())
    for a in range(1, plan.m + 1):
        v = np.prod([vals[c][ok] for c in plan.pieces(a)], axis=0) if ok.any() else np.zeros(0)
        row[f"t{a}"] = float(v.sum())
    return pd.DataFrame({k: [v] for k, v in row.items()})


def _piece_moments(frame, plan, mu):
    """One pandas partition -> its complete rows as (group, 1, e_a, e_a e_b): Dask's
    group-by sums them on the worker and merges the O(J) partial sums."""
    import pandas as pd

    keep = frame[plan.group].notna().to_numpy()
    vals = _values(frame, plan)
    for c in plan.factors:
        keep = keep & frame[c].notna().to_numpy()
    for c in plan.columns:
        keep = keep & ~np.isnan(vals[c])
    e = {a: np.prod([vals[c][keep] for c in plan.pieces(a)], axis=0) - mu[a - 1] for a in range(1, plan.m + 1)}
    sums, prods = _names(plan)
    out = {_G: frame[plan.group].to_numpy()[keep], "n": np.ones(int(keep.sum()), np.int64)}
    out.update({s: e[a] for a, s in zip(range(1, plan.m + 1), sums)})
    out.update({p: e[a] * e[b] for (a, b), p in zip(plan.pairs(), prods)})
    return pd.DataFrame(out)


class DaskEngine:
    """A Dask DataFrame: partitions reduced where they live."""

    def __init__(self, data, *, connection=None, sql=None, progress=None):
        self.ddf, self.progress = data, progress

    def close(self):
        pass

    def open(self, group: str) -> list:
        return list(self.ddf.columns)

    def numeric(self) -> set:
        return {c for c, t in self.ddf._meta.dtypes.items() if t.kind in "iuf"}

    def schema(self):
        return self.ddf._meta

    def levels(self, v: str) -> list:
        known = known_levels(self.ddf._meta, v)
        if known is not None:
            return known
        return sorted_levels(_compute(self.ddf[v].dropna().unique(), self.progress).tolist(), v)

    def means(self, plan):
        part = self.ddf[[plan.group, *plan.columns, *plan.factors]]
        meta = _piece_means(part._meta, plan)
        tot = _compute(part.map_partitions(_piece_means, plan, meta=meta), self.progress).sum()
        kept = int(tot["kept"])
        missing = {plan.group: int(tot["mg"]), **{c: int(tot[f"m{i}"]) for i, c in enumerate(plan.columns)},
                   **{c: int(tot[f"n{i}"]) for i, c in enumerate(plan.factors)}}
        infinite = {c: int(tot[f"i{i}"]) for i, c in enumerate(plan.columns)}
        mu = np.array([float(tot[f"t{a}"]) / kept if kept else 0.0 for a in range(1, plan.m + 1)])
        return int(tot["rows"]), kept, missing, infinite, mu

    def moments(self, plan, mu):
        part = self.ddf[[plan.group, *plan.columns, *plan.factors]]
        meta = _piece_moments(part._meta, plan, mu)
        out = _compute(part.map_partitions(_piece_moments, plan, mu, meta=meta).groupby(_G).sum(), self.progress)
        sums, prods = _names(plan)
        return (out.index.to_numpy(), out["n"].to_numpy(), out[sums].to_numpy(dtype=float),
                {ab: out[p].to_numpy(dtype=float) for ab, p in zip(plan.pairs(), prods)})


_SPARK_NUMERIC = ("tinyint", "smallint", "int", "bigint", "float", "double", "decimal")


class SparkEngine:
    """A PySpark DataFrame: Spark's aggregate and GROUP BY on the executors.  Columns are
    named in backticks (a column 'a.b' is that column, not field b of a struct a), and a
    float label that is NaN is a missing label."""

    def __init__(self, data, *, connection=None, sql=None, progress=None):
        self.sdf = data

    def close(self):
        pass

    def open(self, group: str) -> list:
        if list(self.sdf.columns).count(group) == 1:
            self.g = label_column(self.sdf, group)
        return list(self.sdf.columns)

    def numeric(self) -> set:
        return {name for name, kind in self.sdf.dtypes if kind.startswith(_SPARK_NUMERIC)}

    def schema(self):
        import pandas as pd

        return pd.concat([pd.Series([], dtype=float if kind.startswith(_SPARK_NUMERIC) else object, name=name)
                          for name, kind in self.sdf.dtypes], axis=1)

    def _src(self, plan):
        cols = [col(c).cast("double").alias(f"c{i}") for i, c in enumerate(plan.columns)]
        cols += [col(c).alias(f"f{i}") for i, c in enumerate(plan.factors)]
        return self.sdf.select(self.g.alias("g"), *cols)

    def levels(self, v: str) -> list:
        return sorted_levels([r[0] for r in self.sdf.select(col(v)).distinct().collect() if r[0] is not None], v)

    def _miss(self, plan):
        from pyspark.sql import functions as F

        cond = F.col("g").isNull()
        for i in range(len(plan.columns)):
            cond = cond | F.col(f"c{i}").isNull() | F.isnan(f"c{i}")
        for i in range(len(plan.factors)):
            cond = cond | F.col(f"f{i}").isNull()
        return cond

    def _expr(self, plan, a: int):
        from pyspark.sql import functions as F

        out = None
        for v in plan.pieces(a):
            c = (F.col(f"c{plan.columns.index(v)}") if isinstance(v, str)
                 else (F.col(f"f{plan.factors.index(v[0])}") == F.lit(v[1])).cast("double"))
            out = c if out is None else out * c
        return out

    def means(self, plan):
        from pyspark.sql import functions as F

        ok = ~self._miss(plan)
        count = lambda cond: F.sum(F.when(cond, 1).otherwise(0))  # noqa: E731
        aggs = [F.count(F.lit(1)).alias("rows"), count(ok).alias("kept"), count(F.col("g").isNull()).alias("mg")]
        for i in range(len(plan.columns)):
            c = F.col(f"c{i}")
            aggs += [count(c.isNull() | F.isnan(c)).alias(f"m{i}"), count(F.abs(c) == float("inf")).alias(f"i{i}")]
        aggs += [count(F.col(f"f{i}").isNull()).alias(f"n{i}") for i in range(len(plan.factors))]
        aggs += [F.avg(F.when(ok, self._expr(plan, a))).alias(f"mu{a}") for a in range(1, plan.m + 1)]
        one = self._src(plan).agg(*aggs).collect()[0]
        rows, kept = int(one["rows"]), int(one["kept"] or 0)
        missing = {plan.group: int(one["mg"] or 0), **{c: int(one[f"m{i}"] or 0) for i, c in enumerate(plan.columns)},
                   **{c: int(one[f"n{i}"] or 0) for i, c in enumerate(plan.factors)}}
        infinite = {c: int(one[f"i{i}"] or 0) for i, c in enumerate(plan.columns)}
        mu = np.array([float(one[f"mu{a}"]) if kept else 0.0 for a in range(1, plan.m + 1)])
        return rows, kept, missing, infinite, mu

    def moments(self, plan, mu):
        from pyspark.sql import functions as F

        e = [(self._expr(plan, a) - F.lit(float(mu[a - 1]))).alias(f"e{a}") for a in range(1, plan.m + 1)]
        src = self._src(plan).where(~self._miss(plan)).select("g", *e)
        sums, prods = _names(plan)
        aggs = [F.count(F.lit(1)).alias("n")] + [F.sum(f"e{a}").alias(s) for a, s in zip(range(1, plan.m + 1), sums)]
        aggs += [F.sum(F.col(f"e{a}") * F.col(f"e{b}")).alias(p) for (a, b), p in zip(plan.pairs(), prods)]
        got = src.groupBy("g").agg(*aggs).collect()
        labels = np.array([r["g"] for r in got], dtype=object)
        if labels.size and all(isinstance(v, int) and not isinstance(v, bool) for v in labels):
            labels = labels.astype(np.int64)
        col = lambda name: np.array([r[name] for r in got], dtype=float)  # noqa: E731
        return (labels, np.array([r["n"] for r in got], dtype=np.int64), np.column_stack([col(s) for s in sums]),
                {ab: col(p) for ab, p in zip(plan.pairs(), prods)})


ENGINES = {"path": DuckDBEngine, "duckdb": DuckDBEngine, "arrow": DuckDBEngine, "dask": DaskEngine,
           "spark": SparkEngine}
