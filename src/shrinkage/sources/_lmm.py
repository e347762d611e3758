"""Per-group cross-products of the covariate / random-slope model, computed by an engine.

For ``y ~ x1 + x2 + (x1 | g)`` on data out of core (a file, a DuckDB relation or SQL
query, a Dask or PySpark DataFrame) the engine does two passes, and only O(J) numbers
come back:

1. the overall means mu_a of the model's distinct columns a (each a numeric column, a
   factor's indicator, or a product of them, e.g. ``x1:x2``, ``x1:fB``) and of y, over
   the complete rows;
2. GROUP BY g: n_j, sum(e_a) and sum(e_a e_b) for every pair, where e_a = a - mu_a.

These are the per-group moment matrices M_j = A_j'A_j of A = [1, e_1 .. e_m, e_y], the
same matrices :func:`shrinkage.lmm.crossprod.cross_products` builds in memory, so the
:class:`~shrinkage.lmm.CrossProducts` are assembled exactly as there (X and Z centred
when they have an intercept).  Centring first keeps digits: at y ~ 1e8 with unit noise the
raw sums of squares would need 16 digits just to hold the noise (tests show it).  Sums
about the same centres merge by addition, so the engine's own partial aggregation is
exact.

Formulas out of core: numeric columns, factors (text or categorical columns) and products
of them (``x1*x2``, ``x1:f``), in the fixed part and in each bar term, with or without
intercept.  A factor's levels are fetched first (SELECT DISTINCT, sorted as Python sorts)
and its columns become indicators (f = level) in the engine; formulaic codes a few
prototype rows to decide which (treatment contrasts, lme4's names), as it does in memory.
Transforms and ``I(...)`` are refused naming the column: compute them in the source.
Rows with a missing value (NULL, NaN, pandas NA; a NaN label too) in a column the
formula uses are dropped and counted (lme4's na.omit) or refused with
``na_action="raise"``; infinite values are refused.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..lmm.columns import PlainColumns, lme4_name, variables
from ..lmm.crossprod import from_products
from ._kinds import kind_of
from ._lmm_engines import ENGINES

__all__ = ["Plan", "plan_of", "assemble", "formula_cross_products"]


@dataclass(frozen=True)
class Plan:
    """What an engine computes: ``columns`` the numeric input columns (cast to double),
    ``factors`` the factor columns, ``terms`` the distinct non-constant model columns as
    products of input columns and (factor, level) indicators
    (index a = 1..m-1 in A; y is index m), where X's and Z's columns sit in A (0: the
    constant), lme4 names and Z's block sizes."""

    response: str
    group: str
    columns: tuple
    terms: tuple
    where_x: tuple
    where_z: tuple
    x_names: tuple
    z_names: tuple
    blocks: tuple
    factors: tuple = ()  # factor columns (a row missing one is dropped like a missing number)

    @property
    def m(self) -> int:
        """Number of non-constant columns of A (terms and y)."""
        return len(self.terms) + 1

    def pairs(self):
        """(a, b), 1 <= a <= b <= m: the products summed per group."""
        return [(a, b) for a in range(1, self.m + 1) for b in range(a, self.m + 1)]

    def pieces(self, a: int) -> tuple:
        """What A's column a is the product of: numeric input columns and (factor, level)
        indicators (y for a = m)."""
        return (self.response,) if a == self.m else self.terms[a - 1]


FACTOR_KINDS = "OSUb"  # object, string, bool and categorical columns are factors (their levels fetched first)


def _is_factor(meta, v) -> bool:
    import pandas as pd

    return isinstance(meta[v].dtype, pd.CategoricalDtype) or meta[v].dtype.kind in FACTOR_KINDS


def factor_columns(f, meta) -> list:
    """The factor columns a formula's fixed and random parts use (levels needed first)."""
    used = dict.fromkeys(variables(f"0 + {f.fixed}" if f.fixed.strip() else "1"))
    for expr, _ in f.blocks:
        used.update(dict.fromkeys(variables(expr)))
    if f.group in used:
        raise InputError(f"the grouping factor {f.group!r} is also used as a covariate")
    return [v for v in used if v in meta.columns and _is_factor(meta, v)]


