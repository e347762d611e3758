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


def escape_verbatim(text: str) -> str:
    """A user's string (a file or column name) -> LaTeX text: every special character escaped."""
    out = []
    for ch in str(text):
        if ch in "&%$#_{}":
            out.append("\\" + ch)
        elif ch == "\\":
            out.append(r"\textbackslash{}")
        elif ch in "^~":
            out.append({"^": r"\textasciicircum{}", "~": r"\textasciitilde{}"}[ch])
        else:
            out.append(ch)
    return "".join(out)
