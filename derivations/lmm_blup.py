"""The BLUP of a vector of random effects, by completing the square in b_j.

For y_j = X_j beta + Z_j b_j + eps_j with q random terms per group, complete the square
in b_j: the maximiser is b_hat_j = (Z_j^T Z_j/sigma^2 + D^{-1})^{-1} Z_j^T (y_j - X_j beta)/sigma^2
and b_j given the data is normal with covariance (Z_j^T Z_j/sigma^2 + D^{-1})^{-1}.  When
Z_j^T Z_j is invertible, b_hat_j is the matrix Lambda_j = D (D + sigma^2 (Z_j^T Z_j)^{-1})^{-1}
times the group's own least-squares deviation; for q = 1, Z_j = 1 it is the one-way
shrinkage factor lambda_j of derivations/blup.py.
"""

import sympy as sp

from shrinkage.display import frac, terms, times
from shrinkage.derive import Define, Derivation
from shrinkage.matrix import model
from shrinkage.matrix.gaussian import MatrixConditional, MatrixMaximiser, NormalReadOff
from shrinkage.matrix.nodes import Eye, mneg, mplus, mtimes, tr
from shrinkage.matrix.notation import MATRIX_NOTATION
from shrinkage.matrix.notation import (D, Lambda_theta, X_j, Z_j, ZtX, ZtZ, Zty, b_j, beta, matrix, n, q,
                                       sigma2)
from shrinkage.matrix.steps import MatrixEquals, MatrixSubstitute
from shrinkage.symbols import beta0, sigma_b2, ybar

C_j, b_hat_j = model.C_j, model.b_hat_j
b_ls, shrink = matrix("b_ls_j"), matrix("Shrink_j")
I_q = Eye(q)
theta_D = ((D, mtimes(sigma2, Lambda_theta, tr(Lambda_theta))),)  # lme4: D = sigma^2 Lambda Lambda^T
M_theta = mplus(mtimes(tr(Lambda_theta), ZtZ, Lambda_theta), I_q)
deviation = mplus(Zty, mneg(mtimes(ZtX, beta)))  # Z_j^T (y_j - X_j beta)
precision_stats = mplus(mtimes(frac(1, sigma2), ZtZ), sp.Inverse(D))
one_way = ((Z_j, sp.OneMatrix(n, 1)), (X_j, sp.OneMatrix(n, 1)), (D, sp.ImmutableMatrix([[sigma_b2]])),
           (beta, sp.ImmutableMatrix([[beta0]])))
one_way_factor = (one_way[0], one_way[2])  # Lambda_j involves only Z_j and D
lam_one_way = frac(sigma_b2, terms(sigma_b2, frac(sigma2, n)))


