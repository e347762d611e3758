"""Random-effects meta-analysis (and Fay-Herriot) with known sampling variances: the study level.

Study i reports an estimate y_i of its true effect theta_i with a known variance v_i, and
the true effects vary around mu (or x_i'beta) with variance tau^2:

    y_i | theta_i ~ N(theta_i, v_i),    theta_i ~ N(mu, tau^2).

Per study: the BLUP and its shrinkage factor, Var(theta_i | y_i), the marginal
log-density of y_i (theta_i integrated out), its weight in the estimating equation for
mu, its score and Fisher information in tau^2; the BLUP's prediction variance with mu
estimated (metafor's blup()); H^2 and I^2.  shrinkage.meta sums these over the studies.
"""

import sympy as sp

from shrinkage.derive import (Define, Derivation, Derivative, Domain, Equals, LogIntegral, Maximiser, Notation,
                              Premise, Quantity, ReadOffNormal, Statement, Substitute)

FEW = Domain("two to four", lambda rng: sp.Integer(rng.randint(2, 4)), {"integer": True, "positive": True}, minimum=2)

NOTATION = Notation([
    Quantity("y", r"y_i", "estimate reported by study $i$", "real"),
    Quantity("theta", r"\theta_i", "true effect of study $i$", "real"),
    Quantity("mu", r"\mu", r"mean of the true effects ($x_i'\beta$ with moderators)", "real"),
    Quantity("tau2", r"\tau^2", "between-study variance of the true effects", "positive", accepts="nonnegative"),
    Quantity("v", r"v_i", "known sampling variance of $y_i$", "positive"),
    Quantity("theta_hat", r"\hat\theta_i", r"BLUP of $\theta_i$", "real"),
    Quantity("lam", r"\lambda_i", r"shrinkage factor $\tau^2/(\tau^2 + v_i)$", "unit"),
    Quantity("s2mu", r"s_\mu^2", r"sampling variance of the estimate of $\mu$ ($x_i' V_\beta x_i$)", "positive",
             accepts="nonnegative"),
    Quantity("cross", r"c_i", r"covariance of $\lambda_i e_i - (1-\lambda_i) u_i$ with $y_i$", "real"),
    Quantity("pev", r"\operatorname{Var}(\hat\theta_i - \theta_i)", "prediction error variance", "positive"),
    Quantity("vt", r"\tilde v", r"typical sampling variance $(k-p)/\operatorname{tr} P$", "positive"),
    Quantity("H2", r"H^2", "total over sampling variability", "positive"),
    Quantity("I2", r"I^2", "share of heterogeneity in the total variability, in percent", "positive"),
    Quantity("i", r"i", "index of a study", "count"),
    Quantity("k", r"k", "number of studies", FEW, accepts="several"),
    Quantity("ys", r"y", r"the estimates $y_1, \dots, y_k$", "real"),
    Quantity("mus", r"m", r"the studies' means $x_i'\beta$", "real"),
    Quantity("vs", r"v", r"the sampling variances $v_1, \dots, v_k$", "positive"),
    Quantity("logs", r"S", r"$\sum_i \log(v_i + \tau^2)$", "real"),
    Quantity("Q", r"Q", r"$\sum_i (y_i - x_i'\hat\beta)^2/(v_i + \tau^2) = y'Py$, the weighted residual sum of squares",
             "positive", accepts="nonnegative"),
    Quantity("ll", r"\ell", r"the ML log-likelihood at $\hat\beta$", "real"),
    Quantity("p", r"p", r"number of coefficients in $\beta$ (the intercept included)", "count"),
    Quantity("ldxx", r"\log|X'X|", r"log-determinant of $X'X$", "real"),
    Quantity("ldxwx", r"\log|X'WX|", r"log-determinant of $X'WX$, $W = \mathrm{diag}(w_i)$", "real"),
], name="meta_analysis")

y, theta, mu, tau2, v, theta_hat, lam, s2mu, cross, pev, vt, H2, I2 = (
    NOTATION.symbol(c) for c in ("y", "theta", "mu", "tau2", "v", "theta_hat", "lam", "s2mu", "cross", "pev", "vt",
                                 "H2", "I2"))
i, k, logs, Q, ll, p, ldxx, ldxwx = (NOTATION.symbol(c) for c in ("i", "k", "logs", "Q", "ll", "p", "ldxx", "ldxwx"))
y_i, mu_i, v_i = (NOTATION.quantity(c).indexed for c in ("ys", "mus", "vs"))


