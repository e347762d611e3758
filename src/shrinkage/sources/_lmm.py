"""Per-group cross-products of the covariate / random-slope model, computed by an engine.

For ``y ~ x1 + x2 + (x1 | g)`` on data out of core (a file, a DuckDB relation or SQL
query, a Dask or PySpark DataFrame) the engine does two passes, and only O(J) numbers
come back:

1. the overall means mu_a of the model's distinct columns a (each a numeric column or a
   product of numeric columns, e.g. ``x1:x2``) and of y, over the complete rows;
2. GROUP BY g: n_j, sum(e_a) and sum(e_a e_b) for every pair, where e_a = a - mu_a.

These are the per-group moment matrices M_j = A_j'A_j of A = [1, e_1 .. e_m, e_y], the
same matrices :func:`shrinkage.lmm.crossprod.cross_products` builds in memory, so the
:class:`~shrinkage.lmm.CrossProducts` are assembled exactly as there (X centred when it
has an intercept, Z raw).  Centring first keeps digits: at y ~ 1e8 with unit noise the
raw sums of squares would need 16 digits just to hold the noise (tests show it).  Sums
about the same centres merge by addition, so the engine's own partial aggregation is
exact.

Formulas out of core: numeric columns and products of them (``x1*x2``, ``x1:x2``), in
the fixed part and in each bar term, with or without intercept.  Factors, transforms and
``I(...)`` are refused naming the term: code such columns as numbers first (or load the
columns into a DataFrame).  Rows with a missing value (NULL, NaN) in a column the formula
uses are dropped and counted (lme4's na.omit) or refused with ``na_action="raise"``;
infinite values are refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = ["Plan", "plan_of", "assemble", "formula_cross_products"]


@dataclass(frozen=True)
class Plan:
    """What an engine computes: ``columns`` the numeric input columns (cast to double),
    ``terms`` the distinct non-constant model columns as products of input columns
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

    @property
    def m(self) -> int:
        """Number of non-constant columns of A (terms and y)."""
        return len(self.terms) + 1

    def pairs(self):
        """(a, b), 1 <= a <= b <= m: the products summed per group."""
        return [(a, b) for a in range(1, self.m + 1) for b in range(a, self.m + 1)]

    def factors(self, a: int) -> tuple:
        """Input columns whose product is A's column a (y for a = m)."""
        return (self.response,) if a == self.m else self.terms[a - 1]


def _part(text: str, meta, what: str):
    """PlainColumns of one formula part, or a clear refusal naming what is not numeric."""
    from ..lmm.columns import PlainColumns, variables

    spec = PlainColumns.of(text, meta)
    if spec is not None:
        return spec
    for v in variables(f"0 + {text}" if text.strip() else "1"):
        if v not in meta.columns:
            raise InputError(f"{what}: column {v!r} is not in the data (columns: {', '.join(map(str, meta.columns))})")
        if meta[v].dtype.kind not in "iuf":
            raise InputError(f"{what}: column {v!r} is not numeric ({meta[v].dtype}); out of core, formulas use "
                             "numeric columns and their products (x1 + x2 + x1:x2); code factors as 0/1 columns "
                             "first, or load the columns into a DataFrame")
    raise InputError(f"{what} ({text!r}): out of core, formulas use numeric columns and their products only "
                     "(no transforms, I(...) or factors); compute such columns in the source first")


