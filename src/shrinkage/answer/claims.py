"""The answer's text: the question's points, each restated, given a verdict and argued.

Prose only.  Steps of checked derivations are quoted through placeholders
``{excerpt:name:first:last}`` (steps named by label, ``label+k`` or ``first``; see
:mod:`shrinkage.render.excerpts`) and referred to as ``\\eqref{@name:label}``, so a
renumbered derivation never leaves a wrong number here.
"""

from __future__ import annotations

from dataclasses import dataclass

VERDICTS = ("holds", "holds with a correction", "does not hold")


@dataclass(frozen=True)
class Claim:
    """One point of the question: our restatement, the verdict, and the argument."""

    key: str
    title: str
    claim: str  # in our words
    verdict: str  # one of VERDICTS
    body: str  # LaTeX; may contain {excerpt:name:first:last} placeholders


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
{excerpt:joint_unbounded:unbounded+1:right_maximiser}
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
{excerpt:pls:first:penalised}
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
{excerpt:shrinkage_facts:lambda_below_one+1:increasing_in_n}
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
{excerpt:shrinkage_facts:increasing_in_n+1:no_pooling_n}
{excerpt:pls:profile:gls}
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
{excerpt:shrinkage_facts:no_pooling_n+1:complete_pooling}
{excerpt:joint_unbounded:at_zero:unbounded}
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
{excerpt:laplace:curvature-1:curvature}
""",
    ),
)


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
derivations.  The steps are excerpts of standalone documents; a step tagged (\textsf{blup}~$k$) is
equation~($k$) of \texttt{docs/blup.pdf}, where the full chain, the symbols and the generated code are shown.
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
