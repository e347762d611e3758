"""Shrinkage on the link scale: the conditional mode of a Poisson random intercept.

For a group with exposure m and rate y (one covariate pattern) the mode of the penalised
log-density has a closed form in Lambert's W.  It is the normal model's BLUP read on the
link scale, b^ = lambda^ z^ with lambda^ = sigma_b^2 / (sigma_b^2 + 1/W^), exactly, once
the working weight W^ and the working-scale deviation z^ are taken at the mode itself;
its limits are no pooling (the group's own log rate) and complete pooling (0).  The
table in the summary shows where the usual shortcut, one IRLS step from b = 0, fails.
"""

import mpmath
import sympy as sp

from shrinkage.derive import Define, Derivation, Derivative, Equals, Limit, Maximiser, Notation, Premise, Quantity, Sign
from shrinkage.derive import Statement

NOTATION = Notation([
    Quantity("b", r"b_j", "random intercept of group $j$ (link scale)", "real"),
    Quantity("beta", r"\beta", "the fixed part of the linear predictor, $x_j'\\beta$", "real"),
    Quantity("sigma_b2", r"\sigma_b^2", "variance of the random intercept", "positive"),
    Quantity("m", r"m_j", "exposure of group $j$", "positive"),
    Quantity("y", r"y_j", "observed rate of group $j$ (events per unit of exposure)", "positive"),
    Quantity("bhat", r"\hat b_j", "the conditional mode of $b_j$", "real"),
    Quantity("W", r"\hat W_j", "working weight of the group at the mode, $m_j e^{\\beta + \\hat b_j}$", "positive"),
    Quantity("lam", r"\hat\lambda_j", "link-scale shrinkage factor at the mode", "unit"),
    Quantity("zbar", r"\hat z_j", "working-scale deviation at the mode", "real"),
], name="glmm_shrinkage")

b, beta, sigma_b2, m, y, bhat, W, lam, zbar = (NOTATION.symbol(k) for k in (
    "b", "beta", "sigma_b2", "m", "y", "bhat", "W", "lam", "zbar"))

POISSON = Statement(
    "glmm_poisson_penalised", m * (y * (beta + b) - sp.exp(beta + b)) - b ** 2 / (2 * sigma_b2), r"\ell_j(b_j)",
    r"Poisson with log link: group $j$ has $m_j y_j$ events in exposure $m_j$ at rate $e^{\beta + b_j}$, "
    r"$b_j \sim N(0, \sigma_b^2)$; $\ell_j$ is the joint log-density of $(\mathbf y_j, b_j)$ up to terms free of $b_j$: "
    r"the log-likelihood plus the ridge penalty $-b_j^2/(2\sigma_b^2)$.")
MODE = sigma_b2 * m * y - sp.LambertW(sigma_b2 * m * sp.exp(beta + sigma_b2 * m * y))


def derivation() -> Derivation:
    d = Derivation(name="glmm_shrinkage", title=r"Shrinkage on the link scale: the mode of a Poisson random intercept",
                   summary=SUMMARY + one_step_table(), notation=NOTATION)
    d = d.then(
        Premise.of(POISSON, label="poisson"),
        Derivative(m * (y - sp.exp(beta + b)) - b / sigma_b2, var=b, lhs=r"\ell_j'(b_j)", label="score",
                   why=r"The score: observed minus expected events, less the penalty's pull towards 0."),
        Derivative(-m * sp.exp(beta + b) - 1 / sigma_b2, var=b, lhs=r"\ell_j''(b_j)", label="curvature",
                   why=r"Minus the working weight $m_je^{\beta+b_j}$ and the penalty's $1/\sigma_b^2$."),
        Sign(sp.S.Zero, sign=-1, why=r"Negative: one mode, the penalised estimate."),
    )
    d = d.recall("poisson", lhs=r"\ell_j(b_j)", why=r"Back to the penalised log-density, to maximise it.")
    d = d.then(
        Maximiser(MODE, var=b, lhs=r"\hat b_j", label="mode",
                  why=r"Lambert's $W$ ($W e^W = x$) solves the score equation $b = \sigma_b^2 m_j(y_j - e^{\beta+b})$: "
                      r"with $a = \sigma_b^2 m_j y_j$, $b = a - W(\sigma_b^2 m_j e^{\beta + a})$."),
        Limit(sp.log(y) - beta, var=sigma_b2, point=sp.oo, lhs=r"\hat b_j",
              why=r"No pooling: without a penalty the mode is the group's own estimate, its log rate less $\beta$."),
    )
    d = d.recall("mode", lhs=r"\hat b_j", why=r"The other end.")
    d = d.then(Limit(sp.S.Zero, var=sigma_b2, point=0, lhs=r"\hat b_j",
                     why=r"Complete pooling: every group is predicted by $\beta$."))
    d = d.then(
        Define(MODE, symbol=bhat, why=r"Name the mode."),
        Define(m * sp.exp(beta + bhat), symbol=W, why=r"The working weight (expected events) at the mode."),
        Define(sigma_b2 * W / (1 + sigma_b2 * W), symbol=lam,
               why=r"The link-scale shrinkage factor $\sigma_b^2/(\sigma_b^2 + 1/\hat W_j)$ of document "
                   r"\emph{glmm\_pirls}, with the weight at the mode."),
        Define(bhat + (m * y - W) / W, symbol=zbar,
               why=r"The working-scale deviation: the working response $\eta + (y-\mu)/\mu$ less $\beta$, at the mode."),
    )
    d = d.recall("mode", lhs=r"\hat b_j", why=r"The mode once more, to read it as shrinkage.")
    d = d.then(Equals(lam * zbar, label="fixed_point",
                      why=r"The mode is the normal model's BLUP on the link scale: the working-scale deviation "
                          r"shrunk by $\hat\lambda_j$, exactly, because at the mode the Newton (IRLS) step returns "
                          r"the mode.  But $\hat\lambda_j$ and $\hat z_j$ depend on $\hat b_j$ itself."))
    return d


