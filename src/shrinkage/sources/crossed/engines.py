"""The passes of the crossed estimator in each engine's terms.

Every engine gives, over the complete rows (no missing value in y, a covariate, a or b):
``means()`` (rows, complete rows, missing and infinite counts, the means mu of the
covariates and y), ``level(factor)`` -> (labels, n, sums of e, {(a, b): sums of e_a e_b})
with e the centred columns (the per-group pass of :mod:`.._lmm_engines`, reused: DuckDB
SQL, Dask partitions, Spark), ``cross(by, labels, V)`` -> (labels of ``by``, sums over
each level's rows of V[other factor's level]) (a join of an O(levels) table to the rows,
then GROUP BY), and ``cells()`` -> for each factor, sum_j n_ij^2 per level (a GROUP BY of
the (a, b) pairs, then of each factor).  Only per-level tables come back.
"""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np

from ...errors import InputError
from .._dask import _compute
from .._duckdb import _CSV, CSV_MISSING, _plain, _run, label_kind, quote
from .._lmm_engines import _G, DaskEngine, DuckDBEngine, SparkEngine

__all__ = ["ENGINES", "MemoryEngine"]


class Passes:
    """Plans per factor: ``plan`` is the :class:`.._lmm.Plan` grouped by a with b as the
    factor that also marks a row incomplete; ``by(f)`` the same plan grouped by ``f``."""

    def start(self, plan):
        self.plan = plan
        self.factors = (plan.group, plan.factors[0])

    def by(self, factor: str):
        other = self.factors[1] if factor == self.factors[0] else self.factors[0]
        return replace(self.plan, group=factor, factors=(other,))


CELLS = 5_000_000  # rows per chunk of the cells pass (1e7 distinct cells fitted DuckDB's 160 MB pool)


def _sums(k: int) -> str:
    return ", ".join(f"sum(lv.v{i}) AS v{i}" for i in range(k))


