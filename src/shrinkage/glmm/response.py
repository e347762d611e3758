"""The response side of a glmer formula: ``cbind(successes, failures)``, a 0/1 (or
two-level) column, a proportion with ``weights=``, a count; and ``offset(...)`` terms.

They are taken out of the formula text here, evaluated on the data (a small arithmetic
language: column names, numbers, + - * / ^, log, exp, sqrt, log1p, log2, log10, abs, I),
checked (negative counts, successes > trials, non-integer counts are refused with the
row), and handed to shrinkage.lmm's formula coder as plain columns: the rest of the
formula is an lmer formula.
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import InputError
from ..lmm.formula import _call, _mask

__all__ = ["split", "evaluate", "response_arrays", "RESPONSE"]

RESPONSE = ".glmm_response"  # the placeholder column the lmer coder reads as y

_TOKEN = re.compile(r"\s*(?:(?P<num>\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|(?P<tick>`(?:\\.|[^`])*`)"
                    r"|(?P<name>(?:[A-Za-z]|\.(?![0-9]))[A-Za-z0-9_.]*)|(?P<op>\*\*|[-+*/^(),]))")
_FUNCS = {"log": np.log, "exp": np.exp, "sqrt": np.sqrt, "log1p": np.log1p, "log2": np.log2, "log10": np.log10,
          "abs": np.abs, "I": lambda v: v}


def split(formula: str):
    """(lhs, rhs without offset terms, [offset expressions]) of a formula's text."""
    if not isinstance(formula, str) or _mask(formula).count("~") != 1:
        raise InputError(f"formula must be a string with one '~', such as 'y ~ x + (1 | g)', got {formula!r}")
    tilde = _mask(formula).index("~")
    lhs, rhs = formula[:tilde].strip(), formula[tilde + 1:]
    offsets = []
    while (term := _call(rhs, _mask(rhs), "offset")) is not None:
        start = re.search(r"(?<![\w.])offset\s*\(", _mask(rhs)).start()
        offsets.append(term[term.index("(") + 1:-1].strip())
        before, after = rhs[:start].rstrip(), rhs[start + len(term):].lstrip()
        if before.endswith("+"):
            before = before[:-1]
        elif after.startswith("+"):
            after = after[1:]
        rhs = f"{before} {after}".strip()
    return lhs, rhs.strip() or "1", offsets


def _arguments(call: str) -> list[str]:
    """The top-level comma-separated arguments of ``f(a, b)``."""
    inner = call[call.index("(") + 1:-1]
    masked, out, depth, last = _mask(inner), [], 0, 0
    for i, ch in enumerate(masked):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            out.append(inner[last:i].strip())
            last = i + 1
    out.append(inner[last:].strip())
    return out


def evaluate(text: str, frame, used: set | None = None) -> np.ndarray:
    """The value of an arithmetic expression of columns (float array, NaN where missing)."""
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            if text[pos:].strip() == "":
                break
            raise InputError(f"cannot read {text!r} at position {pos}: {text[pos:pos + 10]!r}")
        tokens.append((m.lastgroup, m.group(m.lastgroup)))
        pos = m.end()
    k = [0]

    def peek():
        return tokens[k[0]] if k[0] < len(tokens) else (None, None)

    def take(op=None):
        tok = peek()
        if tok[0] is None or (op is not None and tok[1] != op):
            raise InputError(f"cannot read {text!r}: expected {op or 'more'}")
        k[0] += 1
        return tok

    def column(name):
        if name not in frame.columns:
            raise InputError(f"column {name!r} of {text!r} not in the data")
        if used is not None:
            used.add(name)
        col = frame[name]
        if col.dtype.kind == "b":
            return col.to_numpy(dtype=float)
        if col.dtype.kind not in "iuf":
            try:
                return col.to_numpy(dtype=float, na_value=np.nan)
            except (TypeError, ValueError):
                raise InputError(f"column {name!r} in {text!r} must be numeric, got {col.dtype}") from None
        return col.to_numpy(dtype=float)

    def atom():
        kind, val = take()
        if kind == "num":
            return float(val)
        if kind == "tick":
            return column(val[1:-1].replace("\\`", "`"))
        if kind == "name":
            if peek()[1] == "(":
                if val not in _FUNCS:
                    raise InputError(f"unknown function {val}() in {text!r} (known: {', '.join(_FUNCS)})")
                take("(")
                v = expr()
                take(")")
                with np.errstate(all="ignore"):
                    return _FUNCS[val](v)
            return column(val)
        if val == "(":
            v = expr()
            take(")")
            return v
        if val in "+-":
            v = power()
            return -v if val == "-" else v
        raise InputError(f"cannot read {text!r}: unexpected {val!r}")

    def power():
        base = atom()
        if peek()[1] in ("^", "**"):
            take()
            return base ** power()
        return base

    def term():
        v = power()
        while peek()[1] in ("*", "/"):
            op = take()[1]
            with np.errstate(all="ignore"):
                v = v * power() if op == "*" else v / power()
        return v

    def expr():
        v = term()
        while peek()[1] in ("+", "-"):
            op = take()[1]
            v = v + term() if op == "+" else v - term()
        return v

    value = expr()
    if k[0] != len(tokens):
        raise InputError(f"cannot read {text!r}: unexpected {tokens[k[0]][1]!r}")
    return np.broadcast_to(np.asarray(value, dtype=float), (len(frame),)).astype(float)


