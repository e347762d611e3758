"""Several grouping factors (crossed or nested): Henderson's equations, lme4's profiled
criteria, the blocks of the blocked Cholesky, and crossed shrinkage.

y = X beta + Z_a b_a + Z_r b_r + eps, b = Lambda u, u ~ N(0, sigma^2 I): the first term's
(factor a's) levels are the groups j, the other terms (2..K) one design Z_r with Lambda_r =
blockdiag(I_{J_k} (x) T_k).  With M = Lambda'Z'Z Lambda + I the one-factor argument goes
through with the blocks named; the first block of M is diag_j(M_j), so

    log det M   = sum_j log det M_j + log det S_r,
    S_r         = Lambda_r'(Z_r'Z_r - sum_j (Z_j'R_j)' w_j (Z_j'R_j)) Lambda_r + I,  w_j = T_1 M_j^-1 T_1'

(what shrinkage.lmm.blocked factors), and the first term's BLUP given the others' is the
one-factor BLUP of the data less the other terms' part: the BLUPs are backfitting's fixed point.
"""

import sympy as sp

from shrinkage import model as scalar_model
from shrinkage.derive import Define, Derivation, Premise, Statement
from shrinkage.display import frac, half, neg, terms, times
from shrinkage.matrix import model
from shrinkage.matrix.crossed import LevelDiag, m, sigma2_a
from shrinkage.matrix.crossed import matrix as cm
from shrinkage.matrix.crossed_steps import (CROSSED_NOTATION, CrossedEquals, CrossedLogIntegral, CrossedMaximiser, CrossedRescale,
                                            CrossedScalarMaximiser, CrossedSubstitute)
from shrinkage.matrix.nodes import Eye, GroupMatSum, GroupStack, GroupSum, Scalar, logdet, mneg, mplus, mtimes, quad, tr
from shrinkage.matrix.notation import (J, N, Lambda_theta, X_j, Xty, XtX, Z_j, ZtX, ZtZ, Zty, beta, n, p, q, scalar,
                                       sigma2, y_j, yty)

y, X, Z1, M_j, A_th, beta_hat = (cm(c) for c in ("y_all", "X_all", "Z_all", "M_j", "A_theta", "beta_hat"))
Z_r, R_j, Lam_r, E_j, u_a, u_r = (cm(c) for c in ("Z_r", "R_j", "Lambda_r", "E_j", "u_a", "u_r"))
Zc, Lc, uc, Mc = (cm(c) for c in ("Z_c", "Lambda_c", "u_c", "M_c"))
ZtR, RtR, RtX, Rty, W1, Dn, S_r, F_r, f_r = (cm(c) for c in ("ZtR_j", "RtR", "RtX", "Rty", "W1_j", "Dn_r", "S_r", "F_r", "f_r"))
b_r, b1, b_r_hat, V_r, V1 = (cm(c) for c in ("b_r", "b1_j", "b_r_hat", "V_r", "V1_j"))
r2_beta, r2, logdet_L, logdet_RX = (scalar(c) for c in ("r2_beta", "r2_theta", "logdet_M", "logdet_RX"))

Jq = times(J, q)
Lam_a = cm("Lambda_a")  # the first term's factor, I_J (x) T_1
L2ps = sp.log(times(2, sp.pi, sigma2))
nu = terms(N, neg(p))
e_beta = mplus(y, mneg(mtimes(X, beta)))  # y - X beta
LZ = mtimes(tr(Lc), tr(Zc))  # Lambda'Z'
take_r = sp.BlockMatrix([[sp.ZeroMatrix(m, Jq), Eye(m)]])  # the other terms' rows
take_a = sp.BlockMatrix([[Eye(Jq), sp.ZeroMatrix(Jq, m)]])  # the first term's rows
first_stack = GroupStack(mtimes(tr(Lambda_theta), ZtR, Lam_r), Jq)  # Lambda_a'Z_a'Z_r Lambda_r, level by level


def ols(at):
    """Z_j'(y_j - X_j beta) at beta = ``at``."""
    return mplus(Zty, mneg(mtimes(ZtX, at)))


def rest_deviation(at):
    """Lambda_r'(Z_r'(y - X beta) - sum_j (Z_j'R_j)' w_j Z_j'(y_j - X_j beta)) at beta = ``at``."""
    return mtimes(tr(Lam_r), mplus(Rty, mneg(mtimes(RtX, at)), mneg(GroupMatSum(mtimes(tr(ZtR), W1, ols(at))))))


