"""The gradient of lme4's profiled criteria in theta, the entries of Lambda_theta.

With E_rc the unit matrix at theta's entry (r, c) and M_j = Lambda' Z_j'Z_j Lambda + I
(document lmm_profile):

    d log|L_theta|^2  = 2 sum_j [Z_j'Z_j Lambda M_j^-1]_rc
    d r^2_theta       = -2 sum_j [(Z_j'e_j) u_j']_rc       (envelope: beta_hat held fixed)
    d log|R_X|^2      = -2 sum_j [W_j A_theta^-1 W_j' Lambda]_rc,  W_j = Z_j'X_j - Z_j'Z_j Lambda M_j^-1 Lambda' Z_j'X_j

and the ML deviance's gradient is the first plus N / r^2 times the second, the REML
criterion's the first and third plus (N - p) / r^2 times the second: what the formula
fit's compiled gradient computes, group by group (shrinkage.lmm.objective, steps (7)-(9)).
"""

import sympy as sp

from shrinkage import model as scalar_model
from shrinkage.derive import Define, Derivation
from shrinkage.display import frac, neg, terms, times
from shrinkage.matrix.derivative import MatrixGradient
from shrinkage.matrix.instances import Sizes
from shrinkage.matrix.nodes import GroupMatSum, mneg, mplus, mtimes, tr
from shrinkage.matrix.notation import MATRIX_NOTATION
from shrinkage.matrix.notation import (Lambda_theta, N, Xty, XtX, ZtX, ZtZ, Zty, beta, matrix, n, p, scalar, yty)

M_j, u_tilde, u_hat, beta_hat, A_th, W_sym, Zte_hat = (
    matrix(c) for c in ("M_j", "u_j", "u_hat_j", "beta_hat", "A_theta", "W_j", "Zte_hat_j"))
r2 = scalar("r2_theta")
TWO_GROUPS = (Sizes(1, 1, (1, 2)),)  # exact checks through beta_hat: q = 1 (q = 2 grows past minutes)
ONE_EACH = (Sizes(1, 1, (1, 1)),)  # the REML gradient's: groups of one (at n_j = 1, 2 over ten minutes)


def conditional_mode(at):
    """u_j = M_j^-1 Lambda' Z_j'(y_j - X_j beta) at beta = ``at``."""
    return mtimes(sp.Inverse(M_j), tr(Lambda_theta), mplus(Zty, mneg(mtimes(ZtX, at))))


def residual_cross_product(at, u):
    """Z_j'e_j = Z_j'(y_j - X_j beta) - Z_j'Z_j Lambda u_j at beta = ``at``."""
    return mplus(Zty, mneg(mtimes(ZtX, at)), mneg(mtimes(ZtZ, Lambda_theta, u)))


def minus_d_r2(at, u=None, deviation=None):
    """2 sum_j (Z_j'e_j) u_j' at beta = ``at`` (u_j: its conditional mode there, or ``u``;
    Z_j'e_j written out, or ``deviation``): minus the derivative of r^2 (so that sums print it
    with a minus sign, not "+ -")."""
    u = conditional_mode(at) if u is None else u
    deviation = residual_cross_product(at, u) if deviation is None else deviation
    return times(2, GroupMatSum(mtimes(deviation, tr(u))))


def d_r2(at, u=None):
    """-2 sum_j (Z_j'e_j) u_j' at beta = ``at``."""
    return mneg(minus_d_r2(at, u))


W_j = mplus(ZtX, mneg(mtimes(ZtZ, Lambda_theta, sp.Inverse(M_j), tr(Lambda_theta), ZtX)))
d_logdet_L = times(2, GroupMatSum(mtimes(ZtZ, Lambda_theta, sp.Inverse(M_j))))
d_logdet_RX = times(-2, GroupMatSum(mtimes(W_sym, sp.Inverse(A_th), tr(W_sym), Lambda_theta)))
d_r2_hat = d_r2(beta_hat, u_hat)
nu = terms(N, neg(p))  # N - p
D_THETA = r"\partial/\partial\boldsymbol\Lambda_\theta\,"