def plan_of(f, meta) -> Plan:
    """The plan of a parsed formula (:class:`shrinkage.lmm.formula.LmmFormula`) on a
    schema given as an empty pandas frame ``meta``."""
    from ..lmm.columns import PlainColumns, lme4_name

    for name, what in ((f.response, "the response"), (f.group, "the grouping factor")):
        if name not in meta.columns:
            raise InputError(f"{what} {name!r} is not a column of the data "
                             f"(columns: {', '.join(map(str, meta.columns))})")
    if meta[f.response].dtype.kind not in "iuf":
        raise InputError(f"the response {f.response!r} is not numeric ({meta[f.response].dtype})")
    x_spec = _part(f.fixed, meta, "the fixed part")
    z_terms, z_names, blocks = [], [], []
    for expr, correlated in f.blocks:
        spec = _part(expr, meta, f"the random part ({expr} | {f.group})")
        z_terms.extend(spec.terms)
        z_names.extend(lme4_name(c, spec) for c in spec.names)
        blocks.extend([len(spec.terms)] if correlated else [1] * len(spec.terms))
    if len(set(z_names)) != len(z_names):
        raise InputError(f"the random part repeats a column ({', '.join(z_names)}) for {f.group!r}")
    terms: list = []

    def locate(t) -> int:
        if not t:
            return 0
        if t not in terms:
            terms.append(t)
        return terms.index(t) + 1

    where_x = tuple(locate(t) for t in x_spec.terms)
    where_z = tuple(locate(t) for t in z_terms)
    assert isinstance(x_spec, PlainColumns)
    columns = tuple(dict.fromkeys([f.response, *(v for t in terms for v in t)]))
    if f.group in columns:
        raise InputError(f"the grouping factor {f.group!r} is also used as a covariate")
    return Plan(f.response, f.group, columns, tuple(terms), where_x, where_z,
                tuple(lme4_name(c, x_spec) for c in x_spec.names), tuple(z_names), tuple(blocks))


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


def _express(where, means, centred: bool, k: int) -> np.ndarray:
    """G with A @ G = the columns at ``where`` (centred, or raw: e_a + mu_a * 1)."""
    G = np.zeros((k, len(where)))
    for j, w in enumerate(where):
        G[w, j] = 1.0
        if w and not centred:
            G[0, j] = means[w]
    return G


def assemble(plan: Plan, labels, n, sums, prods, centres):
    """CrossProducts from the engine's per-group n (J,), sums (J, m) of e_a and prods
    {(a, b): (J,)} of e_a e_b, about ``centres`` (m,) = the mu_a used."""
    from ..lmm.crossprod import CrossProducts, _ro

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
    total = M.sum(axis=0)
    means = np.concatenate([[0.0], np.asarray(centres, dtype=float)])
    ones = [j for j, w in enumerate(plan.where_x) if w == 0]
    intercept = ones[0] if ones else None
    centre = intercept is not None
    Gx, Gz = _express(plan.where_x, means, centre, k), _express(plan.where_z, means, False, k)
    gy = _express((m,), means, centre, k)[:, 0]
    MGz = M @ Gz
    x_centre = np.array([means[w] if (centre and w) else 0.0 for w in plan.where_x])
    return CrossProducts(
        labels=_ro(labels[order]), n=_ro(np.asarray(n, dtype=np.int64)[order]),
        XtX=_ro(Gx.T @ total @ Gx), XtZ=_ro(Gx.T @ MGz), ZtZ=_ro(Gz.T @ MGz), Xty=_ro(Gx.T @ total @ gy),
        Zty=_ro(MGz.transpose(0, 2, 1) @ gy), yty=float(gy @ total @ gy),
        x_names=plan.x_names, z_names=plan.z_names, x_centre=_ro(x_centre),
        y_centre=float(means[m]) if centre else 0.0, intercept=intercept)


def formula_cross_products(data, f, *, na_action: str = "omit", connection=None, progress=None):
    """(CrossProducts, Z's block sizes, rows dropped) of the parsed formula ``f`` on
    out-of-core ``data``: the one call shrinkage.lmm.fit_formula makes."""
    from . import _kind
    from ._lmm_engines import ENGINES

    if na_action not in ("omit", "raise"):
        raise InputError(f"na_action must be 'omit' or 'raise', got {na_action!r}")
    kind = _kind(data)
    if kind not in ENGINES:
        raise InputError(f"data of type {type(data).__name__} are in memory: fit them with shrinkage.lmm.lmer")
    engine = ENGINES[kind](data, connection=connection, progress=progress)
    try:
        plan = plan_of(f, engine.schema(f.group))
        rows, kept, missing, infinite, centres = engine.means(plan)
        check_counts(missing, infinite, na_action)
        if kept == 0:
            raise InputError(f"no complete rows: every one of the {rows} rows has a missing value "
                             "in a column the formula uses")
        labels, n, sums, prods = engine.moments(plan, centres)
    finally:
        engine.close()
    return assemble(plan, labels, n, sums, prods, centres), plan.blocks, rows - kept
