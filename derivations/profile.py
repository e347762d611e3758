"""The profiled ML and REML criteria: a one-dimensional problem in gamma = sigma_b^2/sigma^2.

The log-likelihood is the sum of the groups' marginal log-densities (derivation
marginal, cited), in the sufficient statistics (n_j, ybar_j, S_j).  With sigma_b^2 =
gamma sigma^2, the GLS estimate of beta0 and the estimate of sigma^2 have closed forms
given gamma, so the ML and REML log-likelihoods profile to functions of gamma >= 0
alone.  Their derivatives in gamma are sums of elementwise terms; the sign of the
derivative at gamma = 0 decides whether the estimate of sigma_b^2 is exactly zero.

Groups of equal size share a weight, so every sum over groups can be taken over the
distinct group sizes: the last chain proves the identity that makes one evaluation of
the criterion cost O(number of distinct sizes) instead of O(J).  REML needs N >= 2
observations, so the checks draw at least two groups (the notation below).
"""

from dataclasses import replace

import sympy as sp
from sympy.codegen.cfunctions import log1p

from shrinkage import model
from shrinkage.derive import (Define, Derivation, Derivative, Domain, Equals, LogIntegral, Maximiser, Notation,
                              Substitute)
from shrinkage.display import frac, half, neg, terms, times
from shrinkage.symbols import NOTATION, J, N, beta0, gamma, j, n, quantity, sigma2, sigma_b2

w = quantity("w").symbol
nu = quantity("nu").symbol
beta0_hat = quantity("beta0_hat").symbol
Q = quantity("Q_form").symbol
W = quantity("W_sum").symbol
D = quantity("logdet").symbol
R = quantity("R_sum").symbol
U = quantity("U_sum").symbol
k = quantity("k").symbol  # second group index, for sums nested inside sums over j
m = quantity("m").symbol
J_m = quantity("J_m").symbol
C_m = quantity("class_sum").symbol
ybar_class = quantity("ybar_class").symbol
spread_class = quantity("spread_class").symbol

n_j, ybar_j, ss_j = model.n_j, model.ybar_j, model.ss_j
two_pi = model.TWO_PI

# At least two groups (so N >= 2, which REML's N - 1 needs); at most four, so sums stay short.
TWO_TO_FOUR = Domain("two to four", lambda rng: sp.Integer(rng.randint(2, 4)), {"integer": True, "positive": True}, minimum=2)
PROFILE_NOTATION = Notation([replace(q, domain=TWO_TO_FOUR) if q.code == "J" else q for q in NOTATION],
                            NOTATION.definitions, name="shrinkage.symbols, J >= 2", swaps=NOTATION.swaps)


def weight(size):
    """The scaled GLS weight size / (1 + size gamma), written out."""
    return frac(size, terms(1, times(size, gamma)))


def over(ix, expr, upper=J):
    return sp.Sum(expr, (ix, 1, upper))


gls_mean = frac(over(k, times(weight(n_j[k]), ybar_j[k])), over(k, weight(n_j[k])))
deviation_sq = terms(ybar_j[j], neg(beta0_hat)) ** 2


def loglik_terms(centre):
    """The j-th term of the log-likelihood with beta0 = centre."""
    return terms(
        neg(half(times(n_j[j], sp.log(two_pi * sigma2)))),
        neg(half(log1p(times(n_j[j], gamma)))),
        neg(frac(terms(ss_j[j], times(weight(n_j[j]), terms(ybar_j[j], neg(centre)) ** 2)), 2 * sigma2)),
    )


def in_gamma(size, mean, ss):
    """log p(y_j) of derivation marginal with sigma_b^2 = gamma sigma^2, simplified."""
    return terms(
        neg(half(times(size, sp.log(two_pi * sigma2)))),
        neg(half(log1p(times(size, gamma)))),
        neg(frac(ss, times(2, sigma2))),
        neg(frac(times(size, terms(mean, neg(beta0)) ** 2), times(2, sigma2, terms(1, times(size, gamma))))),
    )