def joint():
    resid = mplus(y, mneg(mtimes(X, beta)), mneg(mtimes(Z1, Lam_a, u_a)), mneg(mtimes(Z_r, Lam_r, u_r)))
    return terms(neg(frac(quad(resid, None), times(2, sigma2))), neg(times(half(N), L2ps)),
                 neg(times(half(terms(Jq, m)), L2ps)), neg(frac(terms(quad(u_a, None), quad(u_r, None)), times(2, sigma2))))


CROSSED_JOINT = Statement(
    "lmm_crossed_joint", joint(), r"\log p(\mathbf y, \mathbf u)",
    r"Several grouping factors: $\mathbf y = \mathbf X\boldsymbol\beta + \mathbf Z_a\boldsymbol\Lambda_a\mathbf u_a + "
    r"\mathbf Z_r\boldsymbol\Lambda_r\mathbf u_r + \boldsymbol\varepsilon$ with $\mathbf u = [\mathbf u_a; \mathbf u_r] "
    r"\sim N(\mathbf 0, \sigma^2\mathbf I)$ independent of $\boldsymbol\varepsilon \sim N(\mathbf 0, \sigma^2\mathbf I_N)$; "
    r"the first term's (factor $a$'s) levels are the groups $j$ ($\mathbf Z_a = \operatorname{diag}(\mathbf Z_j)$, "
    r"$\boldsymbol\Lambda_a = \mathbf I_J\otimes\boldsymbol\Lambda_\theta$), the other terms' columns are "
    r"$\mathbf Z_r = [\mathbf Z_2 \cdots \mathbf Z_K]$ with $\boldsymbol\Lambda_r = \operatorname{diag}(\mathbf I_{J_k}"
    r"\otimes\mathbf T_k)$; $\mathbf X$ has full column rank $p < N$. The log-density of the responses given the "
    r"spherical effects plus that of the effects.")


def loglik(r2_term, dof=N, extra=()):
    return neg(half(terms(times(dof, L2ps), logdet_L, *extra, frac(r2_term, sigma2))))


def profiled(dof, extra=()):
    return terms(logdet_L, *extra, times(dof, terms(1, sp.log(frac(times(2, sp.pi, r2), dof)))))


def blocked(dof, extra=()):
    """The criterion with log|L|^2 = sum_j log det M_j + log det S_r."""
    return terms(GroupSum(logdet(M_j)), logdet(S_r), *extra, times(dof, terms(1, sp.log(frac(times(2, sp.pi, r2), dof)))))