class CrossedDuckDB(Passes, DuckDBEngine):
    """One relation for every pass (a CSV read with both factors as text, as a CSV's group
    column always is: "007" is not 7), so each pass sees the labels with one type."""

    def open(self, group):
        if not hasattr(self, "plan"):
            return super().open(group)
        self.kind = label_kind(self.rel, group)
        return list(self.rel.columns)

    def start(self, plan):
        super().start(plan)
        text = str(self.data)
        if not self.sql and isinstance(self.data, (str, os.PathLike)) and text.lower().endswith(_CSV):
            self.rel = self.con.read_csv(text, dtype={f: "VARCHAR" for f in self.factors}, na_values=CSV_MISSING)
        for f in self.factors:
            if label_kind(self.rel, f) != "exact":  # float (NaN), DECIMAL, BLOB ... labels
                raise InputError(f"crossed factors out of core need integer or text labels: cast {f!r} first")

    def level(self, factor):
        self.open(factor)
        return self.moments(self.by(factor), self.mu)

    def _pairs(self, plan):
        cols = [f"CAST({quote(c)} AS DOUBLE) AS c{i}" for i, c in enumerate(plan.columns)]
        src = self.rel.project(f"{quote(plan.group)} AS g, {quote(plan.factors[0])} AS f0, {', '.join(cols)}")
        return src, f"SELECT g, f0 AS o FROM src WHERE NOT ({self._miss(plan)})"

    def cross(self, by, labels, V):
        src, pairs = self._pairs(self.by(by))
        crossed_levels_ = {"k": labels, **{f"v{i}": np.ascontiguousarray(V[:, i]) for i in range(V.shape[1])}}  # noqa: F841
        sql = (f"SELECT p.g AS g, {_sums(V.shape[1])} FROM ({pairs}) AS p "
               "JOIN crossed_levels_ AS lv ON p.o = lv.k GROUP BY p.g")
        out = _run(src.query("src", sql), self.con, False)  # DuckDB finds crossed_levels_ in this frame (no leading __: a method would mangle it)
        return _plain(out["g"]), np.column_stack([_plain(out[f"v{i}"]) for i in range(V.shape[1])])

    def cells(self):
        """In chunks of the levels of a (hash(a) % K), each a GROUP BY a, b of at most about
        CELLS rows: one aggregate of 1e8 distinct cells ran out of DuckDB's 160 MB pool."""
        import pandas as pd

        src, pairs = self._pairs(self.by(self.factors[0]))
        K = max(1, -(-int(self.kept) // CELLS))
        got_a, got_b = [], []
        for k in range(K):
            sql = (f"SELECT g, o, sum(n * n) AS n2, grouping(o) AS side FROM (SELECT g, o, count(*) AS n FROM "
                   f"({pairs}) WHERE hash(g) % {K} = {k} GROUP BY g, o) GROUP BY GROUPING SETS ((g), (o))")
            out = _run(src.query("src", sql), self.con, False)
            side = _plain(out["side"]).astype(bool)
            n2 = _plain(out["n2"]).astype(float)
            got_a.append(pd.Series(n2[side], index=_plain(out["g"])[side]))
            got_b.append(pd.Series(n2[~side], index=_plain(out["o"])[~side]))
        a, b = pd.concat(got_a), pd.concat(got_b).groupby(level=0).sum()  # b's levels meet in every chunk
        return (a.index.to_numpy(), a.to_numpy()), (b.index.to_numpy(), b.to_numpy())


def _complete(frame, plan):
    """The rows with every used column present (as :func:`.._lmm_engines._piece_moments` keeps them)."""
    keep = frame[plan.group].notna().to_numpy() & frame[plan.factors[0]].notna().to_numpy()
    for c in plan.columns:
        keep &= ~np.isnan(frame[c].to_numpy(dtype=float, na_value=np.nan))
    return keep


def _cross_piece(frame, plan, labels, V):
    import pandas as pd

    keep = _complete(frame, plan)
    at = pd.Index(labels).get_indexer(frame[plan.factors[0]].to_numpy()[keep])
    out = {_G: frame[plan.group].to_numpy()[keep]}
    out.update({f"v{i}": V[at, i] for i in range(V.shape[1])})
    return pd.DataFrame(out)


def _pair_piece(frame, plan):
    import pandas as pd

    keep = _complete(frame, plan)
    return pd.DataFrame({_G: frame[plan.group].to_numpy()[keep], "o": frame[plan.factors[0]].to_numpy()[keep]})


class CrossedDask(Passes, DaskEngine):
    def level(self, factor):
        return self.moments(self.by(factor), self.mu)

    def _part(self, plan):
        return self.ddf[[plan.group, plan.factors[0], *plan.columns]]

    def cross(self, by, labels, V):
        plan = self.by(by)
        part = self._part(plan)
        import dask

        meta = _cross_piece(part._meta, plan, labels, V)
        table = dask.delayed(labels), dask.delayed(V)  # one key of the graph each, not a copy per partition
        out = _compute(part.map_partitions(_cross_piece, plan, *table, meta=meta).groupby(_G).sum(), self.progress)
        return out.index.to_numpy(), out[[f"v{i}" for i in range(V.shape[1])]].to_numpy(dtype=float)

    def cells(self):
        import dask

        plan = self.by(self.factors[0])
        part = self._part(plan)
        pairs = part.map_partitions(_pair_piece, plan, meta=_pair_piece(part._meta, plan))
        n = pairs.groupby([_G, "o"]).size().to_frame("n").reset_index()
        n = n.assign(n2=n["n"].astype(float) ** 2)
        ga, gb = dask.compute(n.groupby(_G)["n2"].sum(), n.groupby("o")["n2"].sum())
        return (ga.index.to_numpy(), ga.to_numpy(dtype=float)), (gb.index.to_numpy(), gb.to_numpy(dtype=float))


class CrossedSpark(Passes, SparkEngine):
    def level(self, factor):
        self.open(factor)
        return self.moments(self.by(factor), self.mu)

    def _pairs(self, plan):
        from pyspark.sql import functions as F

        return self._src(plan).where(~self._miss(plan)).select("g", F.col("f0").alias("o"))

    def cross(self, by, labels, V):
        from pyspark.sql import functions as F
        from pyspark.sql import types as T

        self.open(by)
        other = self.by(by).factors[0]
        kind = next(f.dataType for f in self.sdf.schema.fields if f.name == other)
        schema = T.StructType([T.StructField("k", kind)] + [T.StructField(f"v{i}", T.DoubleType())
                                                             for i in range(V.shape[1])])
        lv = self.sdf.sparkSession.createDataFrame(list(zip(labels.tolist(), *V.T.tolist())), schema)  # no pandas
        got = (self._pairs(self.by(by)).join(F.broadcast(lv), F.col("o") == F.col("k"))
               .groupBy("g").agg(*[F.sum(f"v{i}").alias(f"v{i}") for i in range(V.shape[1])]).collect())
        return (np.array([r["g"] for r in got], dtype=object),
                np.array([[r[f"v{i}"] for i in range(V.shape[1])] for r in got], dtype=float).reshape(len(got), -1))

    def cells(self):
        from pyspark.sql import functions as F

        self.open(self.factors[0])
        n = self._pairs(self.by(self.factors[0])).groupBy("g", "o").count()
        n2 = (F.col("count").cast("double") ** 2)
        ga = n.groupBy("g").agg(F.sum(n2).alias("n2")).collect()
        gb = n.groupBy("o").agg(F.sum(n2).alias("n2")).collect()
        return ((np.array([r["g"] for r in ga], dtype=object), np.array([r["n2"] for r in ga], dtype=float)),
                (np.array([r["o"] for r in gb], dtype=object), np.array([r["n2"] for r in gb], dtype=float)))


class MemoryEngine(Passes):
    """A pandas or polars DataFrame: the same passes by numpy (bincount over level codes),
    the in-memory reference the engines are checked against."""

    def __init__(self, data, **_):
        import pandas as pd

        if type(data).__module__.split(".")[0] == "polars":
            data = data.to_pandas()
        self.frame = pd.DataFrame(data) if isinstance(data, dict) else data

    def close(self):
        pass

    def open(self, group):
        return [str(c) for c in self.frame.columns]

    def numeric(self):
        return {str(c) for c, t in self.frame.dtypes.items() if t.kind in "iuf"}

    def means(self, plan):
        import pandas as pd

        f = self.frame
        vals = np.column_stack([f[c].to_numpy(dtype=float, na_value=np.nan) for c in (*plan.columns[1:], plan.columns[0])])
        miss = {c: int(f[c].isna().sum()) for c in (plan.group, plan.factors[0], *plan.columns)}
        infinite = {c: int(np.isinf(f[c].to_numpy(dtype=float, na_value=np.nan)).sum()) for c in plan.columns}
        keep = _complete(f, plan)
        self.codes = {}
        for c in (plan.group, plan.factors[0]):
            codes, labels = pd.factorize(f[c].to_numpy()[keep], sort=True)
            self.codes[c] = (codes, np.asarray(labels))
        self.vals = vals[keep]
        mu = self.vals.mean(axis=0) if keep.any() else np.zeros(vals.shape[1])
        return len(f), int(keep.sum()), miss, infinite, mu

    def level(self, factor):
        codes, labels = self.codes[factor]
        L = labels.size
        e = self.vals - self.mu
        m = e.shape[1]
        n = np.bincount(codes, minlength=L)
        sums = np.column_stack([np.bincount(codes, e[:, i], L) for i in range(m)])
        prods = {(i + 1, j + 1): np.bincount(codes, e[:, i] * e[:, j], L) for i in range(m) for j in range(i, m)}
        return labels, n, sums, prods

    def cross(self, by, labels, V):
        other = self.factors[1] if by == self.factors[0] else self.factors[0]
        codes, own = self.codes[by]
        oc, olab = self.codes[other]
        if not np.array_equal(olab, labels):
            raise InputError("internal: levels out of order")
        return own, np.column_stack([np.bincount(codes, V[oc, i], own.size) for i in range(V.shape[1])])

    def cells(self):
        (ca, la), (cb, lb) = (self.codes[f] for f in self.factors)
        cell, n = np.unique(ca.astype(np.int64) * lb.size + cb, return_counts=True)
        n2 = n.astype(float) ** 2
        return ((la, np.bincount(cell // lb.size, n2, la.size)), (lb, np.bincount(cell % lb.size, n2, lb.size)))


ENGINES = {"path": CrossedDuckDB, "duckdb": CrossedDuckDB, "arrow": CrossedDuckDB, "dask": CrossedDask,
           "spark": CrossedSpark, "pandas": MemoryEngine, "polars": MemoryEngine}