def _row(frame, i) -> str:
    return f"row {i} (index {frame.index[i]!r})"


def _whole(v, what, frame, ok):
    bad = ok & (np.abs(v - np.round(v)) > 1e-7 * np.maximum(1, np.abs(v)))
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"{what} must be whole numbers: {float(v[i])!r} at {_row(frame, i)}")


def _two_levels(col, name):
    """A non-numeric response as R's binomial reads a factor: the first level (sorted)
    is failure (0), every other success (1)."""
    values = col.to_numpy(dtype=object)
    present = [v for v in values if v is not None and v == v]
    levels = sorted(set(map(str, present)))
    if len(levels) > 2:
        raise InputError(f"the response {name!r} has {len(levels)} levels ({', '.join(levels[:5])}...): "
                         "a binomial response needs two (or 0/1, or cbind(successes, failures))")
    return np.array([np.nan if v is None or v != v else float(str(v) != levels[0]) for v in values])


def response_arrays(lhs: str, frame, family, weights=None, used=None):
    """y (a proportion for the binomial) and the prior weights m (trials), NaN where a
    value is missing; bad values refused with their row."""
    ok_rows = None
    n = len(frame)
    w = np.ones(n) if weights is None else weights
    cb = _call(lhs, _mask(lhs), "cbind")
    if cb is not None:
        if family.name != "binomial":
            raise InputError(f"{cb}: cbind(successes, failures) is a binomial response; family is {family.name}")
        args = _arguments(cb)
        if len(args) != 2:
            raise InputError(f"{cb}: cbind needs two columns (successes, failures), got {len(args)}")
        s, f = (evaluate(a, frame, used) for a in args)
        ok_rows = np.isfinite(s) & np.isfinite(f) & np.isfinite(w)
        for v, what in ((s, f"the successes {args[0]}"), (f, f"the failures {args[1]}")):
            neg = ok_rows & (v < 0)
            if neg.any():
                i = int(np.argmax(neg))
                raise InputError(f"{what} must not be negative: {float(v[i])!r} at {_row(frame, i)}")
            _whole(v, what, frame, ok_rows)
        trials = s + f
        with np.errstate(all="ignore"):
            y = np.where(trials > 0, s / trials, 0.0)
        m = w * trials
    else:
        col = frame[lhs] if lhs in frame.columns else None
        if col is not None and col.dtype.kind not in "biuf":
            if family.name != "binomial":
                raise InputError(f"the response {lhs!r} must be numeric counts for a Poisson model, got {col.dtype}")
            y = _two_levels(col, lhs)
            if used is not None:
                used.add(lhs)
        else:
            y = evaluate(lhs, frame, used)
        ok_rows = np.isfinite(y) & np.isfinite(w)
        neg = ok_rows & (y < 0)
        if neg.any():
            i = int(np.argmax(neg))
            raise InputError(f"the response {lhs} must not be negative: {float(y[i])!r} at {_row(frame, i)}")
        m = w.copy()
        if family.name == "binomial":
            over = ok_rows & (y > 1)
            if over.any():
                i = int(np.argmax(over))
                raise InputError(f"the response {lhs} is a proportion (0 <= y <= 1; give counts as "
                                 f"cbind(successes, failures)): {float(y[i])!r} at {_row(frame, i)}")
            _whole(y * m, f"successes (the response {lhs} times the weights)", frame, ok_rows)
        else:
            _whole(y, f"the Poisson counts {lhs}", frame, ok_rows)
    bad_w = ok_rows & (w < 0)
    if bad_w.any():
        i = int(np.argmax(bad_w))
        raise InputError(f"weights must not be negative: {float(w[i])!r} at {_row(frame, i)}")
    y = np.where(ok_rows, y, np.nan)
    return y, m
