"""Henderson's mixed model equations: one linear system gives GLS and the BLUPs together.

Stack the groups: y = X beta + Z b + eps with Z = diag(Z_1, ..., Z_J) and b ~ N(0, I_J (x) D).
The joint log-density of (y, b) is a concave quadratic in (beta, b); its maximiser solves

    [X^T X      X^T Z                     ] [beta]   [X^T y]
    [Z^T X      Z^T Z + sigma^2 I_J (x) D^-1] [b   ] = [Z^T y]

and it is the GLS estimate with every group's BLUP at it (documents lmm_marginal, lmm_blup,
cited, not re-typed).
"""

import sympy as sp
from sympy.matrices.expressions.kronecker import KroneckerProduct

from shrinkage import model as scalar_model
from shrinkage.derive import Define, Derivation, Premise
from shrinkage.display import frac, half, neg, terms, times
from shrinkage.matrix import model
from shrinkage.matrix.gaussian import MatrixMaximiser
from shrinkage.matrix.instances import Sizes
from shrinkage.matrix.nodes import Eye, GroupStack, logdet, mneg, mplus, mtimes, quad, tr
from shrinkage.matrix.notation import MATRIX_NOTATION
from shrinkage.matrix.notation import D, J, N, beta, matrix, p, q, sigma2
from shrinkage.matrix.steps import MatrixEquals, MatrixSumOverGroups

y, X, Z, b = (matrix(c) for c in ("y_all", "X_all", "Z_all", "b_all"))
beta_hat = matrix("beta_gls")
prior = KroneckerProduct(Eye(J), sp.Inverse(D))  # (I_J (x) D)^{-1}: the precision of b
design = sp.BlockMatrix([[X, Z]])
penalty = sp.BlockDiagMatrix(sp.ZeroMatrix(p, p), mtimes(sigma2, prior))
normal_matrix = mplus(mtimes(tr(design), design), penalty)  # Henderson's coefficient matrix
henderson = sp.BlockMatrix([[mtimes(tr(X), X), mtimes(tr(X), Z)],
                            [mtimes(tr(Z), X), mplus(mtimes(tr(Z), Z), mtimes(sigma2, prior))]])
right_side = sp.BlockMatrix([[mtimes(tr(X), y)], [mtimes(tr(Z), y)]])
# exact checks: two groups of one and two observations, q = p = 1 (q up to 4 numerically)
TWO_GROUPS = (Sizes(1, 1, (1, 2)),)


def stacked_joint():
    """log p(y, b) for all groups at once, in the stacked quantities."""
    return terms(
        neg(times(half(N), sp.log(times(2, sp.pi, sigma2)))),
        neg(frac(quad(mplus(y, mneg(mtimes(X, beta)), mneg(mtimes(Z, b))), None), times(2, sigma2))),
        neg(times(half(times(J, q)), sp.log(2 * sp.pi))),
        neg(times(half(J), logdet(D))),
        neg(half(quad(b, prior))),
    )


def derivation() -> Derivation:
    marginal = scalar_model.sibling("lmm_marginal", __file__)
    blup = scalar_model.sibling("lmm_blup", __file__)
    d = Derivation(
        name="lmm_henderson",
        notation=MATRIX_NOTATION,
        title=r"Henderson's mixed model equations",
        summary=r"""
Henderson found the estimates of the fixed effects and the predictions of the random
effects as the solution of one linear system, the \emph{mixed model equations}.  Stacking
the groups ($\mathbf y$, $\mathbf X$, $\mathbf b$ one group above the other,
$\mathbf Z = \operatorname{diag}(\mathbf Z_1, \dots, \mathbf Z_J)$), the joint log-density of the data
and the random effects is a concave quadratic in $(\boldsymbol\beta, \mathbf b)$; its maximiser solves
the equations.  The solution is the GLS estimate $\hat{\boldsymbol\beta}$ (document \emph{lmm\_marginal})
together with every group's BLUP at $\hat{\boldsymbol\beta}$ (document \emph{lmm\_blup}): the two
results are cited, not re-typed.  lme4's penalised least squares solves the same equations in
$\mathbf u = \boldsymbol\Lambda_\theta^{-1}\mathbf b$.
""",
    )
    d = d.cite(marginal, "gls", lhs=r"\hat{\boldsymbol\beta}",
               why=r"The GLS estimate (document \emph{lmm\_marginal}).")
    d = d.then(Define(d.steps[-1].rhs, symbol=beta_hat, why=r"Name it."))
    d = d.cite(blup, "blup", lhs=r"\hat{\mathbf b}_j", why=r"The BLUP of group $j$ at $\boldsymbol\beta$ (document \emph{lmm\_blup}).")
    blup_rhs = d.steps[-1].rhs
    d = d.then(
        Premise.of(model.GROUP_JOINT, why=r"The model, group by group."),
        MatrixSumOverGroups(
            stacked_joint(), label="stacked", lhs=r"\log p(\mathbf y, \mathbf b) = \sum_j \log p(\mathbf y_j, \mathbf b_j)",
            why=r"The groups are independent: their joint log-densities add. Stacked, the residuals form $\mathbf y - \mathbf X\boldsymbol\beta - \mathbf Z\mathbf b$, and $\sum_j \mathbf b_j^{\mathsf T}\mathbf D^{-1}\mathbf b_j = \mathbf b^{\mathsf T}(\mathbf I_J \otimes \mathbf D^{-1})\mathbf b$."),
        MatrixMaximiser(
            mtimes(sp.Inverse(henderson), right_side), var=(beta, b), precision=mtimes(frac(1, sigma2), normal_matrix),
            exact_sizes=TWO_GROUPS, label="henderson",
            lhs=r"\begin{bmatrix}\tilde{\boldsymbol\beta}\\ \tilde{\mathbf b}\end{bmatrix} = \operatorname*{arg\,max}_{\boldsymbol\beta, \mathbf b} \log p(\mathbf y, \mathbf b)",
            why=r"A concave quadratic in $(\boldsymbol\beta, \mathbf b)$ with precision $([\mathbf X\ \mathbf Z]^{\mathsf T}[\mathbf X\ \mathbf Z] + \operatorname{diag}(\mathbf 0, \sigma^2\mathbf I_J\otimes\mathbf D^{-1}))/\sigma^2$, positive definite as $\mathbf X$ has full column rank: its maximiser solves Henderson's equations."),
        MatrixEquals(
            sp.BlockMatrix([[beta_hat], [GroupStack(blup_rhs.xreplace({beta: beta_hat}), J * q)]]),
            exact_sizes=TWO_GROUPS, label="henderson_solution",
            why=r"The solution is the GLS estimate with every group's BLUP at it: eliminating $\mathbf b$ from the second block row, $\mathbf b = \mathbf C^{-1}\mathbf Z^{\mathsf T}(\mathbf y - \mathbf X\boldsymbol\beta)/\sigma^2$ group by group, leaves $\mathbf X^{\mathsf T}\mathbf V^{-1}\mathbf X\boldsymbol\beta = \mathbf X^{\mathsf T}\mathbf V^{-1}\mathbf y$ (Woodbury)."),
    )
    return d
