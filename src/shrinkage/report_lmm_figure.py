"""The random-slope report's figure: one small panel per group (pgfplots groupplots) with
the group's observations, its own least-squares line, its shrunk line (fixef + ranef,
lme4's ``coef``) and the population line (fixef).

Drawn for a line, y ~ x + (x | g) (the fixed and the random columns both an intercept and
one numeric x); any other model gets a sentence saying why there is no figure.  A fixed
subsample of groups (evenly spaced in label order) when there are many; coordinates in
fixed formats, so two reports are byte-identical.
"""

from __future__ import annotations

import numpy as np

from .report import plain, tex_text

COLUMNS = 6
MAX_POINTS = 200  # observations drawn per panel (evenly spaced in row order when a group has more)


def is_line(r) -> bool:
    return (len(r.z_names) == 2 and r.z_names[0] == "(Intercept)" and tuple(r.x_names) == tuple(r.z_names))


def panels(J: int, most: int) -> np.ndarray:
    if J <= most:
        return np.arange(J)
    return np.unique(np.linspace(0, J - 1, most).round().astype(int))


def _segment(style: str, x0: float, x1: float, a: float, b: float) -> str:
    return rf"\addplot[{style}] coordinates {{({plain(x0)},{plain(a + b * x0)}) ({plain(x1)},{plain(a + b * x1)})}};"


def _outside(g) -> str:
    """How many groups have a BLUP coefficient outside [0, own deviation] (computed, not claimed)."""
    lo, hi = np.minimum(0.0, g.own), np.maximum(0.0, g.own)
    out = (g.blup < lo - 1e-12 * np.abs(g.own)) | (g.blup > hi + 1e-12 * np.abs(g.own))
    counts = out.sum(axis=0)
    return (f" (here the intercept in {int(counts[0])} and the slope in {int(counts[1])} of the "
            f"{g.n.size} groups)")


def figure_lines(r, g, most: int) -> list[str]:
    if not is_line(r):
        return [r"\section{Figure}",
                r"The figure of each group's line is drawn for a model of the form \texttt{y \textasciitilde{} x + "
                r"(x | g)} (an intercept and one slope, fixed and random); this model's columns are "
                + ", ".join(rf"\texttt{{{tex_text(s)}}}" for s in r.x_names) + " (fixed) and "
                + ", ".join(rf"\texttt{{{tex_text(s)}}}" for s in r.z_names) + " (random)."]
    d = r.design
    x, y, codes = d.X[:, 1], np.asarray(d.y, dtype=float), d.codes
    idx = panels(r.ngroups, most)
    own = r.beta[None, :] + g.own  # the group's own least-squares line: beta_hat + tilde b_j
    shrunk = r.beta[None, :] + g.blup  # lme4's coef(): beta_hat + hat b_j
    shown = np.isin(codes, idx)
    xlo, xhi = float(x[shown].min()), float(x[shown].max())
    ends = [a + b * t for a, b in np.concatenate([own[idx], shrunk[idx]]) for t in (xlo, xhi)]
    ylo, yhi = float(min(y[shown].min(), *ends)), float(max(y[shown].max(), *ends))
    pad_x, pad_y = 0.06 * (xhi - xlo or 1.0), 0.06 * (yhi - ylo or 1.0)
    rows = -(-idx.size // COLUMNS)
    out = [
        r"\clearpage",
        r"\section{Each group's line, shrunk towards the population line}",
        r"\begin{figure}[!h]\centering",
        r"\begin{tikzpicture}",
        rf"\begin{{groupplot}}[group style={{group size={COLUMNS} by {rows}, horizontal sep=3pt, vertical sep=14pt, "
        r"xticklabels at=edge bottom, yticklabels at=edge left}, scale only axis, width=2.2cm, height=2.5cm, "
        rf"xmin={plain(xlo - pad_x)}, xmax={plain(xhi + pad_x)}, ymin={plain(ylo - pad_y)}, ymax={plain(yhi + pad_y)}, "
        r"title style={font=\scriptsize, yshift=-6pt}, tick label style={font=\tiny}, scaled ticks=false, "
        r"max space between ticks=18pt]",
    ]
    thinned = False
    for j in idx:
        rows_j = np.flatnonzero(codes == j)
        x0, x1 = float(x[rows_j].min()), float(x[rows_j].max())
        drawn = rows_j[panels(rows_j.size, MAX_POINTS)]
        thinned |= drawn.size < rows_j.size
        pts = " ".join(f"({plain(a)},{plain(b)})" for a, b in zip(x[drawn], y[drawn]))
        out += [
            rf"\nextgroupplot[title={{\texttt{{{tex_text(str(r.labels[j]))}}}}}]",
            rf"\addplot[only marks, mark=*, mark size=0.7pt, gray] coordinates {{{pts}}};",
            _segment("black!45, thin", xlo, xhi, r.beta[0], r.beta[1]),
            _segment("red!75!black, thick", x0, x1, shrunk[j, 0], shrunk[j, 1]),
            _segment("blue!80!black, thick, densely dashed", x0, x1, own[j, 0], own[j, 1]),
        ]
    sample = "" if idx.size == r.ngroups else f" ({idx.size} of the {r.ngroups} groups, evenly spaced in label order)"
    dots = f"at most {MAX_POINTS} observations per panel, evenly spaced" if thinned else "the observations"
    xname, yname = tex_text(r.z_names[1]), tex_text(r.formula.split("~")[0].strip())
    out += [
        r"\end{groupplot}",
        r"\end{tikzpicture}",
        rf"\caption{{\texttt{{{yname}}} against \texttt{{{xname}}}, one panel per group{sample}: {dots} "
        r"(grey dots), the group's own least-squares line $\hat{\boldsymbol\beta} + \tilde{\mathbf b}_j$ (blue, dashed), "
        r"its shrunk line $\hat{\boldsymbol\beta} + \hat{\mathbf b}_j$ (red; lme4's \texttt{coef}) and the population "
        r"line $\hat{\boldsymbol\beta}$ (grey). The red line is the blue one shrunk by the matrix $\boldsymbol\Lambda_j$, "
        r"$\hat{\mathbf b}_j = \boldsymbol\Lambda_j\tilde{\mathbf b}_j$: intercept and slope move together, so a "
        r"coefficient need not end between the group's own and the population's value"
        + _outside(g) + ".}",
        r"\end{figure}",
    ]
    return out