def henderson(d: Derivation) -> Derivation:
    """The model, its blocks named, Henderson's equations, and the likelihood with u integrated out."""
    H = sp.BlockMatrix([[Mc, mtimes(LZ, X)], [mtimes(tr(X), Zc, Lc), mtimes(tr(X), X)]])
    return d.then(
        Premise.of(CROSSED_JOINT, why=CROSSED_JOINT.text),
        Define(sp.BlockMatrix([[Z1, Z_r]]), symbol=Zc, why=r"All random-effect columns, the first term's first."),
        Define(sp.BlockDiagMatrix(Lam_a, Lam_r), symbol=Lc, why=r"Their relative covariance factor, block diagonal over the terms."),
        Define(sp.BlockMatrix([[u_a], [u_r]]), symbol=uc, why=r"All spherical effects."),
        CrossedEquals(
            terms(neg(times(half(N), L2ps)), neg(frac(quad(mplus(e_beta, mneg(mtimes(Zc, Lc, uc))), None), times(2, sigma2))),
                  neg(times(half(terms(Jq, m)), L2ps)), neg(frac(quad(uc, None), times(2, sigma2)))),
            label="joint", why=r"The blocks named: $\mathbf Z_a\boldsymbol\Lambda_a\mathbf u_a + \mathbf Z_r\boldsymbol\Lambda_r\mathbf u_r = \mathbf Z\boldsymbol\Lambda\mathbf u$ and $\mathbf u_a^{\mathsf T}\mathbf u_a + \mathbf u_r^{\mathsf T}\mathbf u_r = \mathbf u^{\mathsf T}\mathbf u$: the one-factor model's form (document \emph{lmm\_henderson}) with $\mathbf Z$ no longer block diagonal."),
        Define(mplus(mtimes(LZ, Zc, Lc), Eye(terms(Jq, m))), symbol=Mc, label="M",
               why=r"lme4's $\mathbf L_\theta\mathbf L_\theta^{\mathsf T}$ for all terms at once."),
        CrossedMaximiser(
            mtimes(sp.Inverse(H), sp.BlockMatrix([[mtimes(LZ, y)], [mtimes(tr(X), y)]])), var=(u_a, u_r, beta),
            precision=mtimes(frac(1, sigma2), H), label="henderson",
            lhs=r"(\tilde{\mathbf u}, \tilde{\boldsymbol\beta})",
            why=r"Henderson's equations for several factors, the maximiser of the joint density over $(\mathbf u, \boldsymbol\beta)$: a concave quadratic in $(\mathbf u, \boldsymbol\beta)$ whose precision is the matrix inverted here over $\sigma^2$ (the Gram matrix of $[\mathbf Z\boldsymbol\Lambda\ \ \mathbf X]$ plus $\operatorname{diag}(\mathbf I, \mathbf 0)$), positive definite as $\mathbf X$ has full column rank."),
    ).recall("joint", lhs=r"\log p(\mathbf y, \mathbf u)", why=r"Back to the joint density, to integrate $\mathbf u$ out.").then(
        Define(terms(quad(e_beta, None), neg(quad(mtimes(LZ, e_beta), sp.Inverse(Mc)))), symbol=r2_beta, label="r2_beta",
               why=r"The penalised residual sum of squares at $\boldsymbol\beta$."),
        Define(logdet(Mc), symbol=logdet_L, label="logdet_L", why=r"lme4's $\log\lvert\mathbf L_\theta\rvert^2$."),
        CrossedLogIntegral(
            loglik(r2_beta), var=(u_a, u_r), precision=mtimes(frac(1, sigma2), Mc),
            centre=mtimes(sp.Inverse(Mc), LZ, e_beta), label="marginal", lhs=r"\ell(\boldsymbol\beta, \sigma^2, \theta)",
            why=r"The likelihood: integrate $\mathbf u$ over $\mathbb R^{Jq+m}$. A concave quadratic with precision $\mathbf M/\sigma^2$ and centre $\mathbf M^{-1}\boldsymbol\Lambda^{\mathsf T}\mathbf Z^{\mathsf T}(\mathbf y - \mathbf X\boldsymbol\beta)$; the integral adds $\tfrac{Jq+m}{2}\log(2\pi\sigma^2) - \tfrac12\log\det\mathbf M$."),
    )


