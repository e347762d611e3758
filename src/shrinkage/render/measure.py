"""An estimate of how wide a LaTeX formula prints, in em, without running TeX.

The line breaker (``layout.py``) needs widths to decide where a long equation breaks.
This is a small reader of the math the renderer emits (fractions, scripts, big
operators, delimiters, text), with glyph widths of Latin Modern as data.  It errs on
the wide side: a formula estimated to fit does fit (tests/test_layout.py measures the
estimates against TeX on every equation of the documents).
"""

from __future__ import annotations

import re

# styles: D display, T text, S script, SS scriptscript; size relative to the text font
_SIZE = {"D": 1.0, "T": 1.0, "S": 0.7, "SS": 0.5}
_SMALLER = {"D": "S", "T": "S", "S": "SS", "SS": "SS"}  # of sub- and superscripts
_FRAC_PART = {"D": "T", "T": "S", "S": "SS", "SS": "SS"}  # of a fraction's numerator, denominator

# glyph widths in em (Latin Modern Math italic / roman), rounded up
_LOWER = dict(zip("abcdefghijklmnopqrstuvwxyz",
                  (0.53, 0.43, 0.44, 0.53, 0.47, 0.50, 0.48, 0.58, 0.35, 0.42, 0.53, 0.30, 0.88,
                   0.61, 0.49, 0.51, 0.45, 0.46, 0.47, 0.37, 0.58, 0.49, 0.72, 0.58, 0.50, 0.47)))
_UPPER_DEFAULT = 0.80
_UPPER = {"I": 0.51, "J": 0.60, "L": 0.69, "F": 0.75, "P": 0.75, "T": 0.73, "S": 0.65, "W": 1.05, "M": 0.98,
          "N": 0.89, "V": 0.75, "Y": 0.75, "U": 0.75, "R": 0.78, "Q": 0.80, "D": 0.84, "A": 0.76}
_ROMAN = 0.52  # average upright letter (text, \mathrm, \operatorname)
_ROMAN_UPPER = 0.84
_GREEK = {"alpha": 0.65, "beta": 0.58, "gamma": 0.53, "delta": 0.46, "epsilon": 0.42, "varepsilon": 0.47,
          "zeta": 0.45, "eta": 0.50, "theta": 0.48, "vartheta": 0.60, "iota": 0.35, "kappa": 0.58,
          "lambda": 0.59, "mu": 0.61, "nu": 0.53, "xi": 0.46, "pi": 0.58, "varpi": 0.84, "rho": 0.52,
          "sigma": 0.58, "tau": 0.55, "upsilon": 0.58, "phi": 0.60, "varphi": 0.66, "chi": 0.63,
          "psi": 0.66, "omega": 0.63, "Gamma": 0.63, "Delta": 0.84, "Theta": 0.78, "Lambda": 0.70,
          "Xi": 0.75, "Pi": 0.75, "Sigma": 0.73, "Phi": 0.73, "Psi": 0.78, "Omega": 0.73, "ell": 0.42}
_BIN = 0.78 + 2 * 4 / 18  # a binary operator with medium spaces
_REL = 0.78 + 2 * 5 / 18  # a relation with thick spaces
_THIN = 3 / 18
_SPACES = {",": _THIN, ":": 4 / 18, ">": 4 / 18, ";": 5 / 18, "!": -_THIN, " ": 0.33, "quad": 1.0,
           "qquad": 2.0, "enspace": 0.5, "thinspace": _THIN}
_RELATIONS = {"le": _REL, "leq": _REL, "ge": _REL, "geq": _REL, "ne": _REL, "neq": _REL, "to": 1.0 + 10 / 18,
              "approx": _REL, "sim": _REL, "equiv": _REL, "coloneqq": 1.25 + 10 / 18, "mid": 0.28 + 10 / 18,
              "in": 0.67 + 10 / 18, "propto": _REL, "mapsto": 1.0 + 10 / 18, "rightarrow": 1.0 + 10 / 18,
              "ll": 1.0 + 10 / 18, "gg": 1.0 + 10 / 18, "leftarrow": 1.0 + 10 / 18}
_BINARIES = {"cdot": 0.28 + 8 / 18, "times": _BIN, "pm": _BIN, "mp": _BIN, "setminus": _BIN, "cup": _BIN,
             "cap": _BIN}
_SYMBOLS = {"infty": 1.0, "partial": 0.57, "nabla": 0.84, "dots": 1.2, "ldots": 1.2, "cdots": 1.2,
            "prime": 0.3, "emptyset": 0.5, "forall": 0.56, "exists": 0.56, "neg": 0.67, "top": 0.78,
            "textasciicircum": 0.5, "textasciitilde": 0.5, "%": 0.83, "&": 0.78, "#": 0.83, "_": 0.5,
            "{": 0.5, "}": 0.5, "$": 0.5, "|": 0.56}
