"""``shrinkage report DATA --formula "y ~ x + (x | g)"``: the report of a mixed model with
covariates and random slopes.

The equations are the checked steps of derivations/lmm_blup.py, quoted from the generated
``_report_excerpts`` (see :mod:`shrinkage.report_excerpts`), never re-typed; the numbers
come from the fit (:func:`shrinkage.fit`, tested against lme4) and from the functions the
build generated from those very steps (``numeric.lmm_blup`` ...).  For the smallest and
the largest group every quantity of the quoted steps is shown; then a table of the groups
and, for a line y ~ x + (x | g), a figure of each group's own least-squares line against
its shrunk line.  No SymPy; deterministic; nothing written unless all of it is complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import numeric
from ._report_excerpts import EXCERPTS, NUMBERS, SOURCE
from .errors import InputError
from .render.preamble import PGFPLOTS
from .render.preamble import PREAMBLE as BASE_PREAMBLE
from .report import MAX_TABLE_ROWS, document, num, tex_text, write_outputs

__all__ = ["GroupNumbers", "group_numbers", "render_lmm", "write_lmm_report"]

DOC = r"docs/lmm\_blup.pdf"
MAX_PANELS = 30  # groups drawn in the figure (6 per row)
PREAMBLE = BASE_PREAMBLE + PGFPLOTS + "\\usepgfplotslibrary{groupplots}\n"


@dataclass(frozen=True)
class GroupNumbers:
    """Every quantity of the quoted steps, per group j (first axis J): the cross-products
    of the user's own (uncentred) columns, the BLUP and Var(b_j | y) from the generated
    functions, and the group's own least-squares deviation and shrinkage matrix."""

    n: np.ndarray  # (J,)
    ZtZ: np.ndarray  # (J, q, q)
    ZtX: np.ndarray  # (J, q, p)
    Zty: np.ndarray  # (J, q)
    deviation: np.ndarray  # Z_j'(y_j - X_j beta_hat), (J, q)
    blup: np.ndarray  # (J, q)
    condvar: np.ndarray  # (J, q, q)
    own: np.ndarray  # tilde b_j, (J, q)
    shrink: np.ndarray  # Lambda_j, (J, q, q)


def _require_own_fit(r, Z: np.ndarray, codes: np.ndarray, n: np.ndarray) -> None:
    """Lambda_j and tilde b_j need Z_j'Z_j invertible: name the first group where it is not.

    Judged on each group's columns scaled to unit length and, with an intercept, centred
    within the group, so a covariate far from zero (x = 1e6 + a little) is not mistaken
    for a constant one."""
    J, q = n.size, Z.shape[1]
    W = Z.copy()
    if r.z_names[0] == "(Intercept)" and q > 1:
        means = _group_sums(codes, J, W[:, 1:]) / n[:, None]
        W[:, 1:] -= means[codes]
    norms = np.sqrt(_group_sums(codes, J, W * W))
    W /= np.where(norms > 0, norms, 1.0)[codes]
    eig = np.linalg.eigvalsh(_group_sums(codes, J, W[:, :, None] * W[:, None, :]))
    bad = np.flatnonzero((eig[:, 0] <= 1e-10) | (n < q))
    if bad.size:
        j = int(bad[0])
        terms = ", ".join(r.z_names)
        raise InputError(
            f"group {str(r.labels[j])!r} of {r.group!r} has {int(n[j])} observation(s) and Z_j'Z_j is singular there: "
            f"its own least-squares fit of the random terms ({terms}) needs at least {q} observations with "
            f"different values ({bad.size} such group(s) in all)")


def _group_sums(codes: np.ndarray, J: int, rows: np.ndarray) -> np.ndarray:
    """Per-group sums of ``rows`` (N, ...) -> (J, ...), one bincount per entry (fast for small q, p)."""
    flat = rows.reshape(rows.shape[0], -1)
    sums = np.stack([np.bincount(codes, weights=flat[:, k], minlength=J) for k in range(flat.shape[1])], axis=1)
    return sums.reshape((J,) + rows.shape[1:])


