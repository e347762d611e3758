"""``shrinkage report``: a LaTeX report of a fit on the user's own data.

The model, the estimates, the BLUP derivation (docs/blup.pdf) with the fitted numbers
substituted step by step, a table of the groups (summarised when there are many), and a
pgfplots figure of the shrinkage.  Output is deterministic (no dates; fixed number
formats; a fixed subsample of groups in the figure when there are many).  Nothing is
written until everything has been produced: the .tex and the PDF are compiled in a
scratch folder and renamed into place.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from .errors import BuildError, InputError
from .fit import FitResult, fit
from .render.chain import Chain, chain_block
from .render.preamble import PGFPLOTS, escape_verbatim
from .render.preamble import PREAMBLE as BASE_PREAMBLE

__all__ = ["render", "write_report", "write_outputs"]

MAX_TABLE_ROWS = 40  # groups listed one by one up to this many
MAX_PLOTTED = 150  # groups drawn in the shrinkage figure

PREAMBLE = BASE_PREAMBLE + PGFPLOTS


# --------------------------------------------------------------------------------------
# number formatting
# --------------------------------------------------------------------------------------
def num(x: float, digits: int = 6) -> str:
    """x in LaTeX math with ``digits`` significant digits (scientific as a x 10^k)."""
    x = float(x)
    if x == 0:
        return "0"
    if not math.isfinite(x):
        return r"\infty" if x > 0 else r"-\infty"
    s = f"{x:.{digits}g}"
    if "e" in s:
        mant, exp = s.split("e")
        return rf"{mant}\times 10^{{{int(exp)}}}"
    return s


def plain(x: float, digits: int = 6) -> str:
    """x for pgfplots coordinates (plain decimal/scientific, no LaTeX)."""
    return f"{float(x):.{digits}g}"


tex_text = escape_verbatim  # user strings: file, column and group names


def _label(x) -> str:
    return tex_text(x if isinstance(x, str) else (str(int(x)) if float(x).is_integer() else str(x)))


# --------------------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------------------
def _model(r: FitResult, response: str, group: str) -> list[str]:
    crit = "restricted maximum likelihood (REML)" if r.method == "REML" else "maximum likelihood (ML)"
    sizes = np.unique(r.n)
    size_text = (f"every group has $n_j = {int(sizes[0])}$ observations" if sizes.size == 1 else
                 f"group sizes range from ${int(r.n.min())}$ to ${int(r.n.max())}$ "
                 f"(${sizes.size}$ distinct sizes)")
    return [
        r"\section{Model}",
        rf"The response \texttt{{{tex_text(response)}}} is modelled with one random intercept per level of "
        rf"\texttt{{{tex_text(group)}}}:",
        r"\[ y_{ij} = \beta_0 + b_j + \varepsilon_{ij}, \qquad b_j \sim N(0, \sigma_b^2), \qquad "
        r"\varepsilon_{ij} \sim N(0, \sigma^2), \]",
        rf"independent, for groups $j = 1, \dots, J$ and observations $i = 1, \dots, n_j$. The data have "
        rf"$N = {r.n_obs}$ observations in $J = {r.n_groups}$ groups; {size_text}. "
        rf"The variances are estimated by {crit}, with $b_j$ integrated out "
        r"(\texttt{docs/profile.pdf}); the random effects are then predicted by their conditional modes "
        r"(BLUPs, \texttt{docs/blup.pdf}) with the estimates plugged in: empirical Bayes.",
    ]


def _estimates(r: FitResult) -> list[str]:
    lines = [
        r"\section{Estimates}",
        r"\begin{center}\begin{tabular}{@{}llr@{}}",
        r"\toprule quantity & symbol & estimate \\ \midrule",
        rf"overall mean & $\hat\beta_0$ & ${num(r.beta0)}$ \\",
        rf"residual variance & $\hat\sigma^2$ & ${num(r.sigma2)}$ \\",
        rf"random-intercept variance & $\hat\sigma_b^2$ & ${num(r.sigma_b2)}$ \\",
        rf"residual sd & $\hat\sigma$ & ${num(math.sqrt(r.sigma2))}$ \\",
        rf"random-intercept sd & $\hat\sigma_b$ & ${num(math.sqrt(r.sigma_b2))}$ \\",
        rf"variance ratio & $\hat\gamma = \hat\sigma_b^2/\hat\sigma^2$ & ${num(r.gamma)}$ \\",
        rf"{'REML ' if r.method == 'REML' else ''}log-likelihood & $\ell$ & ${num(r.loglik, 10)}$ \\",
        r"\bottomrule\end{tabular}\end{center}",
        ("The log-likelihood is on the scale of lme4's \\texttt{logLik}: "
         + ("the REML log-likelihood, including its $-\\tfrac{N-1}{2}\\log 2\\pi$ constant."
            if r.method == "REML" else "the ordinary maximised log-likelihood.")),
    ]
    if r.singular:
        lines.append(
            r"\paragraph{Singular fit.} The estimate of $\sigma_b^2$ is exactly $0$: the derivative of the "
            r"profiled criterion in $\gamma$ is $\le 0$ at $\gamma = 0$ and no interior maximum is higher "
            r"(the boundary test of \texttt{docs/profile.pdf}). The groups differ no more than "
            r"the within-group noise explains, every $\lambda_j = 0$ and every group mean is pooled "
            r"completely to $\hat\beta_0$.")
    return lines


def _example_groups(r: FitResult) -> list[int]:
    """The groups whose numbers are worked through: the smallest and the largest group
    (by n_j, first in label order on ties); one group if all sizes are equal."""
    small, large = int(np.argmin(r.n)), int(np.argmax(r.n))
    return [small] if r.n[small] == r.n[large] else [small, large]


def _p(x: float) -> str:
    """A number as a factor or term: in parentheses when negative or written with x 10^k."""
    s = num(x)
    return f"({s})" if s.startswith("-") or r"\times" in s else s


def _worked(r: FitResult, j: int) -> list[str]:
    n, ybar = int(r.n[j]), float(r.ybar[j])
    s2, sb2, b0 = r.sigma2, r.sigma_b2, r.beta0
    lam, bhat, cv = float(r.shrinkage[j]), float(r.blup[j]), float(r.conditional_variance[j])
    name = _label(r.groups[j])
    head = [rf"\subsection*{{Group \texttt{{{name}}}: $n_j = {n}$, $\bar y_j = {num(ybar)}$}}"]
    lam_formula = r"\frac{\hat\sigma_b^2}{\hat\sigma_b^2 + \hat\sigma^2/n_j}"
    var_lhs = r"\operatorname{Var}(b_j \mid \mathbf y)"
    if sb2 == 0:
        return head + chain_block([
            Chain("shrinkage factor:", r"\lambda_j", (("=", lam_formula), ("=", rf"\frac{{0}}{{0 + {_p(s2)}/{n}}}"),
                                                      ("=", "0"))),
            Chain("BLUP:", r"\hat b_j", (("=", r"\lambda_j(\bar y_j - \hat\beta_0)"), ("=", "0"))),
            Chain("partial pooling:", r"\hat\beta_0 + \hat b_j", (("=", r"\hat\beta_0"), ("=", num(b0)))),
            Chain("conditional variance:", var_lhs, (("=", "0"),)),
        ])
    precision = n / s2 + 1 / sb2
    return head + chain_block([
        Chain(r"precision of $b_j$:", r"\frac{n_j}{\hat\sigma^2} + \frac{1}{\hat\sigma_b^2}",
              (("=", rf"\frac{{{n}}}{{{num(s2)}}} + \frac{{1}}{{{num(sb2)}}}"), ("=", num(precision)))),
        Chain("centre of the square:", r"\hat b_j",
              (("=", r"\frac{(n_j/\hat\sigma^2)(\bar y_j - \hat\beta_0)}{n_j/\hat\sigma^2 + 1/\hat\sigma_b^2}"),
               ("=", rf"\frac{{({n}/{_p(s2)})\,({num(ybar)} - {_p(b0)})}}{{{num(precision)}}}"), ("=", num(bhat)))),
        Chain("shrinkage factor:", r"\lambda_j",
              (("=", lam_formula), ("=", rf"\frac{{{num(sb2)}}}{{{num(sb2)} + {_p(s2)}/{n}}}"), ("=", num(lam)))),
        Chain("BLUP:", r"\hat b_j", (("=", r"\lambda_j(\bar y_j - \hat\beta_0)"),
                                    ("=", rf"{num(lam)} \times ({num(ybar)} - {_p(b0)})"), ("=", num(bhat)))),
        Chain("partial pooling:", r"\hat\beta_0 + \hat b_j",
              (("=", r"\lambda_j\bar y_j + (1-\lambda_j)\hat\beta_0"),
               ("=", rf"{num(lam)} \times {_p(ybar)} + {num(1 - lam)} \times {_p(b0)}"), ("=", num(b0 + bhat)))),
        Chain("conditional variance:", var_lhs,
              (("=", r"\Bigl(\frac{n_j}{\hat\sigma^2} + \frac{1}{\hat\sigma_b^2}\Bigr)^{-1}"),
               ("=", rf"\frac{{1}}{{{num(precision)}}}"), ("=", num(cv)))),
        Chain("its square root, the conditional sd:", rf"\sqrt{{{var_lhs}}}", (("=", num(math.sqrt(cv))),)),
    ])


def _derivation(r: FitResult) -> list[str]:
    lines = [
        r"\section{The BLUP, with these numbers}",
        r"For one group, the terms of the joint log-density of $(\mathbf y, \mathbf b)$ that involve $b_j$ are "
        r"$-\frac{1}{2\sigma^2}\sum_i (y_{ij}-\beta_0-b_j)^2 - \frac{b_j^2}{2\sigma_b^2}$. With "
        r"$\sum_i(y_{ij}-\beta_0-b_j)^2 = S_j + n_j(\bar y_j - \beta_0 - b_j)^2$ and completing the square "
        r"(\texttt{docs/blup.pdf}),",
        r"\[ \ell_j(b_j) = -\tfrac12\Bigl(\frac{n_j}{\sigma^2} + \frac{1}{\sigma_b^2}\Bigr)(b_j - \hat b_j)^2 "
        r"+ \text{terms free of } b_j, \qquad \hat b_j = \lambda_j(\bar y_j - \beta_0), \quad "
        r"\lambda_j = \frac{\sigma_b^2}{\sigma_b^2 + \sigma^2/n_j}. \]",
        r"Below, each step is shown in symbols, with the fitted values substituted, and its value, for "
        + (r"the smallest and the largest group. A larger $n_j$ gives a larger $\lambda_j$: less shrinkage."
           if len(_example_groups(r)) > 1 else
           r"the first group; all groups have the same size, so all share the same $\lambda_j$."),
    ]
    for j in _example_groups(r):
        lines += _worked(r, j)
    return lines


def _group_rows(r: FitResult, idx) -> list[str]:
    sd = np.sqrt(r.conditional_variance)
    return [rf"\texttt{{{_label(r.groups[j])}}} & {int(r.n[j])} & ${num(r.ybar[j])}$ & ${num(r.shrinkage[j], 4)}$ & "
            rf"${num(r.blup[j], 5)}$ & ${num(sd[j], 4)}$ \\" for j in idx]


TABLE_HEAD = [
    r"\begin{center}\begin{tabular}{@{}lrrrrr@{}}",
    r"\toprule group & $n_j$ & $\bar y_j$ & $\lambda_j$ & $\hat b_j$ & sd$(b_j\mid\mathbf y)$ \\ \midrule",
]
TABLE_FOOT = [r"\bottomrule\end{tabular}\end{center}"]


def _groups(r: FitResult) -> list[str]:
    lines = [r"\section{Groups}"]
    if r.n_groups <= MAX_TABLE_ROWS:
        lines.append(r"Every group, in label order. The conditional sd is $\sqrt{\operatorname{Var}(b_j\mid\mathbf y)}$, "
                     r"with $\beta_0$ and the variances treated as known (lme4's \texttt{condVar}).")
        return lines + TABLE_HEAD + _group_rows(r, range(r.n_groups)) + TABLE_FOOT
    qs = (0.0, 0.25, 0.5, 0.75, 1.0)
    sd = np.sqrt(r.conditional_variance)
    cols = [("$n_j$", r.n.astype(float)), (r"$\bar y_j$", r.ybar), (r"$\lambda_j$", r.shrinkage),
            (r"$\hat b_j$", r.blup), (r"sd$(b_j\mid\mathbf y)$", sd)]
    lines += [
        rf"With $J = {r.n_groups}$ groups the table is summarised: quantiles of each column over the groups, "
        r"then the groups with the largest $|\hat b_j|$, then the smallest groups.",
        r"\begin{center}\begin{tabular}{@{}lrrrrr@{}}",
        r"\toprule & min & 25\% & median & 75\% & max \\ \midrule",
        *[rf"{name} & " + " & ".join(f"${num(v, 4)}$" for v in np.quantile(col, qs)) + r" \\" for name, col in cols],
        r"\bottomrule\end{tabular}\end{center}",
    ]
    top = np.argsort(-np.abs(r.blup), kind="stable")[:10]
    small = np.argsort(r.n, kind="stable")[:10]
    lines += [r"\paragraph{Largest $|\hat b_j|$.}"] + TABLE_HEAD + _group_rows(r, top) + TABLE_FOOT
    lines += [r"\paragraph{Smallest groups.}"] + TABLE_HEAD + _group_rows(r, small) + TABLE_FOOT
    return lines


def _plotted(r: FitResult) -> np.ndarray:
    if r.n_groups <= MAX_PLOTTED:
        return np.arange(r.n_groups)
    return np.unique(np.linspace(0, r.n_groups - 1, MAX_PLOTTED).round().astype(int))


def _figure(r: FitResult) -> list[str]:
    idx = _plotted(r)
    pooled = r.beta0 + r.blup
    lo = float(min(r.ybar[idx].min(), pooled[idx].min()))
    hi = float(max(r.ybar[idx].max(), pooled[idx].max()))
    pad = 0.05 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.05
    segments = "\n".join(
        rf"\addplot[blue!60!black, opacity=0.7, mark=*, mark size=1pt] coordinates {{({plain(r.ybar[j])},1) ({plain(pooled[j])},0)}};"
        for j in idx)
    sample_note = ("" if idx.size == r.n_groups else
                   f" ({idx.size} of the {r.n_groups} groups, evenly spaced in label order)")
    sizes, first = np.unique(r.n, return_index=True)
    lam_points = " ".join(f"({int(m)},{plain(r.shrinkage[k])})" for m, k in zip(sizes, first))
    nmin, nmax = float(sizes.min()), float(sizes.max())
    logx = nmax / nmin > 50
    lo_n, hi_n = (nmin, nmax) if logx else (1.0, max(1.5 * nmax, nmin + 5))
    axis_x = (f"xmode=log, log basis x=10, xmin={plain(nmin / 1.5)}, xmax={plain(nmax * 1.5)},"
              if logx else f"xmin={plain(lo_n)}, xmax={plain(hi_n)},")
    curve = "" if r.gamma == 0 else (
        rf"\addplot[red!70!black, thick, domain={plain(lo_n)}:{plain(hi_n)}, samples=100] "
        rf"{{x*{plain(r.gamma, 12)}/(1+x*{plain(r.gamma, 12)})}};")
    return [
        r"\section{Shrinkage}",
        r"\begin{figure}[h]\centering",
        r"\begin{tikzpicture}",
        rf"\begin{{axis}}[width=0.95\textwidth, height=5cm, xmin={plain(lo - pad)}, xmax={plain(hi + pad)}, "
        r"ymin=-0.15, ymax=1.15, ytick={0,1}, yticklabels={{$\hat\beta_0+\hat b_j$},{$\bar y_j$}}, "
        rf"xlabel={{{tex_text('value')}}}, scaled x ticks=false]",
        segments,
        rf"\addplot[black, dashed] coordinates {{({plain(r.beta0)},-0.15) ({plain(r.beta0)},1.15)}};",
        r"\end{axis}",
        r"\end{tikzpicture}",
        rf"\caption{{Each group's own mean $\bar y_j$ (top) moves to its partially pooled mean "
        rf"$\hat\beta_0 + \hat b_j$ (bottom), towards $\hat\beta_0 = {num(r.beta0)}$ (dashed){sample_note}.}}",
        r"\end{figure}",
        r"\begin{figure}[h]\centering",
        r"\begin{tikzpicture}",
        rf"\begin{{axis}}[width=0.7\textwidth, height=5.5cm, {axis_x} xlabel={{$n_j$}}, ylabel={{$\lambda_j$}}, "
        r"ymin=0, ymax=1.05]",
        curve,
        rf"\addplot[only marks, mark=*, blue!60!black] coordinates {{{lam_points}}};",
        r"\end{axis}",
        r"\end{tikzpicture}",
        rf"\caption{{The shrinkage factor $\lambda_j = n_j\hat\gamma/(1 + n_j\hat\gamma)$ against the group size "
        rf"$n_j$ (one mark per distinct size; curve: the formula at $\hat\gamma = {num(r.gamma)}$). "
        r"Larger groups are shrunk less.}",
        r"\end{figure}",
    ]


def render(r: FitResult, source: str, response: str, group: str) -> str:
    """The report as LaTeX text (deterministic)."""
    return document(rf"\texttt{{{tex_text(response)}}} by \texttt{{{tex_text(group)}}}", source,
                    [*_model(r, response, group), *_estimates(r), *_derivation(r), *_groups(r), *_figure(r)])


def document(title: str, source: str, sections: list[str], preamble: str = PREAMBLE) -> str:
    """A report's LaTeX: the preamble, a title naming the model (``title``, LaTeX) and the
    data file, then the sections' lines (empty ones dropped)."""
    body = [
        preamble,
        rf"\title{{Shrinkage report: {title}}}",
        rf"\author{{\texttt{{shrinkage report}} on \texttt{{{tex_text(source)}}}}}",
        r"\date{}",
        r"\begin{document}",
        r"\maketitle",
        *sections,
        r"\end{document}",
    ]
    return "\n".join(line for line in body if line != "") + "\n"