def derivation() -> Derivation:
    d = Derivation(
        name="lmm_blup",
        notation=MATRIX_NOTATION,
        title=r"Shrinkage of a vector of random effects: the BLUP by completing the square",
        summary=r"""
In the linear mixed model $\mathbf y_j = \mathbf X_j\boldsymbol\beta + \mathbf Z_j\mathbf b_j + \boldsymbol\varepsilon_j$,
with $\mathbf b_j \sim N(\mathbf 0, \mathbf D)$ independent of $\boldsymbol\varepsilon_j \sim N(\mathbf 0, \sigma^2\mathbf I)$
and $q$ random terms per group (an intercept and a slope: $q = 2$), we maximise the joint
density of group $j$'s data and random effects over the vector $\mathbf b_j$.  Completing the
square gives the BLUP and the conditional covariance.  Where $\mathbf Z_j^{\mathsf T}\mathbf Z_j$ is
invertible the BLUP is the group's own least-squares deviation multiplied by a matrix
$\boldsymbol\Lambda_j$: the intercept and the slope shrink \emph{together}, through the
correlation in $\mathbf D$; for $q = 1$ and $\mathbf Z_j = \mathbf 1$, $\boldsymbol\Lambda_j$ is
the one-way shrinkage factor $\lambda_j = \sigma_b^2/(\sigma_b^2 + \sigma^2/n_j)$.  The forms in lme4's
relative covariance factor ($\mathbf D = \sigma^2\boldsymbol\Lambda_\theta\boldsymbol\Lambda_\theta^{\mathsf T}$)
are the ones the fit evaluates: they stay finite when $\mathbf D$ is singular.
""",
    )
    d = d.then(*model.opening_chain())
    d = d.then(
        MatrixMaximiser(
            model.blup_written_out(), var=b_j, precision=C_j,
            lhs=r"\hat{\mathbf b}_j = \operatorname*{arg\,max}_{\mathbf b_j} \log p(\mathbf y_j, \mathbf b_j)",
            why=r"Only the first term depends on $\mathbf b_j$; it is $\le 0$ because $\mathbf C_j$ is positive definite, and it vanishes at the centre.",
            label="blup",
        ),
        *model.define_statistics("ZtZ_j", "ZtX_j", "Zty_j"),
        MatrixEquals(
            mtimes(frac(1, sigma2), sp.Inverse(precision_stats), deviation),
            why=r"In the cross-products of the group's data.",
            label="blup_stats",
        ),
        MatrixSubstitute(
            mtimes(Lambda_theta, sp.Inverse(M_theta), tr(Lambda_theta), deviation),
            values=theta_D,
            why=r"In lme4's parametrisation $\mathbf D = \sigma^2\boldsymbol\Lambda_\theta\boldsymbol\Lambda_\theta^{\mathsf T}$: no inverse of $\mathbf D$, so the form holds on the boundary too.",
            label="blup_theta",
        ),
    )
    d = d.recall("completed_square", lhs=r"\log p(\mathbf y_j, \mathbf b_j)", why=r"Back to the completed square, for the distribution of $\mathbf b_j$ given the data.")
    d = d.then(
        MatrixConditional(
            model.mvn_logpdf(b_j, b_hat_j, sp.Inverse(C_j)),
            var=b_j, precision=C_j, centre=b_hat_j,
            lhs=r"\log p(\mathbf b_j \mid \mathbf y_j)",
            why=r"Bayes' rule: subtract the log of the integral over $\mathbf b_j$. What is left is the log-density of $N(\hat{\mathbf b}_j, \mathbf C_j^{-1})$.",
        ),
        NormalReadOff(
            sp.Inverse(C_j), var=b_j, mean=b_hat_j, covariance=sp.Inverse(C_j),
            lhs=r"\operatorname{Var}(\mathbf b_j \mid \mathbf y_j)",
            why=r"Read off the covariance of that normal density (with $\boldsymbol\beta$ and the variances known).",
        ),
        MatrixEquals(sp.Inverse(precision_stats), why=r"In the cross-products.", label="condvar_stats"),
        MatrixSubstitute(
            mtimes(sigma2, Lambda_theta, sp.Inverse(M_theta), tr(Lambda_theta)),
            values=theta_D,
            why=r"With $\mathbf D = \sigma^2\boldsymbol\Lambda_\theta\boldsymbol\Lambda_\theta^{\mathsf T}$: lme4's condVar.",
            label="condvar_theta",
        ),
    )
    d = d.recall("blup_stats", lhs=r"\hat{\mathbf b}_j", why=r"The BLUP again, to see it as a shrunken estimate.")
    d = d.then(
        Define(mtimes(sp.Inverse(ZtZ), deviation), symbol=b_ls,
               why=r"The group's own least-squares estimate of $\mathbf b_j$ (given $\boldsymbol\beta$): regress $\mathbf y_j - \mathbf X_j\boldsymbol\beta$ on $\mathbf Z_j$ alone. It needs $\mathbf Z_j^{\mathsf T}\mathbf Z_j$ invertible ($n_j \ge q$)."),
        Define(mtimes(D, sp.Inverse(mplus(D, mtimes(sigma2, sp.Inverse(ZtZ))))), symbol=shrink,
               why=r"The matrix shrinkage factor: $\mathbf D$ against $\mathbf D$ plus the sampling covariance $\sigma^2(\mathbf Z_j^{\mathsf T}\mathbf Z_j)^{-1}$ of the group's own estimate.",
               label="shrinkage_matrix"),
        MatrixEquals(
            mtimes(shrink, b_ls), full_rank=True,
            why=r"The BLUP is the group's own estimate shrunk by $\boldsymbol\Lambda_j$: $(\mathbf Z_j^{\mathsf T}\mathbf Z_j/\sigma^2 + \mathbf D^{-1})^{-1}\mathbf Z_j^{\mathsf T}\mathbf Z_j/\sigma^2 = \mathbf D(\mathbf D + \sigma^2(\mathbf Z_j^{\mathsf T}\mathbf Z_j)^{-1})^{-1}$.",
            label="shrinkage_form",
        ),
        MatrixSubstitute(
            times(lam_one_way, terms(ybar, -beta0)), values=one_way, at=(("q", 1), ("p", 1)),
            lhs=r"\hat b_j",
            why=r"The one-way model is the case $q = p = 1$, $\mathbf Z_j = \mathbf X_j = \mathbf 1$, $\mathbf D = \sigma_b^2$, $\boldsymbol\beta = \beta_0$: the BLUP $\lambda_j(\bar y_j - \beta_0)$ of the random intercept (derivation blup).",
        ),
    )
    d = d.recall("shrinkage_matrix", lhs=r"\boldsymbol\Lambda_j", why=r"The matrix shrinkage factor again.")
    d = d.then(
        MatrixSubstitute(
            lam_one_way, values=one_way_factor, at=(("q", 1), ("p", 1)), lhs=r"\lambda_j",
            why=r"For $q = 1$, $\mathbf Z_j = \mathbf 1$ ($\mathbf Z_j^{\mathsf T}\mathbf Z_j = n_j$) and $\mathbf D = \sigma_b^2$ it is the one-way shrinkage factor.",
            label="shrinkage_one_way",
        ),
    )
    d = d.export("lmm_blup", "blup_stats", (ZtZ, ZtX, Zty, beta, D, sigma2),
                 "BLUP (conditional mode) of every group's random effects, shape (J, q).\n\n"
                 "b_hat_j = (ZtZ_j/sigma^2 + D^{-1})^{-1} (Zty_j - ZtX_j beta) / sigma^2, from the per-group\n"
                 "cross-products ZtZ (J, q, q), ZtX (J, q, p), Zty (J, q); beta (p,), D (q, q).")
    d = d.export("lmm_blup_theta", "blup_theta", (ZtZ, ZtX, Zty, beta, Lambda_theta),
                 "BLUP in lme4's relative covariance factor (valid for a singular Lambda_theta), shape (J, q).\n\n"
                 "b_hat_j = Lambda (Lambda^T ZtZ_j Lambda + I)^{-1} Lambda^T (Zty_j - ZtX_j beta).")
    d = d.export("lmm_conditional_covariance", "condvar_stats", (ZtZ, D, sigma2),
                 "Conditional covariance Var(b_j | y_j) of every group's random effects, shape (J, q, q).\n\n"
                 "(ZtZ_j/sigma^2 + D^{-1})^{-1}, with beta and the variance parameters known.")
    d = d.export("lmm_condvar_theta", "condvar_theta", (ZtZ, Lambda_theta, sigma2),
                 "lme4's condVar in the relative covariance factor, shape (J, q, q).\n\n"
                 "sigma^2 Lambda (Lambda^T ZtZ_j Lambda + I)^{-1} Lambda^T.")
    return d
