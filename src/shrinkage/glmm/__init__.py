"""Generalised linear mixed models: binomial-logit and Poisson-log responses with a random
intercept, fitted as lme4's glmer (Laplace, adaptive Gauss-Hermite quadrature)."""

from .fit import glmer
from .result import GlmmResult

__all__ = ["glmer", "GlmmResult"]
