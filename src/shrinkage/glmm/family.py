"""The two response families of glmer with their canonical links: binomial-logit and
Poisson-log.

Every piece is a function of the linear predictor eta for one row with response y (a
proportion for the binomial) and prior weight m (the number of trials; 1 for a Poisson
count).  With a canonical link the pieces are short; the weights and their slopes are the
exports of derivations/glmm_pirls.py (shrinkage.numeric):

* ``score``  d loglik / d eta       = m (y - mu)
* ``weight`` -d2 loglik / d eta2    = m v(mu) (the IRLS working weight: binomial m mu(1-mu),
  Poisson mu), positive, so the conditional mode is the one stationary point
* ``dweight`` d weight / d eta      = minus the third derivative (binomial m mu(1-mu)(1-2mu),
  Poisson mu): the gradient of the Laplace log-determinant needs it
* ``loglik`` the full log-likelihood (lme4's nAGQ = 1 scale: the family's aic() / -2)
* ``devres`` the deviance residual 2 (loglik of the saturated model - loglik) (nAGQ > 1 scale)
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, gammaln, xlogy

from .. import numeric
from ..errors import InputError

__all__ = ["Family", "BINOMIAL", "POISSON", "family_of"]


class Family:
    name: str
    link: str

    def __repr__(self) -> str:
        return f"{self.name}({self.link})"


class _Binomial(Family):
    name, link = "binomial", "logit"

    @staticmethod
    def mu(eta):
        return expit(eta)

    @staticmethod
    def eta_of(mu):
        return np.log(mu / (1 - mu))

    @staticmethod
    def pieces(eta, y, m):
        """score, weight and dweight at eta (the weight and its slope as derived)."""
        return m * (y - expit(eta)), numeric._glmm_binomial_weight(eta, m), numeric._glmm_binomial_dweight(eta, m)

    @staticmethod
    def kernel(eta, y, m):
        """The log-likelihood's part that depends on eta: m (y eta - log(1 + e^eta)),
        written so neither tail overflows."""
        return m * (y * eta - np.logaddexp(0.0, eta))

    @staticmethod
    def constant(y, m):
        """log choose(m, m y): the counts m y and m are whole numbers (checked on input)."""
        s = m * y
        return gammaln(m + 1) - gammaln(s + 1) - gammaln(m - s + 1)

    def loglik(self, eta, y, m):
        """log dbinom(m y, m, mu), as R's binomial()$aic."""
        return self.constant(y, m) + self.kernel(eta, y, m)

    @staticmethod
    def devres(eta, y, m):
        """2 m [y log(y/mu) + (1-y) log((1-y)/(1-mu))]; 0 log 0 = 0."""
        log1pe = np.logaddexp(0.0, eta)
        log_mu, log_1mu = eta - log1pe, -log1pe
        return 2 * m * (xlogy(y, y) - y * log_mu + xlogy(1 - y, 1 - y) - (1 - y) * log_1mu)


class _Poisson(Family):
    name, link = "poisson", "log"

    @staticmethod
    def mu(eta):
        return np.exp(eta)

    @staticmethod
    def eta_of(mu):
        return np.log(mu)

    @staticmethod
    def pieces(eta, y, m):
        w = numeric._glmm_poisson_weight(eta, m)  # m e^eta: the mean too
        return m * y - w, w, numeric._glmm_poisson_dweight(eta, m)

    @staticmethod
    def kernel(eta, y, m):
        return m * (y * eta - np.exp(eta))

    @staticmethod
    def constant(y, m):
        return -m * gammaln(y + 1)

    def loglik(self, eta, y, m):
        """m log dpois(y, mu) (R's poisson()$aic with prior weights m)."""
        return self.constant(y, m) + self.kernel(eta, y, m)

    @staticmethod
    def devres(eta, y, m):
        """2 m [y log(y/mu) - (y - mu)]."""
        return 2 * m * (xlogy(y, y) - y * eta - (y - np.exp(eta)))


BINOMIAL, POISSON = _Binomial(), _Poisson()
_FAMILIES = {"binomial": BINOMIAL, "poisson": POISSON}


def family_of(family) -> Family:
    """A family named as glmer names it ("binomial", "poisson"; or the object itself)."""
    if isinstance(family, Family):
        return family
    key = str(family).lower().removesuffix("()")
    if key not in _FAMILIES:
        raise InputError(f"family must be 'binomial' or 'poisson' (canonical links logit and log), got {family!r}")
    return _FAMILIES[key]
