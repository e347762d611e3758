"""The balanced design: closed-form ML and REML estimates of sigma^2 and sigma_b^2.

With every group of the same size n, the log-likelihood depends on the data through
the grand mean and the within- and between-group mean squares MSW and MSB.  With
tau = sigma^2 + n sigma_b^2 it separates into a function of sigma^2 and one of tau, each
with a unique stationary point; the constraint sigma_b^2 >= 0 (tau >= sigma^2) decides
when the estimate of sigma_b^2 is exactly zero: F = MSB/MSW <= J/(J-1) for ML, F <= 1
for REML.  The estimates are checked as maximisers on the constrained domain, piece by
piece (interior: stationary with negative curvature; boundary: the slope points out).
"""

from dataclasses import replace

import sympy as sp

from shrinkage import model
from shrinkage.derive import (ConstrainedMaximiser, Define, Derivation, Derivative, Equals, Limit, LogIntegral,
                              Maximiser, Notation, Substitute)
from shrinkage.display import frac, half, neg, terms, times
from shrinkage.symbols import NOTATION, J, beta0, j, quantity, sigma2, sigma_b2

# A balanced design has at least two groups (MSB divides by J - 1): J is drawn from {2, 3, ...}.
BALANCED_NOTATION = Notation([replace(q, domain="several") if q.code == "J" else q for q in NOTATION],
                             NOTATION.definitions, name="shrinkage.symbols, J >= 2", swaps=NOTATION.swaps)

n = quantity("group_size").symbol
ybar_j, ss_j = model.ybar_j, model.ss_j
grand = quantity("ybar_grand").symbol
msw = quantity("msw").symbol
msb = quantity("msb").symbol
F = quantity("f_ratio").symbol
tau = quantity("tau").symbol
free_ml, free_reml = quantity("sigma_b2_ml_free").symbol, quantity("sigma_b2_reml_free").symbol
sb2_ml, sb2_reml = quantity("sigma_b2_ml").symbol, quantity("sigma_b2_reml").symbol
two_pi = model.TWO_PI

nm1 = terms(n, -1)  # n - 1, printed in that order
Jm1 = terms(J, -1)  # J - 1
df_within = times(J, nm1)  # J(n-1)
df_between = Jm1
between_var = terms(sigma2, times(n, sigma_b2))  # sigma^2 + n sigma_b^2
total_ss = terms(times(df_within, msw), times(df_between, msb))  # J(n-1) MSW + (J-1) MSB
log_ratio = sp.log(terms(1, frac(times(n, sigma_b2), sigma2)))  # log(1 + n sigma_b^2/sigma^2)
to_tau = {sigma_b2: frac(terms(tau, neg(sigma2)), n)}  # sigma_b^2 = (tau - sigma^2)/n


def over_groups(expr):
    return sp.Sum(expr, (j, 1, J))


def anova_form(centre_sq=None):
    """The log-likelihood in the mean squares, with J n (ybar - beta0)^2 = centre_sq (None: beta0 = ybar)."""
    between = times(df_between, msb) if centre_sq is None else terms(times(df_between, msb), centre_sq)
    return neg(half(terms(
        times(J, n, sp.log(times(two_pi, sigma2))),
        times(J, log_ratio),
        frac(times(df_within, msw), sigma2),
        frac(between, between_var),
    )))


def ml_criterion(t):
    """The profiled ML criterion with tau = t: -1/2 [J(n-1) log(2 pi sigma^2) + J log(2 pi tau) + ...]."""
    return neg(half(terms(
        times(df_within, sp.log(times(two_pi, sigma2))),
        times(J, sp.log(times(two_pi, t))),
        frac(times(df_within, msw), sigma2),
        frac(times(df_between, msb), t),
    )))


def reml_criterion(t):
    return neg(half(terms(
        times(df_within, sp.log(times(two_pi, sigma2))),
        times(df_between, sp.log(times(two_pi, t))),
        sp.log(times(J, n)),
        frac(times(df_within, msw), sigma2),
        frac(times(df_between, msb), t),
    )))


def boundary_ml():
    return neg(half(terms(times(J, n, sp.log(times(two_pi, sigma2))), frac(total_ss, sigma2))))


