"""The answer's section on counts: does the penalty reading hold when y is a count?

Argued with excerpts of the checked derivations glmm_shrinkage (the mode of a Poisson
random intercept, its limits, the link-scale shrinkage factor at the mode) and the
numbers of the cbpp demonstration (glmm_laplace_error, glmm_agq); composed only when
those derivations are among the checked ones.
"""

from __future__ import annotations

from .glmm_numbers import NUMBERS, totals, worst

REQUIRED = ("glmm_shrinkage", "glmm_laplace_error", "glmm_agq")

BODY = r"""
\section{When $y$ is a count}\label{counts}
The question's argument is about a normal response.  For a binomial or Poisson response with a
normal random intercept, the joint log-density of group $j$ is the log-likelihood plus the same
log-density of $b_j$; for a Poisson group with exposure $m_j$ and rate $y_j$:
{excerpt:glmm_shrinkage:poisson:poisson}
\paragraph{The penalty reading holds.}  The second term is the ridge penalty of claim~1, on the link
scale ($b_j$ shifts the log rate), and it is maximised, not integrated, to give the random effect
lme4 reports (\texttt{ranef}: the conditional mode).  The mode has no linear closed form, but for one
covariate pattern it has one in Lambert's $W$, and its limits are the question's: no pooling as
$\sigma_b^2 \to \infty$, complete pooling as $\sigma_b^2 \to 0^+$:
{excerpt:glmm_shrinkage:mode:mode}
{excerpt:glmm_shrinkage:mode+1:mode+1}
{excerpt:glmm_shrinkage:mode+3:mode+3}
It is the normal model's BLUP read on the link scale: the group's working-scale deviation shrunk by
$\hat\lambda_j = \sigma_b^2/(\sigma_b^2 + 1/\hat W_j)$, where the summed working weight $\hat W_j$ (the
expected count) takes the place of $n_j/\sigma^2$:
{excerpt:glmm_shrinkage:fixed_point:fixed_point}
So claim~2 carries over (a larger $\sigma_b^2$, a larger $\hat\lambda_j$), and more information (more
expected events, not more rows) means less shrinkage.
\paragraph{What changes.}  The log-likelihood is not quadratic in $b_j$, so three things the normal
model gives for free no longer hold.  (i) $\hat\lambda_j$ and the deviation depend on the mode itself:
the weights must be taken there (one IRLS step from $b_j = 0$ overshoots by far for a group far from
the population; document \texttt{glmm\_shrinkage}, its table).  (ii) The posterior of
$b_j$ is skewed, so its mode (the penalised estimate) is not its mean.  (iii) The marginal likelihood
of the variance, the integral over $b_j$, is no longer Laplace's approximation exactly: its leading
error is $f''''/(8f''^2) + 5f'''^2/(24(-f'')^3)$ (document \texttt{glmm\_laplace\_error}), zero for the
normal model.  On lme4's \texttt{cbpp} data (15 herds, at lme4's Laplace estimates) the error is
%(worst_error)s for herd %(worst)s and %(total)s summed over the herds; the term removes all but
%(left)s of it, and adaptive quadrature with 25 nodes leaves %(agq25)s (document \texttt{glmm\_agq}).
For a group of two trials at $\sigma_b = %(sweep_theta)s$ it is a few hundredths.  The plug-in step is
unchanged: $\sigma_b^2$ is estimated from the (approximated) marginal likelihood and the mode is
computed at it, which is empirical Bayes as before.

\paragraph{Verdict for counts.}  The penalty reading holds: the log prior is a ridge penalty on $b_j$
on the link scale and the conditional mode is the penalised estimate; the shrinkage factor is the
normal one with the working weight in place of $n_j/\sigma^2$.  With the correction that the mode is
not the posterior mean, that the factor must be evaluated at the mode, and that the marginal
likelihood is approximated (Laplace) or computed by quadrature.
"""


def _sci(x: float) -> str:
    mantissa, exponent = f"{x:.1e}".split("e")
    return rf"${mantissa}\cdot10^{{{int(exponent)}}}$"


def counts_section(expand) -> list[str]:
    """The section's LaTeX, its excerpts expanded by ``expand`` (Excerpts.expand)."""
    name, herd = worst()
    t = totals()
    agq25 = sum(abs(g["agq_error"][25]) for g in NUMBERS["groups"].values())
    values = {"worst_error": _sci(herd["laplace_error"]), "worst": name, "total": _sci(t["laplace_error"]),
              "left": _sci(abs(t["after_term"])), "agq25": _sci(agq25), "sweep_theta": f"{NUMBERS['sweep_theta']:g}"}
    return [expand((BODY % values).strip())]