def profile(d: Derivation) -> Derivation:
    """beta and sigma^2 profiled out (ML), beta integrated out (REML): lmm_profile's argument."""
    A = mplus(mtimes(tr(X), X), mneg(mtimes(tr(X), Zc, Lc, sp.Inverse(Mc), LZ, X)))
    d = d.then(
        Define(A, symbol=A_th, label="A", why=r"$\sigma^2$ times the precision of the GLS estimate."),
        Define(mtimes(sp.Inverse(A_th), mplus(mtimes(tr(X), y), mneg(mtimes(tr(X), Zc, Lc, sp.Inverse(Mc), LZ, y)))),
               symbol=beta_hat, why=r"The GLS estimate at $\theta$."),
        CrossedMaximiser(beta_hat, var=beta, precision=mtimes(frac(1, sigma2), A_th), label="gls",
                         lhs=r"\operatorname*{arg\,max}_{\boldsymbol\beta}\ell",
                         why=r"$\ell$ is a concave quadratic in $\boldsymbol\beta$ through $r^2_\theta(\boldsymbol\beta)$: its maximiser is $\hat{\boldsymbol\beta}_\theta$."),
    ).recall("marginal", lhs=r"\ell(\boldsymbol\beta, \sigma^2, \theta)", why=r"Back to the likelihood, to put $\hat{\boldsymbol\beta}_\theta$ in.")
    d = d.then(
        Define(d.step("r2_beta").rhs.xreplace({beta: beta_hat}), symbol=r2, why=r"lme4's $r^2_\theta$."),
        CrossedSubstitute(loglik(r2), values=((beta, beta_hat),), label="profile_beta", lhs=r"\max_{\boldsymbol\beta}\ell",
                          why=r"$\boldsymbol\beta$ enters only through $r^2_\theta(\boldsymbol\beta)$: put the maximiser in."),
        CrossedScalarMaximiser(frac(r2, N), var=sigma2, lhs=r"\hat\sigma^2_\theta",
                               why=r"The maximiser over $\sigma^2$, as for one factor."),
    ).recall("profile_beta", lhs=r"\max_{\boldsymbol\beta}\ell", why=r"Back, to put $\hat\sigma^2_\theta$ in.")
    d = d.then(
        CrossedSubstitute(neg(half(profiled(N))), values=((sigma2, frac(r2, N)),), lhs=r"\ell_p(\theta)",
                          why=r"The profiled log-likelihood."),
        CrossedRescale(profiled(N), factor=-2, label="ml_deviance", lhs=r"-2\ell_p(\theta)",
                       why=r"lme4's profiled deviance, with every term in $\log\lvert\mathbf L_\theta\rvert^2$ and $r^2_\theta$."),
    ).recall("marginal", lhs=r"\ell(\boldsymbol\beta, \sigma^2, \theta)", why=r"Back to the likelihood, for REML.")
    d = d.then(
        Define(logdet(A_th), symbol=logdet_RX, why=r"lme4's $\log\lvert\mathbf R_X\rvert^2$."),
        CrossedLogIntegral(loglik(r2, nu, (logdet_RX,)), var=beta, precision=mtimes(frac(1, sigma2), A_th), centre=beta_hat,
                           label="reml_integral", lhs=r"\ell_R(\sigma^2, \theta)",
                           why=r"REML: integrate $\boldsymbol\beta$ out; the integral adds $\tfrac p2\log(2\pi\sigma^2) - \tfrac12\log\det\mathbf A_\theta$."),
        CrossedScalarMaximiser(frac(r2, nu), var=sigma2, positive=(nu,), lhs=r"\hat\sigma^2_{R,\theta}",
                               why=r"The maximiser over $\sigma^2$, with $N - p$ degrees of freedom."),
    ).recall("reml_integral", lhs=r"\ell_R(\sigma^2, \theta)", why=r"Back, to put $\hat\sigma^2_{R,\theta}$ in.")
    return d.then(
        CrossedSubstitute(neg(half(profiled(nu, (logdet_RX,)))), values=((sigma2, frac(r2, nu)),), lhs=r"\ell_R(\theta)",
                          why=r"The profiled REML log-likelihood."),
        CrossedRescale(profiled(nu, (logdet_RX,)), factor=-2, label="reml_criterion", lhs=r"-2\ell_R(\theta)",
                       why=r"lme4's REML criterion for several terms."),
    )


