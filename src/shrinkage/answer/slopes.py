"""The answer's section on covariates and random slopes: what y_ij = x_ij'beta + z_ij'b_j +
eps_ij changes in the student's reasoning, argued with excerpts of the checked lmm_blup
and lmm_marginal steps, and a sleepstudy illustration computed at build time.

The numbers: the REML fit of Reaction ~ Days + (Days | Subject) (shrinkage.fit, tested
against lme4), the BLUPs from the function generated from the quoted step (lmm_blup),
and Lambda_j and the own deviation from their definitions in the quoted steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from .. import datasets

FORMULA = "Reaction ~ Days + (Days | Subject)"


@dataclass(frozen=True)
class SlopeExample:
    """sleepstudy: D_hat, sigma2_hat, and for every subject Z_j'Z_j, the own deviation
    tilde b_j, Lambda_j and the BLUP b_hat_j; ``k`` the subject whose intercept moves most
    by its own slope (largest |Lambda_j,12 tilde b_j,2|)."""

    labels: tuple
    beta: np.ndarray
    D: np.ndarray
    sigma2: float
    ZtZ: np.ndarray
    own: np.ndarray
    shrink: np.ndarray
    blup: np.ndarray
    k: int
    days: np.ndarray  # subject k's observations, for the figure
    reaction: np.ndarray

    @property
    def corr(self) -> float:
        return float(self.D[0, 1] / np.sqrt(self.D[0, 0] * self.D[1, 1]))

    def shrink_uncorrelated(self, j: int) -> np.ndarray:
        """Lambda_j with the covariance in D set to 0: what the own estimates' correlation alone does."""
        Dd = np.diag(np.diag(self.D))
        return Dd @ np.linalg.inv(Dd + self.sigma2 * np.linalg.inv(self.ZtZ[j]))


def sleepstudy_example(fns: Mapping) -> SlopeExample:
    import pandas as pd

    from ..lmm import lmer

    r = lmer(FORMULA, pd.read_csv(datasets.load("sleepstudy").path), "REML")
    d = r.design
    X, Z, y, codes = d.X, d.Z, np.asarray(d.y, dtype=float), d.codes
    J = r.ngroups
    ZtZ, ZtX, Zty = np.zeros((J, 2, 2)), np.zeros((J, 2, 2)), np.zeros((J, 2))
    np.add.at(ZtZ, codes, Z[:, :, None] * Z[:, None, :])
    np.add.at(ZtX, codes, Z[:, :, None] * X[:, None, :])
    np.add.at(Zty, codes, Z * y[:, None])
    blup = fns["lmm_blup"](ZtZ, ZtX, Zty, r.beta, r.D, r.sigma2)
    own = np.linalg.solve(ZtZ, (Zty - ZtX @ r.beta)[:, :, None])[:, :, 0]
    shrink = r.D @ np.linalg.inv(r.D + r.sigma2 * np.linalg.inv(ZtZ))
    k = int(np.argmax(np.abs(shrink[:, 0, 1] * own[:, 1])))
    rows = codes == k
    return SlopeExample(tuple(str(v) for v in r.labels), r.beta, r.D, r.sigma2, ZtZ, own, shrink, blup, k,
                        Z[rows, 1].copy(), y[rows].copy())


def _f(x: float, digits: int = 3) -> str:
    """Fixed formatting, no negative zero (two builds give the same bytes)."""
    s = f"{x:.{digits}f}"
    return s[1:] if s.startswith("-") and float(s) == 0 else s


def _matrix(a: np.ndarray, digits: int = 3) -> str:
    """A small inline matrix (the numbers sit in the prose; displays are for checked steps only)."""
    rows = r" \\ ".join(" & ".join(_f(v, digits) for v in row) for row in np.atleast_2d(a))
    return r"\left(\begin{smallmatrix}" + rows + r"\end{smallmatrix}\right)"