def boundary_reml():
    return neg(half(terms(times(terms(times(J, n), -1), sp.log(times(two_pi, sigma2))), sp.log(times(J, n)),
                          frac(total_ss, sigma2))))


def derivation() -> Derivation:
    d = Derivation(
        name="balanced",
        notation=BALANCED_NOTATION,
        title=r"The balanced design: ML and REML estimates in closed form, and when $\hat\sigma_b^2 = 0$",
        summary=r"""
When every group has the same size $n$ (and there are $J \ge 2$ groups, $n \ge 2$), the
log-likelihood depends on the data only through the grand mean $\bar y$ and the two mean
squares of the one-way analysis of variance,
$\mathrm{MSW} = \sum_j S_j / (J(n-1))$ and $\mathrm{MSB} = n\sum_j (\bar y_j - \bar y)^2/(J-1)$.
Written in $\sigma^2$ and $\tau = \sigma^2 + n\sigma_b^2$ (the expected value of MSB) it is a
sum of a function of $\sigma^2$ and a function of $\tau$, each with a single maximum.  The
constraint $\sigma_b^2 \ge 0$ is $\tau \ge \sigma^2$: when the unconstrained maximum violates
it, the estimate of $\sigma_b^2$ is exactly $0$ (a \emph{singular} fit in lme4's words), and
$\sigma^2$ is then estimated from the total sum of squares.  The boundary condition is a
condition on the $F$ statistic of the analysis of variance: $\hat\sigma_b^2 = 0$ exactly
when $F = \mathrm{MSB}/\mathrm{MSW} \le J/(J-1)$ for ML, and exactly when $F \le 1$ for REML.
So ML sets $\hat\sigma_b^2 = 0$ more often than REML; the two conditions differ most when
there are few groups.  Sums over groups are checked on random balanced data sets; the
tests check the estimates against a numerical maximisation of the dense criteria.
""",
    )
    d = model.sum_over_groups(d, __file__, lhs=r"\ell(\beta_0, \sigma^2, \sigma_b^2)", size=n, label="loglik")
    d = d.then(
        Define(frac(over_groups(ybar_j[j]), J), symbol=grand, why=r"The grand mean (the mean of all $Jn$ observations)."),
        Define(frac(over_groups(ss_j[j]), df_within), symbol=msw, why=r"The within-group mean square, on $J(n-1)$ degrees of freedom."),
        Define(frac(times(n, over_groups(terms(ybar_j[j], neg(grand)) ** 2)), df_between), symbol=msb,
               why=r"The between-group mean square, on $J-1$ degrees of freedom."),
        Equals(
            anova_form(times(J, n, terms(grand, neg(beta0)) ** 2)),
            label="anova",
            why=r"The analysis-of-variance decomposition $\sum_j (\bar y_j - \beta_0)^2 = \sum_j (\bar y_j - \bar y)^2 + J(\bar y - \beta_0)^2$ (the cross term vanishes), and $\sum_j S_j = J(n-1)\,\mathrm{MSW}$.",
        ),
        Maximiser(
            grand,
            var=beta0,
            lhs=r"\hat\beta_0 = \operatorname*{arg\,max}_{\beta_0} \ell",
            why=r"Only the last square involves $\beta_0$: in a balanced design the GLS estimate is the grand mean, whatever the variances.",
        ),
    )
    d = d.recall("anova", lhs=r"\ell(\beta_0, \sigma^2, \sigma_b^2)", why=r"Back to the log-likelihood, to put the maximiser in.")
    d = d.then(
        Substitute(
            anova_form(),
            values={beta0: grand},
            lhs=r"\ell_{\mathrm{ML}}(\sigma^2, \sigma_b^2) = \ell(\bar y, \sigma^2, \sigma_b^2)",
            why=r"The profiled log-likelihood: put $\beta_0 = \bar y$, which removes the last square.",
        ),
        Equals(
            ml_criterion(between_var),
            why=r"Combine the logarithms: $n\log(2\pi\sigma^2) + \log(1 + n\sigma_b^2/\sigma^2) = (n-1)\log(2\pi\sigma^2) + \log(2\pi(\sigma^2 + n\sigma_b^2))$.",
            label="ml",
        ),
        Substitute(
            ml_criterion(tau),
            values=to_tau,
            lhs=r"\ell_{\mathrm{ML}}(\sigma^2, \tau)",
            why=r"Write $\sigma_b^2 = (\tau - \sigma^2)/n$, i.e.\ $\tau = \sigma^2 + n\sigma_b^2$. The map $(\sigma^2, \sigma_b^2) \mapsto (\sigma^2, \tau)$ is one-to-one, and $\sigma_b^2 \ge 0$ becomes $\tau \ge \sigma^2$. The criterion is now a function of $\sigma^2$ plus a function of $\tau$.",
            label="ml_tau",
        ),
        Derivative(
            terms(neg(frac(df_within, 2 * sigma2)), frac(times(df_within, msw), 2 * sigma2**2)),
            var=sigma2,
            lhs=r"\frac{\partial\ell_{\mathrm{ML}}}{\partial\sigma^2}",
            why=r"Differentiate in $\sigma^2$ with $\tau$ held fixed.",
        ),
        Equals(
            times(frac(df_within, 2 * sigma2**2), terms(msw, neg(sigma2))),
            why=r"Positive below $\sigma^2 = \mathrm{MSW}$ and negative above: the unique maximiser in $\sigma^2$ is $\mathrm{MSW}$.",
        ),
    )
    d = d.recall("ml_tau", lhs=r"\ell_{\mathrm{ML}}(\sigma^2, \tau)", why=r"Back to the criterion, now in $\tau$.")
    d = d.then(
        Derivative(
            terms(neg(frac(J, 2 * tau)), frac(times(df_between, msb), 2 * tau**2)),
            var=tau,
            lhs=r"\frac{\partial\ell_{\mathrm{ML}}}{\partial\tau}",
            why=r"Differentiate in $\tau$ with $\sigma^2$ held fixed.",
        ),
        Equals(
            times(frac(J, 2 * tau**2), terms(frac(times(df_between, msb), J), neg(tau))),
            why=r"The unique maximiser in $\tau$ is $\hat\tau = (J-1)\,\mathrm{MSB}/J$: ML divides the between-group sum of squares by $J$, not by its $J-1$ degrees of freedom.",
        ),
        Define(frac(terms(frac(times(df_between, msb), J), neg(msw)), n), symbol=free_ml, label="ml_free",
               why=r"The unconstrained maximiser, back in $\sigma_b^2 = (\tau - \sigma^2)/n$ at $\hat\tau$ and $\sigma^2 = \mathrm{MSW}$:"),
        Define(frac(msb, msw), symbol=F, why=r"The $F$ statistic of the one-way analysis of variance."),
    )
    d = d.recall("ml_free", lhs=r"\tilde\sigma^2_{b,\mathrm{ML}}", why=r"When is it positive?")
    d = d.then(
        Equals(
            times(frac(times(df_between, msw), times(n, J)), terms(F, neg(frac(J, df_between)))),
            why=r"Factor out $\mathrm{MSW}$: the first factor is positive, so $\tilde\sigma^2_{b,\mathrm{ML}} > 0$ exactly when $F > J/(J-1)$. Otherwise $\hat\tau < \mathrm{MSW}$ violates the constraint $\tau \ge \sigma^2$.",
            label="ml_interior_sb2",
        ),
    )
    d = d.recall("ml", lhs=r"\ell_{\mathrm{ML}}(\sigma^2, \sigma_b^2)",
                 why=r"When the unconstrained maximiser violates $\tau \ge \sigma^2$, the maximum over the constraint set lies on its boundary $\sigma_b^2 = 0$: in the precisions $1/\sigma^2$ and $1/\tau$ the criterion is a sum of concave functions $\tfrac a2\log p - \tfrac c2 p$, and the constraint is the half-plane $1/\tau \le 1/\sigma^2$; a concave function whose maximum lies outside a convex set attains its maximum over the set on the set's boundary. We follow eq.~\eqref{@ml} there.")
    d = d.then(
        Limit(
            boundary_ml(),
            var=sigma_b2,
            point=sp.S.Zero,
            lhs=r"\ell_{\mathrm{ML}}(\sigma^2, 0)",
            why=r"On the boundary $\sigma_b^2 = 0$ all $Jn$ observations are independent $N(\beta_0, \sigma^2)$, with total sum of squares $J(n-1)\,\mathrm{MSW} + (J-1)\,\mathrm{MSB}$ about $\bar y$.",
        ),
        Derivative(
            terms(neg(frac(times(J, n), 2 * sigma2)), frac(total_ss, 2 * sigma2**2)),
            var=sigma2,
            lhs=r"\frac{\partial\ell_{\mathrm{ML}}(\sigma^2, 0)}{\partial\sigma^2}",
            why=r"Differentiate in $\sigma^2$.",
        ),
        Equals(
            times(frac(times(J, n), 2 * sigma2**2), terms(frac(total_ss, times(J, n)), neg(sigma2))),
            why=r"The unique maximiser on the boundary is the total sum of squares divided by $N = Jn$.",
        ),
    )
    d = d.recall("ml", lhs=r"\ell_{\mathrm{ML}}(\sigma^2, \sigma_b^2)", why=r"The two pieces together: the maximiser over $\sigma_b^2 \ge 0$ and $\sigma^2 > 0$.")
    ml_interior = F > frac(J, df_between)
    d = d.then(
        ConstrainedMaximiser(
            sp.Piecewise((free_ml, ml_interior), (sp.S.Zero, True)),
            var=sigma_b2,
            jointly={sigma2: sp.Piecewise((msw, ml_interior), (frac(total_ss, times(J, n)), True))},
            lhs=r"\hat\sigma^2_{b,\mathrm{ML}} = \operatorname*{arg\,max}_{\sigma_b^2 \ge 0}",
            why=r"The ML estimate of $\sigma_b^2$: the unconstrained maximiser when it is positive ($F > J/(J-1)$), else the boundary, where the slope in $\sigma_b^2$ points out of the domain; jointly with $\sigma^2$ = $\mathrm{MSW}$ inside and the total sum of squares over $Jn$ on the boundary.",
            label="ml_sb2",
        ),
        Define(sp.Piecewise((free_ml, ml_interior), (sp.S.Zero, True)), symbol=sb2_ml, why=r"Name it."),
    )
    d = d.recall("ml", lhs=r"\ell_{\mathrm{ML}}(\sigma^2, \sigma_b^2)", why=r"The estimate of $\sigma^2$ that goes with it.")
    d = d.then(
        Substitute(ml_criterion(terms(sigma2, times(n, sb2_ml))), values={sigma_b2: sb2_ml},
                   lhs=r"\ell_{\mathrm{ML}}(\sigma^2, \hat\sigma^2_{b,\mathrm{ML}})", why=r"Put in $\hat\sigma^2_{b,\mathrm{ML}}$."),
        Maximiser(
            terms(frac(total_ss, times(J, n)), neg(sb2_ml)),
            var=sigma2,
            lhs=r"\hat\sigma^2_{\mathrm{ML}} = \operatorname*{arg\,max}_{\sigma^2}",
            why=r"The ML estimate of $\sigma^2$: the total sum of squares over $Jn$, less $\hat\sigma^2_{b,\mathrm{ML}}$.",
        ),
        Equals(
            sp.Piecewise((msw, ml_interior), (frac(total_ss, times(J, n)), True)),
            lhs=r"\hat\sigma^2_{\mathrm{ML}}",
            why=r"That is $\mathrm{MSW}$ inside ($J\hat\tau = (J-1)\mathrm{MSB}$) and the total sum of squares over $Jn$ on the boundary: the form the code evaluates, without the subtraction, which would lose the digits of $\mathrm{MSW}$ when $\mathrm{MSB} \gg \mathrm{MSW}$.",
            label="ml_s2",
        ),
    )
    # --- REML --------------------------------------------------------------------
    d = d.recall("anova", lhs=r"\ell(\beta_0, \sigma^2, \sigma_b^2)", why=r"REML (as in the ML and REML document): integrate $\beta_0$ out of the log-likelihood under a flat prior.")
    d = d.then(
        LogIntegral(
            terms(anova_form(), neg(half(sp.log(frac(times(J, n), times(two_pi, between_var)))))),
            var=beta0,
            centre=grand,
            scale=sp.sqrt(between_var / (J * n)),
            lhs=r"\ell_{\mathrm R}(\sigma^2, \sigma_b^2) = \log\!\int e^{\ell}\,d\beta_0",
            why=r"In $\beta_0$ the log-likelihood is a concave quadratic with curvature $-Jn/(\sigma^2 + n\sigma_b^2)$ about $\bar y$: the integral adds $-\tfrac12\log(W/2\pi)$ with $W = Jn/(\sigma^2 + n\sigma_b^2)$.",
        ),
        Substitute(
            terms(ml_criterion(tau), neg(half(sp.log(frac(times(J, n), times(two_pi, tau)))))),
            values=to_tau,
            lhs=r"\ell_{\mathrm{R}}(\sigma^2, \tau)",
            why=r"Combine the logarithms as for ML and write $\sigma_b^2 = (\tau - \sigma^2)/n$.",
        ),
        Equals(
            reml_criterion(tau),
            why=r"Collect terms: the between-group part now has $J-1$ degrees of freedom where ML had $J$. Again a function of $\sigma^2$ plus a function of $\tau$.",
            label="reml_tau",
        ),
        Derivative(
            terms(neg(frac(df_within, 2 * sigma2)), frac(times(df_within, msw), 2 * sigma2**2)),
            var=sigma2,
            lhs=r"\frac{\partial\ell_{\mathrm{R}}}{\partial\sigma^2}",
            why=r"Differentiate in $\sigma^2$ with $\tau$ held fixed: the same as for ML.",
        ),
        Equals(
            times(frac(df_within, 2 * sigma2**2), terms(msw, neg(sigma2))),
            why=r"The unique maximiser in $\sigma^2$ is $\mathrm{MSW}$.",
        ),
    )
    d = d.recall("reml_tau", lhs=r"\ell_{\mathrm{R}}(\sigma^2, \tau)", why=r"Back to the REML criterion, now in $\tau$.")
    d = d.then(
        Derivative(
            terms(neg(frac(df_between, 2 * tau)), frac(times(df_between, msb), 2 * tau**2)),
            var=tau,
            lhs=r"\frac{\partial\ell_{\mathrm{R}}}{\partial\tau}",
            why=r"Differentiate in $\tau$ with $\sigma^2$ held fixed.",
        ),
        Equals(
            times(frac(df_between, 2 * tau**2), terms(msb, neg(tau))),
            why=r"The unique maximiser in $\tau$ is $\hat\tau = \mathrm{MSB}$: REML divides by the degrees of freedom $J - 1$.",
        ),
        Define(frac(terms(msb, neg(msw)), n), symbol=free_reml, label="reml_free",
               why=r"The unconstrained maximiser of the REML criterion, the analysis-of-variance estimator:"),
    )
    d = d.recall("reml_free", lhs=r"\tilde\sigma^2_{b,\mathrm{R}}", why=r"When is it positive?")
    d = d.then(
        Equals(
            times(frac(msw, n), terms(F, -1)),
            why=r"Factor out $\mathrm{MSW}$: $\tilde\sigma^2_{b,\mathrm{R}} > 0$ exactly when $F > 1$; otherwise the maximum over $\sigma_b^2 \ge 0$ is on the boundary, by the argument before eq.~\eqref{@ml_sb2}.",
            label="reml_interior_sb2",
        ),
    )
    d = d.recall("reml_tau", lhs=r"\ell_{\mathrm{R}}(\sigma^2, \tau)", why=r"Back to the REML criterion, to follow it onto the boundary $\sigma_b^2 = 0$.")
    d = d.then(
        Substitute(reml_criterion(between_var), values={tau: between_var}, label="reml",
                   lhs=r"\ell_{\mathrm{R}}(\sigma^2, \sigma_b^2)", why=r"With $\tau = \sigma^2 + n\sigma_b^2$ again, a function of $(\sigma^2, \sigma_b^2)$."),
        Limit(
            boundary_reml(),
            var=sigma_b2,
            point=sp.S.Zero,
            lhs=r"\ell_{\mathrm{R}}(\sigma^2, 0)",
            why=r"On the boundary: the REML criterion of $Jn$ independent $N(\beta_0, \sigma^2)$ observations.",
        ),
        Derivative(
            terms(neg(frac(terms(times(J, n), -1), 2 * sigma2)), frac(total_ss, 2 * sigma2**2)),
            var=sigma2,
            lhs=r"\frac{\partial\ell_{\mathrm{R}}(\sigma^2, 0)}{\partial\sigma^2}",
            why=r"Differentiate in $\sigma^2$.",
        ),
        Equals(
            times(frac(terms(times(J, n), -1), 2 * sigma2**2), terms(frac(total_ss, terms(times(J, n), -1)), neg(sigma2))),
            why=r"The unique maximiser on the boundary is the total sum of squares divided by its $N - 1 = Jn - 1$ degrees of freedom: the usual sample variance of all observations.",
        ),
    )
    d = d.recall("reml", lhs=r"\ell_{\mathrm{R}}(\sigma^2, \sigma_b^2)", why=r"The two pieces together.")
    d = d.then(
        ConstrainedMaximiser(
            sp.Piecewise((free_reml, F > 1), (sp.S.Zero, True)),
            var=sigma_b2,
            jointly={sigma2: sp.Piecewise((msw, F > 1), (frac(total_ss, terms(times(J, n), -1)), True))},
            lhs=r"\hat\sigma^2_{b,\mathrm{R}} = \operatorname*{arg\,max}_{\sigma_b^2 \ge 0}",
            why=r"The REML estimate of $\sigma_b^2$: $(\mathrm{MSB} - \mathrm{MSW})/n$ when $F > 1$, else $0$; jointly with $\sigma^2$ = $\mathrm{MSW}$ inside and the sample variance of all observations on the boundary.",
            label="reml_sb2",
        ),
        Define(sp.Piecewise((free_reml, F > 1), (sp.S.Zero, True)), symbol=sb2_reml, why=r"Name it."),
    )
    d = d.recall("reml", lhs=r"\ell_{\mathrm{R}}(\sigma^2, \sigma_b^2)", why=r"The estimate of $\sigma^2$ that goes with it.")
    d = d.then(
        Substitute(reml_criterion(terms(sigma2, times(n, sb2_reml))), values={sigma_b2: sb2_reml},
                   lhs=r"\ell_{\mathrm{R}}(\sigma^2, \hat\sigma^2_{b,\mathrm{R}})", why=r"Put in $\hat\sigma^2_{b,\mathrm{R}}$."),
        Maximiser(
            frac(terms(total_ss, neg(times(df_between, n, sb2_reml))), terms(times(J, n), -1)),
            var=sigma2,
            lhs=r"\hat\sigma^2_{\mathrm{R}} = \operatorname*{arg\,max}_{\sigma^2}",
            why=r"The REML estimate of $\sigma^2$: the total sum of squares less $(J-1)n\hat\sigma^2_{b,\mathrm{R}}$, over $Jn - 1$.",
        ),
        Equals(
            sp.Piecewise((msw, F > 1), (frac(total_ss, terms(times(J, n), -1)), True)),
            lhs=r"\hat\sigma^2_{\mathrm{R}}",
            why=r"That is $\mathrm{MSW}$ when $F > 1$ ($\hat\tau = \mathrm{MSB}$), else the sample variance of all observations: the form the code evaluates, without the subtraction.",
            label="reml_s2",
        ),
    )
    args = (msb, msw, n, J)
    common = ("\n\nmsb, msw: between- and within-group mean squares of a balanced one-way layout;\n"
              "group_size n >= 2 observations in each of J >= 2 groups.  Elementwise.")
    d = d.export("balanced_ml_sigma_b2", "ml_sb2", args,
                 "ML estimate of sigma_b^2 in a balanced design (0 when F = MSB/MSW <= J/(J-1))."
                 "\n\nmax(0, ((J-1) MSB / J - MSW) / n)." + common)
    d = d.export("balanced_ml_sigma2", "ml_s2", args,
                 "ML estimate of sigma^2 in a balanced design."
                 "\n\nMSW if F > J/(J-1), else (J(n-1) MSW + (J-1) MSB) / (J n)." + common)
    d = d.export("balanced_reml_sigma_b2", "reml_sb2", args,
                 "REML estimate of sigma_b^2 in a balanced design (0 when F = MSB/MSW <= 1)."
                 "\n\nmax(0, (MSB - MSW) / n)." + common)
    d = d.export("balanced_reml_sigma2", "reml_s2", args,
                 "REML estimate of sigma^2 in a balanced design."
                 "\n\nMSW if F > 1, else (J(n-1) MSW + (J-1) MSB) / (J n - 1)." + common)
    return model.with_references(d)
