"""The marginal likelihood of the linear mixed model, and the GLS estimate of beta.

Integrate b_j out of group j's joint density (a Gaussian integral in q dimensions): the
result is the N(X_j beta, V_j) log-density with V_j = Z_j D Z_j^T + sigma^2 I, written
through the q x q matrix C_j = Z_j^T Z_j/sigma^2 + D^{-1} (Woodbury's identity and the matrix
determinant lemma), then in the group's cross-products.  Summed over the independent
groups and maximised in beta it gives the GLS estimate.
"""

import sympy as sp

from shrinkage.display import frac, half, neg, terms, times
from shrinkage.derive import Define, Derivation
from shrinkage.matrix import model
from shrinkage.matrix.gaussian import MatrixLogIntegral, MatrixMaximiser
from shrinkage.matrix.instances import Sizes
from shrinkage.matrix.nodes import Eye, GroupMatSum, GroupSum, logdet, mneg, mplus, mtimes, quad, tr
from shrinkage.matrix.notation import MATRIX_NOTATION
from shrinkage.matrix.notation import (D, Lambda_theta, X_j, XtX, Xty, Z_j, ZtX, ZtZ, Zty, b_j, beta, matrix,
                                       n, q, sigma2, y_j, yty)
from shrinkage.matrix.steps import MatrixEquals, MatrixSubstitute, MatrixSumOverGroups

C_j, b_hat_j = model.C_j, model.b_hat_j
V_j = matrix("V_j")
A_D, c_D, A_th, c_th = (matrix(c) for c in ("A_D", "c_D", "A_theta", "c_theta"))
r_j = model.residual()
log_2pi_sigma2 = sp.log(times(2, sp.pi, sigma2))
precision_stats = mplus(mtimes(frac(1, sigma2), ZtZ), sp.Inverse(D))
deviation = mplus(Zty, mneg(mtimes(ZtX, beta)))
rss = terms(yty, neg(times(2, quad(beta, None, Xty))), quad(beta, XtX))
# exact check of GLS: two groups of one and two observations, q = 1 (at q = 2 the exact
# rational functions of beta_hat grow past minutes; q = 2, 3, 4 are checked numerically)
TWO_GROUPS = (Sizes(1, 1, (1, 2)),)
w_inv = mplus(Eye(n), mneg(mtimes(frac(1, sigma2), Z_j, sp.Inverse(C_j), tr(Z_j))))  # sigma^2 V_j^{-1}
theta_D = ((D, mtimes(sigma2, Lambda_theta, tr(Lambda_theta))),)  # lme4: D = sigma^2 Lambda Lambda^T
M_theta = mplus(mtimes(tr(Lambda_theta), ZtZ, Lambda_theta), Eye(q))
shrink_theta = mtimes(Lambda_theta, sp.Inverse(M_theta), tr(Lambda_theta))  # sigma^2 C_j^{-1}
A_theta = GroupMatSum(mplus(XtX, mneg(mtimes(tr(ZtX), shrink_theta, ZtX))))
c_theta = GroupMatSum(mplus(Xty, mneg(mtimes(tr(ZtX), shrink_theta, Zty))))
A_stats = GroupMatSum(mplus(XtX, mneg(mtimes(frac(1, sigma2), tr(ZtX), sp.Inverse(precision_stats), ZtX))))
c_stats = GroupMatSum(mplus(Xty, mneg(mtimes(frac(1, sigma2), tr(ZtX), sp.Inverse(precision_stats), Zty))))