_BIG_OPS = {"sum": (1.45, 1.05), "prod": (1.28, 0.95), "int": (0.85, 0.45), "oint": (0.85, 0.45),
            "coprod": (1.28, 0.95)}  # (display, text) widths
_LIMIT_OPS = {"max", "min", "lim", "sup", "inf", "argmax", "argmin", "limsup", "liminf"}
_FUNCTIONS = {"log", "exp", "ln", "det", "tr", "sin", "cos", "tan", "sinh", "cosh", "tanh", "arg", "deg",
              "dim", "ker", "Pr", "sec", "csc", "cot", "gcd", "hom", "lg"} | _LIMIT_OPS
_ACCENTS = {"bar", "hat", "tilde", "vec", "dot", "ddot", "breve", "check", "acute", "grave", "widehat",
            "widetilde", "overline", "underline", "mathring"}
_FONTS = {"mathrm": "roman", "mathsf": "roman", "mathit": "italic", "mathbf": "bold", "boldsymbol": "bold",
          "mathcal": "bold", "mathbb": "bold", "mathfrak": "bold", "mathtt": "tt", "operatorname": "roman"}
_TEXTS = {"text": 1.0, "textup": 1.0, "textrm": 1.0, "textit": 1.0, "emph": 1.0, "textsf": 1.0,
          "textbf": 1.1, "texttt": 1.0, "mbox": 1.0, "textnormal": 1.0}
_ZERO_ARG = {"label", "tag", "vphantom", "mathrlap", "mathclap", "notag", "nonumber", "hypertarget"}
_DELIM_SIZES = {"bigl": 0.45, "bigr": 0.45, "big": 0.45, "Bigl": 0.6, "Bigr": 0.6, "Big": 0.6,
                "biggl": 0.7, "biggr": 0.7, "bigg": 0.7, "Biggl": 0.8, "Biggr": 0.8, "Bigg": 0.8,
                "bigm": 0.45 + 10 / 18, "Bigm": 0.6 + 10 / 18}
_DELIMS = {"(": 0.39, ")": 0.39, "[": 0.28, "]": 0.28, "|": 0.28, ".": 0.0, r"\{": 0.5, r"\}": 0.5,
           "lbrace": 0.5, "rbrace": 0.5, "langle": 0.39, "rangle": 0.39, "lvert": 0.28, "rvert": 0.28,
           "lVert": 0.5, "rVert": 0.5, "|": 0.28, r"\|": 0.5}

_TOKEN = re.compile(r"\\[A-Za-z]+\*?|\\.|[{}^_&]|\s+|.", re.S)


class _Reader:
    """Tokens of a formula, read left to right with one token of look-ahead."""

    def __init__(self, text: str):
        self.tokens = [t for t in _TOKEN.findall(text)]
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def next(self) -> str | None:
        tok = self.peek()
        self.pos += 1
        return tok

    def skip_space(self) -> None:
        while self.peek() is not None and self.peek().isspace():
            self.pos += 1

    def group(self) -> str:
        """The raw text of the next argument: a {...} group, or a single token."""
        self.skip_space()
        tok = self.next()
        if tok != "{":
            return tok or ""
        depth, out = 1, []
        while True:
            tok = self.next()
            if tok is None:
                return "".join(out)
            if tok == "{":
                depth += 1
            elif tok == "}":
                depth -= 1
                if depth == 0:
                    return "".join(out)
            out.append(tok)

    def until_right(self) -> str:
        """The raw text from here to the \\right that closes the current \\left."""
        depth, out = 1, []
        for tok in self.tokens[self.pos:]:
            depth += tok == r"\left"
            depth -= tok == r"\right"
            if depth == 0:
                break
            out.append(tok)
        return "".join(out)

    def optional(self) -> str:
        """The raw text of an optional [...] argument, or ''."""
        self.skip_space()
        if self.peek() != "[":
            return ""
        self.next()
        out = []
        while self.peek() not in (None, "]"):
            out.append(self.next())
        self.next()
        return "".join(out)


def text_width(text: str) -> float:
    """Width of text-mode material (in \\text{...}, \\texttt, notes), math inside $...$ measured as math."""
    total, parts = 0.0, text.split("$")
    for k, part in enumerate(parts):
        if k % 2:
            total += width(part, "T")
            continue
        plain = re.sub(r"\\[A-Za-z]+\s*", "", part).replace("{", "").replace("}", "")
        for ch in plain:
            total += 0.33 if ch == " " else (_ROMAN_UPPER if ch.isupper() else 0.55 if ch.isdigit() else _ROMAN)
    return total


