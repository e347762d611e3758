"""Estimators of the between-study variance tau^2, and James-Stein's (N - 3).

Each moment estimator equates a quadratic form of the data with its expectation under
the model y ~ N(X beta, diag(v_i + tau^2)) and solves for tau^2, truncated at 0 as
metafor truncates it: DerSimonian-Laird (Cochran's Q with weights 1/v_i), Hedges (the
ordinary least-squares residuals), Hunter-Schmidt, Sidik-Jonkman; Paule-Mandel's equation
Q(tau^2) = k - p is the fixed point of Morris's empirical Bayes iteration.  With equal
variances, James-Stein's factor (N - 3) v / S from E[1/chi^2_{N-1}] = 1/(N - 3), and its
risk below that of the unshrunk estimates.
"""

import sympy as sp

from shrinkage.derive import (ConstrainedMaximiser, Define, Derivation, Derivative, Domain, Equals,
                              Maximiser, Notation, Premise, Quantity, Sign, Statement)

FEW = Domain("two to four", lambda rng: sp.Integer(rng.randint(2, 4)), {"integer": True, "positive": True}, minimum=2)
THREE_UP = Domain("three or more", lambda rng: sp.Integer(rng.choice([3, 4, 5, 7, 12])),
                  {"integer": True, "positive": True}, minimum=3)
FOUR_UP = Domain("four or more", lambda rng: sp.Integer(rng.choice([4, 5, 7, 12, 40])),
                 {"integer": True, "positive": True}, minimum=4)

NOTATION = Notation([
    Quantity("tau2", r"\tau^2", "between-study variance", "positive", accepts="nonnegative"),
    Quantity("v", r"v_i", "known sampling variance of study $i$", "positive"),
    Quantity("i", r"i", "index of a study", "count"),
    Quantity("vs", r"v", r"the sampling variances $v_1, \dots, v_k$, one per study", "positive"),
    Quantity("k", r"k", "number of studies", FEW, accepts="several"),
    Quantity("Q", r"Q", r"Cochran's $Q = y'Py$ with weights $1/v_i$", "positive"),
    Quantity("df", r"k - p", "residual degrees of freedom", "count"),
    Quantity("trP", r"\operatorname{tr} P", r"trace of $P$ with weights $1/v_i$", "positive"),
    Quantity("R", r"R", "residual sum of squares of ordinary least squares", "positive"),
    Quantity("trPV", r"\operatorname{tr}(P_0 V)", r"trace of $(I - X(X'X)^{-1}X')\operatorname{diag}(v_i)$", "positive"),
    Quantity("S1", r"S_1", r"$\sum_i 1/v_i$", "positive"),
    Quantity("tau2_0", r"\tau_0^2", "Sidik and Jonkman's initial value", "positive"),
    Quantity("Q0", r"Q_0", r"$y'Py$ with weights $1/(v_i + \tau_0^2)$", "positive"),
    Quantity("fit", r"F", "moment-equation misfit", "real"),
    Quantity("Qg", r"Q(\tau^2)", r"generalised $Q$, $y'Py$ with weights $1/(v_i + \tau^2)$", "positive"),
    Quantity("ebstep", r"\Delta", r"Morris's empirical Bayes update of $\tau^2$", "real"),
    Quantity("r", r"r_i", r"residual $y_i - x_i'\hat\beta$ of study $i$", "real"),
    Quantity("m", r"m", r"degrees of freedom of a $\chi^2$ variable", THREE_UP),
    Quantity("n", r"N", "number of estimates shrunk by James--Stein", FOUR_UP),
    Quantity("risk", r"\mathcal R", "total mean squared error of James--Stein's estimates", "positive"),
    Quantity("Bhat", r"E\hat B", "expectation of James--Stein's shrinkage estimate", "positive"),
], name="meta_estimators")

(tau2, v, i, k, Q, df, trP, R, trPV, S1, tau2_0, Q0, fit, Qg, ebstep, r, m, n, risk, Bhat) = (
    NOTATION.symbol(c) for c in ("tau2", "v", "i", "k", "Q", "df", "trP", "R", "trPV", "S1", "tau2_0", "Q0", "fit",
                                 "Qg", "ebstep", "r", "m", "n", "risk", "Bhat"))
