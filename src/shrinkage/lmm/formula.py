"""lme4 formulas on data frames: ``Reaction ~ Days + (Days | Subject)`` -> y, X, Z, groups.

* The bar terms ``(expr | g)`` (and ``(expr || g)``, uncorrelated terms) are located in the
  formula text; each grouping factor is parsed with *formulae* (a maintained parser of
  lme4's syntax), which tells a plain variable from ``g1:g2`` or ``g1/g2``.
* The fixed part and each random part are coded by *formulaic*, with lme4's names:
  ``(Intercept)``, treatment contrasts named ``MachineB``, interactions ``Days:MachineB``.
* One grouping factor only: crossed or nested factors are refused with a clear error.
* Rows with a missing value in a column the formula uses are dropped (lme4's na.omit) and
  counted; ``na_action="raise"`` raises instead, naming the column and the row.

pandas and polars DataFrames (or a dict of columns) are accepted; polars frames are
converted column by column (only the columns the formula uses).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .columns import PlainColumns, columns_of, dense, group_codes, lme4_name, missing_mask, to_pandas, variables

__all__ = ["LmmFormula", "Design", "parse", "design", "new_design"]


@dataclass(frozen=True)
class LmmFormula:
    """A parsed formula: response and fixed-part text (for formulaic), the random blocks
    as (expression text, correlated?) pairs, and the grouping factor's column name."""

    text: str
    response: str
    fixed: str
    blocks: tuple
    group: str


def _bar_spans(rhs: str):
    """Spans (start, end) of top-level parenthesised groups holding a '|' at their own
    depth, ignoring quoted text."""
    spans, depth, quote, start, has_bar = [], 0, None, None, False
    for i, ch in enumerate(rhs):
        if quote:
            if ch == quote:
                quote = None
            continue
        if ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
            if depth == 1:
                start, has_bar = i, False
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise InputError(f"unbalanced ')' at position {i} of the right-hand side {rhs!r}")
            if depth == 0 and has_bar:
                spans.append((start, i + 1))
        elif ch == "|":
            if depth == 0:
                raise InputError(f"a bar term must be in parentheses, e.g. (1 | g): {rhs!r}")
            if depth == 1:
                has_bar = True
    if depth:
        raise InputError(f"unbalanced '(' in the right-hand side {rhs!r}")
    return spans


_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # a name formulae parses as a variable (but True/False/None)


def _factor_name(text: str, term: str) -> str:
    """The grouping factor of a bar term: a single column name (formulae's parse; a plain
    name is its own parse, without importing formulae: 0.4 s off a process's first fit)."""
    if _NAME.fullmatch(text) and text not in ("True", "False", "None"):
        return text
    from formulae.expr import Binary, Literal, QuotedName, Variable
    from formulae.parser import Parser
    from formulae.scanner import Scanner

    try:
        node = Parser(Scanner(text).scan()).parse()
    except Exception as exc:  # noqa: BLE001 - formulae's own parse errors
        raise InputError(f"cannot parse the grouping factor {text!r} of {term}: {exc}") from None
    if isinstance(node, Binary) and node.operator.lexeme == "+" and isinstance(node.left, Literal):
        node = node.right  # the scanner's implicit "1 +"
    if isinstance(node, Binary) and node.operator.lexeme in (":", "/"):
        kind = "nested" if node.operator.lexeme == "/" else "crossed (an interaction of factors)"
        raise InputError(f"{term}: {kind} grouping factors are not supported; only one grouping factor, "
                         "a single column, e.g. (1 | g)")
    if isinstance(node, Variable):
        return node.name.lexeme if hasattr(node.name, "lexeme") else str(node.name)
    if isinstance(node, QuotedName):
        return node.expression.lexeme[1:-1]
    raise InputError(f"{term}: the grouping factor must be a column name, got {text!r}")


def parse(formula: str) -> LmmFormula:
    """Split an lme4 formula into response, fixed part and bar terms (one factor)."""
    if not isinstance(formula, str):
        raise InputError(f"formula must be a string such as 'y ~ x + (x | g)', got {type(formula).__name__}")
    if formula.count("~") != 1:
        raise InputError(f"formula must have exactly one '~' (response ~ terms), got {formula!r}")
    lhs, rhs = (s.strip() for s in formula.split("~"))
    if not lhs:
        raise InputError(f"formula has no response (left of '~'): {formula!r}")
    spans = _bar_spans(rhs)
    if not spans:
        raise InputError(f"formula has no random-effect term such as (1 | g): {formula!r} "
                         "(for a model without random effects use a linear-model fitter)")
    fixed, blocks, groups, last = [], [], [], 0
    for start, end in spans:
        before = rhs[last:start].rstrip()
        if before and not before.endswith("+"):
            raise InputError(f"a bar term can only be added ('+ {rhs[start:end]}'), found {before[-1]!r} before it")
        fixed.append(before[:-1] if before.endswith("+") else before)
        inner = rhs[start + 1:end - 1]
        term = rhs[start:end]
        correlated = "||" not in inner
        expr, _, factor = inner.partition("||" if not correlated else "|")
        if "|" in factor:
            raise InputError(f"{term}: more than one '|'")
        if not expr.strip():
            raise InputError(f"{term}: no terms left of the bar (write (1 | g) for a random intercept)")
        groups.append(_factor_name(factor.strip(), term))
        blocks.append((expr.strip(), correlated))
        last = end
    fixed.append(rhs[last:])
    fixed_text = " ".join(s.strip() for s in fixed if s.strip()).strip()
    fixed_text = re.sub(r"^\+\s*", "", fixed_text) or "1"
    if len(set(groups)) > 1:
        raise InputError(f"more than one grouping factor ({', '.join(dict.fromkeys(groups))}): crossed and nested "
                         "random effects are not supported; use one grouping factor")
    return LmmFormula(formula, lhs, fixed_text, tuple(blocks), groups[0])



