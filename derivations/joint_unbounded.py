"""Why the joint density of (y, b) cannot give sigma_b^2, and the slip in the question's product.

(1) At b = 0 the joint log-density contains -(J/2) log(2 pi sigma_b^2) and nothing else
that involves sigma_b^2, so it grows without bound as sigma_b^2 -> 0+: maximising the
joint density over (b, sigma_b^2) always ends at the degenerate sigma_b^2 = 0.  The
variance components come from the marginal likelihood; plugging them into lambda_j is
the empirical-Bayes step.

(2) The question's product has one factor per group: it is the joint log-density with
every observation after the first of each group left out, and its maximiser in b_j is
the BLUP with n_j replaced by 1.
"""

import sympy as sp

from shrinkage import model
from shrinkage.derive import Define, Derivation, Equals, Limit, Maximiser, Premise, Substitute
from shrinkage.display import frac, half, neg, terms, times
from shrinkage.symbols import J, b, beta0, i, j, log_lik_q, n, sigma2, sigma_b2, y

n_j, b_j = model.n_j, model.b_j
two_pi = 2 * sp.pi


def derivation() -> Derivation:
    d = Derivation(
        name="joint_unbounded",
        title=r"Why the joint density of $(\mathbf y, \mathbf b)$ cannot estimate $\sigma_b^2$",
        summary=r"""
The function the question maximises is the joint density $p(\mathbf y, \mathbf b)$ of the data and
the random effects (the \emph{h-likelihood}), not the likelihood of the parameters.  Over
$\mathbf b$ for fixed variances it is a sound objective: its maximiser is the BLUP (derivation
\texttt{blup}).  Over $\sigma_b^2$ it is not: at $\mathbf b = \mathbf 0$ it contains
$-\tfrac J2\log(2\pi\sigma_b^2)$ and grows without bound as $\sigma_b^2 \to 0^+$, so a joint
maximisation over $(\mathbf b, \sigma_b^2)$ collapses to $\sigma_b^2 = 0$, $\mathbf b = \mathbf 0$
whatever the data.  The variance components are therefore estimated from the \emph{marginal}
likelihood, with every $b_j$ integrated out (ML or REML), and then plugged into $\lambda_j$:
that plug-in is what ``empirical Bayes'' names.  The second part shows the slip in the
question's product, which has one factor per group instead of one per observation.
""",
    )
    at_zero = model.joint_logdensity_all_groups().xreplace({b_j[j]: sp.S.Zero})
    d = d.then(
        Premise.of(model.JOINT_ALL_GROUPS, label="joint"),
        Substitute(at_zero, values={b_j[j]: sp.S.Zero}, lhs=r"\log p(\mathbf y, \mathbf b)\big|_{\mathbf b = \mathbf 0}",
                   label="at_zero", why=r"Evaluate it at $\mathbf b = \mathbf 0$, the mode of the prior of $\mathbf b$."),
        Equals(
            terms(
                sp.Sum(terms(neg(half(times(n_j[j], sp.log(two_pi * sigma2)))),
                             neg(frac(sp.Sum(terms(y[i, j], neg(beta0)) ** 2, (i, 1, n_j[j])), 2 * sigma2))),
                       (j, 1, J)),
                neg(times(frac(J, 2), sp.log(times(2, sp.pi, sigma_b2)))),
            ),
            label="split",
            why=r"Write out the normal log-densities. With $\mathbf b = \mathbf 0$ the penalty terms $-b_j^2/(2\sigma_b^2)$ vanish and $\sigma_b^2$ survives only in the $J$ normalising constants $(2\pi\sigma_b^2)^{-1/2}$, the ones the question drops.",
        ),
        Limit(sp.oo, var=sigma_b2, point=sp.S.Zero, lhs=r"\log p(\mathbf y, \mathbf b)\big|_{\mathbf b = \mathbf 0}", label="unbounded",
              why=r"The first sum does not involve $\sigma_b^2$ and $-\tfrac J2 \log(2\pi\sigma_b^2) \to +\infty$: the joint density has no maximum in $\sigma_b^2$; its supremum is approached at the degenerate $\sigma_b^2 = 0$, for any data."),
    )
    # ---- the question's product: one factor per group ------------------------------
    d = d.recall("joint", lhs=r"\log p(\mathbf y, \mathbf b)",
                 why=r"Now the slip in the question's product. The joint log-density runs over every observation $i = 1, \dots, n_j$ of every group.")
    d = d.then(
        Define(model.questioners_product_all_groups(), symbol=log_lik_q,
               why=r"The log of the question's product: one factor per group, here for its observation $y_{1j}$ (any one observation would do)."),
        Equals(
            terms(
                log_lik_q,
                sp.Sum(sp.Sum(model.normal_logpdf(y[i, j], terms(beta0, b_j[j]), sigma2), (i, 2, n_j[j])), (j, 1, J)),
            ),
            label="missing_terms",
            why=r"Split off the first observation of each group: what is left, every further observation, is what the question's product leaves out.",
        ),
        Premise.of(model.GROUP_JOINT, label="group_joint"),
        Substitute(
            terms(model.normal_logpdf(y[1], terms(beta0, b), sigma2), model.random_effect_logdensity()),
            values={n: sp.S.One},
            lhs=r"\tilde\ell_j(b_j)",
            why=r"The term of group $j$ in the question's product is this term, which has all $n_j$ observations, with $n_j = 1$: one observation, whatever $n_j$ is.",
        ),
        Maximiser(
            times(frac(sigma_b2, terms(sigma_b2, sigma2)), terms(y[1], neg(beta0))),
            var=b, lhs=r"\operatorname*{arg\,max}_{b_j}\tilde\ell_j(b_j)", label="wrong_maximiser",
            why=r"Its maximiser is the BLUP of a group of size one: the factor is $\sigma_b^2/(\sigma_b^2+\sigma^2)$, the same for every group, and $n_j$ has disappeared.",
        ),
    )
    d = d.recall("group_joint", lhs=r"\ell_j(b_j)", why=r"Back to the correct term of group $j$, with all $n_j$ observations.")
    d = d.then(
        Maximiser(
            times(model.LAMBDA, model.RESID),
            var=b, lhs=r"\operatorname*{arg\,max}_{b_j}\ell_j(b_j)", label="right_maximiser",
            why=r"Its maximiser is $\lambda_j(\bar y_j-\beta_0)$ with $\lambda_j = \sigma_b^2/(\sigma_b^2+\sigma^2/n_j)$ (derivation \texttt{blup}): the group mean replaces $y_{1j}$ and $\sigma^2/n_j$ replaces $\sigma^2$.",
        ),
    )
    return model.with_references(d)