def log_normal(x, mean, var):
    """log N(x; mean, var)."""
    return -sp.log(2 * sp.pi * var) / 2 - (x - mean) ** 2 / (2 * var)


MODEL = Statement(
    "meta_analysis", log_normal(y, theta, v) + log_normal(theta, mu, tau2), r"\log p(y_i, \theta_i)",
    r"$y_i \mid \theta_i \sim N(\theta_i, v_i)$ with $v_i$ known, $\theta_i \sim N(\mu, \tau^2)$, the studies "
    r"independent (with moderators $\mu = x_i'\beta$).")

precision = 1 / v + 1 / tau2
marginal = log_normal(y, mu, v + tau2)
shrink = tau2 / (tau2 + v)


def over(expr):
    """The sum over the k studies of a study's expression in y, mu, v (its i-th term)."""
    return sp.Sum(expr.xreplace({y: y_i[i], mu: mu_i[i], v: v_i[i]}), (i, 1, k))


INDEPENDENT = Statement(
    "independent_studies", over(marginal), r"\ell",
    r"The studies are independent, so the log-likelihood of $(\beta, \tau^2)$ is the sum over the studies of their "
    r"marginal log-densities $L_i$ (derived below), with $m_i = x_i'\beta$.")

REML = Statement(
    "reml_loglik", ll + p * sp.log(2 * sp.pi) / 2 + ldxx / 2 - ldxwx / 2, r"\ell_R",
    r"The REML log-likelihood (Harville 1974, J. Am. Stat. Assoc. 69: $\beta$ integrated out of the likelihood "
    r"under a flat prior, a $p$-dimensional Gaussian integral centred at the GLS estimate $\hat\beta$ with precision "
    r"$X'WX$), plus metafor's constant $\tfrac12\log|X'X|$ (REMLf = TRUE), which makes it the log-density of $k-p$ "
    r"error contrasts whatever basis of them is taken.")

SUMMARY = r"""
A random-effects meta-analysis, or Fay--Herriot small-area estimation: study $i$ reports an
estimate $y_i$ with a \emph{known} sampling variance $v_i$, and the true effects $\theta_i$
vary around $\mu$ with variance $\tau^2$.  Completing the square in $\theta_i$ gives the
BLUP, which moves $y_i$ towards $\mu$ by the factor $\lambda_i = \tau^2/(\tau^2 + v_i)$
(the empirical Bayes estimate once $\mu$ and $\tau^2$ are estimated); integrating
$\theta_i$ out gives the marginal density $y_i \sim N(\mu, v_i + \tau^2)$, whose sum over
the studies is the likelihood every estimator of $\tau^2$ works with (document
\emph{meta\_estimators}).  Its derivatives in $\tau^2$ give the terms of the ML score and,
with the expectation of $(y_i - \mu)^2$ put in, of the Fisher information: the quantities
metafor's Fisher scoring iterates (with $\mu$ profiled out they become
$\tfrac12(y'PPy - \operatorname{tr}P)$ and $\tfrac12\operatorname{tr}(PP)$ for REML,
$P = W - WX(X'WX)^{-1}X'W$, $W = \operatorname{diag}(w_i)$; that matrix form is stated, not
derived here).  The prediction-error variance of the BLUP with $\mu$ estimated is exactly
$\lambda_i v_i + (1-\lambda_i)^2 s_\mu^2$, because the error of the BLUP with $\mu$ known is
uncorrelated with every $y_j$.  Then the heterogeneity statistics $H^2$ and $I^2$.  Last,
the log-likelihood of all the studies in the two sums a fit computes, $\sum_i\log(v_i+\tau^2)$
and $y'Py$, and REML's: $\mu$ integrated out of it (intercept only, derived; with moderators the
same integral in $p$ dimensions, stated).
"""