CASES = ((0.05, 0), (0.05, 4), (1, 0.5), (1, 4), (20, 0.5), (20, 4), (20, 20))


def one_step(w0: float, ratio: float, sigma_b2_value: float = 1.0) -> tuple:
    """(exact mode, one IRLS step from 0, lambda at the mode, lambda at 0) for expected
    events w0 = m e^beta and observed/expected ratio (beta = 0, so m = w0)."""
    a = sigma_b2_value * w0 * ratio
    exact = a - mpmath.lambertw(sigma_b2_value * w0 * mpmath.exp(a)).real
    lam0 = sigma_b2_value * w0 / (1 + sigma_b2_value * w0)
    w_hat = w0 * mpmath.exp(exact)
    return float(exact), float(lam0 * (ratio - 1)), float(sigma_b2_value * w_hat / (1 + sigma_b2_value * w_hat)), lam0


def one_step_table() -> str:
    rows = []
    for w0, ratio in CASES:
        exact, step, lam_hat, lam0 = one_step(w0, ratio)
        own = r"$-\infty$" if ratio == 0 else f"{float(mpmath.log(ratio)):.3f}"
        rows.append(f"{w0:g} & {ratio:g} & {own} & {exact:.3f} & {step:.3f} & {lam_hat:.3f} & {lam0:.3f} \\\\")
    return "\n".join([
        r"\begin{center}\small",
        r"\begin{tabular}{@{}rrrrrrr@{}}",
        r"\toprule expected $m_je^\beta$ & observed/expected & own $\log$ ratio & mode $\hat b_j$ & one step & "
        r"$\hat\lambda_j$ & $\lambda_j^{(0)}$ \\ \midrule",
        *rows,
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{center}",
    ])


SUMMARY = r"""
The question's penalty reading carries over to a count: the log-density of the random effect is the
ridge penalty $-b_j^2/(2\sigma_b^2)$ on the link scale, and the conditional mode (lme4's \texttt{ranef})
is the penalised estimate.  What changes is that the log-likelihood is not quadratic in $b_j$, so the
mode has no linear closed form.  For one covariate pattern of a Poisson group it has one in Lambert's
$W$, which lets every claim below be checked exactly: the mode, its limits (no pooling, complete
pooling), and the reading $\hat b_j = \hat\lambda_j \hat z_j$ with $\hat\lambda_j = \sigma_b^2/(\sigma_b^2 +
1/\hat W_j)$, the normal model's factor with $n_j/\sigma^2$ replaced by the working weight
$\hat W_j$.  The reading is exact only with the weight at the mode.  The usual shortcut, one IRLS
step from $b_j = 0$, shrinks the deviation $z^{(0)}_j = y_j/e^{\beta} - 1$ by
$\lambda^{(0)}_j = \sigma_b^2 m_je^\beta/(1 + \sigma_b^2 m_je^\beta)$; the table ($\sigma_b^2 = 1$, $\beta = 0$)
shows where it fails: a group far from the population (observed/expected 4 or 20 with one or more
expected events), where the working deviation is linear in the rate while the log rate is not, and
the one step overshoots the mode by far.  With few expected events (rare events) both are shrunk
nearly to 0 and agree; what suffers there is Laplace's approximation of the marginal likelihood
(document \emph{glmm\_laplace\_error}), not the mode.
"""