def _height_class(text: str, style: str) -> float:
    """Width of an auto-sized delimiter (\\left/\\right) around ``text``: taller content
    takes a larger (wider) parenthesis."""
    big = ("\\frac", "\\sum", "\\int", "\\prod")
    if style == "D" and any(c in text for c in big):
        nested = text.count("\\frac") + text.count("\\sum") >= 2 or "\\left" in text
        return 0.8 if nested else 0.67
    if any(c in text for c in big):
        return 0.6
    if "^" in text or "\\hat" in text or "\\bar" in text:
        return 0.58
    return 0.39


def _letters(text: str, font: str, style: str) -> float:
    if font in ("roman", "tt"):
        return sum((_ROMAN_UPPER if c.isupper() else _ROMAN) for c in text) if font == "roman" else 0.53 * len(text)
    return width(text, style) * (1.12 if font == "bold" else 1.0)


def width(text: str, style: str = "D") -> float:
    """Estimated width (em of the 11 pt text font) of math ``text`` set in ``style``."""
    r = _Reader(text)
    size = _SIZE[style]
    total = 0.0
    prev = None  # class of the previous atom: None (start), "ord", "op", "bin", "rel", "open", "punct"
    last_width = 0.0  # width of the last atom, for scripts placed under a big operator
    sizes: list[float] = []  # widths of the \left delimiters not yet closed

    def atom(w: float, kind: str = "ord") -> None:
        nonlocal total, prev, last_width
        if kind == "bin" and prev in (None, "bin", "rel", "open", "punct", "op-start"):
            w, kind = 0.78, "ord"  # a unary sign: no spaces around it
        if kind in ("bin", "rel") and style in ("S", "SS"):
            w = 0.78  # no spaces in scripts
        total += w * size
        prev, last_width = kind, w * size

    while (tok := r.next()) is not None:
        if tok.isspace() or tok in ("}", "{"):
            if tok == "{":  # a bare group: an ordinary atom
                r.pos -= 1
                atom(width(r.group(), style) / size)
            continue
        if tok in ("^", "_"):
            first = width(r.group(), _SMALLER[style])
            other = 0.0
            r.skip_space()
            if r.peek() in ("^", "_") and r.peek() != tok:
                r.next()
                other = width(r.group(), _SMALLER[style])
            script = max(first, other)
            if prev == "bigop-D":  # limits under and over a display operator
                total += max(0.0, script - last_width)
                prev = "op"
            else:
                total += script + 0.05
                if prev == "bigop-D":
                    prev = "op"
            continue
        if prev == "bigop-D":
            prev = "op"
        if tok == "&":
            continue
        if tok.startswith("\\"):
            name = tok[1:]
            if name in _SPACES:
                total += _SPACES[name] * size
            elif name in ("frac", "dfrac", "tfrac", "cfrac"):
                part = {"frac": _FRAC_PART[style], "dfrac": "T", "tfrac": "S", "cfrac": "T"}[name]
                num, den = r.group(), r.group()
                atom((max(width(num, part), width(den, part)) + 0.25) / size)
            elif name == "binom":
                num, den = r.group(), r.group()
                atom((max(width(num, _FRAC_PART[style]), width(den, _FRAC_PART[style])) + 1.0) / size)
            elif name in _GREEK:
                atom(_GREEK[name])
            elif name in _RELATIONS:
                atom(_RELATIONS[name], "rel")
            elif name in _BINARIES:
                atom(_BINARIES[name], "bin")
            elif name in _SYMBOLS:
                atom(_SYMBOLS[name])
            elif name in _BIG_OPS:
                d, t = _BIG_OPS[name]
                w = d if style == "D" else t
                total += w * (1.0 if style == "D" else size)
                prev, last_width = ("bigop-D" if style == "D" and name != "int" else "op"), w
                r.skip_space()
                if r.peek() == r"\limits":
                    r.next()
                total += _THIN * size  # op followed by an ordinary atom
            elif name in ("limits", "nolimits", "displaystyle", "textstyle", "left.", "right."):
                continue
            elif name in _FUNCTIONS:
                w = sum(_ROMAN for _ in name) + _THIN
                if name in _LIMIT_OPS and style == "D":
                    atom(w, "op")
                    prev, last_width = "bigop-D", w
                else:
                    atom(w, "op")
            elif name in ("operatorname", "operatorname*"):
                letters = re.sub(r"\\[,;:!]", " ", r.group()).replace(" ", "")
                w = _letters(letters, "roman", style) + 0.17 + _THIN
                atom(w, "op")
                if name.endswith("*") and style == "D":
                    prev, last_width = "bigop-D", w * size
            elif name in _FONTS:
                atom(_letters(r.group(), _FONTS[name], style))
            elif name in _TEXTS:
                atom(text_width(r.group()) * _TEXTS[name] * (1.0 if style in "DT" else 1.0))
            elif name in _ACCENTS:
                atom(width(r.group(), style) / size)
            elif name == "sqrt":
                index = r.optional()
                atom(0.85 + width(r.group(), style) / size + (0.3 if index else 0.0))
            elif name in ("left", "right", "middle"):
                r.skip_space()
                d = r.next() or ""
                if d.startswith("\\") and d[1:] in _DELIMS:
                    d = d[1:]
                if name == "left":  # sized by what lies between it and its \right
                    sizes.append(_height_class(r.until_right(), style))
                size_class = sizes[-1] if sizes else 0.5
                if name == "right" and sizes:
                    sizes.pop()
                w = 0.11 if d == "." else size_class * (_DELIMS.get(d, 0.39) / 0.39)
                atom(w + _THIN / 2, "open" if name == "left" else "ord")  # an inner atom: thin spaces around
            elif name in _DELIM_SIZES:
                r.skip_space()
                d = r.next() or ""
                if d.startswith("\\"):
                    d = d[1:]
                w = 0.0 if d == "." else _DELIM_SIZES[name] * (_DELIMS.get(d, 0.39) / 0.39)
                atom(w, "open" if name.endswith("l") else "ord")
            elif name in _ZERO_ARG:
                r.optional()
                if name not in ("notag", "nonumber"):
                    r.group()
            elif name == "phantom":
                atom(width(r.group(), style) / size)
            elif name == "hphantom":
                atom(width(r.group(), style) / size)
            elif name in ("hspace", "hspace*"):
                m = re.match(r"\s*(-?[\d.]+)\s*(em|pt|ex|mu)", r.group())
                if m:
                    v = float(m.group(1))
                    total += {"em": v, "pt": v / 10.95, "ex": v * 0.43, "mu": v / 18}[m.group(2)]
            elif name == "MoveEqLeft":
                r.optional()
            elif name == "xrightarrow" or name == "xleftarrow":
                r.optional()
                atom(max(1.0, width(r.group(), "S") + 0.6) + 10 / 18, "rel")
            elif name == "substack":
                rows = r.group().split(r"\\")
                atom(max(width(x, style) for x in rows) / size)
            elif name == "begin":
                env = r.group()
                body = []
                while (t := r.next()) is not None and not (t == r"\end"):
                    body.append(t)
                r.group()
                inner = "".join(body)
                if env in ("cases", "dcases"):
                    rows = [row.split("&") for row in re.split(r"\\\\", inner)]
                    cell = "T" if env == "cases" else "D"
                    w = max(sum(width(c, cell) for c in row) + (1.0 if len(row) > 1 else 0.0) for row in rows)
                    atom(0.9 + w)
                else:
                    rows = [row.split("&") for row in re.split(r"\\\\", inner)]
                    # a vector in a bare matrix (its delimiters a \left ... \right pair, measured
                    # there): amsmath's 1 em between columns, none outside; blocks and bmatrix &c.
                    # as measured on this project's documents
                    vector = len(rows) == 1 or all(len(row) == 1 for row in rows)
                    margin = -1.0 if env == "matrix" and vector else 0.8
                    atom(max(sum(width(c, style) + 1.0 for c in row) for row in rows) + margin)
            elif name == "\\":
                continue
            elif name in ("{", "}"):
                atom(0.5, "open" if name == "{" else "ord")
            elif name in ("mathstrut", "strut", "allowbreak", "nobreak", "displaybreak", "relax"):
                continue
            elif name in _DELIMS:  # \lvert, \rangle, ... outside \left/\right
                atom(_DELIMS[name], "open" if name.startswith("l") else "ord")
            else:
                atom(0.9)  # an unknown command: assume a wide glyph
        elif tok in "+-*":
            atom(_BIN if tok != "*" else 0.5 + 8 / 18, "bin")
        elif tok in "=<>":
            atom(_REL, "rel")
        elif tok in ",;":
            atom(0.28 + _THIN, "punct")
        elif tok in "([":
            atom(_DELIMS[tok], "open")
        elif tok in ")]":
            atom(_DELIMS[tok])
        elif tok == "|":
            atom(0.28)
        elif tok == "/":
            atom(0.5)
        elif tok == "!":
            atom(0.28)
        elif tok == "'":
            atom(0.3)
        elif tok == ".":
            atom(0.28)
        elif tok == "~":
            total += 0.33 * size
        elif tok.isdigit():
            atom(0.5)
        elif tok.isalpha() and tok.isascii():
            atom(_LOWER.get(tok, 0.55) if tok.islower() else _UPPER.get(tok, _UPPER_DEFAULT))
        else:
            atom(0.6)
    return total
