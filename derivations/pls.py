"""Penalised least squares: maximising the joint density over (beta0, b) is ridge regression.

-2 sigma^2 log p(y, b) = sum_ij (y_ij - beta0 - b_j)^2 + (sigma^2/sigma_b^2) sum_j b_j^2 + const,
a residual sum of squares plus a ridge penalty on the b_j only.  Its normal equations
are Henderson's mixed-model equations.  Maximising first over b (the BLUP, for each
beta0) leaves a criterion in beta0 alone whose maximiser is the GLS estimate; so the
joint maximiser is (GLS beta0, BLUPs at it): the two routes agree.  The tests check this
with explicit matrices (numpy and SymPy) for small J and n_j.
"""

import sympy as sp

from shrinkage import model
from shrinkage.derive import Define, Derivation, Equals, Maximiser, Premise, Substitute
from shrinkage.display import frac, half, neg, terms, times
from shrinkage.symbols import J, b, beta0, const, i, j, sigma2, sigma_b2, ss_within, y

n_j, b_j, ybar_j, ss_j = model.n_j, model.b_j, model.ybar_j, model.ss_j
two_pi = model.TWO_PI
resid, var_mean = model.RESID, model.var_group_mean
profiled_group = terms(neg(frac(resid**2, times(2, var_mean()))), neg(frac(ss_within, times(2, sigma2))), const)


def derivation() -> Derivation:
    d = Derivation(
        name="pls",
        title=r"Penalised least squares and Henderson's mixed-model equations",
        summary=r"""
Maximising the joint density $p(\mathbf y, \mathbf b)$ over $(\beta_0, \mathbf b)$ with the
variances fixed is a \emph{ridge regression}: up to terms free of $(\beta_0,\mathbf b)$, $-2\sigma^2\log p(\mathbf y,\mathbf b)$ is
the residual sum of squares plus the penalty $(\sigma^2/\sigma_b^2)\sum_j b_j^2$ on the random
effects only, eq.~\eqref{@penalised}; the fixed effect $\beta_0$ carries no penalty.  Setting its gradient to zero gives
Henderson's mixed-model equations (MME), with $Z$ the $N\times J$ indicator matrix of the groups,
\[
\begin{pmatrix} N & \mathbf n^\top \\ \mathbf n & \operatorname{diag}(\mathbf n) + \tfrac{\sigma^2}{\sigma_b^2} I_J \end{pmatrix}
\begin{pmatrix} \hat\beta_0 \\ \hat{\mathbf b} \end{pmatrix}
= \begin{pmatrix} \sum_{ij} y_{ij} \\ Z^\top \mathbf y \end{pmatrix},
\qquad \mathbf n = (n_1, \dots, n_J)^\top .
\]
Instead of solving them at once, maximise first over $\mathbf b$ and then over $\beta_0$.  For a
fixed $\beta_0$ the maximiser in $b_j$ is the BLUP $\lambda_j(\bar y_j-\beta_0)$ (derivation \texttt{blup});
putting it back leaves, for each group, a term in $\beta_0$ alone, eq.~\eqref{@profiled_group}, and the
maximiser of their sum is the GLS estimate $\sum_j \bar y_j/\operatorname{Var}(\bar y_j)\big/\sum_j 1/\operatorname{Var}(\bar y_j)$,
eq.~\eqref{@gls}.  So the solution of the MME is the GLS estimate of $\beta_0$ together with the
BLUPs at it: the penalised-least-squares route and the GLS route agree.  The tests solve the MME
with explicit matrices (numpy, and SymPy exactly) for small $J$ and $n_j$ and compare.
""",
    )
    d = d.then(
        Premise.of(model.JOINT_ALL_GROUPS),
        Equals(
            terms(
                times(neg(frac(1, times(2, sigma2))),
                      terms(sp.Sum(sp.Sum(terms(y[i, j], neg(beta0), neg(b_j[j])) ** 2, (i, 1, n_j[j])), (j, 1, J)),
                            times(frac(sigma2, sigma_b2), sp.Sum(b_j[j] ** 2, (j, 1, J))))),
                neg(half(times(sp.Sum(n_j[j], (j, 1, J)), sp.log(two_pi * sigma2)))),
                neg(times(frac(J, 2), sp.log(two_pi * sigma_b2))),
            ),
            label="penalised",
            why=r"Collect the quadratic terms over the common factor $-1/(2\sigma^2)$: a residual sum of squares plus the ridge penalty $(\sigma^2/\sigma_b^2)\sum_j b_j^2$. The last two terms do not involve $(\beta_0, \mathbf b)$, so maximising the joint density is penalised least squares.",
        ),
        Premise.of(model.GROUP_JOINT),
        Substitute(model.group_joint_logdensity().xreplace({b: times(model.LAMBDA, resid)}), values={b: times(model.LAMBDA, resid)},
                   lhs=r"\ell_j\big(\lambda_j(\bar y_j-\beta_0)\big)",
                   why=r"Maximise over $b_j$ first, for a fixed $\beta_0$: the $j$-th term at its maximiser, the BLUP $\lambda_j(\bar y_j-\beta_0)$ (derivation \texttt{blup})."),
        Define(model.LOG_CONSTANTS, symbol=const,
               why=r"The normalising constants, free of $\beta_0$, $b_j$ and the data."),
        Equals(
            profiled_group,
            label="profiled_group",
            why=r"What is left of group $j$ depends on $\beta_0$ only through $(\bar y_j-\beta_0)^2$, weighted by $1/\operatorname{Var}(\bar y_j) = 1/(\sigma_b^2+\sigma^2/n_j)$.",
        ),
        Premise.of(model.JOINT_BY_GROUP),
        Substitute(
            sp.Sum(model.xreplace_indexed(profiled_group.xreplace({const: model.LOG_CONSTANTS})), (j, 1, J)),
            values={model.ell_j[j]: model.xreplace_indexed(profiled_group.xreplace({const: model.LOG_CONSTANTS}))},
            lhs=r"\max_{\mathbf b}\log p(\mathbf y, \mathbf b)",
            label="profile",
            why=r"Maximise each term over its own $b_j$: put in the maximum of eq.~\eqref{@profiled_group} for every $\ell_j$, with $c_j$ written out.",
        ),
        Maximiser(
            frac(sp.Sum(frac(ybar_j[j], var_mean(n_j[j])), (j, 1, J)), sp.Sum(frac(1, var_mean(n_j[j])), (j, 1, J))),
            var=beta0, lhs=r"\hat\beta_0", label="gls",
            why=r"A weighted least-squares criterion in $\beta_0$: its maximiser is the GLS estimate, the mean of the $\bar y_j$ weighted by their precisions $1/(\sigma_b^2+\sigma^2/n_j)$.",
        ),
    )
    return model.with_references(d)
