"""Shrinkage beyond the normal: penalised IRLS for a binomial or Poisson random intercept.

For one row with linear predictor eta the log-likelihood of a canonical-link family is
m (y eta - a(eta)) (binomial-logit: a = log(1 + e^eta), y a proportion of m trials;
Poisson-log: a = e^eta, m a prior weight).  Its derivatives in eta are the score
m (y - mu), minus the IRLS working weight w = m a''(eta) and minus w' (the third
derivative, which the Laplace log-determinant's gradient needs): the pieces glmer's fit
evaluates.  For group j with b_j = theta u_j, u_j ~ N(0, 1), the penalised log-density
expanded to second order about u0 (S_j, W_j: the sums of the scores and weights there) is
maximised by one Newton step, which is penalised IRLS; written as a prediction it is the
normal model's BLUP: b_j = lambda_j (b0 + S_j / W_j) with lambda_j = sigma_b^2 /
(sigma_b^2 + 1 / W_j), the group's working-scale deviation shrunk by lambda_j.  The Laplace
approximation integrates that expansion.
"""

import sympy as sp

from shrinkage.derive import (Define, Derivation, Derivative, Equals, Limit, LogIntegral, Maximiser, Notation,
                              Premise, Quantity, Statement)

NOTATION = Notation([
    Quantity("eta", r"\eta_{ij}", "linear predictor of row $i$ of group $j$", "real"),
    Quantity("y", r"y_{ij}", "response of the row (a proportion of $m_{ij}$ trials; a count)", "unit"),
    Quantity("m", r"m_{ij}", "trials (binomial) or prior weight of the row", "positive"),
    Quantity("theta", r"\theta", "standard deviation of the random intercept, $\\sigma_b$", "positive"),
    Quantity("u", r"u_j", "spherical random effect of group $j$, $b_j = \\theta u_j$", "real"),
    Quantity("u0", r"u_j^{(0)}", "the current iterate of $u_j$", "real"),
    Quantity("S", r"S_j", "sum of the row scores of group $j$ at $u_j^{(0)}$", "real"),
    Quantity("W", r"W_j", "sum of the working weights of group $j$ at $u_j^{(0)}$", "positive"),
    Quantity("H", r"H_j", "$1 + \\theta^2 W_j$, minus the curvature of the penalised log-density", "positive"),
    Quantity("l0", r"\ell_j^{(0)}", "the group's log-likelihood at $u_j^{(0)}$", "real"),
    Quantity("u_new", r"u_j^{(1)}", "the Newton (penalised IRLS) iterate", "real"),
    Quantity("lam", r"\lambda_j", "link-scale shrinkage factor", "unit"),
    Quantity("zbar", r"\bar z_j", "the group's working-scale deviation $\\theta u_j^{(0)} + S_j/W_j$", "real"),
], name="glmm_pirls")

eta, y, m, theta, u, u0, S, W, H, l0, u_new, lam, zbar = (NOTATION.symbol(c) for c in (
    "eta", "y", "m", "theta", "u", "u0", "S", "W", "H", "l0", "u_new", "lam", "zbar"))

BINOMIAL = Statement("glmm_binomial_row", -m * (y * eta - sp.log(1 + sp.exp(eta))), r"-\ell_{ij}(\eta_{ij})",
                     r"Binomial with logit link: $m_{ij}y_{ij} \sim \mathrm{Bin}(m_{ij}, \mu_{ij})$, "
                     r"$\mu_{ij} = 1/(1+e^{-\eta_{ij}})$; the log-likelihood without $\log\binom{m_{ij}}{m_{ij}y_{ij}}$, "
                     r"which does not depend on $\eta_{ij}$; written with its sign changed, as the fit minimises it.")
POISSON = Statement("glmm_poisson_row", -m * (y * eta - sp.exp(eta)), r"-\ell_{ij}(\eta_{ij})",
                    r"Poisson with log link: $y_{ij} \sim \mathrm{Poisson}(e^{\eta_{ij}})$ with prior weight $m_{ij}$; "
                    r"minus the log-likelihood without $-m_{ij}\log y_{ij}!$.")
EXPANSION = Statement("glmm_group_expansion",
                      l0 + theta * S * (u - u0) - theta ** 2 * W * (u - u0) ** 2 / 2 - u ** 2 / 2,
                      r"\ell_j(u_j) - \tfrac12 u_j^2",
                      r"The penalised log-density of group $j$, $\sum_i \ell_{ij}(x_{ij}'\beta + \theta u_j) - u_j^2/2$, "
                      r"to second order about $u_j^{(0)}$: its $u$-derivatives there are $\theta S_j$ and "
                      r"$-\theta^2 W_j$ by the chain rule and the row derivatives above.")


def _family(d, premise, label, score, weight, dweight, why_w):
    return d.then(
        Premise.of(premise, label=f"{label}_row"),
        Derivative(-m * (y - score), var=eta, lhs=r"-\partial\ell_{ij}/\partial\eta_{ij}", label=f"{label}_score",
                   why=r"The score in the linear predictor: the residual $y_{ij} - \mu_{ij}$, times $m_{ij}$."),
        Derivative(weight, var=eta, lhs=r"w_{ij} = -\partial^2\ell_{ij}/\partial\eta_{ij}^2", label=f"{label}_weight",
                   why=why_w + r" Positive: the penalised log-density is concave in $u_j$, its mode unique."),
        Derivative(dweight, var=eta, lhs=r"\partial w_{ij}/\partial\eta_{ij}", label=f"{label}_third",
                   why=r"The weight's slope (minus the third derivative), for the gradient of the Laplace term."),
    )