@dataclass(frozen=True, eq=False)
class Design:
    """The model's arrays after dropping incomplete rows: y (N,), the columns of X and Z
    (lists of 1-d arrays, often the data frame's own; None is the intercept), group codes
    (N,) into ``labels``; lme4 column names; the block sizes of Z; the specs (to code new
    data for prediction); rows dropped and kept.  ``X`` and ``Z`` build the matrices."""

    formula: LmmFormula
    y: np.ndarray
    x_cols: list
    z_cols: list
    codes: np.ndarray
    labels: np.ndarray
    x_names: tuple
    z_names: tuple
    blocks: tuple
    x_spec: object
    z_specs: tuple
    dropped: int
    kept: np.ndarray | None

    @property
    def X(self) -> np.ndarray:
        return dense(self.x_cols, self.y.size)

    @property
    def Z(self) -> np.ndarray:
        return dense(self.z_cols, self.y.size)


def design(f: LmmFormula, data, na_action: str = "omit", floats: bool = True) -> Design:
    """Code the data for the model (see the module docstring).  Without ``floats`` the
    float columns are not searched for missing values: for a caller that sees them in
    its own sums (a NaN makes them NaN) and then codes again with them searched."""
    if na_action not in ("omit", "raise"):
        raise InputError(f"na_action must be 'omit' or 'raise', got {na_action!r}")
    used = dict.fromkeys(variables(f"{f.response} ~ {f.fixed}"))
    for expr, _ in f.blocks:
        used.update(dict.fromkeys(variables(expr)))
    used[f.group] = None
    frame = to_pandas(data, list(used))
    if len(frame) == 0:
        raise InputError("the data have no rows")
    missing = missing_mask(frame, list(used), floats)
    dropped, kept = 0, None
    if missing is not None:
        bad_rows = missing.any(axis=1)
        if na_action == "raise":
            row, col = np.argwhere(missing)[0]
            raise InputError(f"missing value in column {list(used)[col]!r} at row {row} "
                             f"(index {frame.index[row]!r}); {int(bad_rows.sum())} incomplete row(s) in all")
        kept = np.flatnonzero(~bad_rows)
        dropped = int(bad_rows.sum())
        if dropped == len(frame):
            raise InputError("every row has a missing value in a column the formula uses")
        frame = frame.iloc[kept]
    ys, _, _ = columns_of(f"0 + {f.response}", frame, f"the response {f.response!r}")
    if len(ys) != 1:
        raise InputError(f"the response {f.response!r} must be one numeric column")
    y = ys[0]
    x_cols, names, x_spec = columns_of(f.fixed, frame, "the fixed part")
    x_names = tuple(lme4_name(c, x_spec) for c in names)
    z_cols, z_names, z_specs, blocks = [], [], [], []
    for expr, correlated in f.blocks:
        cols, names, spec = columns_of(expr, frame, f"the random part ({expr} | {f.group})")
        z_cols.extend(cols)
        z_specs.append(spec)
        z_names.extend(lme4_name(c, spec) for c in names)
        if correlated:
            blocks.append(len(cols))
        elif isinstance(spec, PlainColumns):  # (x || g): one block per term, as lme4 expands it
            blocks.extend([1] * len(cols))
        else:
            blocks.extend(len(t.columns) for t in spec.structure)
    if len(set(z_names)) != len(z_names):
        raise InputError(f"the random part repeats a column ({', '.join(z_names)}) for {f.group!r}")
    codes, labels = group_codes(frame[f.group])
    return Design(f, y, x_cols, z_cols, codes, labels, x_names, tuple(z_names), tuple(blocks), x_spec,
                  tuple(z_specs), dropped, kept)


def new_design(d: Design, newdata):
    """X, Z and group labels of new rows, coded as the fitted data were (for predict)."""
    used = dict.fromkeys(str(v) for v in d.x_spec.required_variables)
    for spec in d.z_specs:
        used.update(dict.fromkeys(str(v) for v in spec.required_variables))
    used[d.formula.group] = None
    frame = to_pandas(newdata, list(used))
    bad = missing_mask(frame, list(used))
    if bad is not None:
        row, col = np.argwhere(bad)[0]
        raise InputError(f"newdata: missing value in column {list(used)[col]!r} at row {row}")
    n = len(frame)
    X = dense(columns_of(d.x_spec, frame, "newdata (fixed part)")[0], n)
    Z = dense([c for s in d.z_specs for c in columns_of(s, frame, "newdata (random part)")[0]], n)
    return X, Z, frame[d.formula.group].to_numpy()