BODY = r"""
The question's model has one random intercept.  Real analyses add covariates and random slopes,
$y_{ij} = \mathbf x_{ij}^{\mathsf T}\boldsymbol\beta + \mathbf z_{ij}^{\mathsf T}\mathbf b_j + \varepsilon_{ij}$; for a
group, $\mathbf y_j = \mathbf X_j\boldsymbol\beta + \mathbf Z_j\mathbf b_j + \boldsymbol\varepsilon_j$ with
$\mathbf b_j \sim N(\mathbf 0, \mathbf D)$, $q$ random terms per group ($q = 2$ for an intercept and a slope,
lme4's \texttt{y \char126{} x + (x | g)}).  The steps below are those of the derivations \texttt{lmm\_blup} and
\texttt{lmm\_marginal}; each note says how the step was checked (the matrix steps symbolically with explicit
matrices for small $q$, and numerically at random positive definite $\mathbf D$ for $q$ up to $4$).

\paragraph{The penalty reading still holds, with a quadratic form.}  The joint log-density of a group has the
same two parts as the question's function, and the part from the random effects is now
$-\tfrac12\mathbf b_j^{\mathsf T}\mathbf D^{-1}\mathbf b_j$ (with its normalising term $-\tfrac12\log\det\mathbf D$,
which matters for $\mathbf D$ as $-\tfrac12\log\sigma_b^2$ did in claims 4 and 5):
{excerpt:lmm_blup:first+1:first+1}
The penalty is a ridge penalty in the metric of $\mathbf D^{-1}$: it pulls $\mathbf b_j$ towards $\mathbf 0$ most
strongly in the directions where $\mathbf D$ has little variance.  The fixed effects, every covariate in
$\mathbf X_j$ included, still carry no penalty (claim 3): given $\mathbf D$ and $\sigma^2$, $\hat{\boldsymbol\beta}$ is
generalised least squares,
{excerpt:lmm_marginal:gls:gls}
and, as in claims 5 and 6, $\mathbf D$ cannot be chosen by maximising the joint density: with every
$\mathbf b_j = \mathbf 0$ its term $-\tfrac J2\log\det\mathbf D$ grows without bound as $\mathbf D$ shrinks to
$\mathbf 0$, so $\mathbf D$ and $\sigma^2$ are estimated from the marginal likelihood (derivation
\texttt{lmm\_marginal}) and plugged in.

\paragraph{Shrinkage is a matrix.}  Completing the square in the vector $\mathbf b_j$ gives the BLUP and, read off
the same square, the conditional covariance (lme4's \texttt{condVar}):
{excerpt:lmm_blup:blup_stats:blup_stats}
{excerpt:lmm_blup:condvar_stats:condvar_stats}
Where $\mathbf Z_j^{\mathsf T}\mathbf Z_j$ is invertible the BLUP is the group's own least-squares estimate
$\tilde{\mathbf b}_j$ multiplied by a matrix $\boldsymbol\Lambda_j$, which weighs the prior covariance $\mathbf D$
against the sampling covariance $\sigma^2(\mathbf Z_j^{\mathsf T}\mathbf Z_j)^{-1}$ of the group's own estimate:
{excerpt:lmm_blup:shrinkage_matrix-1:shrinkage_matrix}
{excerpt:lmm_blup:shrinkage_form:shrinkage_form}
More data in a group, spread over the covariate, make $\sigma^2(\mathbf Z_j^{\mathsf T}\mathbf Z_j)^{-1}$ small and $\boldsymbol\Lambda_j$ close to
the identity, no pooling, as a large $n_j$ makes $\lambda_j$ close to $1$.  The question's scalar
$\lambda_j$ is the case $q = 1$, $\mathbf Z_j = \mathbf 1$, $\mathbf D = \sigma_b^2$, with the BLUP of
eq.~\eqref{@blup:blup}:
{excerpt:lmm_blup:shrinkage_form+1:shrinkage_form+1}
{excerpt:lmm_blup:shrinkage_one_way:shrinkage_one_way}

\paragraph{Intercept and slope shrink together.}  $\boldsymbol\Lambda_j$ is in general not diagonal, so each
component of $\hat{\mathbf b}_j$ mixes the group's own estimates of \emph{both} terms: the shrunken intercept is
$\Lambda_{j,11}\tilde b_{j,1} + \Lambda_{j,12}\tilde b_{j,2}$.  The coupling comes from the correlation in
$\mathbf D$ and from the correlation of the group's own estimates in $(\mathbf Z_j^{\mathsf T}\mathbf Z_j)^{-1}$ (a
covariate not centred within the group); $\boldsymbol\Lambda_j$ is diagonal when both matrices are.  A group whose own slope
estimate is far from the population's, for instance because its few observations make the slope noisy, therefore
has its intercept moved as well (whenever $\Lambda_{j,12} \ne 0$), and a shrunken coefficient need not lie between the group's own value and
the population's.
"""


