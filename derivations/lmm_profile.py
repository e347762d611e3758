"""Profiled ML and REML in lme4's relative covariance factor theta.

With D = sigma^2 Lambda Lambda^T the log-likelihood (document lmm_marginal) depends on beta
only through the penalised residual sum of squares r^2_theta(beta), which GLS minimises;
sigma^2 then profiles out, sigma_hat^2 = r^2_theta/N (ML) or r^2_theta/(N - p) (REML, after
integrating beta out), leaving lme4's criteria in theta alone (Bates et al. 2015, J. Stat.
Softw. 67(1), eqs. 34 and 41):

    -2 l_p(theta)  = log|L_theta|^2 + N (1 + log(2 pi r^2_theta / N))
    -2 l_R(theta)  = log|L_theta|^2 + log|R_X|^2 + (N - p)(1 + log(2 pi r^2_theta / (N - p)))

all in the per-group cross-products, so the fit evaluates them at O(J q^3) per theta.
"""

import sympy as sp

from shrinkage import model as scalar_model
from shrinkage.derive import Define, Derivation
from shrinkage.display import frac, half, neg, terms, times
from shrinkage.matrix.gaussian import MatrixLogIntegral
from shrinkage.matrix.instances import Sizes
from shrinkage.matrix.nodes import Eye, GroupMatSum, GroupSum, logdet, mneg, mplus, mtimes, quad, tr
from shrinkage.matrix.notation import MATRIX_NOTATION
from shrinkage.matrix.notation import (Lambda_theta, N, X_j, XtX, Xty, Z_j, ZtX, ZtZ, Zty, beta, matrix, n, p, q,
                                       scalar, sigma2, y_j, yty)
from shrinkage.matrix.scalar_steps import ScalarMaximiser
from shrinkage.matrix.steps import MatrixEquals, MatrixRescale, MatrixSubstitute, MatrixSumOverGroups

M_j, u_tilde, e_tilde, beta_hat, A_th = (matrix(c) for c in ("M_j", "u_j", "e_j", "beta_hat", "A_theta"))
r2_beta, r2, logdet_L, logdet_RX = (scalar(c) for c in ("r2_beta", "r2_theta", "logdet_M", "logdet_RX"))
log_2pi_sigma2 = sp.log(times(2, sp.pi, sigma2))
deviation = mplus(Zty, mneg(mtimes(ZtX, beta)))  # Z_j^T (y_j - X_j beta)
rss = terms(yty, neg(times(2, quad(beta, None, Xty))), quad(beta, XtX))  # |y_j - X_j beta|^2


def penalised(at):
    """r^2_theta at ``at``, as two sums (so that the printed definition can break between them)."""
    def put(x):
        return x.xreplace({beta: at})

    shrink = mtimes(Lambda_theta, sp.Inverse(M_j), tr(Lambda_theta))
    return terms(GroupSum(put(rss)), neg(GroupSum(quad(put(deviation), shrink))))



nu = terms(N, neg(p))  # N - p
sigma2_ml, sigma2_reml = frac(r2, N), frac(r2, nu)
# exact checks of the steps through beta_hat: two groups, q = 1 (at q = 2 the exact rational
# functions of beta_hat grow past minutes, as in lmm_marginal; q = 2..4 are checked numerically)
TWO_GROUPS = (Sizes(1, 1, (1, 2)),)
PLS_SIZES = (Sizes(1, 1, (1, 2)), Sizes(2, 1, (1, 2)))  # q = 1, 2 with groups of one and two observations
V_theta = mplus(Eye(n), mtimes(Z_j, Lambda_theta, tr(Lambda_theta), tr(Z_j)))  # V_j / sigma^2
gls_precision = GroupMatSum(mtimes(tr(X_j), sp.Inverse(V_theta), X_j))  # = A_theta (Woodbury)


def loglik(r2_term, dof=N, extra=()):
    """-1/2 [dof log(2 pi sigma^2) + log|L|^2 (+ log|R_X|^2) + r^2/sigma^2]."""
    return neg(half(terms(times(dof, log_2pi_sigma2), logdet_L, *extra, frac(r2_term, sigma2))))


