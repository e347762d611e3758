"""The random-effect terms of a formula (lme4's reTrms): a list, each term its grouping
factor, its columns of Z and its block of Lambda.

A formula with several grouping factors, ``(1 | a) + (1 | b)``, ``(1 | a/b)`` or
``(1 | a:b)``, is coded here into :class:`SeveralDesign`: y, X and one :class:`CodedTerm`
per bar term (``(x || g)`` split into one term per column, as lme4 splits it), in lme4's
order: by decreasing number of levels, ties in the order written (lme4's mkReTrms).  The
fit is :mod:`.blocked`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .columns import columns_of, dense, group_codes, lme4_name
from .formula import FixedPart, RandomTerm, block_sizes, complete_rows, new_frame
from .result import match_labels

__all__ = ["RandomTerm", "CodedTerm", "SeveralDesign", "several_design", "interaction", "new_rows"]


@dataclass(frozen=True, eq=False)
class CodedTerm:
    """A term coded for the rows: level codes (N,) into ``labels`` (sorted; for an
    interaction, text ``a:b`` sorted by the first factor, then the next, as R's ``:``
    orders them), the columns of the term's Z (1-d arrays, None the intercept), lme4's
    names, and the formulaic spec that codes new rows."""

    factor: str
    factors: tuple
    codes: np.ndarray
    labels: np.ndarray
    z_cols: list
    z_names: tuple
    spec: object

    @property
    def q(self) -> int:
        return len(self.z_cols)

    @property
    def levels(self) -> int:
        return int(self.labels.size)

    @property
    def Z(self) -> np.ndarray:
        """The term's columns as a matrix (N, q)."""
        return dense(self.z_cols, self.codes.size)


@dataclass(frozen=True, eq=False)
class SeveralDesign(FixedPart):
    """y, X (columns, lme4's names, spec) and the coded terms (lme4's order) of the rows
    kept, with the rows dropped for a missing value counted."""

    formula: object
    y: np.ndarray
    x_cols: list
    x_names: tuple
    x_spec: object
    terms: tuple
    dropped: int
    kept: np.ndarray | None
    covariates: tuple
    x_keep: tuple | None = None



def _printed(v) -> str:
    """A level as R prints it in an interaction's label (a whole float as an integer)."""
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return "TRUE" if v is True or v is np.True_ else "FALSE" if v is False or v is np.False_ else str(v)


def interaction(frame, factors: tuple) -> tuple[np.ndarray, np.ndarray]:
    """(codes, labels) of the interaction of ``factors``: one column's own labels, or the
    combinations present, labelled ``a:b`` and ordered with the first factor slowest."""
    if len(factors) == 1:
        codes, labels = group_codes(frame[factors[0]])
        used = np.bincount(codes, minlength=labels.size) > 0
        if not used.all():  # labels of an integer range without rows
            codes, labels = (np.cumsum(used) - 1)[codes], labels[used]
        return codes, labels
    parts = [group_codes(frame[c]) for c in factors]
    combined = np.zeros(len(frame), dtype=np.int64)
    for codes, labels in parts:
        combined = combined * labels.size + codes
    present, codes = np.unique(combined, return_inverse=True)
    digits, text = present, []
    for codes_k, labels_k in reversed(parts):
        digits, d = np.divmod(digits, labels_k.size)
        text.insert(0, [_printed(v) for v in labels_k[d].tolist()])
    labels = np.array([":".join(t) for t in zip(*text)], dtype=object)
    return codes.astype(np.intp), labels


def _expanded(term: RandomTerm, frame) -> list:
    """A bar term's columns as lme4 codes them: one CodedTerm for (x | g), one per column
    (per model term for factors) for (x || g)."""
    what = f"the random part ({term.expr} | {term.name})"
    cols, names, spec = columns_of(term.expr, frame, what)
    names = [lme4_name(c, spec) for c in names]
    if len(set(names)) != len(names):
        raise InputError(f"the random part repeats a column ({', '.join(names)}) for {term.name!r}")
    codes, labels = interaction(frame, term.factors)
    if term.correlated:
        return [CodedTerm(term.name, term.factors, codes, labels, cols, tuple(names), spec)]
    out, start = [], 0
    for size in block_sizes(cols, spec, False):
        out.append(CodedTerm(term.name, term.factors, codes, labels, cols[start:start + size],
                             tuple(names[start:start + size]), (spec, start, size)))
        start += size
    return out


def several_design(f, data, na_action: str = "omit") -> SeveralDesign:
    """Code a formula with several random-effect terms (see the module docstring)."""
    frame, y, covariates, dropped, kept = complete_rows(f, data, na_action)
    x_cols, names, x_spec = columns_of(f.fixed, frame, "the fixed part")
    x_names = tuple(lme4_name(c, x_spec) for c in names)
    terms = [t for term in f.terms for t in _expanded(term, frame)]
    order = sorted(range(len(terms)), key=lambda k: -terms[k].levels)  # stable: ties as written
    return SeveralDesign(f, y, x_cols, x_names, x_spec, tuple(terms[k] for k in order), dropped, kept,
                         tuple(covariates))


def term_columns(term: CodedTerm, frame, what: str) -> list:
    """The term's Z columns for the rows of ``frame`` (coded by the fit's spec)."""
    if isinstance(term.spec, tuple):
        spec, start, size = term.spec
        return columns_of(spec, frame, what)[0][start:start + size]
    return columns_of(term.spec, frame, what)[0]


def new_rows(d: SeveralDesign, newdata):
    """X of new rows, and per term its Z (n, q) and the row's level among the fitted
    labels (-1 for a level the fit has not seen: its random effect is 0)."""
    specs = [d.x_spec] + [t.spec[0] if isinstance(t.spec, tuple) else t.spec for t in d.terms]
    frame = new_frame(newdata, d.covariates, tuple(f for t in d.terms for f in t.factors), tuple(specs))
    n = len(frame)
    x_cols = columns_of(d.x_spec, frame, "newdata (fixed part)")[0]
    if d.x_keep is not None:
        x_cols = [x_cols[k] for k in d.x_keep]
    out = []
    for t in d.terms:
        if len(t.factors) == 1:
            g = frame[t.factors[0]].to_numpy()
        else:
            g = np.array([":".join(_printed(v) for v in row) for row in zip(*(frame[c].tolist() for c in t.factors))],
                         dtype=object)
        out.append((dense(term_columns(t, frame, f"newdata (random part for {t.factor})"), n),
                    match_labels(t.labels, g)))
    return dense(x_cols, n), out
