"""The ML and REML criteria at given variances, profiled over beta0.

The log-likelihood is a concave quadratic in beta0 with maximiser the GLS estimate
(derivations/gls.py).  Plugging that in gives the profiled ML criterion; integrating
beta0 out under a flat prior (a Gaussian integral, thanks to the quadratic) gives the
REML criterion, on lme4's scale (the constant (N - 1) log(2 pi) / 2 with one fixed effect).
"""

import sympy as sp
from sympy.codegen.cfunctions import log1p

from shrinkage import model
from shrinkage.derive import Define, Derivation, Equals, LogIntegral, Maximiser, Substitute
from shrinkage.display import frac, half, neg, terms, times
from shrinkage.symbols import J, beta0, j, k, quantity, sigma2, sigma_b2

n_j, ybar_j, ss_j = model.n_j, model.ybar_j, model.ss_j
beta0_hat = quantity("beta0_gls").symbol
w_j = quantity("w_gls").indexed
two_pi = 2 * sp.pi


def over(ix, expr):
    return sp.Sum(expr, (ix, 1, J))


def weight(ix):
    """w_ix = n_ix / (sigma^2 + n_ix sigma_b^2), the precision of ybar_ix."""
    return frac(n_j[ix], terms(sigma2, times(n_j[ix], sigma_b2)))


def bracket(centre):
    """The j-th group's -2 log p(y_j) without its 2 pi constant, with beta0 = centre."""
    return terms(
        times(n_j[j], sp.log(sigma2)),
        log1p(frac(times(n_j[j], sigma_b2), sigma2)),
        frac(ss_j[j], sigma2),
        times(w_j[j], terms(ybar_j[j], neg(centre)) ** 2),
    )


def group_loglik(centre):
    """log p(y_j) (document marginal, last step) as the j-th term, with beta0 = centre."""
    return neg(half(terms(times(n_j[j], sp.log(two_pi)), bracket(centre))))


W = quantity("w_total").symbol
ell_ml = quantity("ell_ml").symbol
loglik = over(j, group_loglik(beta0))
profiled = over(j, group_loglik(beta0_hat))