def group_numbers(r) -> GroupNumbers:
    """The per-group numbers of the report, from a fit with its design (a formula fit)."""
    d = r.design
    X, Z, y, codes = d.X, d.Z, np.asarray(d.y, dtype=float), d.codes
    J = r.ngroups
    n = np.bincount(codes, minlength=J)
    ZtZ = _group_sums(codes, J, Z[:, :, None] * Z[:, None, :])
    ZtX = _group_sums(codes, J, Z[:, :, None] * X[:, None, :])
    Zty = _group_sums(codes, J, Z * y[:, None])
    _require_own_fit(r, Z, codes, n)
    D, s2, beta = r.D, r.sigma2, r.beta
    if r.singular:  # D has no inverse: the steps in lme4's factor (lmm_blup 11, 16), equal where both exist
        blup = numeric.lmm_blup_theta(ZtZ, ZtX, Zty, beta, r.lam)
        condvar = numeric.lmm_condvar_theta(ZtZ, r.lam, s2)
    else:
        blup = numeric.lmm_blup(ZtZ, ZtX, Zty, beta, D, s2)
        condvar = numeric.lmm_conditional_covariance(ZtZ, D, s2)
    deviation = Zty - ZtX @ beta
    own = np.linalg.solve(ZtZ, deviation[:, :, None])[:, :, 0]  # the definition of tilde b_j
    shrink = D @ np.linalg.inv(D + s2 * np.linalg.inv(ZtZ))  # the definition of Lambda_j
    return GroupNumbers(n, ZtZ, ZtX, Zty, deviation, blup, condvar, own, shrink)


# --------------------------------------------------------------------------------------
# LaTeX pieces
# --------------------------------------------------------------------------------------
def _pmatrix(a, digits: int = 6) -> str:
    a = np.atleast_2d(np.asarray(a, dtype=float))
    rows = [" & ".join(num(v, digits) for v in row) for row in a]
    return r"\begin{pmatrix}" + r" \\ ".join(rows) + r"\end{pmatrix}"


def _column(v, digits: int = 6) -> str:
    return _pmatrix(np.asarray(v, dtype=float)[:, None], digits)


def _eq(label: str) -> str:
    return rf"\eqref{{{SOURCE}:{NUMBERS[label]}}}"


def _names(names) -> str:
    return ", ".join(rf"\texttt{{{tex_text(s)}}}" for s in names)


def example_groups(g: GroupNumbers) -> list[int]:
    """The smallest and the largest group by n_j: the first of the smallest and the last
    of the largest in label order, so two groups are shown even when all sizes are equal."""
    small = int(np.argmin(g.n))
    large = int(np.flatnonzero(g.n == g.n.max())[-1])
    return [small] if small == large else [small, large]


def _model(r) -> list[str]:
    crit = "restricted maximum likelihood (REML)" if r.method == "REML" else "maximum likelihood (ML)"
    n = np.bincount(r.design.codes, minlength=r.ngroups)
    sizes = (f"every group has $n_j = {int(n[0])}$ observations" if n.min() == n.max() else
             f"group sizes range from ${int(n.min())}$ to ${int(n.max())}$")
    dropped = (f" {r.dropped} row(s) with a missing value in a column of the formula were left out (as lme4's "
               r"\texttt{na.omit})." if r.dropped else "")
    return [
        r"\section{Model}",
        r"The formula", rf"\[ \texttt{{{tex_text(r.formula)}}} \]",
        rf"is the linear mixed model of \texttt{{{DOC}}}: "
        r"for each level $j$ of the grouping factor \texttt{" + tex_text(r.group) + r"}, "
        r"$\mathbf y_j = \mathbf X_j\boldsymbol\beta + \mathbf Z_j\mathbf b_j + \boldsymbol\varepsilon_j$ with "
        r"$\mathbf b_j \sim N(\mathbf 0, \mathbf D)$ independent of $\boldsymbol\varepsilon_j \sim N(\mathbf 0, \sigma^2\mathbf I)$. "
        rf"The columns of $\mathbf X_j$ (fixed effects) are {_names(r.x_names)}; those of $\mathbf Z_j$ "
        rf"(random effects, $q = {len(r.z_names)}$) are {_names(r.z_names)}. "
        rf"The data have $N = {r.nobs}$ observations in $J = {r.ngroups}$ groups; {sizes}.{dropped} "
        rf"$\boldsymbol\beta$, $\mathbf D$ and $\sigma^2$ are estimated by {crit}, with the $\mathbf b_j$ integrated "
        rf"out (\texttt{{docs/lmm\_marginal.pdf}}); the random effects are then predicted by their conditional modes "
        rf"(BLUPs) with the estimates plugged in: empirical Bayes.",
    ]