def derivation() -> Derivation:
    d = Derivation(name="meta_analysis",
                   title=r"Meta-analysis with known variances: the BLUP, the marginal likelihood, its score",
                   summary=SUMMARY, notation=NOTATION)
    d = d.then(
        Premise.of(MODEL, label="model"),
        Define((y / v + mu / tau2) / precision, symbol=theta_hat,
               why=r"Name the centre of the square that the next step completes."),
        Equals(-precision * (theta - theta_hat) ** 2 / 2 - (y - mu) ** 2 / (2 * (v + tau2))
               - sp.log(2 * sp.pi * v) / 2 - sp.log(2 * sp.pi * tau2) / 2, label="completed_square",
               why=r"Complete the square in $\theta_i$; what is left is the marginal density of $y_i$."),
        Maximiser((y / v + mu / tau2) / precision, var=theta, lhs=r"\hat\theta_i",
                  why=r"Only the first term depends on $\theta_i$; it is $\le 0$ and vanishes at the centre."),
        Equals(mu + shrink * (y - mu), label="blup",
               why=r"Multiply numerator and denominator by $v_i\tau^2$: the estimate moved towards $\mu$."),
        Equals((tau2 * y + v * mu) / (tau2 + v), label="blup_weighted",
               why=r"The same as the weighted mean of $y_i$ and $\mu$ with weights $\tau^2$ and $v_i$: the form the "
                   r"code evaluates, free of the cancellation in $\mu + \lambda_i(y_i - \mu)$ when $\lambda_i$ is near 1."),
        Derivative(shrink, var=y, lhs=r"\lambda_i = \partial\hat\theta_i/\partial y_i", label="shrinkage_factor",
                   why=r"The shrinkage factor: the share of a change in $y_i$ that the BLUP passes on."),
    )
    d = d.recall("completed_square", lhs=r"\log p(y_i, \theta_i)", why=r"Back to the completed square.")
    d = d.then(
        ReadOffNormal(v * tau2 / (v + tau2), var=theta, moment="variance", label="conditional_variance",
                      lhs=r"\operatorname{Var}(\theta_i \mid y_i)",
                      why=r"A normal log-density in $\theta_i$ with precision $1/v_i + 1/\tau^2$: "
                          r"$\operatorname{Var}(\theta_i \mid y_i) = \lambda_i v_i = (1-\lambda_i)\tau^2$."),
    )
    d = d.recall("model", lhs=r"\log p(y_i, \theta_i)", why=r"Back to the model, to integrate $\theta_i$ out.")
    d = d.then(
        LogIntegral(marginal, var=theta, centre=mu, scale=sp.sqrt(tau2), label="marginal",
                    lhs=r"L_i = \log p(y_i)", why=r"Integrate $\theta_i$ over the real line: "
                    r"$y_i \sim N(\mu, v_i + \tau^2)$, the likelihood's term of study $i$."),
        Derivative((y - mu) / (v + tau2), var=mu, lhs=r"\partial L_i/\partial\mu",
                   why=r"The score for $\mu$: linear in $y_i$."),
        Derivative(1 / (v + tau2), var=y, lhs=r"w_i", label="weight",
                   why=r"Its coefficient of $y_i$: the weight $w_i = 1/(v_i+\tau^2)$ of study $i$ in the estimating "
                       r"equation $\sum_i w_i (y_i - \mu) = 0$ (weighted least squares with $W = \mathrm{diag}(w_i)$)."),
    )
    d = d.recall("marginal", lhs=r"L_i", why=r"Back to the marginal density, now as a function of $\tau^2$.")
    d = d.then(
        Derivative(((y - mu) ** 2 - (v + tau2)) / (2 * (v + tau2) ** 2), var=tau2, label="score",
                   lhs=r"\partial L_i/\partial\tau^2",
                   why=r"The score for $\tau^2$: $\tfrac12 w_i^2 (y_i-\mu)^2 - \tfrac12 w_i$; summed over the studies "
                       r"and with $\mu$ profiled out, $\tfrac12(y'PPy - \sum_i w_i)$ (ML), "
                       r"$\tfrac12(y'PPy - \operatorname{tr} P)$ (REML)."),
        Derivative(-(y - mu) ** 2 / (v + tau2) ** 3 + 1 / (2 * (v + tau2) ** 2), var=tau2,
                   lhs=r"\partial^2 L_i/\partial(\tau^2)^2", why=r"Differentiate again."),
        Substitute(-1 / (2 * (v + tau2) ** 2), values={y: mu + sp.sqrt(v + tau2)},
                   lhs=r"E\,\partial^2 L_i/\partial(\tau^2)^2", label="expected_curvature",
                   why=r"It is linear in $(y_i-\mu)^2$, whose expectation is $v_i+\tau^2$: put that in.  The Fisher "
                       r"information is $\tfrac12 w_i^2$; summed, $\tfrac12\sum_i w_i^2$ (ML), $\tfrac12\operatorname{tr}(PP)$ "
                       r"(REML), and Fisher scoring steps by score over information."),
    )
    # The BLUP's prediction error with mu estimated (metafor's blup(): pred, se, pi.lb, pi.ub).
    d = d.then(
        Define(shrink * v - (1 - shrink) * tau2, symbol=cross, label="cross_def",
               why=r"With $e_i = y_i - \theta_i$, $u_i = \theta_i - \mu$: the error of the BLUP with $\mu$ known is "
                   r"$\lambda_i e_i - (1-\lambda_i) u_i$; its covariance with $y_j = \mu + u_j + e_j$ is $0$ for "
                   r"$j \ne i$ and this for $j = i$."),
    )
    d = d.recall("cross_def", lhs=r"c_i", why=r"Its value.")
    d = d.then(
        Equals(sp.S.Zero, label="no_cross", why=r"It vanishes: the error is uncorrelated with every $y_j$, so with "
               r"$\hat\mu$ (a linear function of $y$) and $\hat\theta_i - \theta_i = \lambda_i e_i - (1-\lambda_i)u_i "
               r"+ (1-\lambda_i)(\hat\mu - \mu)$ the variances add."),
        Define(shrink ** 2 * v + (1 - shrink) ** 2 * tau2 + (1 - shrink) ** 2 * s2mu, symbol=pev, label="pev_def",
               why=r"The variance of the sum of the three uncorrelated parts."),
    )
    d = d.recall("pev_def", lhs=r"\operatorname{Var}(\hat\theta_i - \theta_i)", why=r"Its value.")
    d = d.then(
        Equals(shrink * v + (v / (tau2 + v)) ** 2 * s2mu, label="blup_variance",
               why=r"$\lambda_i^2 v_i + (1-\lambda_i)^2\tau^2 = \lambda_i v_i$: metafor's \texttt{blup()} variance."),
    )
    # H^2 and I^2 (Higgins and Thompson 2002), with metafor's typical variance (k-p)/tr P.
    d = d.then(
        Define((vt + tau2) / vt, symbol=H2, label="h2_def", why=r"$H^2$: total variability $\tilde v + \tau^2$ over "
               r"the sampling variability $\tilde v$ of a typical study."),
    )
    d = d.recall("h2_def", lhs=r"H^2", why=r"Its value.")
    d = d.then(
        Equals(tau2 / vt + 1, label="h2", why=r"Divide."),
        Define(100 * (1 - 1 / ((vt + tau2) / vt)), symbol=I2, label="i2_def", why=r"$I^2 = 100\,(1 - 1/H^2)$ percent."),
    )
    d = d.recall("i2_def", lhs=r"I^2", why=r"Its value.")
    d = d.then(
        Equals(100 * tau2 / (vt + tau2), label="i2", why=r"The share of $\tau^2$ in the total, in percent."),
    )
    d = loglik_chain(d)
    d = d.export("meta_blup", "blup_weighted", (y, mu, tau2, v),
                 "BLUP of study i's true effect.\n\ntheta_hat_i = mu + lambda_i (y_i - mu) = (tau^2 y_i + v_i mu)/(tau^2 + v_i).")
    d = d.export("meta_shrinkage", "shrinkage_factor", (tau2, v),
                 "Shrinkage factor of study i.\n\nlambda_i = tau^2 / (tau^2 + v_i).")
    d = d.export("meta_conditional_variance", "conditional_variance", (tau2, v),
                 "Var(theta_i | y_i) with mu and tau^2 known.\n\nv_i tau^2 / (v_i + tau^2).")
    d = d.export("meta_weight", "weight", (v, tau2),
                 "Weight of study i in the estimating equation for mu.\n\nw_i = 1 / (v_i + tau^2).")
    d = d.export("meta_loglik_term", "marginal", (y, mu, tau2, v),
                 "Marginal log-density of y_i.\n\nlog N(y_i; mu, v_i + tau^2).")
    d = d.export("meta_score_term", "score", (y, mu, tau2, v),
                 "Study i's term of the ML score for tau^2.\n\n((y_i - mu)^2 - (v_i + tau^2)) / (2 (v_i + tau^2)^2).")
    d = d.export("meta_blup_variance", "blup_variance", (tau2, v, s2mu),
                 "Prediction error variance of the BLUP with mu estimated (metafor's blup()).\n\n"
                 "lambda_i v_i + (v_i / (tau^2 + v_i))^2 s2mu, s2mu = x_i' Var(beta_hat) x_i.")
    d = d.export("meta_h2", "h2", (tau2, vt), "H^2 = tau^2 / vt + 1.\n\nTotal over sampling variability.")
    d = d.export("meta_i2", "i2", (tau2, vt), "I^2 in percent.\n\n100 tau^2 / (vt + tau^2).")
    d = d.export("meta_loglik", "loglik", (k, logs, Q),
                 "ML log-likelihood of k studies at beta_hat.\n\n-(k log(2 pi) + sum_i log(v_i + tau^2) + Q) / 2, "
                 "Q = y'Py the weighted residual sum of squares.")
    d = d.export("meta_reml_loglik", "reml", (ll, p, ldxx, ldxwx),
                 "metafor's REML log-likelihood from the ML one at beta_hat.\n\n"
                 "ll + p log(2 pi)/2 + log|X'X|/2 - log|X'WX|/2.")
    return d