def derivation() -> Derivation:
    d = Derivation(
        name="ml_reml",
        title=r"The ML and REML criteria for the variance components",
        summary=r"""
The variance components $\sigma^2$ and $\sigma_b^2$ are estimated by maximising a criterion
built from the marginal likelihood, never the joint density of data and random effects
(which is unbounded as $\sigma_b^2 \to 0$).  The log-likelihood
$\ell(\beta_0) = \sum_j \log p(\mathbf y_j)$ is a concave quadratic in $\beta_0$ whose
maximiser is the GLS estimate $\hat\beta_0$ (document \emph{gls}).
\emph{Maximum likelihood} plugs $\hat\beta_0$ in: the profiled log-likelihood, a function
of the variances alone.  \emph{Restricted (residual) maximum likelihood} instead
integrates $\beta_0$ out under a flat prior.  Because $\ell$ is exactly quadratic in
$\beta_0$, the integral is Gaussian, and REML equals the profiled log-likelihood plus
$\tfrac12\log 2\pi - \tfrac12\log\sum_j w_j$.  That extra term accounts for the
degree of freedom spent on estimating $\beta_0$: it is why REML variance estimates are less
biased downwards than ML ones.  The last step writes the REML criterion on the scale
lme4 reports as the \texttt{logLik} of a REML fit: the constant is
$-\tfrac12(N-1)\log 2\pi$ with $N = \sum_j n_j$, i.e.\ $(N-p)$ with $p=1$ fixed effect,
and there is no $\log\det(X^{\mathsf T}X)$ term.  The tests check that convention against
a dense computation and against statsmodels' \texttt{MixedLM} with \texttt{reml=True}.
Sums over groups are checked on random data sets with $J \le 4$ groups of random
sizes; the integral over $\beta_0$ by quadrature.
""",
    )
    d = model.sum_over_groups(d, __file__, lhs=r"\ell(\beta_0) = \sum_{j=1}^{J} L_j", label="loglik_sum")
    d = d.then(
        Define(weight(j), symbol=w_j[j], why=r"The GLS weight of group $j$, the precision of $\bar y_j$ (document \emph{gls})."),
        Define(over(k, weight(k)), symbol=W, why=r"The total weight, the precision of $\hat\beta_0$."),
        Define(
            frac(over(k, times(weight(k), ybar_j[k])), W),
            symbol=beta0_hat,
            why=r"The GLS estimate of $\beta_0$ (document \emph{gls}).",
        ),
        Equals(
            loglik,
            label="loglik",
            why=r"In the weights: $n_j(\bar y_j - \beta_0)^2/(\sigma^2 + n_j\sigma_b^2) = w_j(\bar y_j - \beta_0)^2$.",
        ),
        Maximiser(
            beta0_hat,
            var=beta0,
            lhs=r"\operatorname*{arg\,max}_{\beta_0} \ell(\beta_0)",
            why=r"A concave quadratic in $\beta_0$: its maximiser is the GLS estimate $\hat\beta_0$ (document \emph{gls}).",
        ),
    )
    d = d.recall("loglik", lhs=r"\ell(\beta_0)", why=r"Back to the log-likelihood, to put the maximiser in.")
    d = d.then(
        Substitute(
            profiled,
            values={beta0: beta0_hat},
            lhs=r"\ell_{\mathrm{ML}}(\sigma^2, \sigma_b^2) = \max_{\beta_0} \ell(\beta_0)",
            why=r"The profiled log-likelihood: $\ell$ at its maximiser $\hat\beta_0$. The ML estimates of $(\sigma^2, \sigma_b^2)$ maximise it; with them, $\hat\beta_0$ is the ML estimate of $\beta_0$.",
            label="ml",
        ),
        Define(profiled, symbol=ell_ml, why=r"Name it."),
    )
    d = d.recall("loglik", lhs=r"\ell(\beta_0)", why=r"Back to the log-likelihood, to integrate $\beta_0$ out.")
    d = d.then(
        LogIntegral(
            terms(ell_ml, neg(half(sp.log(frac(W, two_pi))))),
            var=beta0,
            centre=beta0_hat,
            scale=1 / sp.sqrt(W),
            lhs=r"\ell_{\mathrm{R}}(\sigma^2, \sigma_b^2) = \log\!\int_{-\infty}^{\infty}\! e^{\ell(\beta_0)}\,d\beta_0",
            why=r"REML: integrate $\beta_0$ out under a flat prior. As a function of $\beta_0$, $\ell$ is a concave quadratic with maximum $\ell_{\mathrm{ML}}$ at $\hat\beta_0$ and second derivative $-W$; so $\ell(\beta_0) = \ell_{\mathrm{ML}} - \tfrac12 W(\beta_0 - \hat\beta_0)^2$ and the integral is that of a Gaussian bump, $e^{\ell_{\mathrm{ML}}}\sqrt{2\pi/W}$.",
            label="reml_integral",
        ),
        Equals(
            neg(half(terms(
                times(terms(over(j, n_j[j]), -1), sp.log(two_pi)),
                sp.log(W),
                over(j, bracket(beta0_hat)),
            ))),
            why=r"Collect the constants: $-\tfrac12 N\log 2\pi + \tfrac12\log 2\pi = -\tfrac12(N-1)\log 2\pi$, $N = \sum_j n_j$. This is the REML log-likelihood as lme4 reports it: $-\tfrac12[(N-p)\log 2\pi + \log\det V + \log\det(X^{\mathsf T}V^{-1}X) + r^{\mathsf T}V^{-1}r]$ with $p = 1$, $X = \mathbf 1$, $X^{\mathsf T}V^{-1}X = \sum_j w_j$.",
            label="reml",
        ),
    )
    args = (quantity("n").symbol, quantity("ybar").symbol, quantity("ss_within").symbol, sigma2, sigma_b2)
    d = d.export(
        "ml_criterion", "ml", args,
        "Profiled ML log-likelihood at given variances (maximised over beta0), total over groups.\n\n"
        "sum_j log p(y_j) at beta0 = GLS estimate; the ML estimates of the variances maximise it.\n"
        "n, ybar, ss_within hold one entry per group along their last axis; sigma2 and sigma_b2\n"
        "are scalars, or arrays of shape (..., 1) for a batch of problems.",
        over_groups=True,
    )
    d = d.export(
        "reml_criterion", "reml", args,
        "REML log-likelihood at given variances (beta0 integrated out under a flat prior).\n\n"
        "-(N-1)/2 log(2 pi) - 1/2 log det V - 1/2 log(sum_j w_j) - 1/2 r' V^-1 r, on lme4's scale\n"
        "(the logLik of a REML fit).  n, ybar, ss_within hold one entry per group along their\n"
        "last axis; sigma2 and sigma_b2 are scalars, or arrays of shape (..., 1) for a batch.",
        over_groups=True,
    )
    return model.with_references(d)
