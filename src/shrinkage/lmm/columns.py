"""Coding a data frame's columns for a formula part, with lme4's names.

A part made only of numeric columns (and their products) is taken from the frame as it
is (:class:`PlainColumns`: no copy, the fast path for large data); anything else
(factors, transforms, I(...)) is coded by formulaic.  Also: missing values, the grouping
factor's codes, and the data types accepted (pandas, polars, a mapping).
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from ..errors import InputError

__all__ = ["PlainColumns", "lme4_name", "dense", "columns_of", "missing_mask", "group_codes", "to_pandas",
           "variables", "as_factors"]


def _level(level) -> str:
    """A level as R prints it in a column name: a logical's levels are FALSE and TRUE
    (lme4 names a bool covariate b as bTRUE)."""
    return ("TRUE" if level else "FALSE") if isinstance(level, (bool, np.bool_)) else str(level)


def lme4_name(column: str, spec) -> str:
    """formulaic's column name in lme4's spelling: Intercept -> (Intercept),
    Machine[T.B] -> MachineB, Days:Machine[T.B] -> Days:MachineB, b[T.True] -> bTRUE;
    a backtick escaped in a quoted name (`a\\`b`) is the name's own backtick."""
    if column == "Intercept":
        return "(Intercept)"
    name = column.replace("\\`", "`")
    state = getattr(spec, "encoder_state", {}) or {}
    for factor in sorted(state, key=len, reverse=True):
        kind, info = state[factor]
        levels = info.get("categories") if isinstance(info, dict) else None
        if levels and f"{factor}[".replace("\\`", "`") in name:
            pattern, names = _level_codes(factor, tuple(levels), tuple(map(type, levels)))  # (True == 1)
            name = pattern.sub(lambda m: names[m.group(0)], name)
    return name


@lru_cache(maxsize=64)
def _level_codes(factor: str, levels: tuple, types: tuple):
    """One pattern for all a factor's codes (longest first) and each code's lme4 name: a
    replace per level per column cost O(levels^2) for a factor's columns (12 s at 1000)."""
    names: dict = {}
    for level in levels:
        for code in (f"{factor}[T.{level}]", f"{factor}[{level}]"):
            names.setdefault(code.replace("\\`", "`"), f"{factor}{_level(level)}".replace("\\`", "`"))
    return re.compile("|".join(map(re.escape, sorted(names, key=len, reverse=True)))), names


def dense(columns: list, n: int) -> np.ndarray:
    """The matrix of a list of columns (None: the intercept, a column of ones)."""
    out = np.empty((len(columns), n)).T
    for k, c in enumerate(columns):
        out[:, k] = 1.0 if c is None else c
    return out


def to_pandas(data, columns):
    """A pandas DataFrame holding the columns the formula uses (pandas frames are used as
    they are, polars frames converted column by column, a mapping made a frame)."""
    import pandas as pd

    module = type(data).__module__.split(".")[0]
    if module == "polars":
        names = list(data.collect_schema().names())  # a LazyFrame too: only the columns used are collected
    elif isinstance(data, pd.DataFrame):
        names = list(data.columns)
    elif isinstance(data, dict):
        try:
            data = pd.DataFrame(data)
        except ValueError as exc:
            raise InputError(f"data: cannot make a table of the columns given: {exc}") from None
        names = list(data.columns)
    else:
        raise InputError(f"data must be a pandas or polars DataFrame (or a dict of columns), got {type(data).__name__}")
    missing = [c for c in columns if c not in names]
    if missing:
        raise InputError(f"column(s) {', '.join(map(repr, missing))} not in the data "
                         f"(columns: {', '.join(map(str, names))})")
    for c in columns:
        if names.count(c) > 1:
            raise InputError(f"the data have {names.count(c)} columns named {c!r}: rename them so that each "
                             "column the formula uses has a name of its own")
    if module == "polars":
        picked = data.select(columns)
        return (picked.collect() if type(data).__name__ == "LazyFrame" else picked).to_pandas()
    return data


@lru_cache(maxsize=256)
def _formula(text: str):
    """formulaic's parse of a formula or a part, once per text (a parse costs about 1 ms,
    and a fit asks for each part several times)."""
    import formulaic

    try:
        return formulaic.Formula(text)
    except Exception as exc:  # noqa: BLE001 - formulaic's syntax errors
        raise InputError(f"cannot parse {text!r}: {exc}") from None


def _factors(formula):
    """Every factor of a formula (or of each side of a structured one)."""
    from formulaic.formula import SimpleFormula

    if not isinstance(formula, SimpleFormula):
        for part in formula:
            yield from _factors(part)
        return
    for term in formula:
        yield from term.factors


def variables(text: str) -> list:
    """The data columns a formula part reads: a looked-up name as it is (a dotted name
    such as Sepal.Length, a backticked one with spaces, '|' or '~', an escaped backtick
    unescaped: formulaic's own list would read Sepal.Length as attribute access), and the
    variables of Python expressions such as np.log(x) as formulaic finds them."""
    from formulaic.parser.types import Factor
    from formulaic.utils.variables import get_expression_variables

    formula = _formula(text)
    found = {str(v) for v in formula.required_variables}
    out = set()
    for factor in _factors(formula):
        if factor.eval_method == Factor.EvalMethod.LOOKUP:
            out.add(factor.expr.replace("\\`", "`"))
        elif factor.eval_method == Factor.EvalMethod.PYTHON:
            out |= found & {str(v) for v in get_expression_variables(factor.expr, {})}
    return sorted(out)


def as_factors(frame, columns):
    """The frame as lme4's model.frame codes it: a bool column is a factor (levels FALSE,
    TRUE: lme4 names its column bTRUE), a categorical column loses its unused levels
    (lme4 drops them silently: no column of zeros).  A column a formula reads under an
    escaped name (`a\\`b`) gets that name too.  The frame itself when nothing changes."""
    import pandas as pd

    changes = {}
    for c in columns:
        col = frame[c]
        if col.dtype.kind == "b":
            changes[c] = pd.Categorical(col.to_numpy(), categories=sorted(set(col.to_numpy().tolist())))
        elif isinstance(col.dtype, pd.CategoricalDtype) and col.cat.categories.size > col.nunique(dropna=True):
            changes[c] = col.cat.remove_unused_categories()
        if "`" in str(c):
            changes[str(c).replace("`", "\\`")] = changes.get(c, col)
    return frame.assign(**changes) if changes else frame


class PlainColumns:
    """A formula part made of numeric columns and products of them only (and the
    intercept), in formulaic's term order and names: coded by taking the columns, the
    fast path for large data.  Anything else (factors, transforms) goes to formulaic."""

    def __init__(self, terms: list):
        self.terms = terms
        self.names = ["Intercept" if t == () else ":".join(t) for t in terms]
        self.required_variables = sorted({v for t in terms for v in t})

    @classmethod
    def of(cls, text: str, frame):
        from formulaic.parser.types import Factor

        terms = []
        for term in _formula(text):
            factors = list(term.factors)
            if len(factors) == 1 and factors[0].eval_method == Factor.EvalMethod.LITERAL and factors[0].expr == "1":
                terms.append(())
                continue
            if not all(f.eval_method == Factor.EvalMethod.LOOKUP and f.expr in frame.columns
                       and frame[f.expr].dtype.kind in "iuf" for f in factors):
                return None
            terms.append(tuple(f.expr for f in factors))
        return cls(terms)

    def columns(self, frame) -> list:
        """The columns, the frame's own arrays where a term is one column (no copy);
        None for the intercept."""
        out = []
        for t in self.terms:
            if not t:
                out.append(None)
                continue
            c = frame[t[0]].to_numpy(dtype=float)
            for v in t[1:]:
                c = c * frame[v].to_numpy(dtype=float)
            out.append(c)
        return out

    def get_model_matrix(self, frame, na_action=None):
        return dense(self.columns(frame), len(frame))


def columns_of(spec_or_text, frame, what: str):
    """(list of columns, formulaic names, spec) of a formula part, through formulaic
    unless the part is plain numeric columns."""
    import formulaic

    if isinstance(spec_or_text, str):
        plain = PlainColumns.of(spec_or_text, frame)
        if plain is not None:
            spec_or_text = plain
    if isinstance(spec_or_text, PlainColumns):
        return spec_or_text.columns(frame), spec_or_text.names, spec_or_text
    try:
        if isinstance(spec_or_text, str):
            mm = formulaic.model_matrix(spec_or_text, frame, na_action="raise")
        else:
            mm = spec_or_text.get_model_matrix(frame, na_action="raise")
    except Exception as exc:  # noqa: BLE001 - formulaic's errors (bad column types, NaN from a transform)
        raise InputError(f"cannot code {what}: {exc}") from None
    M = np.asfortranarray(mm.to_numpy(dtype=float))
    if not np.isfinite(M).all():
        row = int(np.argwhere(~np.isfinite(M))[0][0])
        raise InputError(f"cannot code {what}: a non-finite value at row {row}")
    return [M[:, k] for k in range(M.shape[1])], list(mm.columns), mm.model_spec


def missing_mask(frame, columns, floats: bool = True) -> np.ndarray | None:
    """(rows, columns) mask of missing values (NaN, None, null), or None when there are
    none (one fast pass per float column, none for integer columns; float columns not
    at all without ``floats``, for a caller that checks them itself).  An infinite value
    is an error, not a missing value (as lme4)."""
    masks, any_missing = [], False
    for c in columns:
        col = frame[c]
        kind = col.dtype.kind if isinstance(col.dtype, np.dtype) else "O"  # pandas' Int64, Float64: their NA
        if kind in "iub" or (kind == "f" and not floats):
            masks.append(None)
            continue
        if kind == "f":
            a = col.to_numpy()
            with np.errstate(over="ignore", invalid="ignore"):  # an overflowing sum falls to the full check
                total = np.add.reduce(a)
            if np.isfinite(total):  # a NaN or an infinity makes the sum NaN or infinite: one pass, no mask
                masks.append(None)
                continue
            if np.isinf(a).any():
                raise InputError(f"column {c!r} has an infinite value at row {int(np.argmax(np.isinf(a)))}")
            m = np.isnan(a)
        else:
            m = col.isna().to_numpy()
        any_missing |= bool(m.any())
        masks.append(m)
    if not any_missing:
        return None
    n = len(frame)
    return np.column_stack([np.zeros(n, dtype=bool) if m is None else m for m in masks])


def group_codes(g) -> tuple[np.ndarray, np.ndarray]:
    """(codes, labels) of a grouping column: labels sorted (a categorical keeps its
    level order, unused levels dropped); integer labels in a compact range are coded by
    their shift (every label of the range, those with no rows too), others by
    pandas.factorize (hashing)."""
    import pandas as pd

    if isinstance(g.dtype, pd.CategoricalDtype):
        g = g.cat.remove_unused_categories()
        return g.cat.codes.to_numpy().astype(np.intp), np.asarray(g.cat.categories)
    a = g.to_numpy()
    if a.dtype.kind in "iu" and a.size:
        lo, hi = int(a.min()), int(a.max())
        if hi - lo <= 4 * a.size + 1024:  # codes are the shift; a label of the range with no rows is
            # dropped by the pass that counts the rows (cross_products), not searched for here
            return (a if lo == 0 and a.dtype == np.intp else (a - lo).astype(np.intp)), \
                np.arange(lo, hi + 1).astype(a.dtype)
    try:
        codes, labels = pd.factorize(g, sort=True)
    except TypeError:
        raise InputError(f"labels of the grouping factor {g.name!r} cannot be sorted (mixed types?)") from None
    return codes.astype(np.intp, copy=False), np.asarray(labels)