def blocks(d: Derivation) -> Derivation:
    """The first block diagonal; the Schur complement onto the other terms; the criterion in cross-products."""
    blup = scalar_model.sibling("lmm_blup", __file__)
    d = d.then(
        *model.define_statistics("ZtZ_j", "ZtX_j", "Zty_j", "XtX_j", "Xty_j", "yty"),
        Define(mtimes(tr(Z_j), R_j), symbol=ZtR, why=r"Level $j$'s first-term columns against the other terms' columns."),
        Define(mtimes(tr(Z_r), Z_r), symbol=RtR, why=r"The other terms' cross-products with themselves,"),
        Define(mtimes(tr(Z_r), X), symbol=RtX, why=r"with the fixed-effect columns"),
        Define(mtimes(tr(Z_r), y), symbol=Rty, why=r"and with the responses."),
        Define(mplus(mtimes(tr(Lambda_theta), ZtZ, Lambda_theta), Eye(q)), symbol=M_j, why=r"The first term's block of level $j$."),
        Define(mtimes(Lambda_theta, sp.Inverse(M_j), tr(Lambda_theta)), symbol=W1, why=r"The first-block weights of level $j$."),
    ).recall("M", lhs=r"\mathbf M", why=r"The matrix of the criterion's log-determinant, block by block.")
    d = d.then(CrossedEquals(
        sp.BlockMatrix([[LevelDiag(M_j, Jq), first_stack],
                        [tr(first_stack), mplus(mtimes(tr(Lam_r), RtR, Lam_r), Eye(m))]]), label="M_blocks",
        why=r"Each row of $\mathbf Z_a$ has one level of the first factor, so $\mathbf Z_a^{\mathsf T}\mathbf Z_a = \operatorname{diag}_j(\mathbf Z_j^{\mathsf T}\mathbf Z_j)$ and the first block is block diagonal; $\mathbf Z_a^{\mathsf T}\mathbf Z_r$ stacks the levels' $\mathbf Z_j^{\mathsf T}\mathbf R_j$; the other terms' block is dense where their levels share rows."))
    d = d.cite(blup, "condvar_theta", lhs=r"\operatorname{Var}(\mathbf b_{aj} \mid \mathbf b_r)",
               why=r"Given the other terms' effects (and the data), level $j$ of the first factor is a one-factor model: its conditional covariance (document \emph{lmm\_blup}).")
    d = d.then(CrossedRescale(mtimes(Lambda_theta, sp.Inverse(M_j), tr(Lambda_theta)), factor=1 / sigma2,
                              label="first_weights", lhs=r"\mathbf w_j",
                              why=r"Over $\sigma^2$: the first-block weights, $\boldsymbol\Lambda_\theta\mathbf M_j^{-1}\boldsymbol\Lambda_\theta^{\mathsf T}$."))
    M11 = mplus(mtimes(tr(Lam_a), tr(Z1), Z1, Lam_a), Eye(Jq))
    d = d.then(Define(mtimes(tr(Z_r), Z1, Lam_a, sp.Inverse(M11), tr(Lam_a), tr(Z1), Z_r), symbol=Dn, label="Dn",
                      why=r"The downdate of the other terms' cross-products by the first term."))
    d = d.recall("Dn", lhs=r"\boldsymbol\Delta_r", why=r"The downdate, level by level.").then(
        CrossedEquals(GroupMatSum(mtimes(tr(ZtR), W1, ZtR)), label="downdate",
                      why=r"The first block is block diagonal, so its inverse is, with blocks $\mathbf M_j^{-1}$: a sum over the first factor's levels. Its entry for columns $k, l$ of $\mathbf Z_r$ is $\sum_j (\mathbf Z_j^{\mathsf T}\mathbf R_j)_{\cdot k}^{\mathsf T}\mathbf w_j(\mathbf Z_j^{\mathsf T}\mathbf R_j)_{\cdot l}$: non-zero only if some level $j$ has rows in both (the fill-in: two levels of the other terms are coupled if and only if they share a level of the first factor)."),
        Define(mplus(mtimes(tr(Lam_r), mplus(RtR, mneg(Dn)), Lam_r), Eye(m)), symbol=S_r,
               why=r"The Schur complement of $\mathbf M$ onto the other terms: $\mathbf M_{rr} - \mathbf M_{ra}\mathbf M_{aa}^{-1}\mathbf M_{ar}$, the dense block the fit factors."),
    ).recall("logdet_L", lhs=r"\log\lvert\mathbf L_\theta\rvert^2", why=r"The log-determinant, block by block.")
    d = d.then(CrossedEquals(terms(GroupSum(logdet(M_j)), logdet(S_r)), label="logdet_blocked",
                             why=r"$\det\mathbf M = \det\mathbf M_{aa}\det(\mathbf M_{rr} - \mathbf M_{ra}\mathbf M_{aa}^{-1}\mathbf M_{ar})$, and $\det\mathbf M_{aa} = \prod_j\det\mathbf M_j$."))
    d = d.then(Define(mtimes(tr(Lam_r), mplus(RtX, mneg(GroupMatSum(mtimes(tr(ZtR), W1, ZtX))))), symbol=F_r,
                      why=r"The other terms' block of the fixed-effect columns after the first term."))
    d = d.recall("A", lhs=r"\mathbf A_\theta", why=r"The GLS precision, block by block.").then(CrossedEquals(
        mplus(GroupMatSum(XtX), mneg(GroupMatSum(mtimes(tr(ZtX), W1, ZtX))), mneg(mtimes(tr(F_r), sp.Inverse(S_r), F_r))),
        label="A_blocked", why=r"$\mathbf X^{\mathsf T}\mathbf Z\boldsymbol\Lambda\mathbf M^{-1}\boldsymbol\Lambda^{\mathsf T}\mathbf Z^{\mathsf T}\mathbf X$ through the block inverse of $\mathbf M$: the first term level by level, then the Schur complement $\mathbf S_r$."))
    d = d.then(Define(rest_deviation(beta), symbol=f_r,
                      why=r"The other terms' part of the right side at $\boldsymbol\beta$, after the first term."))
    rss = GroupSum(terms(yty, neg(times(2, quad(beta, None, Xty))), quad(beta, XtX)))
    d = d.recall("r2_beta", lhs=r"r^2_\theta(\boldsymbol\beta)", why=r"The penalised residual sum of squares, block by block.").then(
        CrossedEquals(terms(rss, neg(GroupSum(quad(ols(beta), W1))), neg(quad(f_r, sp.Inverse(S_r)))),
                      label="r2_blocked", why=r"The same block inverse, applied to $\mathbf y - \mathbf X\boldsymbol\beta$."))
    d = d.recall("ml_deviance", lhs=r"-2\ell_p(\theta)", why=r"The deviance, for the fit.").then(
        CrossedEquals(blocked(N), label="ml_deviance_blocked", why=r"With the log-determinant block by block."))
    return d.recall("reml_criterion", lhs=r"-2\ell_R(\theta)", why=r"The REML criterion, for the fit.").then(
        CrossedEquals(blocked(nu, (logdet(A_th),)), label="reml_criterion_blocked", why=r"Likewise."))