v_i = NOTATION.quantity("vs").indexed


def over(expr):
    return sp.Sum(expr, (i, 1, k))


w = 1 / v_i[i]
S1_sum = over(w)
S2_sum = over(w ** 2)

EXPECTED_Q = Statement(
    "expected_q", over((w - w ** 2 / S1_sum) * (v_i[i] + tau2)), r"E[Q]",
    r"For $y$ with mean $\mu\mathbf 1$ and covariance $\Sigma = \mathrm{diag}(v_i + \tau^2)$ and a symmetric $A$ "
    r"with $A\mathbf 1 = 0$, $E[y'Ay] = \operatorname{tr}(A\Sigma)$; Cochran's $Q$ is $y'Ay$ with "
    r"$A = W - ww'/\sum_i w_i$, $w_i = 1/v_i$, so $E[Q] = \sum_i A_{ii}(v_i + \tau^2)$.")

INV_CHI2 = Statement(
    "inverse_chi2", sp.gamma(m / 2 - 1) * 2 ** (m / 2 - 1) / (sp.gamma(m / 2) * 2 ** (m / 2)), r"E[1/X]",
    r"$X \sim \chi^2_m$ has density $f_m(x) = x^{m/2-1}e^{-x/2}/(2^{m/2}\Gamma(m/2))$, and Euler's integral "
    r"$\int_0^\infty x^{a-1}e^{-x/2}\,dx = \Gamma(a)\,2^a$ ($a > 0$) at $a = m/2 - 1$ gives $E[1/X] = "
    r"\int_0^\infty x^{-1}f_m(x)\,dx$ as stated ($m \ge 3$).")

SUMMARY = r"""
Every estimator of $\tau^2$ here is a moment estimator or a likelihood root, computed from
$P = W - WX(X'WX)^{-1}X'W$ for a diagonal weight matrix $W$ (document \emph{meta\_analysis}
derives the study's weight, score and information).  Cochran's $Q = y'Py$ with $W =
\mathrm{diag}(1/v_i)$ has $E[Q] = (k - p) + \tau^2\operatorname{tr}P$: the first chain shows it
for the intercept-only model, a sum over the studies (proved by SymPy, and checked
numerically on data sets of two to four studies).  Each estimator is the
maximiser over $\tau^2 \ge 0$ of minus the squared misfit of its moment equation, checked
piece by piece as a constrained maximiser: the truncation at $0$ is part of the claim, as
in metafor.  Paule--Mandel solves $Q(\tau^2) = k - p$ for the generalised $Q$, which
decreases in $\tau^2$ (its terms' derivative is $-w_i^2 r_i^2$), so the root is unique;
Morris's empirical Bayes iteration stops exactly there, so EB and PM coincide.  The same
monotonicity makes the Q-profile interval (the $\tau^2$ with $\chi^2_{k-p,\alpha/2} \le
Q(\tau^2) \le \chi^2_{k-p,1-\alpha/2}$, since $Q(\tau^2) \sim \chi^2_{k-p}$ at the true
$\tau^2$) an interval, and justifies Knapp and Hartung's factor $Q(\hat\tau^2)/(k-p)$, whose
expectation is $1$ at the true $\tau^2$.  Last, James and Stein: with equal variances and $N$ estimates,
$S = \sum_i (y_i - \bar y)^2 \sim (v + \tau^2)\chi^2_{N-1}$ and $E[1/\chi^2_m] = 1/(m - 2)$
(Euler's integral, stated; the algebra checked), so $(N - 3)v/S$ estimates the shrinkage $B = v/(v+\tau^2)$ without
bias, and the estimates $\bar y + (1 - (N-3)v/S)(y_i - \bar y)$ have total risk
$Nv - (N-3)vB < Nv$, the risk of the $y_i$ themselves.  Premises: the two statements listed;
the expectations of the cross term and of $1/S$ in the risk are read off the stated facts.
"""