def loglik_chain(d):
    """The log-likelihood of all k studies, in the two sums the fit computes in its passes; REML's terms
    (integrating mu out derived for the intercept-only model; with moderators stated)."""
    resid = (y_i[i] - mu_i[i]) ** 2 / (v_i[i] + tau2)
    d = d.then(
        Premise.of(INDEPENDENT),
        Equals(-k * sp.log(2 * sp.pi) / 2 - sp.Sum(sp.log(v_i[i] + tau2), (i, 1, k)) / 2 - sp.Sum(resid, (i, 1, k)) / 2,
               label="loglik_sums", why=r"Each $L_i$ is $-\tfrac12\log 2\pi - \tfrac12\log(v_i+\tau^2) - "
               r"\tfrac12 w_i(y_i-m_i)^2$: three sums, the first over a constant."),
        Define(sp.Sum(sp.log(v_i[i] + tau2), (i, 1, k)), symbol=logs, label="logs_def",
               why=r"Name the sum of the logarithms (one pass over the studies computes it)."),
        Define(sp.Sum(resid, (i, 1, k)), symbol=Q, label="q_def",
               why=r"Name the weighted residual sum of squares; at $m_i = x_i'\hat\beta$ (GLS) it is $y'Py$, the "
                   r"quadratic form the fit computes from its $(p+1)\times(p+1)$ sums."),
    )
    d = d.recall("loglik_sums", lhs=r"\ell", why=r"Back to the log-likelihood.")
    d = d.then(Equals(-(k * sp.log(2 * sp.pi) + logs + Q) / 2, label="loglik",
                      why=r"In the two named sums: the form \texttt{meta\_loglik} evaluates."))
    # Intercept only: integrate mu out (a flat prior), the REML log-likelihood as checked steps.
    w_i = 1 / (v_i[i] + tau2)
    sw = sp.Sum(w_i, (i, 1, k))
    mu_hat = sp.Sum(w_i * y_i[i], (i, 1, k)) / sw
    d = d.recall("loglik_sums", lhs=r"\ell", why=r"Intercept only ($m_i = \mu$ for every study): REML integrates "
                 r"$\mu$ out of the likelihood under a flat prior.")
    d = d.then(
        Substitute(-k * sp.log(2 * sp.pi) / 2 - sp.Sum(sp.log(v_i[i] + tau2), (i, 1, k)) / 2
                   - sp.Sum((y_i[i] - mu) ** 2 / (v_i[i] + tau2), (i, 1, k)) / 2, values={mu_i[i]: mu},
                   why=r"The same mean $\mu$ for every study."),
        LogIntegral(-k * sp.log(2 * sp.pi) / 2 - sp.Sum(sp.log(v_i[i] + tau2), (i, 1, k)) / 2
                    - sp.Sum((y_i[i] - mu_hat) ** 2 / (v_i[i] + tau2), (i, 1, k)) / 2
                    + sp.log(2 * sp.pi) / 2 - sp.log(sw) / 2, var=mu, centre=mu_hat, scale=1 / sp.sqrt(sw),
                    lhs=r"\log\!\int e^{\ell}\,d\mu", label="reml_intercept",
                    why=r"In $\mu$ the log-likelihood is a concave quadratic with curvature $-\sum_i w_i$ about the "
                        r"weighted mean $\hat\mu = \sum_i w_i y_i/\sum_i w_i$: the integral is the value at $\hat\mu$ "
                        r"plus $\tfrac12\log 2\pi - \tfrac12\log\sum_i w_i$, i.e. $\tfrac12 p\log 2\pi - \tfrac12\log|X'WX|$ "
                        r"with $X = \mathbf 1$; metafor adds $\tfrac12\log|X'X| = \tfrac12\log k$."),
    )
    return d.then(
        Premise.of(REML),
        Equals((2 * ll + p * sp.log(2 * sp.pi) + ldxx - ldxwx) / 2, label="reml",
               why=r"Over a common denominator: the form \texttt{meta\_reml\_loglik} evaluates.  For $p = 1$ it is "
                   r"the integral just derived ($\ell$ at $\hat\mu$, $\log|X'X| = \log k$, $\log|X'WX| = "
                   r"\log\sum_i w_i$); for $p > 1$ stated: the same Gaussian integral in $p$ dimensions."),
    )