def shrinkage(d: Derivation) -> Derivation:
    """The BLUPs: the first term's given the others' (backfitting), the others', the conditional variances."""
    adjusted = mplus(Zty, mneg(mtimes(ZtR, b_r)), mneg(mtimes(ZtX, beta)))
    d = d.recall("joint", lhs=r"\log p(\mathbf y, \mathbf u)", why=r"Back to the joint density, for the BLUPs.").then(
        Define(mtimes(Lam_r, u_r), symbol=b_r, why=r"The other terms' effects."),
        CrossedMaximiser(
            GroupStack(mtimes(sp.Inverse(M_j), tr(Lambda_theta), adjusted), Jq), var=u_a,
            precision=mtimes(frac(1, sigma2), LevelDiag(M_j, Jq)), label="backfit_u",
            lhs=r"\tilde{\mathbf u}_a",
            why=r"The maximiser over $\mathbf u_a$ alone: given $\mathbf u_r$ and $\boldsymbol\beta$ the other terms' part is an offset, and the first block is block diagonal: level by level, the one-factor conditional mode of $\mathbf y_j - \mathbf X_j\boldsymbol\beta - \mathbf R_j\mathbf b_r$. Henderson's solution maximises over each block given the others, so it is a fixed point of these updates taken term by term in turn (backfitting; Gauss--Seidel on Henderson's equations)."),
    )
    d = d.then(Define(mtimes(Lambda_theta, tr(E_j), tr(take_a), d.step("backfit_u").rhs), symbol=b1, label="b1",
                      why=r"Level $j$'s rows of the update, in the scale of the effects."))
    d = d.recall("b1", lhs=r"\hat{\mathbf b}_{aj}", why=r"Level by level.").then(
        CrossedEquals(mtimes(W1, adjusted), label="backfit",
                      why=r"Crossed shrinkage: $\boldsymbol\Lambda_\theta\mathbf M_j^{-1}\boldsymbol\Lambda_\theta^{\mathsf T} = \mathbf w_j$, so the first term's BLUP is the one-factor BLUP (document \emph{lmm\_blup}) applied to the data less the other terms' part, $\mathbf y_j - \mathbf R_j\mathbf b_r$ (at $\mathbf b_r = \hat{\mathbf b}_r$ it is the BLUP)."),
        CrossedSubstitute(
            times(frac(sigma2_a, terms(sigma2_a, frac(sigma2, n))), frac(Scalar(mtimes(tr(sp.OneMatrix(n, 1)), mplus(y_j, mneg(mtimes(X_j, beta)), mneg(mtimes(R_j, b_r))))), n)),
            values=((Z_j, sp.OneMatrix(n, 1)), (Lambda_theta, sp.ImmutableMatrix([[sp.sqrt(frac(sigma2_a, sigma2))]]))), at=(("q", 1),),
            label="backfit_one_way", lhs=r"\hat b_{aj}",
            why=r"For a random intercept ($q = 1$, $\mathbf Z_j = \mathbf 1$, $\sigma_a^2 = \sigma^2\Lambda_\theta^2$), e.g. $(1 \mid a) + (1 \mid b)$: the one-way factor $\lambda_j = \sigma_a^2/(\sigma_a^2 + \sigma^2/n_j)$ times the mean over level $j$'s rows of $y - \mathbf x^{\mathsf T}\boldsymbol\beta - b_b$."),
        Define(mtimes(Lam_r, take_r, sp.Inverse(Mc), LZ, e_beta), symbol=b_r_hat, label="b_r_hat",
               why=r"The other terms' BLUP: their rows of Henderson's solution at $\boldsymbol\beta$, times $\boldsymbol\Lambda_r$."),
    )
    d = d.recall("b_r_hat", lhs=r"\hat{\mathbf b}_r", why=r"Through the blocks.").then(
        CrossedEquals(mtimes(Lam_r, sp.Inverse(S_r), f_r), label="blup_rest",
                      why=r"The block inverse of $\mathbf M$: the other terms' rows are $\mathbf S_r^{-1}$ times the right side less the first term's part, level by level."),
        Define(mtimes(sigma2, Lam_r, take_r, sp.Inverse(Mc), tr(take_r), tr(Lam_r)), symbol=V_r, label="V_r",
               why=r"Their conditional covariance ($\boldsymbol\beta$ and the variances known): $\sigma^2$ times their block of $\boldsymbol\Lambda\mathbf M^{-1}\boldsymbol\Lambda^{\mathsf T}$."),
    )
    d = d.recall("V_r", lhs=r"\operatorname{Var}(\mathbf b_r \mid \mathbf y)", why=r"Through the blocks.").then(
        CrossedEquals(mtimes(sigma2, Lam_r, sp.Inverse(S_r), tr(Lam_r)), label="condvar_rest",
                      why=r"The other terms' block of $\mathbf M^{-1}$ is $\mathbf S_r^{-1}$."),
        Define(mtimes(sigma2, Lambda_theta, tr(E_j), sp.Inverse(Mc), E_j, tr(Lambda_theta)), symbol=V1,
               label="V1", why=r"Level $j$'s conditional covariance in the first term: its block of $\sigma^2\boldsymbol\Lambda\mathbf M^{-1}\boldsymbol\Lambda^{\mathsf T}$."),
    )
    return d.recall("V1", lhs=r"\operatorname{Var}(\mathbf b_{aj} \mid \mathbf y)", why=r"Through the blocks.").then(
        CrossedEquals(mplus(mtimes(sigma2, W1), mtimes(sigma2, W1, ZtR, Lam_r, sp.Inverse(S_r), tr(Lam_r), tr(ZtR), W1)),
                      label="condvar_first",
                      why=r"The first term's block of $\mathbf M^{-1}$ is $\mathbf M_{aa}^{-1} + \mathbf M_{aa}^{-1}\mathbf M_{ar}\mathbf S_r^{-1}\mathbf M_{ra}\mathbf M_{aa}^{-1}$: the one-factor covariance $\sigma^2\mathbf w_j$ (the other terms' effects known) plus what not knowing them adds, a positive semi-definite term that vanishes as $\mathbf S_r^{-1} \to \mathbf 0$. A level of the first factor is less certain, and (through $\hat{\mathbf b}_r$, which its own data move) its BLUP is shrunk more, the less well known the other factors' levels it meets are."),
    )


