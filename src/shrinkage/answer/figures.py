"""The answer's figures and table, as pgfplots/LaTeX written from computed numbers.

Coordinates are printed with fixed formatting (no exponents, no negative zero), so two
builds give the same bytes.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..render.preamble import escape
from .example import Example

VARIANCE_RATIOS = ("0.05", "0.2", "1", "5")  # sigma_b^2 / sigma^2 in figure 1 (exact decimals)
SIZES = tuple(range(1, 101))  # n_j in figure 1


def _f(x: float, digits: int = 4) -> str:
    """Fixed formatting for coordinates (no exponent, no negative zero)."""
    s = f"{x:.{digits}f}"
    return "0." + "0" * digits if s == "-0." + "0" * digits else s


def figure_lambda(fns: Mapping, example: Example) -> list[str]:
    colours = ("blue!70!black", "teal!80!black", "orange!85!black", "red!75!black")
    marks = ("o", "square", "triangle", "diamond")
    out = [
        r"\begin{figure}[tbp]\centering",
        r"\begin{tikzpicture}",
        r"\begin{axis}[width=0.9\linewidth, height=6.2cm, xmode=log, xmin=1, xmax=100, ymin=0, ymax=1.02,"
        r" xlabel={group size $n_j$}, ylabel={shrinkage factor $\lambda_j$}, legend style={at={(0.5,-0.32)}, anchor=north, font=\footnotesize},"
        r" legend columns=3, legend cell align=left, grid=major, grid style={gray!25}, log ticks with fixed point]",
    ]
    for ratio, colour, mark in zip(VARIANCE_RATIOS, colours, marks):
        n = np.array(SIZES, dtype=float)
        lam = fns["shrinkage_factor"](n, 1.0, float(ratio))
        coords = " ".join(f"({int(k)},{_f(v)})" for k, v in zip(n, lam))
        out.append(rf"\addplot[{colour}, thick, mark={mark}, mark repeat=10, mark size=1.6pt] coordinates {{{coords}}};")
        out.append(rf"\addlegendentry{{$\sigma_b^2/\sigma^2 = {ratio}$}}")
    gamma_hat = example.sigma_b2 / example.sigma2
    out.append(rf"\addplot[only marks, mark=*, mark size=2.4pt, black] coordinates {{({int(example.n[0])},{_f(example.lam[0])})}};")
    out.append(rf"\addlegendentry{{Dyestuff: $n_j = {int(example.n[0])}$, $\hat\sigma_b^2/\hat\sigma^2 = {_f(gamma_hat, 3)}$}}")
    out += [
        r"\end{axis}",
        r"\end{tikzpicture}",
        r"\caption{The shrinkage factor $\lambda_j = \sigma_b^2/(\sigma_b^2+\sigma^2/n_j)$ against the group size, for four "
        r"ratios $\sigma_b^2/\sigma^2$ (computed with \texttt{shrinkage.numeric.shrinkage\_factor}). "
        r"$\lambda_j$ rises with $n_j$ and with $\sigma_b^2/\sigma^2$ (\S\ref{claim2}); it tends to $1$ (no pooling) for large groups. "
        r"With $\sigma_b^2$ small compared with $\sigma^2$, even groups of $20$ are shrunk by half.}",
        r"\label{fig:lambda}",
        r"\end{figure}",
    ]
    return out


def figure_dyestuff(example: Example) -> list[str]:
    lo = min(example.ybar.min(), example.predicted.min())
    hi = max(example.ybar.max(), example.predicted.max())
    out = [
        r"\begin{figure}[t]\centering",
        r"\begin{tikzpicture}",
        rf"\begin{{axis}}[width=0.62\linewidth, height=7.5cm, xmin=-0.35, xmax=1.35, ymin={_f(lo - 15, 0)}, ymax={_f(hi + 15, 0)},"
        r" xtick={0,1}, xticklabels={{observed mean $\bar y_j$},{shrunken $\hat\beta_0+\hat b_j$}},"
        r" ylabel={yield (grams of standard colour)}, grid=major, grid style={gray!25}, clip=false]",
        rf"\addplot[gray, dashed, domain=-0.35:1.35, samples=2] {{{_f(example.beta0, 2)}}};",
        rf"\node[gray, anchor=south west, font=\footnotesize] at (axis cs:1.02,{_f(example.beta0, 2)}) {{$\hat\beta_0$}};",
    ]
    for g, y0, y1 in zip(example.labels, example.ybar, example.predicted):
        out.append(rf"\addplot[blue!70!black, thick, mark=*, mark size=1.8pt] coordinates {{(0,{_f(y0, 2)}) (1,{_f(y1, 2)})}};")
        out.append(rf"\node[anchor=east, font=\footnotesize] at (axis cs:-0.03,{_f(y0, 2)}) {{{escape(g)}}};")
    out += [
        r"\end{axis}",
        r"\end{tikzpicture}",
        rf"\caption{{Dyestuff (6 batches of 5): each batch's observed mean moves towards the estimated overall mean "
        rf"$\hat\beta_0 = {_f(example.beta0, 1)}$ by the factor $1-\lambda_j = {_f(1 - example.lam[0], 3)}$ "
        r"(REML estimates, Table~\ref{tab:dyestuff}). The order of the batches is kept; the spread shrinks.}",
        r"\label{fig:dyestuff}",
        r"\end{figure}",
    ]
    return out


def table_dyestuff(example: Example) -> list[str]:
    rows = [
        rf"{escape(g)} & {int(k)} & {_f(y, 1)} & {_f(lam, 3)} & {_f(p - example.beta0, 2)} & {_f(p, 2)} & {_f(c, 2)} & {_f(e, 2)} \\"
        for g, k, y, lam, p, c, e in zip(example.labels, example.n, example.ybar, example.lam, example.predicted,
                                         example.cond_sd, example.pev_sd)
    ]
    return [
        r"\begin{table}[t]\centering\small",
        r"\begin{tabular}{@{}crrrrrrr@{}}",
        r"\toprule batch & $n_j$ & $\bar y_j$ & $\lambda_j$ & $\hat b_j$ & $\hat\beta_0+\hat b_j$ & "
        r"$\sqrt{\operatorname{Var}(b_j\mid\mathbf y)}$ & $\sqrt{\operatorname{PEV}_j}$ \\ \midrule",
        *rows,
        r"\bottomrule",
        r"\end{tabular}",
        rf"\caption{{Dyestuff, REML fit: $\hat\beta_0 = {_f(example.beta0, 2)}$, $\hat\sigma^2 = {_f(example.sigma2, 2)}$, "
        rf"$\hat\sigma_b^2 = {_f(example.sigma_b2, 2)}$ (balanced design: $\hat\sigma^2$ is the within-batch mean square, "
        r"$\hat\sigma_b^2$ the excess of the between-batch mean square over it, divided by $n_j$). "
        r"Predictions and standard deviations from the generated functions \texttt{predicted\_group\_mean}, "
        r"\texttt{conditional\_variance} and \texttt{prediction\_error\_variance}; the last includes the uncertainty "
        r"of $\hat\beta_0$ but, like lme4, not that of the variance estimates.}",
        r"\label{tab:dyestuff}",
        r"\end{table}",
    ]