def derivation() -> Derivation:
    profile = scalar_model.sibling("lmm_profile", __file__)
    d = Derivation(
        name="lmm_gradient",
        notation=MATRIX_NOTATION,
        title=r"The gradient of lme4's profiled criteria in $\theta$",
        summary=r"""
The fit minimises lme4's profiled deviance (ML) or REML criterion over $\theta$, the entries of the
lower-triangular $\boldsymbol\Lambda_\theta$ (document \emph{lmm\_profile}), with their gradient.  Each
of the criterion's three parts is differentiated in the entries of $\boldsymbol\Lambda_\theta$:
$\log\lvert\mathbf L_\theta\rvert^2 = \sum_j\log\det\mathbf M_j$ through $\mathbf M_j$; the penalised
residual sum of squares $r^2_\theta$ by the envelope argument (it is the minimum over $\boldsymbol\beta$
of $r^2_\theta(\boldsymbol\beta)$, so the derivative of the minimiser $\hat{\boldsymbol\beta}_\theta$ does
not enter); and $\log\lvert\mathbf R_X\rvert^2 = \log\det\mathbf A_\theta$ through $\mathbf A_\theta$.
Entry $(r, c)$ of each matrix below is the derivative in the entry $(r, c)$ of $\boldsymbol\Lambda_\theta$;
every step is checked against the numerical derivative of the criterion, $\hat{\boldsymbol\beta}_\theta$
moving with $\theta$, at $q = 1, \dots, 4$, and exactly at $q = 1$ (and $q = 2$ where
$\hat{\boldsymbol\beta}_\theta$ is not involved).  The formula fit computes these sums group by group.
""",
    )
    d = d.cite(profile, "logdet_L", lhs=r"\log\lvert\mathbf L_\theta\rvert^2",
               why=r"The log-determinant of lme4's sparse Cholesky factor (document \emph{lmm\_profile}).")
    d = d.then(MatrixGradient(
        d_logdet_L, var=Lambda_theta, label="d_logdet_L", lhs=D_THETA + r"\log\lvert\mathbf L_\theta\rvert^2",
        why=r"$d\log\det\mathbf M_j = \operatorname{tr}(\mathbf M_j^{-1}d\mathbf M_j)$ with $d\mathbf M_j = \mathbf E^{\mathsf T}\mathbf Z_j^{\mathsf T}\mathbf Z_j\boldsymbol\Lambda_\theta + \boldsymbol\Lambda_\theta^{\mathsf T}\mathbf Z_j^{\mathsf T}\mathbf Z_j\mathbf E$ for $\mathbf E$ the unit matrix of an entry; the two traces are equal ($\mathbf M_j$ is symmetric) and $\operatorname{tr}(\mathbf B\mathbf E_{rc}) = \mathbf B_{cr}$."))
    d = d.cite(profile, "r2_beta", lhs=r"r^2_\theta(\boldsymbol\beta)",
               why=r"The penalised residual sum of squares at a given $\boldsymbol\beta$ (document \emph{lmm\_profile}).")
    d = d.then(
        Define(conditional_mode(beta), symbol=u_tilde,
               why=r"The conditional mode of the spherical random effects at $\boldsymbol\beta$ (document \emph{lmm\_profile})."),
        MatrixGradient(
            d_r2(beta, u_tilde), var=Lambda_theta, label="d_r2_beta", lhs=D_THETA + r"r^2_\theta(\boldsymbol\beta)",
            why=r"With $\mathbf s_j = \boldsymbol\Lambda_\theta^{\mathsf T}\mathbf Z_j^{\mathsf T}(\mathbf y_j - \mathbf X_j\boldsymbol\beta)$, the $\theta$-dependent part is $-\sum_j\mathbf s_j^{\mathsf T}\mathbf M_j^{-1}\mathbf s_j$, whose differential is $-2\sum_j(\mathbf Z_j^{\mathsf T}(\mathbf y_j - \mathbf X_j\boldsymbol\beta) - \mathbf Z_j^{\mathsf T}\mathbf Z_j\boldsymbol\Lambda_\theta\tilde{\mathbf u}_j)^{\mathsf T}\mathbf E\,\tilde{\mathbf u}_j$: the residual's cross-product $\mathbf Z_j^{\mathsf T}\tilde{\mathbf e}_j$ times $\tilde{\mathbf u}_j^{\mathsf T}$."),
    )
    d = d.cite(profile, "r2_theta", lhs=r"r^2_\theta",
               why=r"The penalised residual sum of squares at the GLS estimate (document \emph{lmm\_profile}).")
    d = d.then(Define(conditional_mode(beta_hat), symbol=u_hat,
                      why=r"The conditional mode at the GLS estimate."))
    d = d.then(MatrixGradient(
        d_r2_hat, var=Lambda_theta, label="d_r2", exact_sizes=TWO_GROUPS, lhs=D_THETA + r"r^2_\theta",
        why=r"The envelope argument: $r^2_\theta = \min_{\boldsymbol\beta} r^2_\theta(\boldsymbol\beta)$ is attained at $\hat{\boldsymbol\beta}_\theta$, where the derivative in $\boldsymbol\beta$ vanishes, so the chain rule's term through $\hat{\boldsymbol\beta}_\theta$ is zero: the previous result at $\boldsymbol\beta = \hat{\boldsymbol\beta}_\theta$ (checked with $\hat{\boldsymbol\beta}_\theta$ moving with $\theta$)."))
    d = d.cite(profile, "logdet_RX", lhs=r"\log\lvert\mathbf R_X\rvert^2",
               why=r"lme4's $\log\lvert\mathbf R_X\rvert^2 = \log\det\mathbf A_\theta$, $\mathbf A_\theta = \sum_j \mathbf X_j^{\mathsf T}\mathbf X_j - \mathbf Z_j^{\mathsf T}\mathbf X_j^{\mathsf T}\boldsymbol\Lambda_\theta\mathbf M_j^{-1}\boldsymbol\Lambda_\theta^{\mathsf T}\mathbf Z_j^{\mathsf T}\mathbf X_j$ (documents \emph{lmm\_profile}, \emph{lmm\_marginal}).")
    d = d.then(Define(W_j, symbol=W_sym, why=r"A name for the fixed-effect columns' cross-product corrected by the "
                                             r"random effects' conditional mode, group by group."))
    d = d.then(MatrixGradient(
        d_logdet_RX, var=Lambda_theta, label="d_logdet_RX", exact_sizes=TWO_GROUPS,
        lhs=D_THETA + r"\log\lvert\mathbf R_X\rvert^2",
        why=r"$d\log\det\mathbf A_\theta = \operatorname{tr}(\mathbf A_\theta^{-1}d\mathbf A_\theta)$; with $\mathbf K_j = \boldsymbol\Lambda_\theta\mathbf M_j^{-1}\boldsymbol\Lambda_\theta^{\mathsf T}$, $d\mathbf K_j = \mathbf B_j^{\mathsf T}\mathbf E\mathbf M_j^{-1}\boldsymbol\Lambda_\theta^{\mathsf T} + (\cdot)^{\mathsf T}$, $\mathbf B_j = \mathbf I - \mathbf Z_j^{\mathsf T}\mathbf Z_j\mathbf K_j$, so the entry is $-2[\mathbf W_j\mathbf A_\theta^{-1}\mathbf Z_j^{\mathsf T}\mathbf X_j^{\mathsf T}\boldsymbol\Lambda_\theta\mathbf M_j^{-1}]_{rc}$ with $\mathbf W_j = \mathbf B_j\mathbf Z_j^{\mathsf T}\mathbf X_j$; and $\mathbf Z_j^{\mathsf T}\mathbf X_j^{\mathsf T}\boldsymbol\Lambda_\theta\mathbf M_j^{-1} = \mathbf W_j^{\mathsf T}\boldsymbol\Lambda_\theta$ because $\mathbf M_j - \boldsymbol\Lambda_\theta^{\mathsf T}\mathbf Z_j^{\mathsf T}\mathbf Z_j\boldsymbol\Lambda_\theta = \mathbf I$."))
    d = d.then(Define(residual_cross_product(beta_hat, u_hat), symbol=Zte_hat,
                      why=r"The random terms' cross-product with the residual at the GLS estimate, a name for the "
                          r"gradients below."))
    d = d.cite(profile, "ml_deviance", lhs=r"-2\ell_p(\theta)", why=r"lme4's profiled deviance (document \emph{lmm\_profile}).")
    d = d.then(MatrixGradient(
        mplus(d_logdet_L, mneg(times(frac(N, r2), minus_d_r2(beta_hat, u_hat, Zte_hat)))), var=Lambda_theta, label="ml_gradient", exact_sizes=TWO_GROUPS,
        lhs=D_THETA + r"(-2\ell_p)",
        why=r"The derivative of $N\log r^2_\theta$ is $(N / r^2_\theta)$ times that of $r^2_\theta$; the other terms are constants."))
    d = d.cite(profile, "reml_criterion", lhs=r"-2\ell_R(\theta)", why=r"lme4's REML criterion (document \emph{lmm\_profile}).")
    d = d.then(MatrixGradient(
        mplus(d_logdet_L, d_logdet_RX, mneg(times(frac(nu, r2), minus_d_r2(beta_hat, u_hat, Zte_hat)))), var=Lambda_theta, label="reml_gradient",
        exact_sizes=ONE_EACH, lhs=D_THETA + r"(-2\ell_R)",
        why=r"As for ML, with $N - p$ in place of $N$ and the derivative of $\log\lvert\mathbf R_X\rvert^2$ added."))
    stats = (n, yty, Xty, Zty, XtX, ZtX, ZtZ, Lambda_theta)
    d = d.export("lmm_ml_gradient", "ml_gradient", stats,
                 "The gradient of lme4's profiled deviance in the entries of Lambda_theta, (q, q).\n\n"
                 "Entry (r, c): d(-2 l_p)/d Lambda[r, c] (theta's entries: the lower triangle).\n"
                 "n, yty (J,); Xty (J, p); Zty (J, q); XtX (J, p, p); ZtX (J, q, p); ZtZ (J, q, q).")
    d = d.export("lmm_reml_gradient", "reml_gradient", stats,
                 "The gradient of lme4's REML criterion in the entries of Lambda_theta, (q, q).\n\n"
                 "Entry (r, c): d(-2 l_R)/d Lambda[r, c] (theta's entries: the lower triangle).")
    return d
