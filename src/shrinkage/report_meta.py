"""`shrinkage report DATA.csv --yi COL --vi COL`: a meta-analysis (or Fay-Herriot) report.

The fit of shrinkage.meta, the BLUP of docs/meta_analysis.pdf with the fitted numbers put
in for two studies, a forest plot (each estimate with its 95% interval beside its BLUP
with metafor's prediction interval) and a shrinkage plot (each y_i moving to its BLUP),
both pgfplots, deterministic.  Written as the one-way report is (texio: compiled in a
scratch folder, both files or neither).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InputError
from .metaanalysis import MetaResult, meta
from .report import document, num, plain, tex_text, write_outputs

MAX_ROWS = 40  # studies in the table and the forest plot, evenly spaced beyond


def read_columns(data: Path, yi: str, vi: str) -> tuple[np.ndarray, np.ndarray]:
    """The two numeric columns of a CSV; a missing column or a bad value is named with its line."""
    import pandas as pd

    try:
        frame = pd.read_csv(data, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise InputError(f"no such file: {data}") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise InputError(f"cannot read {data}: {e}") from None
    out = []
    for col in (yi, vi):
        if col not in frame.columns:
            raise InputError(f"{data.name} has no column {col!r} (columns: {', '.join(map(str, frame.columns))})")
        values = pd.to_numeric(frame[col].str.strip(), errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raw = frame[col].iloc[bad[0]]
            raise InputError(f"{data.name}, line {bad[0] + 2}, column {col!r}: "
                             f"{'a missing value' if raw.strip() == '' else repr(raw)} is not a finite number")
        out.append(values)
    bad = np.flatnonzero(out[1] <= 0)
    if bad.size:
        raise InputError(f"{data.name}, line {bad[0] + 2}, column {vi!r}: a sampling variance must be > 0, "
                         f"not {frame[vi].iloc[bad[0]].strip()}")
    return out[0], out[1]


def _rows(k: int) -> np.ndarray:
    return np.arange(k) if k <= MAX_ROWS else np.unique(np.linspace(0, k - 1, MAX_ROWS).round().astype(int))


def _estimates(r: MetaResult, yi: str, vi: str) -> list[str]:
    ci = r.confint_tau2()
    lo, hi = ci["tau^2"][1:]
    return [
        r"\section{Model and estimates}",
        rf"Study $i = 1, \dots, {r.k}$ reports $y_i$ (column \texttt{{{tex_text(yi)}}}) with known variance $v_i$ "
        rf"(column \texttt{{{tex_text(vi)}}}): $y_i \mid \theta_i \sim N(\theta_i, v_i)$, "
        rf"$\theta_i \sim N(\mu, \tau^2)$, $\tau^2$ estimated by {r.method} (metafor's definition, "
        r"truncated at 0; \texttt{docs/meta\_estimators.pdf}).",
        r"\begin{center}\begin{tabular}{ll}",
        rf"$\hat\tau^2$ & ${num(r.tau2)}$ (SE ${num(r.se_tau2, 4)}$; Q-profile 95\% interval $[{num(lo, 4)}, {num(hi, 4)}]$) \\",
        rf"$\hat\mu$ & ${num(r.mu)}$ (SE ${num(r.se_mu, 4)}$; 95\% interval $[{num(r.ci_lb[0], 6)}, {num(r.ci_ub[0], 6)}]$) \\",
        rf"$Q$ & ${num(r.QE)}$ on ${r.k - r.p}$ degrees of freedom, $p = {num(r.QEp, 3)}$ \\",
        rf"$I^2$, $H^2$ & ${num(r.I2, 4)}\%$, ${num(r.H2, 4)}$ \\",
        r"\end{tabular}\end{center}",
    ]


def _worked(r: MetaResult) -> list[str]:
    lines = [r"\section{The BLUP, with these numbers}",
             r"Completing the square in $\theta_i$ (\texttt{docs/meta\_analysis.pdf}, checked) gives "
             r"$\hat\theta_i = \hat\mu + \lambda_i (y_i - \hat\mu)$ with $\lambda_i = \hat\tau^2/(\hat\tau^2 + v_i)$; "
             r"its prediction variance with $\mu$ estimated is $\lambda_i v_i + (1-\lambda_i)^2 \mathrm{SE}(\hat\mu)^2$. "
             r"For the most and the least precise study:"]
    for i in dict.fromkeys([int(np.argmin(r.vi)), int(np.argmax(r.vi))]):
        lam = r.shrinkage[i]
        lines += [r"\begin{align*}",
                  rf"\lambda_{{{i + 1}}} &= \frac{{{num(r.tau2)}}}{{{num(r.tau2)} + {num(r.vi[i])}}} = {num(lam)}, \\",
                  rf"\hat\theta_{{{i + 1}}} &= {num(r.mu)} + {num(lam)}\,({num(r.yi[i])} - ({num(r.mu)})) = {num(r.blup[i])}, "
                  rf"\quad \mathrm{{SE}} = {num(r.blup_se[i], 4)}.",
                  r"\end{align*}"]
    return lines


def _table(r: MetaResult) -> list[str]:
    idx = _rows(r.k)
    note = "" if idx.size == r.k else f" ({idx.size} of the {r.k} studies, evenly spaced)"
    rows = [rf"{i + 1} & ${num(r.yi[i], 4)}$ & ${num(r.vi[i], 4)}$ & ${num(r.shrinkage[i], 4)}$ & "
            rf"${num(r.blup[i], 4)}$ & ${num(r.blup_se[i], 4)}$ & $[{num(r.pi_lb[i], 4)}, {num(r.pi_ub[i], 4)}]$ \\"
            for i in idx]
    return [r"\section{Studies}", rf"Each study's estimate and its BLUP{note}.",
            r"\begin{center}\begin{tabular}{rrrrrrr}", r"$i$ & $y_i$ & $v_i$ & $\lambda_i$ & $\hat\theta_i$ & SE & "
            r"95\% prediction interval \\ \hline", *rows, r"\end{tabular}\end{center}"]


def _forest(r: MetaResult) -> list[str]:
    idx = _rows(r.k)
    half = 1.959963984540054 * np.sqrt(r.vi)
    lo = float(min((r.yi - half)[idx].min(), r.pi_lb[idx].min()))
    hi = float(max((r.yi + half)[idx].max(), r.pi_ub[idx].max()))
    own = " ".join(f"({plain(r.yi[i])},{n + 1}) +- ({plain(half[i])},0)" for n, i in enumerate(idx))
    pred = " ".join(f"({plain(r.blup[i])},{n + 1.35}) +- ({plain(r.blup[i] - r.pi_lb[i])},0)"
                    for n, i in enumerate(idx))
    ticks = ",".join(str(n + 1) for n in range(idx.size))
    labels = ",".join(str(i + 1) for i in idx)
    bar = "error bars/.cd, x dir=both, x explicit"
    return [
        r"\section{Forest plot and shrinkage}",
        r"\begin{figure}[h]\centering\begin{tikzpicture}",
        rf"\begin{{axis}}[width=0.9\textwidth, height={plain(3 + 0.42 * idx.size, 3)}cm, y dir=reverse, "
        rf"xmin={plain(lo - 0.05 * (hi - lo))}, xmax={plain(hi + 0.05 * (hi - lo))}, ymin=0.3, ymax={idx.size + 1}, "
        rf"ytick={{{ticks}}}, yticklabels={{{labels}}}, ylabel={{study}}, scaled x ticks=false]",
        rf"\addplot[only marks, mark=square*, mark size=1.5pt, black, {bar}] coordinates {{{own}}};",
        rf"\addplot[only marks, mark=*, mark size=1.5pt, blue!70!black, {bar}] coordinates {{{pred}}};",
        rf"\addplot[red!70!black, dashed] coordinates {{({plain(r.mu)},0.3) ({plain(r.mu)},{idx.size + 1})}};",
        r"\end{axis}\end{tikzpicture}",
        r"\caption{Forest plot: each study's estimate $y_i$ with its 95\% interval $y_i \pm 1.96\sqrt{v_i}$ (black "
        r"squares) and, just below, its BLUP $\hat\theta_i$ with metafor's 95\% prediction interval (blue); "
        rf"dashed: $\hat\mu = {num(r.mu)}$.}}",
        r"\end{figure}",
    ]


def _shrinkage(r: MetaResult) -> list[str]:
    idx = _rows(r.k)
    lo = float(min(r.yi[idx].min(), r.blup[idx].min()))
    hi = float(max(r.yi[idx].max(), r.blup[idx].max()))
    pad = 0.05 * (hi - lo) if hi > lo else 0.05 * max(abs(hi), 1.0)
    segments = "\n".join(rf"\addplot[blue!60!black, mark=*, mark size=1pt] coordinates "
                         rf"{{({plain(r.yi[i])},1) ({plain(r.blup[i])},0)}};" for i in idx)
    return [
        r"\begin{figure}[h]\centering\begin{tikzpicture}",
        rf"\begin{{axis}}[width=0.95\textwidth, height=5cm, xmin={plain(lo - pad)}, xmax={plain(hi + pad)}, "
        r"ymin=-0.15, ymax=1.15, ytick={0,1}, yticklabels={{$\hat\theta_i$},{$y_i$}}, scaled x ticks=false]",
        segments,
        rf"\addplot[red!70!black, dashed] coordinates {{({plain(r.mu)},-0.15) ({plain(r.mu)},1.15)}};",
        r"\end{axis}\end{tikzpicture}",
        r"\caption{Shrinkage: each estimate $y_i$ (top) moves to its BLUP $\hat\theta_i$ (bottom), towards "
        r"$\hat\mu$ (dashed), by the share $1 - \lambda_i = v_i/(\hat\tau^2 + v_i)$ of its distance: the noisier "
        r"the study, the further it moves.}",
        r"\end{figure}",
    ]


def render(r: MetaResult, source: str, yi: str, vi: str) -> str:
    """The report as LaTeX text (deterministic)."""
    return document(rf"meta-analysis of \texttt{{{tex_text(yi)}}}", source,
                    [*_estimates(r, yi, vi), *_worked(r), *_forest(r), *_shrinkage(r), *_table(r)])


def write_meta_report(data: Path, yi: str, vi: str, method: str = "REML", out: Path | None = None,
                      pdf: bool | None = None, say=print) -> list[Path]:
    """Read ``data`` (CSV), fit shrinkage.meta, write ``<stem>-report.tex`` (and .pdf)."""
    data = Path(data)
    y, v = read_columns(data, yi, vi)
    return write_outputs(render(meta(y, v, method), data.name, yi, vi), data, out, pdf, say)