def _estimates(r) -> list[str]:
    se = np.sqrt(np.diag(r.vcov_matrix))
    fixed = [rf"\texttt{{{tex_text(k)}}} & ${num(b)}$ & ${num(s, 4)}$ & ${num(b / s, 4)}$ \\"
             for k, b, s in zip(r.x_names, r.beta, se)]
    sd = np.sqrt(np.diag(r.D))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = r.D / np.outer(sd, sd)
    random = []
    for k, name in enumerate(r.z_names):
        cells = " & ".join(f"${num(corr[k, m], 4)}$" if sd[k] > 0 and sd[m] > 0 else "--" for m in range(k))
        random.append(rf"\texttt{{{tex_text(name)}}} & ${num(r.D[k, k])}$ & ${num(sd[k], 4)}$"
                      + (f" & {cells}" if k else "") + " & " * (len(r.z_names) - 1 - k) + r" \\")
    q = len(r.z_names)
    lines = [
        r"\section{Estimates}",
        r"\paragraph{Fixed effects} (standard errors from lme4's \texttt{vcov}).",
        r"\begin{center}\begin{tabular}{@{}lrrr@{}}",
        r"\toprule term & estimate $\hat\beta$ & std.\ error & $t$ \\ \midrule", *fixed,
        r"\bottomrule\end{tabular}\end{center}",
        rf"\paragraph{{Random effects}} of \texttt{{{tex_text(r.group)}}}: the diagonal of $\hat{{\mathbf D}}$, the "
        r"standard deviations and the correlations (lme4's \texttt{VarCorr}).",
        r"\begin{center}\begin{tabular}{@{}lrr" + "r" * (q - 1) + "@{}}",
        r"\toprule term & variance & sd" + (" & " + " & ".join("corr." for _ in range(q - 1)) if q > 1 else "")
        + r" \\ \midrule", *random,
        rf"residual & ${num(r.sigma2)}$ & ${num(r.sigma, 4)}$" + " & " * (q - 1) + r" \\",
        r"\bottomrule\end{tabular}\end{center}",
        rf"So $\hat{{\mathbf D}} = {_pmatrix(r.D)}$ and $\hat\sigma^2 = {num(r.sigma2)}$. "
        rf"{'REML log-likelihood' if r.method == 'REML' else 'Log-likelihood'} ${num(r.loglik, 10)}$ "
        rf"(lme4's \texttt{{logLik}}), AIC ${num(r.aic, 8)}$, BIC ${num(r.bic, 8)}$.",
    ]
    if r.singular:
        lines.append(r"\paragraph{Singular fit.} $\hat{\mathbf D}$ is singular, or numerically so (a variance estimated "
                     r"as $0$ or a correlation of $\pm1$, lme4's \texttt{isSingular}): $\hat{\mathbf D}^{-1}$ does not exist "
                     r"or cannot be trusted, and the "
                     r"numbers below come from the forms in lme4's relative covariance factor $\boldsymbol\Lambda_\theta$ "
                     rf"(steps {_eq_text('blup_theta')} and {_eq_text('condvar_theta')} of \texttt{{{DOC}}}), "
                     r"which the derivation shows equal to the ones quoted where both exist.")
    return lines


def _eq_text(label: str) -> str:
    """A step cited by its tag (the report does not quote it)."""
    return rf"(\textsf{{lmm\_blup}}~{NUMBERS[label]})"


