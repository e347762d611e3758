"""The one preamble and the escapes of every LaTeX file the package writes.

No SymPy here: a report (``shrinkage report``) uses these without loading the engine.
``escape`` turns prose into LaTeX, leaving ``$...$`` maths alone; ``escape_verbatim``
escapes a user's string (a file or column name) completely.
"""

from __future__ import annotations

PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage[T1]{fontenc}
\usepackage{lmodern}
\usepackage[margin=1in]{geometry}
\usepackage{amsmath,amssymb,mathtools}
\usepackage{booktabs,array,tabularx}
\usepackage{xcolor}
\allowdisplaybreaks
\pdfinfoomitdate=1
\pdftrailerid{}
\pdfsuppressptexinfo=-1
\setlength{\emergencystretch}{3em}
\newcommand{\stepnote}[3]{\par\noindent\textbf{Step #1.} #2\par\nopagebreak\hfill{\footnotesize\textsf{#3}}}
"""

LINEWIDTH_EM = 42.9  # \linewidth of PREAMBLE (letter paper, 1 in margins) in em of the 11 pt font

PGFPLOTS = r"""\usepackage{pgfplots}
\pgfplotsset{compat=1.18, /pgf/number format/1000 sep={\,}}
"""


def escape(text: str) -> str:
    """Prose -> LaTeX, leaving $...$ math alone.  A character the author already escaped
    (``\\_``) stays as written, and ``~`` stays TeX's tie (``eq.~\\eqref{...}``): step
    reasons are written in LaTeX prose."""
    out, in_math, prev = [], False, ""
    for ch in text:
        if ch == "$" and prev != "\\":
            in_math = not in_math
        elif not in_math and ch in "&%#_" and prev != "\\":
            ch = "\\" + ch
        elif not in_math and ch == "^":
            ch = r"\textasciicircum{}"
        out.append(ch)
        prev = ch[-1:]
    return "".join(out)


# The characters beyond ASCII that pdflatex typesets with \usepackage[T1]{fontenc}: those of
# Latin-1 and Latin Extended-A that LaTeX's t1enc.dfu declares for UTF-8 input (less the
# no-break space and the soft hyphen, which would look like a space and like nothing).
_T1_TEXT = frozenset("¡£«»¿") | frozenset(map(chr, [*range(0xC0, 0xD7), *range(0xD8, 0xF7),
                                                    *range(0xF8, 0x17F)]))
_T1_TEXT -= frozenset(map(chr, (0x126, 0x127, 0x138, 0x13F, 0x140, 0x149, 0x166, 0x167)))
_SPECIAL = {**{ch: "\\" + ch for ch in "&%$#_{}"}, "\\": r"\textbackslash{}", "^": r"\textasciicircum{}",
            "~": r"\textasciitilde{}"}
VISIBLE_SPACE = r"\textvisiblespace{}"


def unicode_box(ch: str) -> str:
    """A character pdflatex's fonts lack (Greek, CJK, emoji) or that TeX cannot read
    (control characters), as its code point in a small box: any font shows it.  A byte
    that is not UTF-8 (a file name's, kept by Python as a lone surrogate) as 0xNN."""
    code = ord(ch)
    text = f"0x{code - 0xDC00:02X}" if 0xDC80 <= code <= 0xDCFF else f"U+{code:04X}"
    return rf"{{\fboxsep=1pt\protect\fbox{{\tiny {text}}}}}"


def escape_verbatim(text: str) -> str:
    """A user's string (a file or column name, a group label) -> LaTeX text showing it
    exactly: every special character escaped, characters outside ASCII and T1 boxed
    (:func:`unicode_box`), and spaces TeX would drop or merge (leading, trailing, runs)
    shown as visible spaces, so labels " a", "a " and "a" stay distinct on the page."""
    text = str(text)
    out = []
    for k, ch in enumerate(text):
        if ch == " ":
            alone = 0 < k < len(text) - 1 and text[k - 1] != " " and text[k + 1] != " "
            out.append(" " if alone else VISIBLE_SPACE)
        elif ch in _SPECIAL:
            out.append(_SPECIAL[ch])
        elif " " < ch < "\x7f" or ch in _T1_TEXT:
            out.append(ch)
        else:
            out.append(unicode_box(ch))
    return "".join(out)
