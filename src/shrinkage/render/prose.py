"""Plain-text maths in one-line summaries (export docstrings) typeset as maths.

A generated function's docstring is plain text for ``help()``: "ML estimate of
sigma_b^2 (0 when F = MSB/MSW <= J/(J-1))".  A document shows the same line with the
maths set as maths: code names and plain spellings of registered symbols, Greek
letters, single letters, scripts (x^2, y_j), comparison and arithmetic operators.
Text that already contains ``$`` is taken to be LaTeX and only escaped.
"""

from __future__ import annotations

import re
from typing import Mapping

from .tex import escape

_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "kappa", "lambda", "mu", "nu",
          "xi", "pi", "rho", "sigma", "tau", "phi", "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda",
          "Sigma", "Phi", "Psi", "Omega"}
_FUNCTIONS = {"log", "exp", "sqrt", "Var", "Cov", "E"}
_OPERATORS = {"<=": r"\le", ">=": r"\ge", "!=": r"\ne", "==": "=", "=": "=", "<": "<", ">": ">", "+": "+",
              "-": "-", "*": r"\cdot", "/": "/"}
_NOT_MATH = {"a", "A", "I"}
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*(?:\^[A-Za-z0-9]+)?|\d+(?:\.\d+)?|<=|>=|!=|==|"
                    r"[=<>+\-*/()]|\s+|.")


def plain_spelling(latex: str) -> str:
    r"""How a LaTeX name is typed in plain text: \sigma_b^2 -> sigma_b^2, \mathrm{MSB} -> MSB."""
    return re.sub(r"\\(?:mathrm|operatorname|text)\{([^}]*)\}", r"\1", latex).replace("\\", "").replace(
        "{", "").replace("}", "").replace(" ", "")


def symbol_names(quantities) -> dict[str, str]:
    """Plain spelling -> LaTeX for registered quantities (code names first, then the
    spellings of their LaTeX names, which never override a code name)."""
    names = {q.code: q.latex for q in quantities}
    for q in quantities:
        names.setdefault(plain_spelling(q.latex), q.latex)
    return names


def _identifier(tok: str, names: Mapping[str, str]) -> str | None:
    """The LaTeX of an identifier that is maths, else None."""
    if tok in names:
        return names[tok]
    base, _, sup = tok.partition("^")
    if base in names and sup:
        return f"{names[base]}^{{{sup}}}"
    head, *subs = base.split("_")
    if head in _GREEK:
        head = "\\" + head
    elif head in names:
        head = names[head]
    elif len(head) != 1 or head in _NOT_MATH:
        return None
    return head + "".join(f"_{{{s}}}" for s in subs) + (f"^{{{sup}}}" if sup else "")


def _english(tokens: list[str], k: int) -> bool:
    """A single letter that is part of a word: the s of "group's", the i and e of "i.e."."""
    if len(tokens[k]) != 1:
        return False
    before = tokens[k - 1] if k else ""
    after = tokens[k + 1:k + 3]
    return before in ("'", "’") or (len(after) == 2 and after[0] == "." and after[1].isalpha()) or (
        before == "." and k >= 2 and len(tokens[k - 2]) == 1 and tokens[k - 2].isalpha())


def _classify(tokens: list[str], names: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(token, kind, latex): kind is 'math' (a symbol), 'joint' (operator, number,
    parenthesis, space: maths only between symbols) or 'text'."""
    out = []
    for k, tok in enumerate(tokens):
        if tok.isspace():
            out.append((tok, "joint", " "))
        elif tok in _OPERATORS:
            out.append((tok, "joint", _OPERATORS[tok]))
        elif tok in "()" or tok[0].isdigit():
            out.append((tok, "joint", tok))
        elif tok in _FUNCTIONS:
            after = next((t for t in tokens[k + 1:] if not t.isspace()), "")
            follows = after == "(" or (after[:1].isalpha() and _identifier(after, names) is not None)
            out.append((tok, "math" if follows else "text", rf"\{tok}" if tok in ("log", "exp", "sqrt") else
                        rf"\operatorname{{{tok}}}"))
        elif tok[0].isalpha() and not _english(tokens, k) and (latex := _identifier(tok, names)) is not None:
            out.append((tok, "math", latex))
        else:
            out.append((tok, "text", tok))
    return out


def _after_operator(run: list[tuple[str, str, str]], k: int) -> bool:
    """Whether the token before run[k] (spaces skipped) is an operator: "<= 1" ends maths."""
    before = [tok for tok, _, _ in run[:k] if not tok.isspace()]
    return bool(before) and before[-1] in _OPERATORS


def _balanced_end(run: list[tuple[str, str, str]]) -> int:
    """Length of the longest prefix of ``run`` that ends in a symbol, in a number after an
    operator, or in a parenthesis that closes one opened in the run."""
    depth, best = 0, 0
    for k, (tok, kind, _) in enumerate(run):
        if tok == "(":
            depth += 1
        elif tok == ")":
            if depth == 0:
                break
            depth -= 1
            if depth == 0:
                best = k + 1
        elif depth == 0 and (kind == "math" or (tok[0].isdigit() and _after_operator(run, k))):
            best = k + 1
    return best


def typeset(text: str, names: Mapping[str, str]) -> str:
    """Plain text with plain-text maths -> LaTeX text with the maths in $...$."""
    if "$" in text:
        return escape(text)
    items = _classify(_TOKEN.findall(text), names)
    out, k = [], 0
    while k < len(items):
        tok, kind, _ = items[k]
        if kind != "math" and not (tok == "(" and any(i[1] == "math" for i in items[k:k + 3])):
            out.append(escape(tok))
            k += 1
            continue
        end = k
        while end < len(items) and items[end][1] != "text":
            end += 1
        n = _balanced_end(items[k:end])
        if n == 0:
            out.append(escape(tok))
            k += 1
            continue
        run = items[k:k + n]
        if run[0][0] == "(" and run[-1][0] == ")":  # parentheses around the maths stay text
            out.append("(" + "$" + "".join(i[2] for i in run[1:-1]).strip() + "$" + ")")
        else:
            out.append("$" + "".join(i[2] for i in run).strip() + "$")
        k += n
    return "".join(out)