def _tokens(name: str, meta, levels: dict, what: str, text: str) -> tuple:
    """formulaic's column name -> its factors: numeric column names and (factor, level)
    indicators, e.g. 'x1:f[T.b]' -> ('x1', ('f', 'b')).  Anything else (a transform) is
    refused."""
    cands = [(v, v) for v in meta.columns if meta[v].dtype.kind in "iuf"]
    for fac, levs in levels.items():
        for lev in levs:
            cands += [(f"{fac}[T.{lev}]", (fac, lev)), (f"{fac}[{lev}]", (fac, lev))]
    cands.sort(key=lambda c: -len(c[0]))
    out, i = [], 0
    while i < len(name):
        for token, factor in cands:
            end = i + len(token)
            if name.startswith(token, i) and (end == len(name) or name[end] == ":"):
                out.append(factor)
                i = end + 1
                break
        else:
            raise InputError(f"{what} ({text!r}): column {name!r} is not a numeric column, a factor's indicator or "
                             "a product of them; out of core, compute transforms and I(...) in the source first")
    return tuple(out)


def _part(text: str, meta, what: str, levels: dict, aliased: bool = False):
    """(terms, lme4 names, columns per formula term) of one formula part: a term is a tuple of numeric column names
    and (factor, level) indicators, () the intercept.  Factors are coded by formulaic on
    a few prototype rows holding every level, so columns and names are lme4's (treatment
    contrasts, reference = the first sorted level), as in memory."""
    import formulaic
    import pandas as pd

    # formulaic reads a column named a`b as `a\\`b`: under that alias (as lmm.columns.as_factors adds it in
    # memory), mapped back to the real column for the engine
    real = {str(c).replace("`", "\\`"): c for c in meta.columns if "`" in str(c)}
    if real and not aliased:
        terms, names, sizes = _part(text, meta.assign(**{e: meta[c] for e, c in real.items()}), what,
                                    {**levels, **{e: levels[c] for e, c in real.items() if c in levels}}, True)
        unescape = lambda v: real.get(v, v) if isinstance(v, str) else (real.get(v[0], v[0]), v[1])  # noqa: E731
        return [tuple(unescape(v) for v in t) for t in terms], names, sizes
    spec = PlainColumns.of(text, meta)
    if spec is not None:
        return list(spec.terms), [lme4_name(c, spec) for c in spec.names], [1] * len(spec.terms)
    for v in variables(f"0 + {text}" if text.strip() else "1"):
        if v not in meta.columns:
            raise InputError(f"{what}: column {v!r} is not in the data (columns: {', '.join(map(str, meta.columns))})")
        if meta[v].dtype.kind not in "iuf" and v not in levels:
            raise InputError(f"{what}: column {v!r} ({meta[v].dtype}) is neither numeric nor a text/categorical "
                             "factor; out of core, formulas use numeric columns, factors and their products")
    rows = max([2] + [len(v) for v in levels.values()])
    proto = {}
    for c in meta.columns:
        if c in levels:
            proto[c] = pd.Categorical([levels[c][k % len(levels[c])] for k in range(rows)], categories=levels[c])
        elif meta[c].dtype.kind in "iuf":
            proto[c] = np.arange(1.0, rows + 1)
    proto = pd.DataFrame(proto)
    try:
        mm = formulaic.model_matrix(text, proto, na_action="ignore")
    except Exception as exc:  # noqa: BLE001 - formulaic's own errors
        raise InputError(f"cannot code {what} ({text!r}) out of core: {exc}") from None
    spec = mm.model_spec
    terms = [() if c == "Intercept" else _tokens(c, meta, levels, what, text) for c in mm.columns]
    return terms, [lme4_name(c, spec) for c in mm.columns], [len(t.columns) for t in spec.structure]