def derivation() -> Derivation:
    d = Derivation(
        name="glmm_pirls",
        title=r"Shrinkage beyond the normal: penalised IRLS, the Laplace term and link-scale shrinkage",
        summary=r"""
For a binomial or Poisson response the joint log-density is no longer quadratic in the random
effect, and its mode has no closed form.  Its derivatives in the linear predictor give the
working weights of iteratively reweighted least squares; one Newton step on the penalised
log-density of a group is penalised IRLS, and it reads as the normal model's BLUP on the link
scale: the group's working-scale deviation shrunk by $\lambda_j = \sigma_b^2/(\sigma_b^2 + 1/W_j)$.
""",
        notation=NOTATION,
    )
    mu = 1 / (1 + sp.exp(-eta))
    d = _family(d, BINOMIAL, "binomial", mu, m / (4 * sp.cosh(eta / 2) ** 2),
                -m * sp.tanh(eta / 2) / (4 * sp.cosh(eta / 2) ** 2),
                r"The curvature: minus $m_{ij}\mu_{ij}(1-\mu_{ij}) = m_{ij}/(4\cosh^2(\eta_{ij}/2))$, a form that "
                r"neither overflows nor cancels for large $|\eta_{ij}|$.")
    d = _family(d, POISSON, "poisson", sp.exp(eta), m * sp.exp(eta), m * sp.exp(eta),
                r"The curvature: minus the mean, $m_{ij}e^{\eta_{ij}}$.")
    d = d.then(
        Premise.of(EXPANSION, label="expansion"),
        Maximiser(u0 + (theta * S - u0) / (1 + theta ** 2 * W), var=u,
                  lhs=r"u_j^{(1)} = \operatorname*{arg\,max}_{u_j}",
                  why=r"Set the derivative to zero; the curvature $-(1+\theta^2W_j)$ is negative. This is Newton's "
                      r"step, $u^{(0)} - (u^{(0)} - \theta S_j)/H_j$: penalised IRLS.", label="newton"),
        Equals(theta * W * (theta * u0 + S / W) / (1 + theta ** 2 * W), label="newton_working",
               why=r"Collect the terms: the working response $\eta + (y-\mu)/w$ summed with the weights, less "
                   r"$x'\beta$, is $W_j(\theta u^{(0)}_j + S_j/W_j)$."),
    )
    d = d.then(
        Define(theta ** 2 * W / (1 + theta ** 2 * W), symbol=lam, label="lambda",
               why=r"Name the link-scale shrinkage factor."),
        Equals(lam * (theta * u0 + S / W) / theta, label="newton_shrunk",
               why=r"So $b_j^{(1)} = \theta u_j^{(1)} = \lambda_j \bar z_j$: the working-scale deviation, shrunk."),
    )
    d = d.recall("lambda", lhs=r"\lambda_j", why=r"The factor itself.")
    d = d.then(
        Equals(theta ** 2 / (theta ** 2 + 1 / W), label="link_shrinkage",
               why=r"Divide by $W_j$: the normal model's $\lambda_j$ with $n_j/\sigma^2$ replaced by the summed "
                   r"working weight $W_j$, the information the group's rows carry about $b_j$."),
        Limit(sp.S.One, var=W, point=sp.oo, lhs=r"\lambda_j",
              why=r"No pooling: a group with much information keeps its own deviation."),
    )
    d = d.recall("link_shrinkage", lhs=r"\lambda_j", why=r"And the other end.")
    d = d.then(Limit(sp.S.Zero, var=theta, point=0, lhs=r"\lambda_j",
                     why=r"Complete pooling: without between-group variance every group is predicted by $x'\beta$."))
    d = d.recall("expansion", lhs=r"\ell_j(u_j) - \tfrac12 u_j^2",
                 why=r"Laplace's method integrates the expansion about the mode ($u^{(0)}$ the mode: $u^{(0)} = \theta S_j$).")
    d = d.then(
        LogIntegral(l0 - u0 ** 2 / 2 + (theta * S - u0) ** 2 / (2 * (1 + theta ** 2 * W))
                    - sp.log(1 + theta ** 2 * W) / 2 + sp.log(2 * sp.pi) / 2,
                    var=u, centre=u0, scale=1 / sp.sqrt(1 + theta ** 2 * W),
                    lhs=r"\log\int e^{\ell_j(u) - u^2/2}\,du", label="laplace",
                    why=r"The Gaussian integral; at the mode ($\theta S_j = u^{(0)}$) it is "
                        r"$\ell_j - \tfrac12 u_j^2 - \tfrac12\log H_j + \tfrac12\log 2\pi$, and the density of $u_j$ "
                        r"brings $-\tfrac12\log 2\pi$: lme4's $-\tfrac12(-2\ell_j + u_j^2 + \log H_j)$."),
    )
    d = d.export("glmm_binomial_weight", "binomial_weight", (eta, m),
                 "IRLS working weight of a binomial-logit row.\n\nm mu (1 - mu) = m / (4 cosh(eta/2)^2).")
    d = d.export("glmm_poisson_weight", "poisson_weight", (eta, m),
                 "IRLS working weight of a Poisson-log row.\n\nm exp(eta).")
    d = d.export("glmm_binomial_dweight", "binomial_third", (eta, m),
                 "Slope of the binomial-logit working weight in eta.\n\nm mu (1 - mu) (1 - 2 mu) = -m tanh(eta/2) / (4 cosh(eta/2)^2).")
    d = d.export("glmm_poisson_dweight", "poisson_third", (eta, m),
                 "Slope of the Poisson-log working weight in eta.\n\nm exp(eta).")
    d = d.export("glmm_link_shrinkage", "link_shrinkage", (theta, W),
                 "Link-scale shrinkage factor of a group.\n\nlambda_j = sigma_b^2 / (sigma_b^2 + 1/W_j).")
    return d