SUMMARY = r"""
With several grouping factors (crossed, $(1 \mid a) + (1 \mid b)$, or nested, $(1 \mid a/b)$) the random-effect
columns are $\mathbf Z = [\mathbf Z_a\ \mathbf Z_r]$ and lme4's relative covariance factor
$\boldsymbol\Lambda = \operatorname{diag}(\mathbf I_J\otimes\boldsymbol\Lambda_\theta, \boldsymbol\Lambda_r)$ is
block diagonal over the terms.  The first term's levels are the groups $j$ of the one-factor documents;
the other terms are one design $\mathbf Z_r$ ($m$ columns), $\mathbf R_j$ its rows in level $j$.
Henderson's equations and lme4's profiled criteria follow by the one-factor argument (documents
\emph{lmm\_henderson}, \emph{lmm\_profile}) with $\mathbf M = \boldsymbol\Lambda^{\mathsf T}\mathbf Z^{\mathsf T}\mathbf Z\boldsymbol\Lambda + \mathbf I$
no longer block diagonal.  Its first block is: each row has one level of the first factor.  So the
fit factors it level by level ($q\times q$ blocks) and the rest through the Schur complement
$\mathbf S_r$, whose downdate $\boldsymbol\Delta_r$ is a sum over the first factor's levels and couples two
levels of the other terms exactly when they share a level of the first (the fill-in; MixedModels.jl's
blocked Cholesky).  The first term's BLUP given the others' is the one-factor BLUP of the data less the
other terms' part (for random intercepts, $\lambda_j$ times a mean of adjusted data): the BLUPs are a
fixed point of backfitting.  Every step is checked at random crossed designs against dense matrices
(50 digits); the steps that need no design (the maximisers in $\sigma^2$) are proved by SymPy.
"""


