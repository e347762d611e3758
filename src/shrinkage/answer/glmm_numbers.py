"""The GLMM demonstration's numbers as LaTeX: the Laplace error per herd of lme4's cbpp
data, and adaptive quadrature's error by number of nodes.  The numbers come from
bench/glmm_laplace_demo.py (glmm_numbers_data.py, generated); the derivations
glmm_laplace_error and glmm_agq and the answer document quote them."""

from __future__ import annotations

from .glmm_numbers_data import NUMBERS


def _sci(x: float) -> str:
    """A small number as LaTeX, 2 significant digits (0 as 0)."""
    if x == 0:
        return "0"
    mantissa, exponent = f"{x:.1e}".split("e")
    return rf"${mantissa}\cdot10^{{{int(exponent)}}}$"


def groups() -> list[tuple[str, dict]]:
    """The herds in the data's order (their labels are numbers)."""
    return sorted(NUMBERS["groups"].items(), key=lambda kv: int(kv[0]))


def totals() -> dict:
    """Sums over the herds: the Laplace error, the term, what is left after it."""
    groups = NUMBERS["groups"].values()
    return {key: sum(g[key] for g in groups) for key in ("laplace_error", "term", "after_term")}


def worst() -> tuple[str, dict]:
    """The herd with the largest Laplace error."""
    return max(NUMBERS["groups"].items(), key=lambda kv: abs(kv[1]["laplace_error"]))


def laplace_table() -> str:
    rows = [rf"{h} & {g['rows']} & {g['trials']} & {g['events']} & {_sci(g['laplace_error'])} & {_sci(g['term'])} & "
            rf"{_sci(g['after_term'])} \\" for h, g in groups()]
    t = totals()
    return "\n".join([
        r"\paragraph{On real data.}  lme4's \texttt{cbpp} (contagious bovine pleuropneumonia: new cases among the "
        r"cattle of 15 herds in 4 periods), fitted by lme4 as \texttt{" + NUMBERS["model"] + "} (Laplace, "
        rf"$\hat\theta = {NUMBERS['theta']:.4f}$).  At those estimates, each herd's log-integral by quadrature (mpmath, "
        r"40 digits) minus Laplace's approximation, the correction term, and what is left after it "
        r"(\texttt{bench/glmm\_laplace\_demo.py}):",
        r"\begin{center}\small",
        r"\begin{tabular}{@{}rrrrrrr@{}}",
        r"\toprule herd & periods & cattle & cases & exact $-$ Laplace & term & exact $-$ Laplace $-$ term \\ \midrule",
        *rows,
        r"\midrule",
        rf"all & & & & {_sci(t['laplace_error'])} & {_sci(t['term'])} & {_sci(t['after_term'])} \\",
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{center}",
        rf"The term accounts for all but a few per cent of each herd's error; the largest is herd {worst()[0]}'s.  "
        rf"Summed over the herds, Laplace's log-likelihood is {_sci(t['laplace_error'])} below the exact one at "
        r"these estimates ($\hat\sigma_b$ is small here, so the integrands are nearly Gaussian).  Where it matters, "
        r"one group of $m_j$ trials at population rate $p$ ($\beta = \operatorname{logit} p$, "
        rf"$\sigma_b = {NUMBERS['sweep_theta']:g}$):",
        *sweep_table(),
    ])


def sweep_table() -> list[str]:
    rows = [rf"{g['trials']} & {g['events']} & {g['rate']:g} & {_sci(g['laplace_error'])} & {_sci(g['term'])} & "
            rf"{_sci(g['after_term'])} \\" for g in NUMBERS["sweep"]]
    return [
        r"\begin{center}\small",
        r"\begin{tabular}{@{}rrrrrr@{}}",
        r"\toprule trials $m_j$ & events & $p$ & exact $-$ Laplace & term & exact $-$ Laplace $-$ term \\ \midrule",
        *rows,
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{center}",
        r"With two trials the error is a few hundredths per group, and with rare events (no case among ten at "
        r"$p = 0.05$) Laplace \emph{over}estimates the integral; the term has the right sign and size but leaves "
        r"more behind when the group carries little information, which is where quadrature (document "
        r"\emph{glmm\_agq}) is needed.  Every such error adds up over the groups.",
    ]


def agq_table() -> str:
    nodes = sorted(next(iter(NUMBERS["groups"].values()))["agq_error"])
    groups = NUMBERS["groups"].values()
    worst_error = [max(abs(g["agq_error"][k]) for g in groups) for k in nodes]
    total = [sum(g["agq_error"][k] for g in groups) for k in nodes]
    return "\n".join([
        r"\paragraph{On real data.}  The error of adaptive quadrature with $K$ nodes (exact minus $K$-node "
        r"log-integral) on lme4's \texttt{cbpp} herds at lme4's Laplace estimates (see document "
        r"\emph{glmm\_laplace\_error}): the largest over the 15 herds, and the sum.",
        r"\begin{center}\small",
        r"\begin{tabular}{@{}l" + "r" * len(nodes) + r"@{}}",
        r"\toprule $K$ & " + " & ".join(str(k) for k in nodes) + r" \\ \midrule",
        r"largest & " + " & ".join(_sci(abs(e)) for e in worst_error) + r" \\",
        r"sum & " + " & ".join(_sci(e) for e in total) + r" \\",
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{center}",
    ])
