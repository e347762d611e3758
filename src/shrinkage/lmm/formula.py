"""lme4 formulas on data frames: ``Reaction ~ Days + (Days | Subject)`` -> y, X, Z, groups.

* The bar terms ``(expr | g)`` (and ``(expr || g)``, uncorrelated terms) are located in the
  formula text; each grouping factor is parsed with *formulae* (a maintained parser of
  lme4's syntax), which tells a plain variable from ``g1:g2`` or ``g1/g2``.
* The fixed part and each random part are coded by *formulaic*, with lme4's names:
  ``(Intercept)``, treatment contrasts named ``MachineB``, interactions ``Days:MachineB``.
* Several grouping factors: crossed ``(1 | a) + (1 | b)``, nested ``(1 | a/b)`` (lme4's
  ``(1 | a) + (1 | b:a)``), interactions ``(1 | a:b)``: the parse lists the random-effect
  terms (:class:`~shrinkage.lmm.terms.RandomTerm`); one plain grouping column keeps the
  one-factor fields ``group`` and ``blocks`` (the per-group fast path).
* Rows with a missing value in a column the formula uses are dropped (lme4's na.omit) and
  counted; ``na_action="raise"`` raises instead, naming the column and the row.

pandas and polars DataFrames (or a dict of columns) are accepted; polars frames are
converted column by column (only the columns the formula uses).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from ..errors import InputError
from .columns import (PlainColumns, as_factors, columns_of, dense, group_codes, lme4_name, missing_mask, to_pandas,
                      variables)

__all__ = ["RandomTerm", "LmmFormula", "FixedPart", "Design", "parse", "design", "new_design"]


@dataclass(frozen=True)
class RandomTerm:
    """A bar term as written: the expression left of the bar, correlated (|) or not (||),
    and the columns whose interaction is the grouping factor (``("cask", "batch")`` for
    lme4's ``cask:batch``)."""

    expr: str
    correlated: bool
    factors: tuple

    @property
    def name(self) -> str:
        return ":".join(self.factors)


@dataclass(frozen=True)
class LmmFormula:
    """A parsed formula: the response (a column name, unquoted, or an expression such as
    log(y)) and fixed-part text (for formulaic), the random blocks as (expression text,
    correlated?) pairs, and the grouping factor's column name."""

    text: str
    response: str
    fixed: str
    blocks: tuple
    group: str
    response_is_column: bool = True
    terms: tuple = ()  # RandomTerm per bar term, after || and / are expanded (lme4's order of writing)

    @property
    def several(self) -> bool:
        """More than one grouping factor, or one that is an interaction (a:b): the blocked fit."""
        return any(t.factors != (self.group,) for t in self.terms)


def _mask(text: str) -> str:
    """``text`` with every quoted span ('...', "...", `...`; a backslash escapes the next
    character inside) blanked to '_', position for position: the formula's operators
    (~, |, parentheses) are found outside quoted names such as `a|b`."""
    out, quote, escaped = [], None, False
    for ch in text:
        if quote:
            out.append("_")
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        else:
            if ch in "'\"`":
                quote = ch
            out.append("_" if quote else ch)
    if quote:
        raise InputError(f"unclosed quote {quote} in {text!r}")
    return "".join(out)


def _bar_spans(rhs: str):
    """Spans (start, end) of top-level parenthesised groups holding a '|' at their own
    depth, ignoring quoted text."""
    spans, depth, start, has_bar = [], 0, None, False
    for i, ch in enumerate(_mask(rhs)):
        if ch == "(":
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


def _call(text: str, masked: str, name: str):
    """The first call ``name(...)`` outside quotes in ``text``, as written, or None."""
    m = re.search(rf"(?<![\w.]){name}\s*\(", masked)
    if m is None:
        return None
    depth = 0
    for i in range(m.end() - 1, len(masked)):
        depth += {"(": 1, ")": -1}.get(masked[i], 0)
        if depth == 0:
            return text[m.start():i + 1]
    return text[m.start():]


def _unsupported(lhs: str, rhs: str) -> None:
    """Refuse, by name, what lme4 formulas can say and this fit cannot do yet (a
    binomial response, an offset), before their names are looked up as columns."""
    term = _call(lhs, _mask(lhs), "cbind")
    if term:
        raise InputError(f"the response {term}: a binomial response (cbind(successes, failures)) is a GLMM; "
                         "fit it with family='binomial' (as glmer); a Gaussian fit (lmer) takes one numeric response")
    for side in (lhs, rhs):
        term = _call(side, _mask(side), "offset")
        if term:
            raise InputError(f"{term}: offsets are supported with family='binomial' or 'poisson' (as glmer), not yet "
                             f"in a Gaussian fit; for a Gaussian response subtract it from the response (y - x ~ ...)")


def _column_name(text: str) -> str | None:
    """The column a response names (a plain or dotted name, or a backticked one,
    unescaped), or None for an expression such as log(y)."""
    if len(text) > 1 and text[0] == text[-1] == "`" and _mask(text) == "_" * len(text):
        return text[1:-1].replace("\\`", "`")
    return text if _NAME.fullmatch(text) and text not in ("True", "False", "None") else None


_NAME = re.compile(r"(?:[A-Za-z]|\.(?![0-9]))[A-Za-z0-9_.]*")  # an R name (dots allowed), but True/False/None


def _factors(text: str, term: str) -> list:
    """The grouping factors of a bar term, each a tuple of columns whose interaction it is:
    ``g`` -> [(g,)], ``a:b`` -> [(a, b)], ``a/b`` -> [(b, a), (a,)] (lme4's expandSlash:
    ``b:a`` and ``a``).  A plain name is its own parse, without importing formulae (0.4 s
    off a process's first fit); anything else is parsed by formulae."""
    if _NAME.fullmatch(text) and text not in ("True", "False", "None"):
        return [(text,)]
    from formulae.parser import Parser
    from formulae.scanner import Scanner

    try:
        node = Parser(Scanner(text).scan()).parse()
    except Exception as exc:  # noqa: BLE001 - formulae's own parse errors
        raise InputError(f"cannot parse the grouping factor {text!r} of {term}: {exc}") from None
    return _expand(node, text, term)


def _expand(node, text: str, term: str) -> list:
    from formulae.expr import Binary, Grouping, Literal, QuotedName, Variable

    if isinstance(node, Binary) and node.operator.lexeme == "+" and isinstance(node.left, Literal):
        node = node.right  # the scanner's implicit "1 +"
    if isinstance(node, Grouping):
        return _expand(node.expression, text, term)
    if isinstance(node, Variable):
        return [(node.name.lexeme if hasattr(node.name, "lexeme") else str(node.name),)]
    if isinstance(node, QuotedName):
        return [(node.expression.lexeme[1:-1].replace("\\`", "`"),)]
    if isinstance(node, Binary) and node.operator.lexeme in (":", "/"):
        left, right = _expand(node.left, text, term), _expand(node.right, text, term)
        if len(right) > 1 or (node.operator.lexeme == ":" and len(left) > 1):
            raise InputError(f"{term}: cannot read the grouping factor {text!r} (write a/b for b nested in a, "
                             "a:b for their interaction)")
        if node.operator.lexeme == ":":
            return [left[0] + right[0]]
        return [right[0] + left[0], *left]
    raise InputError(f"{term}: the grouping factor must be a column name, an interaction a:b or a nesting a/b, "
                     f"got {text!r}")


def parse(formula: str) -> LmmFormula:
    """Split an lme4 formula into response, fixed part and bar terms."""
    if not isinstance(formula, str):
        raise InputError(f"formula must be a string such as 'y ~ x + (x | g)', got {type(formula).__name__}")
    masked = _mask(formula)
    if masked.count("~") != 1:
        raise InputError(f"formula must have exactly one '~' (response ~ terms), got {formula!r}")
    tilde = masked.index("~")
    lhs, rhs = formula[:tilde].strip(), formula[tilde + 1:].strip()
    if not lhs:
        raise InputError(f"formula has no response (left of '~'): {formula!r}")
    _unsupported(lhs, rhs)
    spans = _bar_spans(rhs)
    if not spans:
        raise InputError(f"formula has no random-effect term such as (1 | g): {formula!r} "
                         "(for a model without random effects use a linear-model fitter)")
    fixed, blocks, groups, terms, last = [], [], [], [], 0
    for start, end in spans:
        before = rhs[last:start].rstrip()
        if before and not before.endswith("+"):
            raise InputError(f"a bar term can only be added ('+ {rhs[start:end]}'), found {before[-1]!r} before it")
        fixed.append(before[:-1] if before.endswith("+") else before)
        inner, shown = rhs[start + 1:end - 1], _mask(rhs[start + 1:end - 1])
        term = rhs[start:end]
        correlated = "||" not in shown
        bar = shown.index("|")
        expr, factor = inner[:bar], inner[bar + (1 if correlated else 2):]
        if "|" in shown[bar + (1 if correlated else 2):]:
            raise InputError(f"{term}: more than one '|'")
        if not expr.strip():
            raise InputError(f"{term}: no terms left of the bar (write (1 | g) for a random intercept)")
        factors = _factors(factor.strip(), term)
        groups.extend(":".join(f) for f in factors)
        terms.extend(RandomTerm(expr.strip(), correlated, f) for f in factors)
        blocks.append((expr.strip(), correlated))
        last = end
    fixed.append(rhs[last:])
    fixed_text = " ".join(s.strip() for s in fixed if s.strip()).strip()
    fixed_text = re.sub(r"^\+\s*", "", fixed_text) or "1"
    column = _column_name(lhs)
    return LmmFormula(formula, column or lhs, fixed_text, tuple(blocks), groups[0], column is not None,
                      tuple(terms))



class FixedPart:
    """X and its rank reduction, for a design with fields y, x_cols, x_names, x_keep."""

    @property
    def X(self) -> np.ndarray:
        return dense(self.x_cols, self.y.size)

    def full_rank(self, keep):
        """The design with only X's columns ``keep`` (rank-deficient ones dropped)."""
        keep = tuple(keep)
        if len(keep) == len(self.x_cols):
            return self
        return replace(self, x_cols=[self.x_cols[k] for k in keep], x_names=tuple(self.x_names[k] for k in keep),
                       x_keep=keep)


@dataclass(frozen=True, eq=False)
class Design(FixedPart):
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
    covariates: tuple = ()
    x_keep: tuple | None = None

    @property
    def Z(self) -> np.ndarray:
        return dense(self.z_cols, self.y.size)


def design(f: LmmFormula, data, na_action: str = "omit", floats: bool = True) -> Design:
    """Code the data for the model (see the module docstring).  Without ``floats`` the
    float columns are not searched for missing values: for a caller that sees them in
    its own sums (a NaN makes them NaN) and then codes again with them searched."""
    frame, y, covariates, dropped, kept = complete_rows(f, data, na_action, floats)
    x_cols, names, x_spec = columns_of(f.fixed, frame, "the fixed part")
    x_names = tuple(lme4_name(c, x_spec) for c in names)
    z_cols, z_names, z_specs, blocks = [], [], [], []
    for expr, correlated in f.blocks:
        cols, names, spec = columns_of(expr, frame, f"the random part ({expr} | {f.group})")
        z_cols.extend(cols)
        z_specs.append(spec)
        z_names.extend(lme4_name(c, spec) for c in names)
        blocks.extend(block_sizes(cols, spec, correlated))
    if len(set(z_names)) != len(z_names):
        raise InputError(f"the random part repeats a column ({', '.join(z_names)}) for {f.group!r}")
    codes, labels = group_codes(frame[f.group])
    return Design(f, y, x_cols, z_cols, codes, labels, x_names, tuple(z_names), tuple(blocks), x_spec,
                  tuple(z_specs), dropped, kept, tuple(covariates))


def block_sizes(cols: list, spec, correlated: bool) -> list:
    """The sizes of a bar term's blocks of Lambda: one for (x | g), one per term for
    (x || g), as lme4 expands it."""
    if correlated:
        return [len(cols)]
    if isinstance(spec, PlainColumns):
        return [1] * len(cols)
    return [len(t.columns) for t in spec.structure]


def complete_rows(f: LmmFormula, data, na_action: str = "omit", floats: bool = True):
    """(frame, y, covariates, dropped, kept): the columns the formula uses (every grouping
    factor's too), rows with a missing value dropped (or refused, naming column and row),
    covariates coded as lme4's model.frame codes them."""
    if na_action not in ("omit", "raise"):
        raise InputError(f"na_action must be 'omit' or 'raise', got {na_action!r}")
    used = dict.fromkeys([f.response] if f.response_is_column else variables(f"0 + {f.response}"))
    covariates = dict.fromkeys(variables(f.fixed))
    for expr, _ in f.blocks:
        covariates.update(dict.fromkeys(variables(expr)))
    used.update(covariates)
    for factors in [t.factors for t in f.terms] or [(f.group,)]:
        used.update(dict.fromkeys(factors))
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
    y = _response(f, frame)
    return as_factors(frame, list(covariates)), y, tuple(covariates), dropped, kept


def _response(f: LmmFormula, frame) -> np.ndarray:
    """y: a numeric column taken as it is, or an expression (log(y)) coded by formulaic."""
    if f.response_is_column:
        col = frame[f.response]
        if col.dtype.kind not in "iuf":
            raise InputError(f"the response {f.response!r} must be a numeric column, got {col.dtype}")
        return col.to_numpy(dtype=float)
    ys, _, _ = columns_of(f"0 + {f.response}", frame, f"the response {f.response!r}")
    if len(ys) != 1:
        raise InputError(f"the response {f.response!r} must be one numeric column")
    return ys[0]


def new_design(d: Design, newdata):
    """X, Z and group labels of new rows, coded as the fitted data were (for predict).
    A level of a fixed factor the fit did not see is refused, as lme4 refuses it."""
    frame = new_frame(newdata, d.covariates, (d.formula.group,), (d.x_spec, *d.z_specs))
    n = len(frame)
    x_cols = columns_of(d.x_spec, frame, "newdata (fixed part)")[0]
    if d.x_keep is not None:
        x_cols = [x_cols[k] for k in d.x_keep]
    X = dense(x_cols, n)
    Z = dense([c for s in d.z_specs for c in columns_of(s, frame, "newdata (random part)")[0]], n)
    return X, Z, frame[d.formula.group].to_numpy()


def new_frame(newdata, covariates: tuple, groups: tuple, specs: tuple):
    """New rows' columns (covariates and grouping columns), refused with a missing value,
    covariates coded as the fit coded them, a fixed factor's unseen level refused."""
    used = dict.fromkeys(covariates)
    used.update(dict.fromkeys(groups))
    frame = to_pandas(newdata, list(used))
    bad = missing_mask(frame, list(used))
    if bad is not None:
        row, col = np.argwhere(bad)[0]
        raise InputError(f"newdata: missing value in column {list(used)[col]!r} at row {row}")
    frame = as_factors(frame, list(covariates))
    for spec in specs:
        _known_levels(spec, frame)
    return frame


def _known_levels(spec, frame) -> None:
    """InputError naming a factor column's first level the fit did not see (formulaic
    would code it as the reference level, with a warning at most)."""
    for factor, (kind, info) in (getattr(spec, "encoder_state", None) or {}).items():
        levels = info.get("categories") if isinstance(info, dict) else None
        if levels is None or factor not in frame.columns:
            continue
        values = frame[factor]
        values = values.cat.categories if hasattr(values, "cat") else values.unique()
        new = [v for v in values if v not in set(levels)]
        if new:
            raise InputError(f"newdata: factor {factor!r} has new level {new[0]!r} (levels of the fit: "
                             f"{', '.join(map(str, levels[:10]))}{', ...' if len(levels) > 10 else ''})")
