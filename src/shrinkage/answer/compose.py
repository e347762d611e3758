"""The answer document put together: sections in order, excerpts expanded, references
resolved, the notation of every quoted step defined before the first claim."""

from __future__ import annotations

from typing import Mapping, Sequence

from ..derive import CheckedDerivation, Given, Premise
from ..errors import DerivationError
from ..render.excerpts import Excerpts
from ..render.preamble import PGFPLOTS, PREAMBLE, escape
from .claims import CLAIMS, INTRO, Claim
from .counts import REQUIRED as COUNTS, counts_section
from .example import Example, dyestuff_example, generated_functions
from .figures import figure_dyestuff, figure_lambda, table_dyestuff
from .slopes import sleepstudy_example, slopes_section

REQUIRED = ("blup", "shrinkage_facts", "joint_unbounded", "pls", "uncertainty", "laplace", "lmm_blup", "lmm_marginal")
LIKELIHOOD_DERIVATIONS = ("marginal", "gls", "profile", "ml_reml", "balanced")  # written alongside; quoted when present
_NOTATION = "%%notation%%"  # where the table of the quoted steps' symbols goes, once they are known


def _verdict_box(verdict: str) -> str:
    colour = {"holds": "green!40!black", "holds with a correction": "orange!70!black", "does not hold": "red!70!black"}[verdict]
    return rf"\par\smallskip\noindent\textbf{{Verdict:}} \textcolor{{{colour}}}{{\textbf{{{verdict}}}}}.\par\smallskip"


def _summary_table() -> list[str]:
    rows = [rf"{c.title} & {c.verdict} & \S\ref{{{c.key}}} \\" for c in CLAIMS]
    return [
        r"\begin{center}\small",
        r"\begin{tabular}{@{}>{\raggedright\arraybackslash}p{0.62\linewidth}>{\raggedright\arraybackslash}p{0.2\linewidth}l@{}}",
        r"\toprule point of the question & verdict & where \\ \midrule",
        *rows,
        r"The follow-up: partial pooling & holds & \S\ref{pooling} \\",
        r"Covariates and random slopes: the penalty $\mathbf b_j^{\mathsf T}\mathbf D^{-1}\mathbf b_j$, a shrinkage "
        r"matrix $\boldsymbol\Lambda_j$ & the reading carries over & \S\ref{slopes} \\",
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{center}",
    ]


def _notation(ex: Excerpts) -> list[str]:
    """Every symbol of the quoted steps, defined once (S_j, c_j, ... are not the question's)."""
    rows = [rf"${qs[0].latex}$ & {qs[0].meaning} \\" for qs in ex.quantities()]
    rows += [rf"${t}$ & {m} \\" for t, m in _matrices(ex)]
    return [
        r"\paragraph{Notation.}  The quoted steps use these symbols (the question's, and the sufficient "
        r"statistics and shorthands the derivations introduce):",
        r"\par\smallskip\noindent{\small\begin{tabularx}{\linewidth}{@{}lX@{}}",
        r"\toprule symbol & meaning \\ \midrule",
        *rows,
        r"\bottomrule",
        r"\end{tabularx}}",
    ]


def _matrices(ex: Excerpts) -> list[tuple[str, str]]:
    """(LaTeX, meaning) of the matrices the quoted steps of matrix derivations use."""
    import sympy as sp

    seen: dict[str, str] = {}
    for cs, notation in ex.steps:
        table = getattr(notation, "matrix_rows", None)
        if table is not None:
            used = {m.name for m in cs.step.rhs.atoms(sp.MatrixSymbol)}
            for latex, meaning, _ in table(used):
                seen.setdefault(latex, meaning)
    return list(seen.items())


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
        ex.expand(c.body.strip()).replace("{likelihood_documents}", _likelihood_documents(ex.checked)),
    ]