def plan_of(f, meta, levels: dict | None = None) -> Plan:
    """The plan of a parsed formula (:class:`shrinkage.lmm.formula.LmmFormula`) on a
    schema given as an empty pandas frame ``meta``; ``levels``: the sorted levels of
    every factor column the formula uses (see :func:`factor_columns`)."""
    levels = levels or {}
    for name, what in ((f.response, "the response"), (f.group, "the grouping factor")):
        if name not in meta.columns:
            raise InputError(f"{what} {name!r} is not a column of the data "
                             f"(columns: {', '.join(map(str, meta.columns))})")
    if meta[f.response].dtype.kind not in "iuf":
        raise InputError(f"the response {f.response!r} is not numeric ({meta[f.response].dtype})")
    x_terms, x_names, _ = _part(f.fixed, meta, "the fixed part", levels)
    z_terms, z_names, blocks = [], [], []
    for expr, correlated in f.blocks:
        t, names, sizes = _part(expr, meta, f"the random part ({expr} | {f.group})", levels)
        z_terms.extend(t)
        z_names.extend(names)
        blocks.extend([len(t)] if correlated else sizes)  # (x + f || g) as lme4 expands it: one block per term
    if len(set(z_names)) != len(z_names):
        raise InputError(f"the random part repeats a column ({', '.join(z_names)}) for {f.group!r}")
    terms: list = []

    def locate(t) -> int:
        if not t:
            return 0
        if t not in terms:
            terms.append(t)
        return terms.index(t) + 1

    where_x = tuple(locate(t) for t in x_terms)
    where_z = tuple(locate(t) for t in z_terms)
    columns = tuple(dict.fromkeys([f.response, *(v for t in terms for v in t if isinstance(v, str))]))
    factors = tuple(dict.fromkeys(v[0] for t in terms for v in t if not isinstance(v, str)))
    if f.group in columns or f.group in factors:
        raise InputError(f"the grouping factor {f.group!r} is also used as a covariate")
    return Plan(f.response, f.group, columns, tuple(terms), where_x, where_z, tuple(x_names), tuple(z_names),
                tuple(blocks), factors)


MAX_SUMS = 2_000  # refused past this: 60 levels (1 891 sums) took 39 s on Parquet, 190 levels crashed DuckDB (SIGFPE)


def check_size(plan: Plan) -> None:
    """Refuse, before any query, a model whose per-group sums of every pair of columns
    would not finish (a factor with many levels in the fixed part: half a million sums,
    over 10 minutes and 5 GB for 1000 levels), saying what to do instead."""
    sums = plan.m * (plan.m + 1) // 2
    if sums > MAX_SUMS:
        raise InputError(f"out of core, the formula's {plan.m - 1} model columns (and the response) need {sums} "
                         f"sums per group of {plan.group!r}, more than {MAX_SUMS}: fit the data in memory "
                         "(shrinkage.fit(formula, data=<a pandas or polars DataFrame>)), or use a factor with "
                         "fewer levels")


def check_counts(missing: dict, infinite: dict, na_action: str) -> None:
    """Refuse infinite values, and missing ones under na_action='raise' (counts per
    input column and the group, from the engine's first pass)."""
    for c, k in infinite.items():
        if k:
            raise InputError(f"column {c!r} has {k} infinite value(s)")
    bad = {c: k for c, k in missing.items() if k}
    if bad and na_action == "raise":
        raise InputError("missing values (NULL or NaN) in "
                         + ", ".join(f"column {c!r} ({k} row(s))" for c, k in bad.items()))


def assemble(plan: Plan, labels, n, sums, prods, centres):
    """CrossProducts from the engine's per-group n (J,), sums (J, m) of e_a and prods
    {(a, b): (J,)} of e_a e_b, about ``centres`` (m,) = the mu_a used."""
    labels = np.asarray(labels)
    if labels.size == 0:
        raise InputError("no complete rows: no observations to fit")
    try:
        order = np.argsort(labels, kind="stable")
    except TypeError:
        raise InputError(f"labels of the grouping factor {plan.group!r} cannot be sorted (mixed types?)") from None
    m, J = plan.m, labels.size
    k = m + 1
    M = np.empty((J, k, k))
    M[:, 0, 0] = np.asarray(n, dtype=float)
    M[:, 0, 1:] = M[:, 1:, 0] = np.asarray(sums, dtype=float)
    for (a, b), v in prods.items():
        M[:, a, b] = M[:, b, a] = v
    M = M[order]
    if not np.isfinite(M).all():
        raise InputError("the cross-products overflow (values too large to square in floating point)")
    means = np.concatenate([[0.0], np.asarray(centres, dtype=float)])
    return from_products(labels[order], np.asarray(n)[order], M, list(range(k)), M.sum(axis=0), means,
                         plan.where_x, plan.where_z, plan.x_names, plan.z_names)


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _simple(text: str) -> tuple | None:
    """A formula part that is only column names and 1 or 0 joined by + ('1', 'x1 + x2',
    '0 + x'), as (intercept, names in order, once each); None for anything else (products,
    factors, transforms, '-1'), which formulaic codes.  Needs neither formulaic nor pandas
    (each loads some 70 MB; y ~ 1 + (1 | g) out of core needs neither)."""
    words = [w.strip() for w in text.split("+")]
    if not all(w in ("0", "1") or _NAME.fullmatch(w) and not keyword.iskeyword(w) for w in words):
        return None
    return "0" not in words, list(dict.fromkeys(w for w in words if w not in ("0", "1")))


