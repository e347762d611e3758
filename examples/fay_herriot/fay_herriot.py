"""The BLUP with known sampling variances: Fay-Herriot small-area estimation, or a
random-effects meta-analysis.

Each area (or study) j reports a direct estimate y_j of its true value theta_j with a
known sampling variance s_j^2, and the true values vary around mu with variance tau^2:

    y_j | theta_j ~ N(theta_j, s_j^2),    theta_j ~ N(mu, tau^2).

Completing the square in theta_j gives the BLUP theta_hat_j = mu + lambda_j (y_j - mu),
with shrinkage factor lambda_j = tau^2 / (tau^2 + s_j^2), and Var(theta_j | y_j).
"""

import sympy as sp

from shrinkage.derive import (Conditional, Define, Derivation, Derivative, Equals, Maximiser, Notation, Premise, Quantity,
                              ReadOffNormal, Statement)

# 1. The symbols: code name (the argument name in generated code), LaTeX, meaning, domain.
NOTATION = Notation([
    Quantity("y", r"y_j", "direct estimate of area $j$", "real"),
    Quantity("theta", r"\theta_j", "true value of area $j$", "real"),
    Quantity("mu", r"\mu", "mean of the true values", "real"),
    Quantity("tau2", r"\tau^2", "variance of the true values around $\\mu$", "positive", accepts="nonnegative"),
    Quantity("s2", r"s_j^2", "known sampling variance of $y_j$", "positive"),
    Quantity("theta_hat", r"\hat\theta_j", "BLUP of $\\theta_j$", "real"),
], name="fay_herriot")

y, theta, mu, tau2, s2, theta_hat = (NOTATION.symbol(c) for c in ("y", "theta", "mu", "tau2", "s2", "theta_hat"))


def log_normal(x, mean, var):
    """log N(x; mean, var)."""
    return -sp.log(2 * sp.pi * var) / 2 - (x - mean) ** 2 / (2 * var)


# 2. The model, stated once: the only thing not checked.
MODEL = Statement(
    "fay_herriot", log_normal(y, theta, s2) + log_normal(theta, mu, tau2), r"\log p(y_j, \theta_j)",
    r"$y_j \mid \theta_j \sim N(\theta_j, s_j^2)$ with $s_j^2$ known, and $\theta_j \sim N(\mu, \tau^2)$.")

precision = 1 / s2 + 1 / tau2  # of theta_j given y_j


def derivation() -> Derivation:
    # 3. The steps: each states a new expression and why it follows from the one before.
    d = Derivation(
        name="fay_herriot",
        title=r"The BLUP with known sampling variances (Fay--Herriot)",
        summary=r"Completing the square in $\theta_j$ shows that the best predictor of an area's "
                r"true value moves its direct estimate towards $\mu$ by the factor "
                r"$\lambda_j = \tau^2/(\tau^2 + s_j^2)$: the noisier the estimate, the more it is shrunk.",
        notation=NOTATION,
    )
    d = d.then(
        Premise.of(MODEL, label="model"),
        Define((y / s2 + mu / tau2) / precision, symbol=theta_hat,
               why=r"Name the centre of the square that the next step completes."),
        Equals(-precision * (theta - theta_hat) ** 2 / 2 - (y - mu) ** 2 / (2 * (s2 + tau2))
               - sp.log(2 * sp.pi * s2) / 2 - sp.log(2 * sp.pi * tau2) / 2,
               why=r"Complete the square in $\theta_j$; what is left over is the marginal density of $y_j$.",
               label="completed_square"),
        Maximiser((y / s2 + mu / tau2) / precision, var=theta, lhs=r"\hat\theta_j",
                  why=r"Only the first term depends on $\theta_j$; it is $\le 0$ and vanishes at the centre."),
        Equals(mu + tau2 / (tau2 + s2) * (y - mu),
               why=r"Multiply numerator and denominator by $s_j^2\tau^2$: the estimate, moved towards $\mu$.",
               label="blup"),
        Derivative(tau2 / (tau2 + s2), var=y, lhs=r"\lambda_j = \partial\hat\theta_j / \partial y_j",
                   why=r"The shrinkage factor: the share of a change in $y_j$ that the BLUP passes on.",
                   label="shrinkage_factor"),
    )
    d = d.recall("completed_square", lhs=r"\log p(y_j, \theta_j)", why=r"Back to the completed square.")
    d = d.then(
        ReadOffNormal(s2 * tau2 / (s2 + tau2), var=theta, moment="variance", lhs=r"\operatorname{Var}(\theta_j \mid y_j)",
                      why=r"As a function of $\theta_j$ it is a normal log-density; its variance is "
                          r"$1/(1/s_j^2 + 1/\tau^2) = (1 - \lambda_j)\,\tau^2$.",
                      label="conditional_variance"),
    )
    # Bayes' rule: the density of theta_j given y_j is the joint density over its integral in theta_j.
    d = d.recall("model", lhs=r"\log p(y_j, \theta_j)", why=r"Back to the model's joint density.")
    d = d.then(
        Conditional(log_normal(theta, theta_hat, s2 * tau2 / (s2 + tau2)), var=theta,
                    centre=theta_hat, scale=sp.sqrt(s2 * tau2 / (s2 + tau2)), lhs=r"\log p(\theta_j \mid y_j)",
                    why=r"Bayes' rule: divide $p(y_j, \theta_j)$ by $p(y_j) = \int p(y_j, \theta_j)\,d\theta_j$. "
                        r"Given $y_j$, $\theta_j$ is normal around the BLUP, with the variance of \eqref{@conditional_variance}.",
                    label="posterior"),
    )
    # 4. What becomes code: a checked step, as a function of these arguments.
    d = d.export("fh_shrinkage", "shrinkage_factor", (tau2, s2),
                 "Shrinkage factor of area j.\n\nlambda_j = tau^2 / (tau^2 + s_j^2), in [0, 1).")
    d = d.export("fh_blup", "blup", (y, mu, tau2, s2),
                 "BLUP of the true value of area j.\n\ntheta_hat_j = mu + lambda_j (y_j - mu).")
    d = d.export("fh_conditional_variance", "conditional_variance", (tau2, s2),
                 "Variance of theta_j given y_j (mu and the variances known).\n\ns_j^2 tau^2 / (s_j^2 + tau^2).")
    return d
