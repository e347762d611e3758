"""Compose docs/answer.tex: the document that answers the question claim by claim.

The answer reads checked derivations only (it decides nothing): each claim of the
question (``../shared/question.md``) gets our restatement, a verdict, prose, and
excerpts of the checked steps that settle it, numbered as in the standalone documents
(``(blup 9)`` is equation (9) of ``docs/blup.pdf``).  The figures are computed at build
time from the numeric functions generated from the same checked derivations, and written
into the .tex with fixed formatting, so two builds give the same bytes.

Entry point: :func:`render_answer`, used by ``shrinkage build`` as an extra document.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .engine import CheckedDerivation, Define, Equals, Given, Sign
from .errors import DerivationError
from .render.document import check_note, relation
from .render.tex import PREAMBLE, escape, tex

REQUIRED = ("blup", "shrinkage_facts", "joint_unbounded", "pls", "uncertainty", "laplace")
_PACKAGE_DATA = Path(__file__).resolve().parent / "datasets" / "dyestuff.csv"
_SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "dyestuff.csv"  # source tree only
DATA_FILE = _PACKAGE_DATA if _PACKAGE_DATA.exists() else _SHARED_DATA
VARIANCE_RATIOS = ("0.05", "0.2", "1", "5")  # sigma_b^2 / sigma^2 in figure 1 (exact decimals)
SIZES = tuple(range(1, 101))  # n_j in figure 1

VERDICTS = ("holds", "holds with a correction", "does not hold")


@dataclass(frozen=True)
class Claim:
    """One point of the question: our restatement, the verdict, and the argument."""

    key: str
    title: str
    claim: str  # in our words
    verdict: str  # one of VERDICTS
    body: str  # LaTeX; may contain {excerpt:name:first:last} placeholders


# ----------------------------------------------------------------------------------
# Excerpts of checked derivations
# ----------------------------------------------------------------------------------
def _number(cd: CheckedDerivation, ref: str | int) -> int:
    return ref if isinstance(ref, int) else cd.derivation.step_index(ref) + 1


def _tag(name: str, number: int) -> str:
    return rf"\textsf{{{escape(name)}}}~{number}"


def _borrowed_lhs(cd: CheckedDerivation, number: int) -> str:
    """The left-hand side a continuation line (``= ...``) stands for: the lhs of the
    nearest earlier step, provided everything in between rewrote the same quantity."""
    for k in range(number - 1, 0, -1):
        step = cd.derivation.steps[k - 1]
        if step.lhs:
            return step.lhs
        if not isinstance(step, (Equals, Define, Sign)):
            break
    raise DerivationError(f"excerpt of {cd.derivation.name} starts at step {number}, whose left side is unknown")


class Excerpts:
    """Renders runs of steps; remembers which equations the document defines, so that
    references to the others can be written as text instead of a broken \\eqref."""

    def __init__(self, checked: Mapping[str, CheckedDerivation]):
        self.checked = checked
        self.shown: set[str] = set()

    def lines(self, name: str, first: str | int, last: str | int) -> list[str]:
        cd = self.checked[name]
        a, b = _number(cd, first), _number(cd, last)
        out = [r"\begin{align}"]
        for cs in cd.steps[a - 1 : b]:
            step = cs.step
            lhs = step.lhs or (tex(step.symbol) if isinstance(step, Define) else "")
            if not lhs and cs.number == a:
                lhs = _borrowed_lhs(cd, a)
            label = f"{name}:{cs.number}"
            tagline = rf"\tag{{{_tag(name, cs.number)}}}"
            if label not in self.shown:
                tagline += rf"\label{{{label}}}"
                self.shown.add(label)
            note = re.sub(r"eq\.~\((\d+)\)", lambda m: f"({_tag(name, int(m.group(1)))})", check_note(cs))
            out.append(rf"\intertext{{\stepnote{{{escape(name)}~{cs.number}}}{{{escape(step.why)}}}{{{note}}}}}")
            out.append(rf"{lhs} &{relation(step)} {tex(step.rhs)} {tagline}\\")
        out[-1] = out[-1][:-2]
        out.append(r"\end{align}")
        return out

    def resolve_refs(self, text: str) -> str:
        """\\eqref{@name:label} becomes \\eqref{name:k} (k the step's number); \\eqref{name:k} to an
        equation not shown here becomes plain text (name k)."""

        def fix(m: re.Match) -> str:
            label = m.group(1)
            if label in self.shown:
                return m.group(0)
            name, number = label.rsplit(":", 1)
            return rf"\textup{{({_tag(name, int(number))})}}"

        text = re.sub(r"\\eqref\{@([a-z_]+):([a-z_0-9]+)\}",
                      lambda m: rf"\eqref{{{m.group(1)}:{_number(self.checked[m.group(1)], m.group(2))}}}", text)
        return re.sub(r"\\eqref\{([a-z_]+:\d+)\}", fix, text)


_PLACEHOLDER = re.compile(r"\{excerpt:([a-z_]+):([a-z_0-9]+):([a-z_0-9]+)\}")


def _expand(body: str, ex: Excerpts) -> str:
    def ref(x: str):
        return int(x) if x.isdigit() else x

    return _PLACEHOLDER.sub(lambda m: "\n".join(ex.lines(m.group(1), ref(m.group(2)), ref(m.group(3)))), body)


# ----------------------------------------------------------------------------------
# Numbers for the figures, from the generated functions
# ----------------------------------------------------------------------------------
def generated_functions(checked: Sequence[CheckedDerivation]) -> dict:
    """The numeric module generated from exactly these checked derivations (in memory,
    so the figures never use a stale numeric.py)."""
    from .codegen import generate

    namespace: dict = {"__name__": "shrinkage._answer_numeric", "__package__": "shrinkage"}
    exec(compile(generate(checked), "<generated numeric module>", "exec"), namespace)
    return namespace


@dataclass(frozen=True)
class Example:
    """The Dyestuff example: REML fit (balanced closed form) and per-batch predictions."""

    labels: tuple[str, ...]
    n: np.ndarray
    ybar: np.ndarray
    beta0: float
    sigma2: float
    sigma_b2: float
    lam: np.ndarray
    predicted: np.ndarray
    cond_sd: np.ndarray
    pev_sd: np.ndarray


def read_groups(path: Path = DATA_FILE) -> dict[str, list[float]]:
    """Group label -> observations, from a two-column CSV (label, value)."""
    groups: dict[str, list[float]] = {}
    with open(path, newline="") as f:
        rows = csv.reader(f)
        next(rows)
        for label, value in rows:
            groups.setdefault(label, []).append(float(value))
    return groups


def balanced_reml(groups: Mapping[str, Sequence[float]]) -> tuple[float, float, float]:
    """REML estimates (beta0, sigma2, sigma_b2) of a balanced one-way design, from the
    mean squares: sigma2 = MSW, sigma_b2 = (MSB - MSW)/n when MSB > MSW; otherwise the
    boundary sigma_b2 = 0 with sigma2 = total sum of squares / (N - 1)."""
    data = [np.asarray(v, dtype=float) for v in groups.values()]
    sizes = {len(v) for v in data}
    if len(sizes) != 1 or len(data) < 2 or min(sizes) < 2:
        raise DerivationError("balanced_reml needs at least 2 groups of one common size >= 2")
    n, J = sizes.pop(), len(data)
    means = np.array([v.mean() for v in data])
    ssw = sum(float(((v - v.mean()) ** 2).sum()) for v in data)
    grand = means.mean()
    ssb = n * float(((means - grand) ** 2).sum())
    msw, msb = ssw / (J * (n - 1)), ssb / (J - 1)
    if msb > msw:
        return float(grand), msw, (msb - msw) / n
    return float(grand), (ssw + ssb) / (J * n - 1), 0.0


def dyestuff_example(fns: Mapping, path: Path = DATA_FILE) -> Example:
    groups = read_groups(path)
    beta0, sigma2, sigma_b2 = balanced_reml(groups)
    labels = tuple(sorted(groups))
    n = np.array([len(groups[g]) for g in labels], dtype=float)
    ybar = np.array([np.mean(groups[g]) for g in labels])
    lam = fns["shrinkage_factor"](n, sigma2, sigma_b2)
    predicted = fns["predicted_group_mean"](ybar, n, beta0, sigma2, sigma_b2)
    cond = fns["conditional_variance"](n, sigma2, sigma_b2)
    var_beta0 = fns["gls_beta0_variance"](n, sigma2, sigma_b2) if "gls_beta0_variance" in fns else 1 / np.sum(1 / (sigma_b2 + sigma2 / n))
    pev = fns["prediction_error_variance"](n, sigma2, sigma_b2, var_beta0)
    return Example(labels, n, ybar, beta0, sigma2, sigma_b2, lam, predicted, np.sqrt(cond), np.sqrt(pev))


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


# ----------------------------------------------------------------------------------
# The text
# ----------------------------------------------------------------------------------
CLAIMS: tuple[Claim, ...] = (
    Claim(
        "slip1", "The product must run over every observation",
        r"The likelihood is a product over the groups $j$ of a normal density of $y_{ij}$ given $b_j$, times "
        r"the density of $b_j$.",
        "holds with a correction",
        r"""
The first product has to run over \emph{every observation}, $\prod_j\prod_{i=1}^{n_j}$.  With one factor per
group, each group contributes a single data point and the group size $n_j$, which sets the amount of
shrinkage, disappears.  The first steps below split the correct joint log-density into the log of the
product as written plus the terms it leaves out; the maximisers show the consequence.
{excerpt:joint_unbounded:4:10}
With one factor per group every group would be shrunk by the same factor $\sigma_b^2/(\sigma_b^2+\sigma^2)$,
that of a group of size one.  With all observations, the factor is $\lambda_j$ and depends on $n_j$.
""",
    ),
    Claim(
        "slip2", "This function is the joint density, not the likelihood",
        r"The function above is the likelihood $L(\beta, b, \sigma^2 \mid y)$ of the model.",
        "does not hold",
        r"""
It is the joint density $p(\mathbf y, \mathbf b)$ of the data \emph{and the random effects}, often called
the h-likelihood.  The $b_j$ are not parameters but unobserved random variables; the likelihood of the
parameters $(\beta_0, \sigma^2, \sigma_b^2)$ is the density of the data alone, the \emph{marginal}
$p(\mathbf y) = \int p(\mathbf y, \mathbf b)\,d\mathbf b$.  For one group the integral can be done exactly,
and it equals the h-likelihood at its maximiser corrected by its curvature, a term the joint density lacks:
{excerpt:laplace:mode:marginal}
This correction, $-\tfrac12\log(n_j/\sigma^2 + 1/\sigma_b^2)$ up to constants, is what turns the joint density
into a function that can be maximised in the variances (claims 5 and 6).
""",
    ),
    Claim(
        "claim1", "Claim 1: the second factor is a penalty pulling each $b_j$ towards $0$",
        r"The factor $\exp(-b_j^2/(2\sigma_b^2))$ behaves like a penalty that pulls each $b_j$ towards $0$; in the "
        r"log it is the quadratic $-b_j^2/(2\sigma_b^2)$.",
        "holds",
        r"""
Multiplying the joint log-density by $-2\sigma^2$ turns its maximisation into penalised least squares: the
residual sum of squares plus a ridge penalty on the random effects,
{excerpt:pls:1:2}
and the maximiser in $b_j$ is the group's deviation pulled towards $0$ by the factor $\lambda_j$:
{excerpt:blup:completed_square:blup}
The pull is real and never overshoots: $0 < \lambda_j < 1$,
{excerpt:shrinkage_facts:lambda:lambda_below_one}
Two refinements.  The log of the factor is $-b_j^2/(2\sigma_b^2) - \tfrac12\log(2\pi\sigma_b^2)$; the second
term does not matter for $b_j$ but does for $\sigma_b^2$ (claims 4 and 5).  And the penalty alone does not
fix the amount of shrinkage: it is weighed against the data term $n_j(\bar y_j - \beta_0 - b_j)^2/(2\sigma^2)$
in eq.~\eqref{@blup:completed_square} (claim 6).
""",
    ),
    Claim(
        "claim2", r"Claim 2: a larger $\sigma_b^2$ means a weaker penalty and less shrinkage",
        r"The larger $\sigma_b^2$, the weaker the penalty and the less shrinkage; the smaller $\sigma_b^2$, the stronger "
        r"the penalty and the more shrinkage.",
        "holds",
        r"""
The amount of shrinkage is $1 - \lambda_j$; $\lambda_j$ increases with $\sigma_b^2$.  The same proof shows what
the claim leaves out: $\lambda_j$ also decreases with the residual variance and increases with the group size,
because it depends on $\sigma_b^2$ only through the ratio $\sigma^2/(n_j\sigma_b^2)$ (Figure~\ref{fig:lambda}):
{excerpt:shrinkage_facts:6:14}
""",
    ),
    Claim(
        "claim3", "Claim 3: fixed effects carry no penalty and are not shrunk",
        r"The fixed-effect part carries no such penalty, so fixed effects, also fixed effects with interactions, are "
        r"not shrunk.",
        "holds",
        r"""
In the penalised least-squares form eq.~\eqref{@pls:penalised} only the $b_j$ are penalised; $\beta_0$ is estimated by
generalised least squares, which \emph{weights} the group means by their precisions but does not pull the
estimate towards any value (derivation \texttt{pls}, and eq.~\eqref{@pls:gls} below).  The same holds for every
coefficient of the fixed-effect design, main effects and interactions alike: none has a prior, so none is
penalised.  A fixed effect for each group is the limit of the random effect as $\sigma_b^2 \to \infty$, where
the shrinkage vanishes; large groups approach the same limit:
{excerpt:shrinkage_facts:15:18}
{excerpt:pls:6:7}
""",
    ),
    Claim(
        "claim4", r"Claim 4: the case analysis in $b_j$",
        r"Far from $0$ the factor $\exp(-b_j^2/(2\sigma_b^2))$ is near $0$, a large penalty; near $0$ it is near $1$, "
        r"no penalty.",
        "holds with a correction",
        r"""
As a statement about $b_j$ with $\sigma_b^2$ fixed it is right: on the log scale the penalty
$b_j^2/(2\sigma_b^2)$ is $0$ at $b_j = 0$ and grows quadratically, measured in units of $\sigma_b$.  But the
factor of the density is $(2\pi\sigma_b^2)^{-1/2}\exp(-b_j^2/(2\sigma_b^2))$, and its value at $b_j = 0$ is
$(2\pi\sigma_b^2)^{-1/2}$, not $1$: it can be any positive number.  Only ratios of the factor at two values of
$b_j$ mean anything, and that is why the normalising constant could be ignored in the maximisation over
$b_j$.  It cannot be ignored as soon as $\sigma_b^2$ varies: the constant grows without bound as
$\sigma_b^2 \to 0^+$ (claim 5).  Finally, ``large'' is relative to the data: the penalty is balanced against
$n_j(\bar y_j-\beta_0-b_j)^2/(2\sigma^2)$, eq.~\eqref{@blup:completed_square}.
""",
    ),
    Claim(
        "claim5", r"Claim 5: the same case analysis in $\sigma_b^2$",
        r"A large $\sigma_b^2$ makes the exponent near $0$ (little penalty); a small $\sigma_b^2$ makes it very "
        r"negative (a large penalty).",
        "does not hold",
        r"""
For a fixed $b_j \ne 0$ the exponent does tend to $-\infty$ as $\sigma_b^2 \to 0^+$, but this is not what the
joint density does as a function of $\sigma_b^2$.  Its maximiser in $b_j$ follows $\sigma_b^2$ to $0$
(complete pooling, $\lambda_j \to 0$, eq.~\eqref{@shrinkage_facts:complete_pooling} below), where the exponent is $0$, and the
normalising constants $-\tfrac12\log(2\pi\sigma_b^2)$, one per group, then grow without bound.  A small
$\sigma_b^2$ is \emph{rewarded}, not penalised:
{excerpt:shrinkage_facts:19:20}
{excerpt:joint_unbounded:1:unbounded}
""",
    ),
    Claim(
        "claim6", "Claim 6: maximising this function gives the estimates, and shrinkage comes from the penalty alone",
        r"(Implicit.) Maximising this function gives the estimates, and the shrinkage comes from the penalty term alone.",
        "does not hold",
        r"""
It holds for $\beta_0$ and the $b_j$ \emph{given the variances}: maximising the joint density over
$(\beta_0, \mathbf b)$ is the ridge regression of claim 1 and gives the GLS estimate of $\beta_0$ with the
BLUPs (derivation \texttt{pls}, and Henderson's mixed-model equations there).  It fails for the variance
$\sigma_b^2$: by eq.~\eqref{@joint_unbounded:unbounded} the joint density has no maximum in $\sigma_b^2$, so
$\sigma_b^2$ (and $\sigma^2$) are estimated from the marginal likelihood of \S\ref{slip2}, by ML or REML{likelihood_documents}, and
then \emph{plugged into} $\lambda_j$.  That plug-in, a prior whose variance is estimated from the data, is
what ``empirical Bayes'' names; the predictions inherit the uncertainty of the estimated variances, which
the usual standard errors (\S\ref{uncertainty}) ignore.  Nor does the shrinkage come from the penalty
alone: $\lambda_j = (n_j/\sigma^2)\big/(n_j/\sigma^2 + 1/\sigma_b^2)$ is the share of the data's curvature
$n_j/\sigma^2$ in the total curvature of the h-likelihood, to which the penalty adds $1/\sigma_b^2$:
{excerpt:laplace:4:curvature}
""",
    ),
)


def _verdict_box(verdict: str) -> str:
    colour = {"holds": "green!40!black", "holds with a correction": "orange!70!black", "does not hold": "red!70!black"}[verdict]
    return rf"\par\smallskip\noindent\textbf{{Verdict:}} \textcolor{{{colour}}}{{\textbf{{{verdict}}}}}.\par\smallskip"


def _summary_table() -> list[str]:
    rows = []
    for c in CLAIMS:
        rows.append(rf"{c.title} & {c.verdict} & \S\ref{{{c.key}}} \\")
    return [
        r"\begin{center}\small",
        r"\begin{tabular}{@{}>{\raggedright\arraybackslash}p{0.62\linewidth}>{\raggedright\arraybackslash}p{0.2\linewidth}l@{}}",
        r"\toprule point of the question & verdict & where \\ \midrule",
        *rows,
        r"The follow-up: partial pooling & holds & \S\ref{pooling} \\",
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{center}",
    ]


INTRO = r"""
\section*{The question}
A student of mixed models asked why mixed-effects models shrink, or regularise, their random effects
``implicitly'', a behaviour often called empirical Bayes, and whether their reading of the likelihood
is right.  Their model is the one-way random-intercept model
\[
y_{ij} = \beta_0 + b_j + \varepsilon_{ij}, \qquad b_j \sim N(0, \sigma_b^2) \text{ independent of } \varepsilon_{ij} \sim N(0,\sigma^2),
\qquad j = 1,\dots,J,\ i = 1,\dots,n_j,
\]
and the function they wrote as the likelihood is
\[
L(\beta, b, \sigma^2 \mid y) = \prod_j (2\pi\sigma^2)^{-1/2} e^{-(y_{ij}-\beta_0-b_j)^2/(2\sigma^2)}
\times \prod_j (2\pi\sigma_b^2)^{-1/2} e^{-b_j^2/(2\sigma_b^2)} .
\]
Below, each point they make is restated in our words, given a verdict, and settled by steps of checked
derivations.  The steps are excerpts of standalone documents; a step tagged (\textsf{blup}~9) is
equation~(9) of \texttt{docs/blup.pdf}, where the full chain, the symbols and the generated code are shown.
Each step carries a note saying how it was checked: by SymPy under the assumptions
$\sigma^2, \sigma_b^2, n_j > 0$, and independently with mpmath at random points (or on random data sets).

\paragraph{The short answer.}  Mixed models shrink because the random effects have a distribution.  For
fixed variances, the most probable $b_j$ given the data balances the group's own evidence, with
precision $n_j/\sigma^2$, against the prior $N(0,\sigma_b^2)$, with precision $1/\sigma_b^2$: the result
is the group's deviation multiplied by $\lambda_j = \sigma_b^2/(\sigma_b^2+\sigma^2/n_j) \in (0,1)$.  The
question's reading of the second factor as a penalty is right for the $b_j$; it is wrong for
$\sigma_b^2$, which cannot be chosen by maximising the same function, and the function needs a product
over every observation, not over groups only.
"""


LIKELIHOOD_DERIVATIONS = ("marginal", "gls", "profile", "ml_reml", "balanced")  # written alongside; quoted when present


def _likelihood_documents(names) -> str:
    present = [n for n in LIKELIHOOD_DERIVATIONS if n in names]
    if not present:
        return ""
    listed = ", ".join(rf"\texttt{{{escape(n)}}}" for n in present)
    return f" (derivation{'s' if len(present) > 1 else ''} {listed})"


def _claim_section(c: Claim, ex: Excerpts) -> list[str]:
    return [
        rf"\subsection{{{c.title}}}\label{{{c.key}}}",
        r"\begin{quote}\itshape " + c.claim + r"\end{quote}",
        _verdict_box(c.verdict),
        _expand(c.body.strip(), ex).replace("{likelihood_documents}", _likelihood_documents(ex.checked)),
    ]


def _pooling_section(ex: Excerpts, example: Example) -> list[str]:
    return [
        r"\section{The follow-up: partial pooling, and an example}\label{pooling}",
        r"The question announced a follow-up on partial pooling.  Adding $\beta_0$ to the BLUP gives the predicted "
        r"group mean as a weighted average of the group's own mean and the overall mean:",
        *ex.lines("blup", "group_mean", "group_mean"),
        r"With $\lambda_j \to 1$ (a large group, or $\sigma_b^2 \to \infty$) this is the group's own mean, no pooling; "
        r"with $\lambda_j \to 0$ ($\sigma_b^2 \to 0^+$) it is $\beta_0$ for every group, complete pooling "
        r"(eqs.~\eqref{@shrinkage_facts:no_pooling_sigma_b2}, \eqref{@shrinkage_facts:no_pooling_n}, \eqref{@shrinkage_facts:complete_pooling}).  "
        r"On the Dyestuff data, the classic balanced example distributed with lme4, the variances are estimated by "
        r"REML from the marginal likelihood and plugged in (the empirical-Bayes step): Figure~\ref{fig:dyestuff} and "
        r"Table~\ref{tab:dyestuff}.",
        *figure_dyestuff(example),
        *table_dyestuff(example),
    ]


def _uncertainty_section(ex: Excerpts) -> list[str]:
    return [
        r"\section{How sure is a shrunken estimate?}\label{uncertainty}",
        r"Two variances are reported for a BLUP, and they answer different questions.  Given $\beta_0$ (and the "
        r"variances), $\operatorname{Var}(b_j\mid\mathbf y) = (1-\lambda_j)\sigma_b^2$, lme4's \texttt{condVar}:",
        *ex.lines("blup", _number(ex.checked["blup"], "conditional_variance") - 1, "conditional_variance"),
        r"Once $\beta_0$ is estimated by GLS, the prediction error variance adds the uncertainty of $\hat\beta_0$ "
        r"(Henderson's $C$-matrix; the tests check it against the inverse of the mixed-model equations):",
        *ex.lines("uncertainty", 3, "var_beta0"),
        *ex.lines("uncertainty", "lambda", "gap_positive"),
    ]


def _documents_section(checked: Mapping[str, CheckedDerivation]) -> list[str]:
    rows = []
    for name, cd in sorted(checked.items()):
        proved = sum(1 for s in cd.steps if s.verdict.symbolic is True)
        numeric = sum(1 for s in cd.steps if s.verdict.symbolic is None)
        given = sum(1 for s in cd.steps if s.verdict.symbolic == "n/a")
        rows.append(rf"\texttt{{{escape(name)}.pdf}} & {escape(cd.derivation.title)} & {len(cd.steps)} & {proved} & {numeric} & {given} \\")
    return [
        r"\clearpage",
        r"\section*{The standalone documents}",
        r"Every step quoted above belongs to one of these checked derivations (\texttt{derivations/*.py}), each "
        r"rendered in full as \texttt{docs/\textit{name}.pdf}.  ``Proved'' counts steps SymPy settles under the "
        r"symbols' assumptions; ``numeric'' those checked with mpmath only; ``stated'' the givens, definitions and "
        r"restatements, which are model statements rather than claims.  Every other step also passed the "
        r"numeric check; a failing step stops the build.",
        r"\par\medskip\noindent{\small\begin{tabular}{@{}l>{\raggedright\arraybackslash}p{0.42\linewidth}rrrr@{}}",
        r"\toprule document & derivation & steps & proved & numeric & stated \\ \midrule",
        *rows,
        r"\bottomrule",
        r"\end{tabular}}",
    ]


def render_answer(checked: Sequence[CheckedDerivation]) -> str:
    """The LaTeX source of docs/answer.tex, from the checked derivations (deterministic)."""
    by_name = {cd.derivation.name: cd for cd in checked}
    missing = [n for n in REQUIRED if n not in by_name]
    if missing:
        raise DerivationError(f"the answer document needs the derivations {', '.join(missing)}")
    fns = generated_functions(checked)
    example = dyestuff_example(fns)
    ex = Excerpts(by_name)
    body = [
        PREAMBLE.rstrip(),
        r"\usepackage{pgfplots}",
        r"\pgfplotsset{compat=1.18}",
        r"\title{Why do mixed models shrink their random effects?\\[2pt]\large An answer, claim by claim, with checked steps}",
        r"\author{generated by \texttt{shrinkage build} from \texttt{src/shrinkage/answer.py} and \texttt{derivations/}}",
        r"\date{}",
        r"\begin{document}",
        r"\maketitle",
        INTRO.strip(),
        *_summary_table(),
        r"\section{Two slips in the function}",
        *_claim_section(CLAIMS[0], ex),
        *_claim_section(CLAIMS[1], ex),
        r"\section{The claims}",
        r"All six claims are about the function of \S1 with the product over every observation; its maximisation "
        r"over $b_j$ is the completed square of derivation \texttt{blup}.",
    ]
    for c in CLAIMS[2:]:
        if c.key == "claim2":
            body += figure_lambda(fns, example)
        body += _claim_section(c, ex)
    body += _pooling_section(ex, example)
    body += _uncertainty_section(ex)
    body += _documents_section(by_name)
    body.append(r"\end{document}")
    return ex.resolve_refs("\n".join(body)) + "\n"