def write_report(data: Path, response: str, group: str, method: str = "REML", out: Path | None = None,
                 pdf: bool | None = None, say=print) -> list[Path]:
    """Read ``data`` (CSV), fit, and write ``<stem>-report.tex`` (and .pdf when TeX is
    present, or pdf=True) into ``out``.  Both files appear only when both are complete."""
    from .table import stream_stats

    data = Path(data)
    _check_out(out)
    result = fit(stats=stream_stats(data, response, group), method=method)  # chunked: any size of CSV
    return write_outputs(render(result, data.name, response, group), data, out, pdf, say)


def _check_out(out: Path | None) -> None:
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise InputError(f"output folder {out} is a file")


def write_outputs(text: str, data: Path, out: Path | None, pdf: bool | None, say) -> list[Path]:
    """Write the report ``text`` of ``data`` as ``<stem>-report.tex`` (and its PDF) into
    ``out``: compiled in a scratch folder first, so both files appear or neither does.
    TeX never sees the user's file name (texio compiles a fixed job name)."""
    from .texio import pdf_bytes, tex_available, write_atomic

    _check_out(out)
    out = Path(out) if out is not None else Path.cwd()
    stem = _report_stem(data, out, say)
    compile_now = tex_available() if pdf is None else pdf
    pdf_data = None
    if compile_now:
        try:
            pdf_data = pdf_bytes(text, stem)
        except BuildError:
            raise BuildError(f"LaTeX could not compile the report of {data.name}; nothing was written "
                             "(use --no-pdf to get the .tex alone)") from None
    written = []
    try:
        write_atomic(out / f"{stem}.tex", text.encode())
        written.append(out / f"{stem}.tex")
        if pdf_data is not None:
            write_atomic(out / f"{stem}.pdf", pdf_data)
            written.append(out / f"{stem}.pdf")
    except OSError as e:
        for p in written:
            p.unlink(missing_ok=True)
        raise BuildError(f"cannot write to {out}: {e.strerror}") from None
    except BuildError:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    for p in written:
        say(f"wrote {shown(p)}")
    if not compile_now and pdf is None:
        say("TeX (latexmk, pdflatex) not found: wrote the .tex only")
    return written


def _report_stem(data: Path, out: Path, say) -> str:
    """``<stem>-report``, its stem cut (at a character) when ``<stem>-report.tex`` would
    have more bytes than a file name in ``out`` may (a data file's own name can have all
    of them)."""
    folder = out.absolute()
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent  # out is made when the files are written: ask the folder it will be in
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        limit = 255
    stem = data.stem
    while stem and len(os.fsencode(f"{stem}-report.tex")) > limit:
        stem = stem[:-1]
    if stem != data.stem:
        say(f"note: {shown(data.name)} is too long a name for {shown(data.stem)}-report.tex: "
            f"the report is named {shown(stem)}-report")
    return f"{stem}-report"


def shown(path) -> str:
    """A path for the terminal: bytes that are not UTF-8 as \\xNN, control characters
    escaped (a name's newline does not split the line it is printed on)."""
    text = str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text if text.isprintable() else repr(text)[1:-1]
