"""A GLMM on data out of core: the rows reduced to counts where they live, then the
in-memory fit of the reduced table, which has exactly the row-level likelihood.

With a random intercept and categorical covariates (text, bool or categorical columns,
or numbers taking few values) every row of one (group, covariate pattern) cell has the
same linear predictor eta.  The cell's rows then contribute, as a function of eta:

* binomial (0/1 rows, or cbind(s, f)): S eta - T log(1 + e^eta) with S the successes and
  T the trials, i.e. one binomial row cbind(S, T - S);
* Poisson with offsets o_i: Y eta - E e^eta with Y = sum y_i and E = sum e^o_i, i.e. one
  Poisson count Y with offset log E.

What is left is a constant K = loglik(rows) - loglik(cells), free of every parameter:
the rows' log choose(m_i, s_i) (0 for 0/1 rows) against the cell's log choose(T, S); for
the Poisson sum y_i o_i - Y log E and the log y! terms.  The reduced fit is the row fit,
its loglik moved by K (and by the saturated models' difference on nAGQ > 1's scale and
for deviance()).  A binomial offset is part of the cell's key.

The engine (DuckDB for files, relations and SQL; Dask; Spark) runs one GROUP BY over
(group, covariates, [binomial offset], response values) with count(*) (and, for a
Poisson offset, sum(o) and sum(e^o)); the log-gamma constants and the checks (0/1, whole
non-negative counts) are then taken on that table in numpy, once per distinct value.
Before it, one pass counts each numeric covariate's distinct values: a continuous
covariate does not reduce and is refused (fit such data in memory).
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
from scipy.special import gammaln, xlogy

from ..errors import InputError
from ..glmm.result import GlmmResult
from ._kinds import kind_of

__all__ = ["glmer_out_of_core", "ReducedGlmmResult", "MAX_VALUES"]

MAX_VALUES = 1000  # a numeric covariate with more distinct values than this is continuous: refused
_NAME = re.compile(r"^`?([A-Za-z_.][A-Za-z0-9_.]*)`?$")
_LOG = re.compile(r"^log\(\s*`?([A-Za-z_.][A-Za-z0-9_.]*)`?\s*\)$")


@dataclasses.dataclass(frozen=True, eq=False)
class ReducedGlmmResult(GlmmResult):
    """A fit of counts per (group, covariate pattern) standing for the rows: loglik,
    deviance and nobs are the row-level fit's (``shift``: loglik(rows) - loglik(cells);
    ``dev_shift``: the same for deviance()); the fitted rows themselves are not here."""

    rows: int = 0
    shift: float = 0.0
    dev_shift: float = 0.0

    @property
    def loglik(self) -> float:
        return -0.5 * self.optimum.value + self.shift

    @property
    def deviance(self) -> float:
        return GlmmResult.deviance.fget(self) + self.dev_shift

    @property
    def nobs(self) -> int:
        return self.rows

    @property
    def cells(self) -> int:
        """Rows of the reduced table the fit ran on."""
        return int(self.problem.y.size)

    def predict(self, newdata=None, type: str = "link", random: bool = True) -> np.ndarray:
        if newdata is None:
            raise InputError("the rows were reduced to counts out of core: predict(newdata=...) for the rows "
                             "you want")
        return GlmmResult.predict(self, newdata, type, random)

    def summary(self) -> str:
        """lme4's summary, the scaled residuals (a quantile of the rows) left out."""
        text = GlmmResult.summary(self)
        start, end = text.find("Scaled residuals:"), text.find("Random effects:")
        note = "Scaled residuals: not computed (the rows were reduced to counts out of core)\n\n"
        return text[:start] + note + text[end:] if 0 <= start < end else text


def _response(lhs: str, family):
    """('y', [column]) for a 0/1 or count column, ('cbind', [s, f]) for cbind(s, f)."""
    m = re.fullmatch(r"\s*cbind\((.*),(.*)\)\s*", lhs)
    if m:
        if family.name != "binomial":
            raise InputError(f"{lhs}: cbind(successes, failures) is a binomial response; family is {family.name}")
        cols = [_NAME.match(a.strip()) for a in m.groups()]
        if None in cols:
            raise InputError(f"{lhs}: out of core, cbind() takes two column names")
        return "cbind", [c.group(1) for c in cols]
    col = _NAME.match(lhs.strip())
    if col is None:
        raise InputError(f"the response {lhs!r}: out of core, the response is a column (0/1 or counts) or "
                         "cbind(successes, failures) of two columns; compute expressions in the source first")
    return "y", [col.group(1)]