def illustration(ex: SlopeExample) -> str:
    """The sleepstudy paragraph: every number computed (see :func:`sleepstudy_example`)."""
    k = ex.k
    L, Lu = ex.shrink[k], ex.shrink_uncorrelated(k)
    same = bool(np.allclose(ex.ZtZ, ex.ZtZ[0], rtol=1e-12, atol=0))
    moved = L[0, 1] * ex.own[k, 1]
    return (
        r"\paragraph{An example.}  On lme4's \texttt{sleepstudy} data (reaction times of "
        rf"{len(ex.labels)} subjects on days $0$ to $9$ of a sleep-deprivation study), the REML fit of "
        rf"\texttt{{Reaction \char126{{}} Days + (Days | Subject)}} gives "
        rf"$\hat{{\mathbf D}} = {_matrix(ex.D, 2)}$ (a correlation of ${_f(ex.corr)}$) and "
        rf"$\hat\sigma^2 = {_f(ex.sigma2, 2)}$."
        + (r"  Every subject has the same days, hence the same $\mathbf Z_j^{\mathsf T}\mathbf Z_j$ and the same "
           if same else r"  For subject " + ex.labels[k] + " ")
        + rf"$\boldsymbol\Lambda_j = {_matrix(L)}$; with the correlation in $\hat{{\mathbf D}}$ set to $0$ it would be "
        rf"${_matrix(Lu)}$" + _source_of_coupling(L, Lu) + ".  "
        rf"Subject {ex.labels[k]}'s own estimates are $\tilde{{\mathbf b}}_j = {_matrix(ex.own[k][:, None], 2)}$ "
        rf"(intercept, slope in ms per day, as deviations from the population line) and its BLUP is "
        rf"$\hat{{\mathbf b}}_j = {_matrix(ex.blup[k][:, None], 2)}$: of the shrunken intercept "
        rf"${_f(ex.blup[k, 0], 2)}$, $\Lambda_{{j,12}}\tilde b_{{j,2}} = {_f(moved, 2)}$ comes from the subject's own slope"
        + (r", which moves the intercept to the other side of the population's." if
           np.sign(ex.blup[k, 0]) != np.sign(ex.own[k, 0]) and ex.own[k, 0] != 0 else ".")
        + r"  (The computation: \texttt{shrinkage.fit}, tested against lme4; the BLUP by the function generated "
        r"from eq.~\eqref{@lmm_blup:blup_stats}; $\boldsymbol\Lambda_j$ and $\tilde{\mathbf b}_j$ by their "
        r"definitions above.)"
    )


def _source_of_coupling(L: np.ndarray, Lu: np.ndarray) -> str:
    """Which of the two sources dominates the off-diagonal entry, read from the numbers."""
    share = Lu[0, 1] / L[0, 1] if L[0, 1] != 0 else 0.0
    if share > 0.5:
        return r", so here the coupling comes mostly from the uncentred \texttt{Days}, not from the correlation"
    return r", so here the coupling comes mostly from the correlation in $\hat{\mathbf D}$"


def figure(ex: SlopeExample) -> list[str]:
    """Subject k: its observations, its own line, its shrunk line and the population line."""
    k = ex.k
    lo, hi = float(ex.days.min()), float(ex.days.max())

    def line(style: str, coef) -> str:
        a, b = float(coef[0]), float(coef[1])
        return rf"\addplot[{style}] coordinates {{({_f(lo, 1)},{_f(a + b * lo, 2)}) ({_f(hi, 1)},{_f(a + b * hi, 2)})}};"

    points = " ".join(f"({_f(t, 1)},{_f(v, 2)})" for t, v in zip(ex.days, ex.reaction))
    pulled = 0 <= ex.blup[k, 1] / ex.own[k, 1] < 1 if ex.own[k, 1] != 0 else False
    toward = "is pulled towards the population's" if pulled else "moves"
    return [
        r"\begin{figure}[tbp]\centering",
        r"\begin{tikzpicture}",
        r"\begin{axis}[width=0.7\linewidth, height=5.5cm, xlabel={days of the study}, ylabel={reaction time (ms)},"
        r" legend style={font=\footnotesize, at={(0.5,-0.3)}, anchor=north}, legend columns=2, legend cell align=left]",
        rf"\addplot[only marks, mark=*, mark size=1.5pt, gray] coordinates {{{points}}};",
        rf"\addlegendentry{{subject {ex.labels[k]}}}",
        line("blue!80!black, thick, densely dashed", ex.beta + ex.own[k]),
        r"\addlegendentry{its own least-squares line}",
        line("red!75!black, very thick", ex.beta + ex.blup[k]),
        r"\addlegendentry{its shrunk line (BLUP)}",
        line("black!50", ex.beta),
        r"\addlegendentry{population line}",
        r"\end{axis}",
        r"\end{tikzpicture}",
        rf"\caption{{sleepstudy, subject {ex.labels[k]}: its own least-squares line $\hat{{\boldsymbol\beta}} + "
        r"\tilde{\mathbf b}_j$ and its shrunk line $\hat{\boldsymbol\beta} + \boldsymbol\Lambda_j\tilde{\mathbf b}_j$ "
        rf"(REML fit, \S\ref{{slopes}}). The slope {toward}, from "
        rf"${_f(ex.beta[1] + ex.own[k, 1], 2)}$ to ${_f(ex.beta[1] + ex.blup[k, 1], 2)}$ ms per day, and the "
        rf"intercept moves with it, from ${_f(ex.beta[0] + ex.own[k, 0], 1)}$ to ${_f(ex.beta[0] + ex.blup[k, 0], 1)}$ ms "
        rf"(the population's: ${_f(ex.beta[0], 1)}$).}}",
        r"\label{fig:slopes}",
        r"\end{figure}",
    ]


def slopes_section(ex_expand, example: SlopeExample) -> list[str]:
    """The section, with ``ex_expand`` the answer's Excerpts.expand."""
    return [
        r"\section{Beyond the random intercept: covariates and random slopes}\label{slopes}",
        ex_expand(BODY.strip()),
        illustration(example) + r"  Figure~\ref{fig:slopes} draws the two lines.",
        *figure(example),
    ]