def simple_plan(f, names: list, numeric: set) -> Plan | None:
    """The plan of a formula whose parts are all :func:`_simple` on numeric columns, as
    :func:`plan_of` makes it (the same terms, names and blocks: lme4's order, the
    intercept first); None when :func:`plan_of` must decide (or name what is wrong)."""
    parts = [_simple(f.fixed)] + [_simple(expr) for expr, _ in f.blocks]
    if None in parts or f.response not in numeric or f.group not in names:
        return None
    used = {v for _, vs in parts for v in vs}
    if not used <= numeric or f.group in used:
        return None
    terms = list(dict.fromkeys((v,) for _, vs in parts for v in vs))
    where = [[0] * one + [terms.index((v,)) + 1 for v in vs] for one, vs in parts]
    named = [["(Intercept)"] * one + vs for one, vs in parts]
    blocks = []
    for w, (_, correlated) in zip(where[1:], f.blocks):
        blocks += [len(w)] if correlated else [1] * len(w)  # (x || g): a block per term, as lme4 expands it
    z_names = [n for ns in named[1:] for n in ns]
    if len(set(z_names)) != len(z_names):
        return None
    columns = tuple(dict.fromkeys([f.response, *(t[0] for t in terms)]))
    return Plan(f.response, f.group, columns, tuple(terms), tuple(where[0]), tuple(w for ws in where[1:] for w in ws),
                tuple(named[0]), tuple(z_names), tuple(blocks))


def _used(f) -> list:
    """The columns the formula reads (formulaic's parser only when a part is not simple)."""
    parts = [f.fixed] + [expr for expr, _ in f.blocks]
    simple = [_simple(p) for p in parts]
    if None not in simple:
        return [v for _, vs in simple for v in vs]
    return [v for p in parts for v in variables(f"0 + {p}" if p.strip() else "1")]


def refuse_repeated(f, names) -> None:
    """A column the formula uses that the data hold twice under one name is refused
    naming it (which one to read would be a guess)."""
    names = [str(n) for n in names]
    for v in dict.fromkeys([f.response, f.group, *_used(f)]):
        if names.count(v) > 1:
            raise InputError(f"the data have {names.count(v)} columns named {v!r}: rename them so that "
                             "each column the formula uses has a name of its own")


def formula_cross_products(data, f, *, na_action: str = "omit", connection=None, sql=None, progress=None):
    """(CrossProducts, Z's block sizes, rows dropped) of the parsed formula ``f`` on
    out-of-core ``data``: the one call shrinkage.lmm.fit_formula makes."""
    if na_action not in ("omit", "raise"):
        raise InputError(f"na_action must be 'omit' or 'raise', got {na_action!r}")
    kind = kind_of(data)
    if kind not in ENGINES:
        raise InputError(f"data of type {type(data).__name__} are in memory: fit them with shrinkage.lmm.lmer")
    engine = ENGINES[kind](data, connection=connection, sql=sql, progress=progress)
    try:
        names = engine.open(f.group)
        refuse_repeated(f, names)
        plan = simple_plan(f, names, engine.numeric())
        if plan is None:
            meta = engine.schema()
            plan = plan_of(f, meta, {v: engine.levels(v) for v in factor_columns(f, meta)})
        check_size(plan)
        rows, kept, missing, infinite, centres = engine.means(plan)
        check_counts(missing, infinite, na_action)
        if kept == 0:
            raise InputError(f"no complete rows: every one of the {rows} rows has a missing value "
                             "in a column the formula uses")
        labels, n, sums, prods = engine.moments(plan, centres)
    finally:
        engine.close()
    return assemble(plan, labels, n, sums, prods, centres), plan.blocks, rows - kept