def _offset(offsets: list):
    """(column, logged?) of the one offset allowed out of core, or None."""
    if not offsets:
        return None
    if len(offsets) > 1:
        raise InputError("out of core, a GLMM takes one offset term: offset(t) or offset(log(t)) of a column")
    text = offsets[0].strip()
    for pattern, logged in ((_LOG, True), (_NAME, False)):
        m = pattern.match(text)
        if m:
            return m.group(1), logged
    raise InputError(f"offset({text}): out of core, an offset is a column or log(a column); compute others in the "
                     "source first")


@dataclasses.dataclass(frozen=True)
class Spec:
    """What the engine reads: the group, covariates (those numeric listed), the response
    columns, the offset (column, logged?) and whether it is summed (Poisson) or a key."""

    group: str
    covariates: tuple
    numeric: tuple
    response: tuple
    offset: tuple | None
    summed: bool

    @property
    def keys(self) -> list:
        """The GROUP BY columns, in the order the table comes back."""
        key_offset = [self.offset[0]] if self.offset and not self.summed else []
        return list(dict.fromkeys([self.group, *self.covariates, *key_offset, *self.response]))


def _covariates(rhs: str, group: str) -> list:
    from ..lmm.columns import variables
    from ..lmm.formula import parse

    f = parse(f"y__ ~ {rhs}")
    if f.several or len(f.blocks) != 1 or f.blocks[0][0].strip() != "1":
        raise InputError(f"out of core, a GLMM has one random intercept, (1 | {f.group}): {rhs!r}")
    if f.group != group:
        raise InputError(f"cannot read the grouping factor of {rhs!r}")
    return [v for v in variables(f"0 + {f.fixed}" if f.fixed.strip() else "1") if v != group]


def _finish(table, spec: Spec, kind: str, family, na_action: str):
    """The fine table (keys, n, [so, se]) -> (reduced pandas frame, K, SAT_rows, rows kept,
    rows dropped), the response checked value by value."""
    import pandas as pd

    n = table["n"].to_numpy(dtype=float)
    miss = np.zeros(len(table), dtype=bool)
    for c in spec.keys:
        miss |= table[c].isna().to_numpy()
    for c in (*spec.numeric, *spec.response):
        v = table[c].to_numpy(dtype=float, na_value=np.nan)
        if np.isinf(v).any():
            raise InputError(f"column {c!r} has {int(n[np.isinf(v)].sum())} infinite value(s)")
    dropped = int(n[miss].sum())
    if dropped and na_action == "raise":
        raise InputError(f"missing values (NULL or NaN) in {dropped} row(s) of the columns the formula uses")
    t = table[~miss].reset_index(drop=True)
    n = n[~miss]
    if n.size == 0:
        raise InputError("no complete rows: no observations to fit")
    r = [t[c].to_numpy(dtype=float) for c in spec.response]
    for v, c in zip(r, spec.response):
        bad = (v < 0) | (v != np.round(v))
        if bad.any():
            raise InputError(f"column {c!r} must hold whole non-negative counts: {float(v[bad][0])!r} "
                             f"({int(n[bad].sum())} row(s))")
    if kind == "y" and family.name == "binomial" and (r[0] > 1).any():
        v = r[0][r[0] > 1]
        raise InputError(f"the response {spec.response[0]!r} must be 0 or 1 (or give cbind(successes, failures)): "
                         f"{float(v[0])!r} ({int(n[r[0] > 1].sum())} row(s))")
    cells = [spec.group, *spec.covariates] + ([spec.offset[0]] if spec.offset and not spec.summed else [])
    out = t[cells].copy()
    for c in cells:  # an engine's string column (pyarrow-backed, say) as the in-memory coder reads text
        if not isinstance(out[c].dtype, pd.CategoricalDtype) and getattr(out[c].dtype, "kind", "O") not in "biuf":
            out[c] = out[c].astype(object)
    if family.name == "binomial":
        s, f = (r[0], 1 - r[0]) if kind == "y" else (r[0], r[1])
        c_rows = gammaln(s + f + 1) - gammaln(s + 1) - gammaln(f + 1)
        with np.errstate(all="ignore"):
            sat = c_rows + np.where(s + f > 0, xlogy(s, s / (s + f)) + xlogy(f, f / (s + f)), 0.0)
        out["__s"], out["__f"] = n * s, n * f
    else:
        y = r[0]
        c_rows = -gammaln(y + 1)
        sat = xlogy(y, y) - y - gammaln(y + 1)
        out["__y"] = n * y
        out["__e"] = t["se"].to_numpy(dtype=float) if spec.offset else n
        out["__yo"] = y * t["so"].to_numpy(dtype=float) if spec.offset else 0.0
    reduced = out.groupby(cells, sort=False, dropna=False, observed=True).sum().reset_index()
    return reduced, float(np.sum(n * c_rows)), float(np.sum(n * sat)), int(n.sum()), dropped