def _derivation(r, g: GroupNumbers) -> list[str]:
    q = len(r.z_names)
    same = bool(np.allclose(g.ZtZ, g.ZtZ[0], rtol=1e-12, atol=0))
    lines = [
        r"\section{The BLUP and the shrinkage matrix, with these numbers}",
        rf"The steps below are quoted from the checked derivation \texttt{{{DOC}}} (a step tagged "
        r"(\textsf{lmm\_blup}~$k$) is its equation ($k$); each note says how it was checked).  Completing the square "
        r"in $\mathbf b_j$ gives the BLUP and the conditional covariance, in the group's cross-products:",
        EXCERPTS["blup"], EXCERPTS["condvar"],
        r"Where $\mathbf Z_j^{\mathsf T}\mathbf Z_j$ is invertible, the BLUP is the group's own least-squares "
        r"deviation shrunk by a matrix:",
        EXCERPTS["shrinkage"], EXCERPTS["form"],
        (r"With one random term ($q = 1$) the matrix is the one-way shrinkage factor:" if q == 1 else
         r"The random terms shrink \emph{together}: an off-diagonal entry of $\boldsymbol\Lambda_j$ moves one "
         r"coefficient by the group's own estimate of another, through the correlations in $\mathbf D$ and in the "
         r"sampling covariance $\sigma^2(\mathbf Z_j^{\mathsf T}\mathbf Z_j)^{-1}$ of the group's own estimate.  "
         r"For one random intercept the matrix is the one-way shrinkage factor:"),
        EXCERPTS["one_way"],
        r"Below, each quantity with $\hat{\boldsymbol\beta}$, $\hat{\mathbf D}$ and $\hat\sigma^2$ plugged in, for the "
        + (r"smallest and the largest group" if g.n.min() < g.n.max() else
           rf"first and the last group in label order (every group has $n_j = {int(g.n[0])}$)")
        + (r".  All groups have the same $\mathbf Z_j^{\mathsf T}\mathbf Z_j$, hence the same $\boldsymbol\Lambda_j$ "
           r"and conditional covariance; their BLUPs differ with their data." if same else "."),
    ]
    for j in example_groups(g):
        lines += _worked(r, g, j)
    return lines


def _worked(r, g: GroupNumbers, j: int) -> list[str]:
    blup_label = "blup_theta" if r.singular else "blup_stats"
    rows = [
        (r"\mathbf Z_j^{\mathsf T}\mathbf Z_j", _pmatrix(g.ZtZ[j]), ""),
        (r"\mathbf Z_j^{\mathsf T}\mathbf X_j", _pmatrix(g.ZtX[j]), ""),
        (r"\mathbf Z_j^{\mathsf T}\mathbf y_j", _column(g.Zty[j]), ""),
        (r"\mathbf Z_j^{\mathsf T}\mathbf y_j - \mathbf Z_j^{\mathsf T}\mathbf X_j \hat{\boldsymbol\beta}",
         _column(g.deviation[j]), ""),
        (r"\hat{\mathbf b}_j", _column(g.blup[j]), "" if r.singular else _eq(blup_label)),
        (r"\operatorname{Var}(\mathbf b_j \mid \mathbf y_j)", _pmatrix(g.condvar[j]),
         "" if r.singular else _eq("condvar_stats")),
        (r"\tilde{\mathbf b}_j", _column(g.own[j]), _eq("shrinkage_matrix-1")),
        (r"\boldsymbol\Lambda_j", _pmatrix(g.shrink[j], 5), _eq("shrinkage_matrix")),
        (r"\boldsymbol\Lambda_j \tilde{\mathbf b}_j", _column(g.shrink[j] @ g.own[j]), _eq("shrinkage_form")),
    ]
    body = [rf"{lhs} &= {rhs} && \text{{{'by ' + ref if ref else ''}}}" for lhs, rhs, ref in rows]
    lines = [
        rf"\subsection*{{Group \texttt{{{tex_text(str(r.labels[j]))}}}: $n_j = {int(g.n[j])}$}}",
        r"\begin{align*}", " \\\\\n".join(body), r"\end{align*}",
    ]
    last = r"The last line equals $\hat{\mathbf b}_j$, as the quoted step says."
    q = len(r.z_names)
    if q >= 2:
        k = int(np.argmax(np.abs(g.shrink[j][0, 1:]))) + 1
        moved = g.shrink[j][0, k] * g.own[j][k]
        last += (
            rf"  The intercept's BLUP is ${num(g.blup[j][0])}$, of which $\Lambda_{{j,1{k + 1}}}\tilde b_{{j,{k + 1}}} = "
            rf"{num(g.shrink[j][0, k], 5)} \times {_paren(g.own[j][k])} = {num(moved)}$ comes from the group's own "
            rf"estimate for \texttt{{{tex_text(r.z_names[k])}}}, while its own intercept deviation "
            rf"$\tilde b_{{j,1}} = {num(g.own[j][0])}$ is kept in the proportion $\Lambda_{{j,11}} = {num(g.shrink[j][0, 0], 5)}$.")
    return lines + [r"\begin{sloppypar}\noindent " + last + r"\end{sloppypar}"]