def moment_estimator(d, name, misfit, estimate, why_fit, why_max, lhs):
    """Define the misfit of a moment equation, then claim its maximiser over tau^2 >= 0 (truncated at 0)."""
    d = d.then(Define(misfit, symbol=fit, label=f"{name}_fit", why=why_fit))
    d = d.recall(f"{name}_fit", lhs=r"F_{\mathrm{%s}}" % name.upper(), why=r"As a function of $\tau^2$:")
    return d.then(ConstrainedMaximiser(estimate, var=tau2, lower=sp.S.Zero, label=name, lhs=lhs, why=why_max))


def derivation() -> Derivation:
    d = Derivation(name="meta_estimators", title=r"Estimators of $\tau^2$: DL, HE, HS, SJ, PM and EB; James--Stein",
                   summary=SUMMARY, notation=NOTATION)
    d = d.then(
        Premise.of(EXPECTED_Q),
        Equals((k - 1) + tau2 * (S1_sum - S2_sum / S1_sum), label="expected_q",
               why=r"Expand: $\sum_i A_{ii}v_i = k - 1$ and $\sum_i A_{ii} = \sum_i w_i - \sum_i w_i^2/\sum_i w_i "
                   r"= \operatorname{tr}P$; with moderators the same argument gives $(k - p) + \tau^2\operatorname{tr}P$."),
    )
    d = moment_estimator(
        d, "dl", -(Q - df - tau2 * trP) ** 2 / 2, sp.Max(0, (Q - df) / trP),
        r"DerSimonian and Laird: the misfit of $Q = E[Q] = (k-p) + \tau^2\operatorname{tr}P$.",
        r"Zero misfit at $(Q - (k-p))/\operatorname{tr}P$ when that is $\ge 0$; otherwise the slope at $0$ "
        r"points out of the domain and $\hat\tau^2 = 0$ exactly.", r"\hat\tau^2_{\mathrm{DL}}")
    d = moment_estimator(
        d, "he", -(R - trPV - tau2 * df) ** 2 / 2, sp.Max(0, (R - trPV) / df),
        r"Hedges: ordinary least squares, $P_0 = I - X(X'X)^{-1}X'$, $E[R] = \operatorname{tr}(P_0(V + \tau^2 I)) "
        r"= \operatorname{tr}(P_0V) + \tau^2(k-p)$.",
        r"Solve, truncated at $0$.", r"\hat\tau^2_{\mathrm{HE}}")
    d = moment_estimator(
        d, "hs", -(Q - k - tau2 * S1) ** 2 / 2, sp.Max(0, (Q - k) / S1),
        r"Hunter and Schmidt: $E[Q]$ approximated by $k + \tau^2\sum_i 1/v_i$ (the estimation of $\mu$ ignored).",
        r"Solve, truncated at $0$.", r"\hat\tau^2_{\mathrm{HS}}")
    d = d.then(Define(-(Q0 - df * tau2 / tau2_0) ** 2 / 2, symbol=fit, label="sj_fit",
                      why=r"Sidik and Jonkman: model $\operatorname{Var}(y_i) = \tau^2 (1 + v_i/\tau_0^2)$, a scale "
                          r"$\tau^2$ times known factors; then $E[Q_0] = (k-p)\tau^2/\tau_0^2$."))
    d = d.recall("sj_fit", lhs=r"F_{\mathrm{SJ}}", why=r"As a function of $\tau^2$:")
    d = d.then(Maximiser(tau2_0 * Q0 / df, var=tau2, label="sj", lhs=r"\hat\tau^2_{\mathrm{SJ}}",
                         why=r"Solve: positive whenever some residual is not 0, so never truncated."))
    # Paule-Mandel and empirical Bayes: one equation.
    d = d.then(Define(r ** 2 / (v + tau2), symbol=Qg, label="q_term",
                      why=r"Study $i$'s term $w_i r_i^2$ of the generalised $Q(\tau^2)$, at the weighted least-squares fit."))
    d = d.recall("q_term", lhs=r"w_i r_i^2", why=r"Its value.")
    d = d.then(Derivative(-r ** 2 / (v + tau2) ** 2, var=tau2, label="q_slope", lhs=r"\partial (w_i r_i^2)/\partial\tau^2",
                          why=r"Negative: $Q(\tau^2)$ decreases (at the fit $\partial Q/\partial\hat\beta = 0$, so "
                              r"$dQ/d\tau^2 = -y'PPy$), and Paule--Mandel's $Q(\tau^2) = k - p$ has one root, or none "
                              r"above $0$ (then $\hat\tau^2 = 0$)."))
    d = d.then(Define((Qg * k / df - k) / S1, symbol=ebstep, label="eb_step",
                      why=r"Morris's empirical Bayes iteration (metafor's EB) adds this to $\tau^2$, with $S_1 = \sum_i w_i$ "
                          r"at the current $\tau^2$."))
    d = d.recall("eb_step", lhs=r"\Delta", why=r"Its value.")
    d = d.then(Equals(k * (Qg - df) / (df * S1), label="eb_fixed_point",
                      why=r"It vanishes exactly when $Q(\tau^2) = k - p$: the fixed point of EB is Paule--Mandel's root."))
    # James-Stein.
    d = d.then(
        Premise.of(INV_CHI2),
        Equals(1 / (m - 2), label="inverse_chi2_mean",
               why=r"$\Gamma(a + 1) = a\,\Gamma(a)$ at $a = m/2 - 1$: $E[1/\chi^2_m] = 1/(m-2)$."),
        Define((n - 3) * v / ((n - 3) * (v + tau2)), symbol=Bhat, label="js_mean",
               why=r"$E[(N-3)v/S]$ with $S \sim (v+\tau^2)\chi^2_{N-1}$ and the previous step at $m = N - 1$."),
    )
    d = d.recall("js_mean", lhs=r"E\bigl[(N-3)v/S\bigr]", why=r"Its value.")
    d = d.then(Equals(v / (v + tau2), label="js_unbiased",
                      why=r"James--Stein's $(N-3)v/S$ estimates the shrinkage $B = v/(v+\tau^2)$ without bias."))
    B = v / (v + tau2)
    d = d.then(Define(n * v - 2 * (n - 3) * v * B + (n - 3) ** 2 * v ** 2 / ((n - 3) * (v + tau2)), symbol=risk,
                      label="js_risk_terms",
                      why=r"Total risk of $\hat\theta_i = y_i - \frac{(N-3)v}{S}(y_i - \bar y)$: $E\sum(y_i-\theta_i)^2 = Nv$; "
                          r"the cross term $E[\frac{(N-3)v}{S}\sum_i(y_i-\theta_i)(y_i-\bar y)]$ is $(N-3)vB$ "
                          r"(given $y$, $E[y_i - \theta_i] = B(y_i - \mu)$ and $\sum_i(y_i-\mu)(y_i-\bar y) = S$); "
                          r"the square $(N-3)^2v^2E[1/S]$."))
    d = d.recall("js_risk_terms", lhs=r"\mathcal R_{\mathrm{JS}}", why=r"Its value.")
    d = d.then(
        Equals(n * v - (n - 3) * v ** 2 / (v + tau2), label="js_risk", why=r"Collect: $Nv - (N-3)vB$."),
        Sign(n * v, sign=-1, why=r"Below $Nv$, the risk of the unshrunk $y_i$, for every $\tau^2$ when $N \ge 4$."),
    )
    d = d.export("meta_dl_tau2", "dl", (Q, df, trP),
                 "DerSimonian-Laird tau^2, truncated at 0.\n\nmax(0, (Q - (k - p)) / tr P), Q and P with weights 1/v_i.")
    d = d.export("meta_he_tau2", "he", (R, trPV, df),
                 "Hedges' tau^2, truncated at 0.\n\nmax(0, (R - tr(P0 V)) / (k - p)), ordinary least squares.")
    d = d.export("meta_hs_tau2", "hs", (Q, k, S1),
                 "Hunter-Schmidt tau^2, truncated at 0.\n\nmax(0, (Q - k) / sum(1/v_i)).")
    d = d.export("meta_sj_tau2", "sj", (tau2_0, Q0, df),
                 "Sidik-Jonkman tau^2.\n\ntau0^2 Q0 / (k - p), Q0 with weights 1/(v_i + tau0^2).")
    return d