def _names(reduced, avoid) -> dict:
    """Placeholder names for the reduced response columns, clear of the data's."""
    out = {}
    for c in ("__s", "__f", "__y", "__e", "__yo"):
        name = f"shrinkage{c}"
        while name in avoid:
            name += "_"
        out[c] = name
    return out


def glmer_out_of_core(formula: str, data, family="binomial", nagq: int = 1, *, weights=None,
                      na_action: str = "omit", connection=None, sql=None):
    """glmer of ``data`` out of core (see the module's text): a path, DuckDB relation or
    SQL query, Dask or PySpark DataFrame."""
    from ..glmm.family import family_of
    from ..glmm.fit import NAGQ_MAX, glmer
    from ..glmm.response import split
    from ._kinds import describe
    from ._glmm_engines import ENGINES

    family = family_of(family)
    if isinstance(nagq, bool) or not isinstance(nagq, (int, np.integer)) or not 1 <= nagq <= NAGQ_MAX:
        raise InputError(f"nagq must be a whole number from 1 to {NAGQ_MAX} (1: Laplace), got {nagq!r}")
    if weights is not None:
        raise InputError("weights= out of core: give the counts as cbind(successes, failures) instead")
    if na_action not in ("omit", "raise"):
        raise InputError(f"na_action must be 'omit' or 'raise', got {na_action!r}")
    lhs, rhs, offsets = split(formula)
    kind, response = _response(lhs, family)
    offset = _offset(offsets)
    group = re.search(r"\|\s*`?([^)`]+?)`?\s*\)", rhs)
    if group is None:
        raise InputError(f"{formula!r}: a GLMM needs a random intercept, (1 | g)")
    covariates = _covariates(rhs, group.group(1).strip())
    engine = ENGINES[kind_of(data)](data, connection=connection, sql=sql)
    try:
        names = engine.open()
        used = [group.group(1).strip(), *covariates, *response] + ([offset[0]] if offset else [])
        for c in used:
            if c not in names:
                raise InputError(f"column {c!r} is not in the data (columns: {', '.join(map(str, names))})")
        numeric = tuple(c for c in covariates if engine.is_numeric(c))
        spec = Spec(used[0], tuple(covariates), numeric, tuple(response), offset, family.name == "poisson")
        engine.check(spec, MAX_VALUES)
        table = engine.table(spec)
    finally:
        engine.close()
    reduced, c_rows, sat_rows, rows, dropped = _finish(table, spec, kind, family, na_action)
    nm = _names(reduced, set(map(str, reduced.columns)))
    reduced = reduced.rename(columns=nm)
    if family.name == "binomial":
        extra = f" + offset(`{offset[0]}`)" if offset else ""
        inner = f"cbind(`{nm['__s']}`, `{nm['__f']}`) ~ {rhs}{extra}"
    else:
        inner = f"`{nm['__y']}` ~ {rhs} + offset(log(`{nm['__e']}`))"
    fit = glmer(inner, reduced, family, nagq, na_action=na_action)
    pr = fit.problem
    k = c_rows - pr.constant
    if family.name == "poisson":
        k += float(reduced[nm["__yo"]].sum() - np.sum(pr.y * np.log(reduced[nm["__e"]].to_numpy(dtype=float))))
    sat_cells = float(np.sum(pr.family.constant(pr.y, pr.m) + pr.m * (xlogy(pr.y, pr.y) - pr.y)
                             if family.name == "poisson" else
                             pr.family.constant(pr.y, pr.m) + pr.m * (xlogy(pr.y, pr.y) + xlogy(1 - pr.y, 1 - pr.y))))
    dev_shift = 2 * (sat_rows - sat_cells - k)
    fields = {f.name: getattr(fit, f.name) for f in dataclasses.fields(GlmmResult)}
    fields.update(formula=formula, data=describe(data), dropped=dropped, offsets=tuple(offsets))
    return ReducedGlmmResult(**fields, rows=rows, shift=k if nagq == 1 else -(sat_rows - sat_cells - k),
                             dev_shift=dev_shift)