def _pooling_section(ex: Excerpts, example: Example) -> list[str]:
    return [
        r"\section{The follow-up: partial pooling, and an example}\label{pooling}",
        r"The question announced a follow-up on partial pooling.  Adding $\beta_0$ to the BLUP gives the predicted "
        r"group mean as a weighted average of the group's own mean and the overall mean:",
        *ex.lines("blup", "group_mean", "group_mean"),
        r"With $\lambda_j \to 1$ (a large group, or $\sigma_b^2 \to \infty$) this is the group's own mean, no pooling; "
        r"with $\lambda_j \to 0$ ($\sigma_b^2 \to 0^+$) it is $\beta_0$ for every group, complete pooling "
        r"(eqs.~\eqref{@shrinkage_facts:no_pooling_sigma_b2}, \eqref{@shrinkage_facts:no_pooling_n}, "
        r"\eqref{@shrinkage_facts:complete_pooling}).  "
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
        *ex.lines("blup", "conditional_variance-1", "conditional_variance"),
        r"Once $\beta_0$ is estimated by GLS, the prediction error variance adds the uncertainty of $\hat\beta_0$ "
        r"(Henderson's $C$-matrix; the tests check it against the inverse of the mixed-model equations):",
        *ex.lines("uncertainty", "var_mean+1", "var_beta0"),
        *ex.lines("uncertainty", "lambda", "gap_positive"),
    ]


def _documents_section(checked: Mapping[str, CheckedDerivation]) -> list[str]:
    rows = []
    for name, cd in sorted(checked.items()):
        count = {
            "proved": sum(1 for s in cd.steps if s.verdict.symbolic is True),
            "numeric": sum(1 for s in cd.steps if s.verdict.symbolic is None),
            "premises": sum(1 for s in cd.steps if isinstance(s.step, Premise)),
            "stated": sum(1 for s in cd.steps if isinstance(s.step, Given)),
        }
        count["named"] = len(cd.steps) - sum(count.values())
        rows.append(rf"\texttt{{{escape(name)}.pdf}} & {escape(cd.derivation.title)} & {len(cd.steps)} & "
                    + " & ".join(str(count[k]) for k in ("premises", "named", "proved", "numeric", "stated")) + r" \\")
    return [
        r"\clearpage",
        r"\section*{The standalone documents}",
        r"Every step quoted above belongs to one of these checked derivations (\texttt{derivations/*.py}), each "
        r"rendered in full as \texttt{docs/\textit{name}.pdf}.  ``Premises'' counts the model's statements; "
        r"``named'' the definitions and restatements (a restatement is checked to be identical to the step it "
        r"restates); ``proved'' the steps SymPy settles under the symbols' assumptions, which also passed the "
        r"numeric check; ``numeric'' those checked with mpmath only; ``stated'' any other step given without a check "
        r"(each says why).  A failing step stops the build.",
        r"\par\medskip\noindent{\small\begin{tabularx}{\linewidth}{@{}l>{\raggedright\arraybackslash}Xrrrrrr@{}}",
        r"\toprule document & derivation & steps & premises & named & proved & numeric & stated \\ \midrule",
        *rows,
        r"\bottomrule",
        r"\end{tabularx}}",
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
        PREAMBLE + PGFPLOTS.rstrip(),
        r"\title{Why do mixed models shrink their random effects?\\[2pt]\large An answer, claim by claim, with checked steps}",
        r"\author{generated by \texttt{shrinkage build} from \texttt{src/shrinkage/answer/} and \texttt{derivations/}}",
        r"\date{}",
        r"\begin{document}",
        r"\maketitle",
        INTRO.strip(),
        _NOTATION,
        *_summary_table(),
        r"\section{Two slips in the function}\label{slips}",
        *_claim_section(CLAIMS[0], ex),
        *_claim_section(CLAIMS[1], ex),
        r"\section{The claims}",
        r"All six claims are about the function of \S\ref{slips} with the product over every observation; its "
        r"maximisation over $b_j$ is the completed square of derivation \texttt{blup}.",
    ]
    for c in CLAIMS[2:]:
        if c.key == "claim2":
            body += figure_lambda(fns, example)
        body += _claim_section(c, ex)
    body += _pooling_section(ex, example)
    body += _uncertainty_section(ex)
    body += slopes_section(ex.expand, sleepstudy_example(fns))
    if all(n in by_name for n in COUNTS):  # the GLMM derivations: the section on counts
        body += counts_section(ex.expand)
    body += _documents_section(by_name)
    body.append(r"\end{document}")
    text = "\n".join(body).replace(_NOTATION, "\n".join(_notation(ex)))
    return ex.resolve_refs(text) + "\n"