def derivation() -> Derivation:
    d = Derivation(
        name="profile",
        notation=PROFILE_NOTATION,
        title=r"Maximum likelihood and REML as a one-dimensional problem in $\gamma = \sigma_b^2/\sigma^2$",
        summary=r"""
The estimates of $\sigma^2$ and $\sigma_b^2$ come from the \emph{marginal} likelihood, in
which every $b_j$ has been integrated out, not from the joint density of $(\mathbf y, \mathbf b)$.
The log-likelihood is the sum over the groups of their marginal log-densities (document
\emph{marginal}, cited in eq.~\eqref{@group_loglik}), written with $\sigma_b^2 = \gamma\sigma^2$.  Given $\gamma$, the generalised-least-squares estimate
$\hat\beta_0(\gamma)$ and the variance estimate $\hat\sigma^2(\gamma)$ have closed forms,
so maximum likelihood (ML) and restricted maximum likelihood (REML) reduce to maximising a
function of $\gamma \ge 0$ alone: the \emph{profiled} criteria.  Their derivatives in
$\gamma$ are sums over groups of simple terms.  \texttt{shrinkage.fit} maximises these
generated functions over $\gamma \ge 0$: it brackets every sign change of the derivative
on a logarithmic grid, refines each, and keeps the global maximum; $\hat\sigma_b^2 = 0$
exactly (a \emph{singular} fit) when the derivative at $\gamma = 0$ is $\le 0$ and no
interior maximum is higher.  Groups of the same size share a weight, so every sum over
groups is a sum over the distinct group sizes (the last chain, eq.~\eqref{@class_sum}).
REML needs at least two observations; the checks draw data sets of two to four groups.
""",
    )
    # --- A: the log-likelihood in gamma --------------------------------------------------
    gls = model.sibling("gls", __file__)
    d = d.cite(gls, "weight", lhs=r"w_j", as_label="gls_weight",
               why=r"The GLS weight of group $j$, the precision of $\bar y_j$ (document \emph{gls}).")
    d = d.then(
        Define(weight(n), symbol=w, why=r"The weight scaled by $\sigma^2$, a function of $\gamma = \sigma_b^2/\sigma^2$ alone."),
        Substitute(frac(w, sigma2), values={sigma_b2: times(gamma, sigma2)}, lhs=r"w_j",
                   why=r"Write $\sigma_b^2 = \gamma\sigma^2$: $w_j = \tilde w_j/\sigma^2$."),
    )
    d = d.recall("gls_weight", lhs=r"w_j", why=r"So $\tilde w_j$ is $w_j$ at $\sigma^2 = 1$, $\sigma_b^2 = \gamma$, the form the code evaluates.")
    d = d.then(
        Substitute(weight(n), values={sigma2: sp.S.One, sigma_b2: gamma}, lhs=r"\tilde w_j", label="weight",
                   why=r"Put $\sigma^2 = 1$ and $\sigma_b^2 = \gamma$."),
    )
    d = model.sum_over_groups(d, __file__, lhs=r"\ell(\beta_0, \sigma^2, \sigma_b^2)", label="loglik_sum")
    d = d.then(
        Substitute(over(j, in_gamma(n_j[j], ybar_j[j], ss_j[j])), values={sigma_b2: times(gamma, sigma2)},
                   lhs=r"\ell(\beta_0, \sigma^2, \gamma)",
                   why=r"Write $\sigma_b^2 = \gamma\sigma^2$; then $\sigma^2$ cancels from the logarithm and factors out of the last term."),
        Equals(over(j, loglik_terms(beta0)), label="loglik",
               why=r"In the weights $\tilde w_j$ of eq.~\eqref{@weight}: the log-likelihood depends on $\sigma^2$ through $\log(2\pi\sigma^2)$ and $1/\sigma^2$ only."),
    )
    # --- B: profile out beta0 and sigma^2 (ML) ----------------------------------------
    d = d.then(
        Maximiser(
            gls_mean,
            var=beta0,
            lhs=r"\hat\beta_0(\gamma) = \operatorname*{arg\,max}_{\beta_0} \ell",
            why=r"$\beta_0$ enters through a weighted sum of squares only: its maximiser is the weighted mean of the group means, with weights $\tilde w_k$ (generalised least squares).",
            label="gls",
        ),
        Define(gls_mean, symbol=beta0_hat, why=r"Name the GLS estimate."),
        Define(over(j, n_j[j]), symbol=N, why=r"The number of observations."),
        Define(over(j, weight(n_j[j])), symbol=W, why=r"The sum of the weights."),
        Define(over(j, sp.log(terms(1, times(n_j[j], gamma)))), symbol=D,
               why=r"The log-determinant term: $\log\det V_j = n_j\log\sigma^2 + \log(1+n_j\gamma)$."),
        Define(terms(over(j, ss_j[j]), over(j, times(weight(n_j[j]), deviation_sq))), symbol=Q,
               why=r"The residual quadratic form at $\hat\beta_0(\gamma)$, times $\sigma^2$."),
        Define(over(j, times(weight(n_j[j]) ** 2, deviation_sq)), symbol=R,
               why=r"The weighted squared deviations that drive the derivative in $\gamma$."),
        Define(over(j, weight(n_j[j]) ** 2), symbol=U, why=r"The sum of the squared weights."),
    )
    d = d.recall("loglik", lhs=r"\ell(\beta_0, \sigma^2, \gamma)", why=r"Back to the log-likelihood, to put the maximiser in.")
    d = d.then(
        Substitute(
            over(j, loglik_terms(beta0_hat)),
            values={beta0: beta0_hat},
            lhs=r"\ell(\hat\beta_0(\gamma), \sigma^2, \gamma)",
            why=r"Put the maximiser $\hat\beta_0(\gamma)$ in for $\beta_0$.",
        ),
        Equals(
            terms(neg(half(times(N, sp.log(two_pi * sigma2)))), neg(half(D)), neg(frac(Q, 2 * sigma2))),
            why=r"Collect the sums: the log-likelihood at given variances, maximised over $\beta_0$.",
            label="ml_at_variances",
        ),
        Maximiser(
            frac(Q, N),
            var=sigma2,
            lhs=r"\hat\sigma^2(\gamma) = \operatorname*{arg\,max}_{\sigma^2}",
            why=r"For fixed $\gamma$ the criterion depends on $\sigma^2$ through $-\tfrac N2\log\sigma^2 - Q/(2\sigma^2)$.",
            label="ml_sigma2",
        ),
    )
    d = d.recall("ml_at_variances", lhs=r"\ell(\hat\beta_0(\gamma), \sigma^2, \gamma)", why=r"Back to the criterion, to put the maximiser in.")
    d = d.then(
        Substitute(
            terms(neg(half(times(N, sp.log(two_pi * frac(Q, N))))), neg(half(D)), neg(half(N))),
            values={sigma2: frac(Q, N)},
            lhs=r"\ell_{\mathrm{ML}}(\gamma) = \ell(\hat\beta_0, \hat\sigma^2, \gamma)",
            why=r"Put in $\hat\sigma^2(\gamma) = Q(\gamma)/N$: the last term becomes $-Q/(2Q/N) = -N/2$. This is the profiled log-likelihood.",
        ),
        Equals(
            terms(neg(half(times(N, terms(sp.log(two_pi * frac(Q, N)), 1)))), neg(half(D))),
            why=r"The ML criterion in $\gamma$ alone. Its maximum is the maximised log-likelihood (lme4's logLik of an ML fit).",
            label="ml_profile",
        ),
        Derivative(
            terms(times(frac(N, 2 * Q), over(j, times(weight(n_j[j]) ** 2, deviation_sq))), neg(half(W))),
            var=gamma,
            lhs=r"\frac{d\ell_{\mathrm{ML}}}{d\gamma}",
            why=r"Differentiate in $\gamma$: $d\tilde w_j/d\gamma = -\tilde w_j^2$, $dD/d\gamma = W$, and $\hat\beta_0$ minimises $Q$, so its own change does not contribute (envelope theorem).",
        ),
        Equals(
            terms(frac(times(N, R), times(2, Q)), neg(half(W))),
            why=r"In the named sums. At $\gamma = 0$ (where $\tilde w_j = n_j$) this derivative is $\le 0$ exactly when $\hat\sigma_b^2 = 0$ is a local maximum: the boundary test of a singular fit.",
            label="ml_slope",
        ),
    )
    # --- C: REML ----------------------------------------------------------------------
    d = d.then(Define(terms(over(j, n_j[j]), -1), symbol=nu, why=r"The residual degrees of freedom of REML, $\nu = N - 1$."))
    d = d.recall("loglik", lhs=r"\ell(\beta_0, \sigma^2, \gamma)", why=r"Back to the log-likelihood, to integrate $\beta_0$ out (REML).")
    d = d.then(
        LogIntegral(
            terms(neg(half(times(nu, sp.log(two_pi * sigma2)))), neg(half(D)), neg(half(sp.log(W))), neg(frac(Q, 2 * sigma2))),
            var=beta0,
            centre=beta0_hat,
            scale=sp.sqrt(sigma2 / W),
            lhs=r"\ell_{\mathrm R}(\sigma^2, \gamma) = \log\!\int e^{\ell}\,d\beta_0",
            why=r"REML: integrate $\beta_0$ out under a flat prior. In $\beta_0$, $\ell$ is a concave quadratic with maximum eq.~\eqref{@ml_at_variances} at $\hat\beta_0(\gamma)$ and curvature $-W/\sigma^2$, so the integral adds $\tfrac12\log(2\pi\sigma^2/W)$; this leaves $\nu = N - 1$ in front of $\log(2\pi\sigma^2)$ (lme4's REML criterion, with its constant).",
            label="reml_at_variances",
        ),
        Maximiser(
            frac(Q, nu),
            var=sigma2,
            lhs=r"\hat\sigma^2_{\mathrm R}(\gamma) = \operatorname*{arg\,max}_{\sigma^2}",
            why=r"As for ML, with $\nu = N-1$ in place of $N$.",
            label="reml_sigma2",
        ),
    )
    d = d.recall("reml_at_variances", lhs=r"\ell_{\mathrm R}(\sigma^2, \gamma)", why=r"Back to the REML criterion, to put the maximiser in.")
    d = d.then(
        Substitute(
            terms(neg(half(times(nu, sp.log(two_pi * frac(Q, nu))))), neg(half(D)), neg(half(sp.log(W))), neg(half(nu))),
            values={sigma2: frac(Q, nu)},
            lhs=r"\ell_{\mathrm{R}}(\gamma)",
            why=r"Put in $\hat\sigma^2_{\mathrm R}(\gamma) = Q(\gamma)/\nu$: the last term becomes $-\nu/2$. This is the profiled REML criterion.",
        ),
        Equals(
            terms(neg(half(times(nu, terms(sp.log(two_pi * frac(Q, nu)), 1)))), neg(half(D)), neg(half(sp.log(W)))),
            why=r"The REML criterion in $\gamma$ alone; its maximum is lme4's logLik of a REML fit.",
            label="reml_profile",
        ),
        Derivative(
            terms(
                times(frac(nu, 2 * Q), over(j, times(weight(n_j[j]) ** 2, deviation_sq))),
                neg(half(W)),
                frac(over(j, weight(n_j[j]) ** 2), 2 * W),
            ),
            var=gamma,
            lhs=r"\frac{d\ell_{\mathrm R}}{d\gamma}",
            why=r"Differentiate in $\gamma$ as for ML; in addition $d\log W/d\gamma = -\sum_j \tilde w_j^2/W$.",
        ),
        Equals(
            terms(frac(times(nu, R), times(2, Q)), neg(half(W)), frac(U, 2 * W)),
            why=r"In the named sums; its sign at $\gamma = 0$ decides a singular REML fit.",
            label="reml_slope",
        ),
    )
    # --- D: groups of equal size ------------------------------------------------------
    d = d.then(
        Define(
            over(j, times(weight(m), terms(ybar_j[j], neg(beta0)) ** 2), upper=J_m),
            symbol=C_m,
            label="class",
            why=r"Number the $J_m$ groups of one size $m$ as $j = 1, \dots, J_m$: they share one weight $\tilde w_j = m/(1+m\gamma)$. Their share of $\sum_j \tilde w_j(\bar y_j - \beta_0)^2$ is",
        ),
        Define(over(j, ybar_j[j], upper=J_m) / J_m, symbol=ybar_class, why=r"The mean of their group means."),
        Define(over(j, terms(ybar_j[j], neg(ybar_class)) ** 2, upper=J_m), symbol=spread_class,
               why=r"The spread of their group means about it."),
    )
    d = d.recall("class", lhs=r"C_m", why=r"Back to the share of the class.")
    d = d.then(
        Equals(
            times(weight(m), terms(spread_class, times(J_m, terms(ybar_class, neg(beta0)) ** 2))),
            why=r"Add and subtract $\bar{\bar y}_m$; the cross term sums to zero. With $\tilde w_j^2$ in place of $\tilde w_j$ the same identity gives the class's share of $R(\gamma)$; its shares of $W$, $U$ and $D$ are $J_m m/(1+m\gamma)$, $J_m m^2/(1+m\gamma)^2$ and $J_m\log(1+m\gamma)$. So every sum over groups is a sum over the distinct sizes: one evaluation of the criterion costs $O(\text{number of distinct sizes})$, not $O(J)$.",
            label="class_sum",
        ),
    )
    d = d.export("profile_weight", "weight", (n, gamma),
                 "GLS weight of a group of size n at variance ratio gamma, times sigma^2.\n\nw~_j = n_j / (1 + n_j gamma) = sigma^2 w_j = sigma^2 1' V_j^{-1} 1.")
    d = d.export("ml_loglik_at", "ml_at_variances", (N, sigma2, Q, D),
                 "Log-likelihood at given variances, maximised over beta0.\n\n"
                 "-N/2 log(2 pi sigma^2) - D/2 - Q/(2 sigma^2), with Q = Q(gamma), D = D(gamma).")
    d = d.export("ml_sigma2", "ml_sigma2", (Q, N), "ML estimate of sigma^2 given gamma: Q(gamma)/N.")
    d = d.export("ml_profile", "ml_profile", (N, Q, D),
                 "Profiled ML criterion in gamma.\n\n-N/2 (log(2 pi Q/N) + 1) - D/2.")
    d = d.export("ml_profile_slope", "ml_slope", (N, Q, W, R),
                 "Derivative of the profiled ML criterion in gamma.\n\nN R / (2 Q) - W/2.")
    d = d.export("reml_loglik_at", "reml_at_variances", (nu, sigma2, Q, D, W),
                 "REML log-likelihood at given variances (nu = N - 1).\n\n"
                 "-nu/2 log(2 pi sigma^2) - D/2 - log(W)/2 - Q/(2 sigma^2).")
    d = d.export("reml_sigma2", "reml_sigma2", (Q, nu), "REML estimate of sigma^2 given gamma: Q(gamma)/nu, nu = N - 1.")
    d = d.export("reml_profile", "reml_profile", (nu, Q, D, W),
                 "Profiled REML criterion in gamma (nu = N - 1).\n\n-nu/2 (log(2 pi Q/nu) + 1) - D/2 - log(W)/2.")
    d = d.export("reml_profile_slope", "reml_slope", (nu, Q, W, R, U),
                 "Derivative of the profiled REML criterion in gamma.\n\nnu R / (2 Q) - W/2 + U / (2 W).")
    return model.with_references(d)