def derivation() -> Derivation:
    d = Derivation(name="lmm_crossed", notation=CROSSED_NOTATION,
                   title=r"Several grouping factors: crossed shrinkage and the blocked criterion", summary=SUMMARY)
    d = shrinkage(blocks(profile(henderson(d))))
    one = (ZtZ, Lambda_theta)
    d = d.export("crossed_first_weights", "first_weights", one,
                 "The first-block weights of every level, (J, q, q).\n\n"
                 "w_j = T_1 (T_1' Z_j'Z_j T_1 + I)^-1 T_1'; "
                 "Var(b_aj | y, b_r) / sigma^2; ZtZ (J, q, q), Lambda_theta (q, q) = T_1.")
    d = d.export("crossed_downdate", "downdate", (ZtZ, ZtR, Lambda_theta),
                 "The Schur downdate of the other terms' cross-products, (m, m).\n\n"
                 "sum_j (Z_j'R_j)' w_j (Z_j'R_j); "
                 "ZtR (J, q, m): level j's first-term columns against the rest (any columns: with the rest\n"
                 "[Z_r X y] it is C' blockdiag(w) C of the blocked Cholesky).")
    rest = (ZtZ, ZtR, S_r, Lambda_theta, Lam_r)
    d = d.export("crossed_gls_precision", "A_blocked", (XtX, ZtX) + rest[:1] + (ZtR, RtX, S_r, Lambda_theta, Lam_r),
                 "The GLS precision for several terms, (p, p), from the blocks.\n\n"
                 "A_theta = sigma^2 X'V^-1 X; "
                 "S_r (m, m) the Schur complement Lambda_r'(RtR - downdate) Lambda_r + I; RtX (m, p) = Z_r'X.")
    d = d.export("crossed_penalised_rss", "r2_blocked",
                 (yty, Xty, XtX, Zty, ZtX, ZtZ, ZtR, Rty, RtX, beta, S_r, Lambda_theta, Lam_r),
                 "The penalised residual sum of squares at beta for several terms, a scalar.")
    d = d.export("crossed_ml_deviance", "ml_deviance_blocked", (n, ZtZ, Lambda_theta, S_r, r2),
                 "lme4's profiled deviance for several terms from the blocks, a scalar.\n\n"
                 "sum_j log det M_j + log det S_r + N (1 + log(2 pi r^2 / N)).")
    d = d.export("crossed_reml_criterion", "reml_criterion_blocked", (n, ZtZ, Lambda_theta, S_r, A_th, r2),
                 "lme4's REML criterion for several terms from the blocks, a scalar.\n\n"
                 "sum_j log det M_j + log det S_r + log det A + (N - p)(1 + log(2 pi r^2 / (N - p))).")
    d = d.export("crossed_blup_first", "backfit", (ZtZ, ZtX, Zty, ZtR, beta, b_r, Lambda_theta),
                 "The first term's BLUPs given the other terms' effects, (J, q): backfitting's update.\n\n"
                 "b_r (m,) the other terms' effects; w_j (Z_j'y_j - Z_j'R_j b_r - Z_j'X_j beta).")
    d = d.export("crossed_blup_rest", "blup_rest", (ZtZ, ZtX, Zty, ZtR, Rty, RtX, beta, S_r, Lambda_theta, Lam_r),
                 "The other terms' BLUPs at beta, (m,).")
    d = d.export("crossed_condvar_rest", "condvar_rest", (S_r, Lam_r, sigma2),
                 "The conditional covariance of the other terms' effects, (m, m).\n\n"
                 "Var(b_r | y) = sigma^2 Lambda_r S_r^-1 Lambda_r'.")
    d = d.export("crossed_condvar_first", "condvar_first", rest + (sigma2,),
                 "The conditional covariance of every level of the first term, (J, q, q).\n\n"
                 "sigma^2 (w_j + w_j Z_j'R_j Lambda_r S_r^-1 Lambda_r' R_j'Z_j w_j).")
    return d