def _paren(x: float) -> str:
    s = num(x)
    return f"({s})" if s.startswith("-") or r"\times" in s else s


def _groups(r, g: GroupNumbers) -> list[str]:
    names = [tex_text(s) for s in r.z_names]
    key = "; ".join(rf"term {k + 1} is \texttt{{{s}}}" for k, s in enumerate(names))
    head = (r"\begin{center}\small\begin{tabular}{@{}lr" + "rr" * len(names) + "@{}}",
            r"\toprule group & $n_j$ & " + " & ".join(rf"$\tilde b_{{j,{k + 1}}}$ & $\hat b_{{j,{k + 1}}}$"
                                                      for k in range(len(names))) + r" \\ \midrule")
    lines = [r"\section{Groups}",
             r"Each group's own least-squares deviation $\tilde{\mathbf b}_j$ and its BLUP "
             r"$\hat{\mathbf b}_j = \boldsymbol\Lambda_j\tilde{\mathbf b}_j$ (lme4's \texttt{ranef}), term by term ("
             + key + ")"]
    if r.ngroups <= MAX_TABLE_ROWS:
        rows = [rf"\texttt{{{tex_text(str(r.labels[j]))}}} & {int(g.n[j])} & "
                + " & ".join(f"${num(g.own[j][k], 5)}$ & ${num(g.blup[j][k], 5)}$" for k in range(len(names)))
                + r" \\" for j in range(r.ngroups)]
        lines[-1] += ", every group in label order."
        return lines + [*head, *rows, r"\bottomrule\end{tabular}\end{center}"]
    qs = (0.0, 0.25, 0.5, 0.75, 1.0)
    cols = [("$n_j$", g.n.astype(float))]
    for k in range(len(names)):
        cols += [(rf"$\tilde b_{{j,{k + 1}}}$", g.own[:, k]), (rf"$\hat b_{{j,{k + 1}}}$", g.blup[:, k])]
    lines[-1] += rf"; with $J = {r.ngroups}$ groups, their quantiles over the groups."
    return lines + [
        r"\begin{center}\small\begin{tabular}{@{}lrrrrr@{}}",
        r"\toprule & min & 25\% & median & 75\% & max \\ \midrule",
        *[rf"{name} & " + " & ".join(f"${num(v, 4)}$" for v in np.quantile(col, qs)) + r" \\" for name, col in cols],
        r"\bottomrule\end{tabular}\end{center}",
    ]


def _figure(r, g: GroupNumbers) -> list[str]:
    from .report_lmm_figure import figure_lines

    return figure_lines(r, g, MAX_PANELS)


def render_lmm(r, source: str) -> str:
    """The report of a formula fit as LaTeX text (deterministic)."""
    if r.design is None:
        raise InputError("the report of a formula model needs a fit from a formula and data")
    g = group_numbers(r)
    return document(rf"\texttt{{{tex_text(r.formula)}}}", source,
                    [*_model(r), *_estimates(r), *_derivation(r, g), *_groups(r, g), *_figure(r, g)], PREAMBLE)


def read_frame(data: Path):
    """The CSV as a DataFrame, with one-line errors for what pandas raises."""
    import pandas as pd

    data = Path(data)
    if not data.is_file():
        raise InputError(f"no such file: {data}")
    try:
        frame = pd.read_csv(data)
    except pd.errors.EmptyDataError:
        raise InputError(f"{data.name} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise InputError(f"{data.name} is not a readable CSV file: {str(e).splitlines()[0]}") from None
    if len(frame) == 0:
        raise InputError(f"{data.name} has a header but no data rows")
    return frame


def write_lmm_report(data: Path, formula: str, method: str = "REML", out: Path | None = None,
                     pdf: bool | None = None, say=print) -> list[Path]:
    """Read ``data`` (CSV), fit ``formula``, write ``<stem>-report.tex`` (and .pdf)."""
    from .lmm import lmer

    data = Path(data)
    result = lmer(formula, read_frame(data), method)
    return write_outputs(render_lmm(result, data.name), data, out, pdf, say)