def derivation() -> Derivation:
    d = Derivation(
        name="lmm_marginal",
        notation=MATRIX_NOTATION,
        title=r"The marginal likelihood of the linear mixed model, and GLS",
        summary=r"""
The likelihood of $(\boldsymbol\beta, \sigma^2, \mathbf D)$ is the density of the data alone,
with every $\mathbf b_j$ integrated out.  After the square in $\mathbf b_j$ is completed (as for
the BLUP), the integral over $\mathbb R^q$ is a Gaussian integral.  Its value is the
$N(\mathbf X_j\boldsymbol\beta, \mathbf V_j)$ log-density of $\mathbf y_j$ with
$\mathbf V_j = \mathbf Z_j\mathbf D\mathbf Z_j^{\mathsf T} + \sigma^2\mathbf I$, an $n_j \times n_j$ matrix, but
computed through the $q \times q$ matrix $\mathbf C_j$: by Woodbury's identity
$\mathbf V_j^{-1} = \sigma^{-2}(\mathbf I - \mathbf Z_j\mathbf C_j^{-1}\mathbf Z_j^{\mathsf T}/\sigma^2)$ and by the matrix
determinant lemma $\det\mathbf V_j = (\sigma^2)^{n_j}\det\mathbf D\det\mathbf C_j$.  Written in the
group's cross-products, it costs $O(q^3)$ per group whatever $n_j$.  Summed over the
independent groups and maximised in $\boldsymbol\beta$ it gives the GLS estimate.
""",
    )
    d = d.then(*model.opening_chain())
    d = d.then(
        MatrixLogIntegral(
            terms(half(quad(b_hat_j, C_j)), neg(frac(quad(r_j, None), times(2, sigma2))),
                  neg(times(half(n), log_2pi_sigma2)), neg(half(logdet(D))), neg(half(logdet(C_j)))),
            var=b_j, precision=C_j, centre=b_hat_j,
            lhs=r"\log p(\mathbf y_j)",
            why=r"Integrate $\mathbf b_j$ out, $\log p(\mathbf y_j) = \log\int_{\mathbb R^q} p(\mathbf y_j, \mathbf b_j)\,d\mathbf b_j$: $\int e^{-\frac12(\mathbf b-\hat{\mathbf b})^{\mathsf T}\mathbf C(\mathbf b-\hat{\mathbf b})}\,d\mathbf b = (2\pi)^{q/2}\det(\mathbf C)^{-1/2}$; the other terms are free of $\mathbf b_j$.",
        ),
        MatrixEquals(
            terms(neg(times(half(n), log_2pi_sigma2)), neg(half(logdet(D))), neg(half(logdet(C_j))),
                  neg(frac(quad(r_j, w_inv), times(2, sigma2)))),
            why=r"Collect the quadratic forms in $\mathbf y_j - \mathbf X_j\boldsymbol\beta$, with $\hat{\mathbf b}_j^{\mathsf T}\mathbf C_j\hat{\mathbf b}_j = (\mathbf y_j - \mathbf X_j\boldsymbol\beta)^{\mathsf T}\mathbf Z_j\mathbf C_j^{-1}\mathbf Z_j^{\mathsf T}(\mathbf y_j - \mathbf X_j\boldsymbol\beta)/\sigma^4$.",
        ),
        Define(mplus(mtimes(Z_j, D, tr(Z_j)), mtimes(sigma2, Eye(n))), symbol=V_j,
               why=r"The covariance of $\mathbf y_j$ that the model implies."),
        MatrixEquals(
            model.mvn_logpdf(y_j, mtimes(X_j, beta), V_j),
            why=r"This is the $N(\mathbf X_j\boldsymbol\beta, \mathbf V_j)$ log-density: $\mathbf V_j^{-1} = \sigma^{-2}(\mathbf I - \mathbf Z_j\mathbf C_j^{-1}\mathbf Z_j^{\mathsf T}/\sigma^2)$ (Woodbury) and $\log\det\mathbf V_j = n_j\log\sigma^2 + \log\det\mathbf D + \log\det\mathbf C_j$ (determinant lemma).",
            label="marginal",
        ),
        *model.define_statistics("ZtZ_j", "ZtX_j", "XtX_j", "Zty_j", "Xty_j", "yty"),
        MatrixEquals(
            terms(neg(times(half(n), log_2pi_sigma2)), neg(half(logdet(D))), neg(half(logdet(precision_stats))),
                  neg(frac(terms(rss, neg(frac(quad(deviation, sp.Inverse(precision_stats)), sigma2))), times(2, sigma2)))),
            why=r"In the cross-products: $(\mathbf y_j - \mathbf X_j\boldsymbol\beta)^{\mathsf T}(\mathbf y_j - \mathbf X_j\boldsymbol\beta) = \mathbf y_j^{\mathsf T}\mathbf y_j - 2\boldsymbol\beta^{\mathsf T}\mathbf X_j^{\mathsf T}\mathbf y_j + \boldsymbol\beta^{\mathsf T}\mathbf X_j^{\mathsf T}\mathbf X_j\boldsymbol\beta$.",
            label="marginal_stats",
        ),
        MatrixSubstitute(
            terms(neg(times(half(n), log_2pi_sigma2)), neg(half(logdet(M_theta))),
                  neg(frac(terms(rss, neg(quad(deviation, shrink_theta))), times(2, sigma2)))),
            values=theta_D,
            why=r"In lme4's relative covariance factor, $\mathbf D = \sigma^2\boldsymbol\Lambda_\theta\boldsymbol\Lambda_\theta^{\mathsf T}$: $\det\mathbf D\det\mathbf C_j = \det(\boldsymbol\Lambda_\theta^{\mathsf T}\mathbf Z_j^{\mathsf T}\mathbf Z_j\boldsymbol\Lambda_\theta + \mathbf I)$ and $\sigma^2\mathbf C_j^{-1} = \boldsymbol\Lambda_\theta(\cdots)^{-1}\boldsymbol\Lambda_\theta^{\mathsf T}$; no inverse of $\boldsymbol\Lambda_\theta$, so it holds on the boundary too.",
            label="marginal_theta",
        ),
    )
    d = d.recall("marginal", lhs=r"\log p(\mathbf y_j)", why=r"The marginal log-density of one group, to sum over the groups.")
    d = d.then(
        MatrixSumOverGroups(
            GroupSum(model.mvn_logpdf(y_j, mtimes(X_j, beta), V_j)),
            lhs=r"\ell(\boldsymbol\beta)",
            why=r"The log-likelihood $\ell(\boldsymbol\beta) = \log p(\mathbf y)$: the groups are independent, so their log-densities add.",
        ),
        MatrixMaximiser(
            mtimes(sp.Inverse(GroupMatSum(mtimes(tr(X_j), sp.Inverse(V_j), X_j))),
                   GroupMatSum(mtimes(tr(X_j), sp.Inverse(V_j), y_j))),
            var=beta, precision=GroupMatSum(mtimes(tr(X_j), sp.Inverse(V_j), X_j)), exact_sizes=TWO_GROUPS,
            lhs=r"\hat{\boldsymbol\beta} = \operatorname*{arg\,max}_{\boldsymbol\beta} \ell(\boldsymbol\beta)",
            why=r"A concave quadratic in $\boldsymbol\beta$ with precision $\sum_j\mathbf X_j^{\mathsf T}\mathbf V_j^{-1}\mathbf X_j$ (positive definite: $\mathbf X$ has full column rank): the generalised least-squares estimate.",
            label="gls",
        ),
        Define(A_stats, symbol=A_D,
               why=r"The precision of $\hat{\boldsymbol\beta}$ times $\sigma^2$, in the cross-products: by Woodbury's identity $\sigma^2\mathbf X_j^{\mathsf T}\mathbf V_j^{-1}\mathbf X_j = \mathbf X_j^{\mathsf T}\mathbf X_j - (\mathbf Z_j^{\mathsf T}\mathbf X_j)^{\mathsf T}\mathbf C_j^{-1}\mathbf Z_j^{\mathsf T}\mathbf X_j/\sigma^2$."),
        Define(c_stats, symbol=c_D,
               why=r"Likewise $\sigma^2\sum_j\mathbf X_j^{\mathsf T}\mathbf V_j^{-1}\mathbf y_j$ in the cross-products."),
        MatrixEquals(
            mtimes(sp.Inverse(A_D), c_D), exact_sizes=TWO_GROUPS,
            why=r"In the cross-products, by Woodbury's identity ($\sigma^2$ cancels between the two sums).",
            label="gls_stats",
        ),
        Define(A_theta, symbol=A_th,
               why=r"The same matrix in lme4's relative covariance factor ($\mathbf D = \sigma^2\boldsymbol\Lambda_\theta\boldsymbol\Lambda_\theta^{\mathsf T}$): $\sigma^2\mathbf C_j^{-1} = \boldsymbol\Lambda_\theta(\boldsymbol\Lambda_\theta^{\mathsf T}\mathbf Z_j^{\mathsf T}\mathbf Z_j\boldsymbol\Lambda_\theta + \mathbf I_q)^{-1}\boldsymbol\Lambda_\theta^{\mathsf T}$."),
        Define(c_theta, symbol=c_th, why=r"And $\mathbf c$ in the relative covariance factor."),
        MatrixSubstitute(
            mtimes(sp.Inverse(A_th), c_th), values=theta_D, exact_sizes=TWO_GROUPS,
            why=r"In the relative covariance factor: $\sigma^2$ cancels, so $\hat{\boldsymbol\beta}$ depends on $\theta$ alone.",
            label="gls_theta",
        ),
    )
    d = d.export("lmm_marginal_loglik", "marginal_stats", (n, yty, Xty, Zty, XtX, ZtX, ZtZ, beta, D, sigma2),
                 "Marginal log-likelihood log p(y_j) of every group from its cross-products, shape (J,).\n\n"
                 "-n_j/2 log(2 pi sigma^2) - 1/2 log det D - 1/2 log det C_j - (r_j^T r_j - u_j^T C_j^{-1} u_j/sigma^2)/(2 sigma^2)\n"
                 "with C_j = ZtZ_j/sigma^2 + D^{-1}, u_j = Zty_j - ZtX_j beta; sum the result over groups.")
    d = d.export("lmm_gls_beta", "gls_stats", (XtX, ZtX, ZtZ, Xty, Zty, D, sigma2),
                 "GLS estimate of beta given D and sigma^2, from the per-group cross-products, shape (p,).\n\n"
                 "(sum_j X_j^T V_j^{-1} X_j)^{-1} sum_j X_j^T V_j^{-1} y_j, through Woodbury's identity.")
    d = d.export("lmm_marginal_loglik_theta", "marginal_theta",
                 (n, yty, Xty, Zty, XtX, ZtX, ZtZ, beta, Lambda_theta, sigma2),
                 "Marginal log-likelihood log p(y_j) of every group in lme4's relative covariance factor, shape (J,).\n\n"
                 "-n_j/2 log(2 pi sigma^2) - 1/2 log det M_j - (r_j^T r_j - u_j^T Lambda M_j^{-1} Lambda^T u_j)/(2 sigma^2),\n"
                 "M_j = Lambda^T ZtZ_j Lambda + I, u_j = Zty_j - ZtX_j beta; valid for a singular Lambda.")
    d = d.export("lmm_gls_beta_theta", "gls_theta", (XtX, ZtX, ZtZ, Xty, Zty, Lambda_theta),
                 "GLS estimate of beta given theta (through Lambda_theta), shape (p,).\n\n"
                 "(sum_j XtX_j - XZ_j Lambda M_j^{-1} Lambda^T ZtX_j)^{-1} sum_j (Xty_j - XZ_j Lambda M_j^{-1} Lambda^T Zty_j).")
    return d