def profiled(dof, extra=()):
    """log|L|^2 (+ log|R_X|^2) + dof (1 + log(2 pi r^2/dof)): lme4's deviance form."""
    return terms(logdet_L, *extra, times(dof, terms(1, sp.log(frac(times(2, sp.pi, r2), dof)))))


def derivation() -> Derivation:
    marginal = scalar_model.sibling("lmm_marginal", __file__)
    d = Derivation(
        name="lmm_profile",
        notation=MATRIX_NOTATION,
        title=r"Profiled ML and REML criteria in lme4's relative covariance factor",
        summary=r"""
lme4 writes the covariance of the random effects as $\mathbf D = \sigma^2\boldsymbol\Lambda_\theta\boldsymbol\Lambda_\theta^{\mathsf T}$,
with $\boldsymbol\Lambda_\theta$ lower triangular, and fits by minimising a criterion in $\theta$
alone.  Starting from the marginal log-likelihood in $\theta$ (document \emph{lmm\_marginal}),
the fixed effects enter only through the penalised residual sum of squares $r^2_\theta(\boldsymbol\beta)$,
which the GLS estimate $\hat{\boldsymbol\beta}_\theta$ minimises; then $\sigma^2$ profiles out in
closed form, $\hat\sigma^2 = r^2_\theta/N$.  For REML, $\boldsymbol\beta$ is integrated out first
(a Gaussian integral in $p$ dimensions), which adds $\log\lvert\mathbf R_X\rvert^2$ and leaves
$N - p$ degrees of freedom.  The results are lme4's profiled deviance and REML criterion
(Bates et al.\ 2015, \emph{J.\ Stat.\ Softw.}\ 67(1), eqs.\ 34 and 41), written in the
per-group cross-products, so that each evaluation costs $O(Jq^3)$ whatever $N$.
""",
    )
    d = d.cite(marginal, "gls_theta", lhs=r"\hat{\boldsymbol\beta}_\theta",
               why=r"The GLS estimate in $\theta$ (document \emph{lmm\_marginal}): it maximises the log-likelihood over $\boldsymbol\beta$ at every $\sigma^2$.")
    d = d.then(
        Define(d.steps[-1].rhs, symbol=beta_hat, why=r"Name it."),
        Define(mplus(mtimes(tr(Lambda_theta), ZtZ, Lambda_theta), Eye(q)), symbol=M_j,
               why=r"lme4's $\mathbf L_\theta\mathbf L_\theta^{\mathsf T}$ is block diagonal, with block $\mathbf M_j$ for group $j$."),
        Define(GroupSum(logdet(M_j)), symbol=logdet_L, label="logdet_L", why=r"So $\log\lvert\mathbf L_\theta\rvert^2 = \sum_j \log\det\mathbf M_j$."),
        Define(penalised(beta), symbol=r2_beta, label="r2_beta",
               why=r"The penalised residual sum of squares at $\boldsymbol\beta$ (shown below to be lme4's)."),
        Define(penalised(beta_hat), symbol=r2, label="r2_theta", why=r"And at the GLS estimate: lme4's $r^2_\theta$."),
    )
    d = d.cite(marginal, "marginal_theta", lhs=r"\log p(\mathbf y_j)",
               why=r"The log-likelihood of group $j$ in $\theta$ (document \emph{lmm\_marginal}).")
    d = d.then(
        MatrixSumOverGroups(
            loglik(r2_beta), label="loglik_theta", lhs=r"\ell(\boldsymbol\beta, \sigma^2, \theta)",
            why=r"The log-likelihood $\ell = \sum_j \log p(\mathbf y_j)$: the groups are independent, so their log-likelihoods add. Collect: $\sum_j n_j = N$, and the quadratic forms make up $r^2_\theta(\boldsymbol\beta)$."),
        MatrixSubstitute(
            loglik(r2), values=((beta, beta_hat),), label="profile_beta", exact_sizes=TWO_GROUPS,
            lhs=r"\max_{\boldsymbol\beta} \ell",
            why=r"$\boldsymbol\beta$ enters only through $r^2_\theta(\boldsymbol\beta)$, which $\hat{\boldsymbol\beta}_\theta$ minimises whatever $\sigma^2$: put it in."),
        ScalarMaximiser(
            sigma2_ml, var=sigma2, label="sigma2_ml",
            lhs=r"\hat\sigma^2_\theta",
            why=r"The maximiser over $\sigma^2$: the derivative $-\tfrac12(N/\sigma^2 - r^2_\theta/\sigma^4)$ vanishes only there, and the curvature there is negative."),
    )
    d = d.recall("profile_beta", lhs=r"\max_{\boldsymbol\beta} \ell", why=r"Back to the log-likelihood, to put $\hat\sigma^2_\theta$ in.")
    d = d.then(
        MatrixSubstitute(
            neg(half(profiled(N))), values=((sigma2, sigma2_ml),), label="ml_profiled", exact_sizes=TWO_GROUPS,
            lhs=r"\ell_p(\theta)", why=r"The profiled log-likelihood: $N\log(2\pi\hat\sigma^2_\theta) + r^2_\theta/\hat\sigma^2_\theta = N\log(2\pi r^2_\theta/N) + N$."),
        MatrixRescale(
            profiled(N), factor=-2, label="ml_deviance", exact_sizes=TWO_GROUPS, lhs=r"-2\ell_p(\theta)",
            why=r"On the deviance scale: lme4's profiled deviance (Bates et al.\ 2015, eq.\ 34)."),
    )
    d = d.recall("loglik_theta", lhs=r"\ell(\boldsymbol\beta, \sigma^2, \theta)", why=r"Back to the log-likelihood, for REML.")
    d = d.then(
        Define(logdet(A_th), symbol=logdet_RX, label="logdet_RX",
               why=r"lme4's $\log\lvert\mathbf R_X\rvert^2$: $\mathbf R_X^{\mathsf T}\mathbf R_X = \mathbf A_\theta$, the precision of $\hat{\boldsymbol\beta}_\theta$ times $\sigma^2$."),
        MatrixLogIntegral(
            loglik(r2, nu, (logdet_RX,)), var=beta, precision=mtimes(frac(1, sigma2), gls_precision), centre=beta_hat,
            exact_sizes=TWO_GROUPS, label="reml_integral",
            lhs=r"\ell_R(\sigma^2, \theta)",
            why=r"REML: integrate $\boldsymbol\beta$ out, $\ell_R = \log\int_{\mathbb R^p} e^{\ell}\,d\boldsymbol\beta$. $\ell$ is a concave quadratic in $\boldsymbol\beta$ with centre $\hat{\boldsymbol\beta}_\theta$ and precision $\sum_j\mathbf X_j^{\mathsf T}(\mathbf I + \mathbf Z_j\boldsymbol\Lambda_\theta\boldsymbol\Lambda_\theta^{\mathsf T}\mathbf Z_j^{\mathsf T})^{-1}\mathbf X_j/\sigma^2 = \mathbf A_\theta/\sigma^2$ (Woodbury; positive definite, $\mathbf X$ having full column rank); the integral adds $\tfrac p2\log(2\pi\sigma^2) - \tfrac12\log\det\mathbf A_\theta$."),
        ScalarMaximiser(
            sigma2_reml, var=sigma2, positive=(nu,), label="sigma2_reml",
            lhs=r"\hat\sigma^2_{R,\theta}",
            why=r"The maximiser of $\ell_R$ over $\sigma^2$: as for ML, with $N - p$ in place of $N$ ($N > p$: $\mathbf X$ has full column rank $p$ and there are residual degrees of freedom)."),
    )
    d = d.recall("reml_integral", lhs=r"\ell_R(\sigma^2, \theta)", why=r"Back to the REML log-likelihood, to put $\hat\sigma^2_{R,\theta}$ in.")
    d = d.then(
        MatrixSubstitute(
            neg(half(profiled(nu, (logdet_RX,)))), values=((sigma2, sigma2_reml),), label="reml_profiled",
            exact_sizes=TWO_GROUPS,
            lhs=r"\ell_R(\theta)", why=r"The profiled REML log-likelihood."),
        MatrixRescale(
            profiled(nu, (logdet_RX,)), factor=-2, label="reml_criterion", exact_sizes=TWO_GROUPS, lhs=r"-2\ell_R(\theta)",
            why=r"On the deviance scale: lme4's REML criterion (Bates et al.\ 2015, eq.\ 41)."),
    )
    d = d.recall("r2_beta", lhs=r"r^2_\theta(\boldsymbol\beta)", why=r"What the penalised residual sum of squares is.")
    d = d.then(
        Define(mtimes(sp.Inverse(M_j), tr(Lambda_theta), deviation), symbol=u_tilde,
               why=r"The conditional mode of $\mathbf u_j = \boldsymbol\Lambda_\theta^{-1}\mathbf b_j$: $\hat{\mathbf b}_j = \boldsymbol\Lambda_\theta\tilde{\mathbf u}_j$ (document \emph{lmm\_blup})."),
        Define(mplus(y_j, mneg(mtimes(X_j, beta)), mneg(mtimes(Z_j, Lambda_theta, u_tilde))), symbol=e_tilde,
               why=r"The residual of group $j$ at the conditional modes."),
        MatrixEquals(
            terms(GroupSum(quad(e_tilde, None)), GroupSum(quad(u_tilde, None))),
            label="r2_pls", exact_sizes=PLS_SIZES,
            why=r"lme4's definition: the residual sum of squares at the conditional modes plus their squared length: $\lvert\mathbf r - \mathbf Z\boldsymbol\Lambda\tilde{\mathbf u}\rvert^2 + \lvert\tilde{\mathbf u}\rvert^2 = \mathbf r^{\mathsf T}\mathbf r - \mathbf u^{\mathsf T}\boldsymbol\Lambda\mathbf M^{-1}\boldsymbol\Lambda^{\mathsf T}\mathbf u$ with $\mathbf r = \mathbf y_j - \mathbf X_j\boldsymbol\beta$, $\mathbf u = \mathbf Z_j^{\mathsf T}\mathbf r$."),
    )
    stats = (n, yty, Xty, Zty, XtX, ZtX, ZtZ, Lambda_theta)
    d = d.export("lmm_ml_profiled_deviance", "ml_deviance", stats,
                 "lme4's profiled deviance -2 l_p(theta), from the per-group cross-products, a scalar.\n\n"
                 "log|L_theta|^2 + N (1 + log(2 pi r^2_theta / N)), with log|L_theta|^2 = sum_j log det M_j,\n"
                 "M_j = Lambda^T ZtZ_j Lambda + I, r^2_theta the penalised RSS at the GLS beta_hat(theta).\n"
                 "n, yty (J,); Xty (J, p); Zty (J, q); XtX (J, p, p); ZtX (J, q, p); ZtZ (J, q, q).")
    d = d.export("lmm_reml_criterion", "reml_criterion", stats,
                 "lme4's REML criterion -2 l_R(theta), from the per-group cross-products, a scalar.\n\n"
                 "log|L_theta|^2 + log|R_X|^2 + (N - p)(1 + log(2 pi r^2_theta / (N - p))), with\n"
                 "log|R_X|^2 = log det(sum_j XtX_j - ZtX_j^T Lambda M_j^{-1} Lambda^T ZtX_j).")
    d = d.export("lmm_sigma2_ml", "sigma2_ml", stats,
                 "ML estimate of sigma^2 given theta: r^2_theta / N, a scalar.")
    d = d.export("lmm_sigma2_reml", "sigma2_reml", stats,
                 "REML estimate of sigma^2 given theta: r^2_theta / (N - p), a scalar.")
    return d
