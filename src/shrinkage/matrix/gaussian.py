"""Step kinds about a vector variable x: maximiser, Gaussian integral, conditional
density, and reading a normal density's mean or covariance off.

Each claim that the current expression f is a concave quadratic in x is reduced to the
identity f(x) = f(xhat) - (x - xhat)^T P (x - xhat)/2 with the step's ``centre`` xhat and
``precision`` P, checked at random x (numeric) or for symbolic x (exact), plus P
positive definite (Sylvester's criterion at every instance; structurally, for every
size, by shrinkage.matrix.definite).  Integrals over one or two dimensions are also
checked by quadrature.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import mpmath
import sympy as sp

from ..derive.points import seed as _seed
from ..errors import DerivationError
from .checking import NUMERIC, Failure, close, describe_value, probe_symbols, probe_vector
from .definite import positive_definite
from .linalg import Mat, cholesky_upper, leading_minors_positive
from .steps import MatrixStep, _all, _symbolic_identity, expand


# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Quadratic(MatrixStep):
    """Shared by the kinds that claim the current expression is a concave quadratic in
    ``var`` (a matrix symbol or a tuple of them, stacked) with this centre and precision."""

    var: object = None
    precision: object = None
    centre: object = None

    @property
    def parts(self) -> tuple:
        return self.var if isinstance(self.var, tuple) else (self.var,)

    def expressions(self, current, definitions):
        out = super().expressions(current, definitions)
        out["precision"] = expand(self.precision, definitions)
        out["centre"] = expand(self.centre if self.centre is not None else self.rhs, definitions)
        for key in ("precision", "centre"):
            if out[key].free_symbols & set(self.parts):
                raise DerivationError(f"{self.kind} step: the {key} depends on {self.var}")
        return out

    def _residual(self, w, exprs, x):
        """f(x) - f(xhat) + (x - xhat)^T P (x - xhat)/2: zero for the claimed quadratic."""
        k = w.k
        f = exprs["current"]
        xhat, P = w.value(exprs["centre"]), w.value(exprs["precision"])
        fx, fhat = self.assign(w, self.parts, x).value(f), self.assign(w, self.parts, xhat).value(f)
        d = x - xhat
        half = k.const(sp.Rational(1, 2))
        return k.add(k.add(fx, k.mul(k.const(sp.Integer(-1)), fhat)), k.mul(half, k.scalar((d.T @ P @ d).rows[0][0])))

    def check_quadratic_numeric(self, name, number, exprs, extra=None):
        rng = random.Random(_seed(name, number, "probe"))
        for sizes, w in self.walkers(name, number, _all(exprs)):
            P = w.value(exprs["precision"])
            if not leading_minors_positive(P, NUMERIC):
                raise Failure(f"at {sizes.describe()}: the precision is not positive definite")
            scale = max([mpmath.mpf(1)] + [abs(v) for v in P.entries()])
            for _ in range(3):
                x = probe_vector(w, self.parts, rng)
                r = self._residual(w, exprs, x)
                if not abs(r) <= mpmath.mpf(10) ** -30 * scale * max(1, max(abs(v) for v in x.entries())) ** 2:
                    raise Failure(f"at {sizes.describe()}: the expression is not the claimed quadratic in "
                                  f"{self.var} (residual {mpmath.nstr(r, 5)})")
            if extra is not None:
                extra(sizes, w)

    def quadratic_pairs(self, exprs):
        return [("f(x) - f(centre) and -(x - centre)^T P (x - centre)/2",
                 lambda w, probe: self._residual(w, exprs, probe), lambda w, probe: w.k.const(sp.Integer(0)))]

    def structural(self, exprs, definitions) -> bool:
        return positive_definite(expand(self.precision, definitions)) is True

    def symbolic_quadratic(self, exprs, definitions, more=()):
        verdict, sizes = _symbolic_identity(self, exprs, self.quadratic_pairs(exprs) + list(more),
                                            probes=probe_symbols(self.parts))
        if verdict and not self.structural(exprs, definitions):
            verdict = None
        return verdict, sizes


def _hermite(count: int):
    """Nodes and weights for the integral of g(u) exp(-u^2/2) over the real line."""
    import numpy as np

    x, w = np.polynomial.hermite.hermgauss(count)
    return [mpmath.mpf(v) * mpmath.sqrt(2) for v in x], [mpmath.mpf(v) * mpmath.sqrt(2) for v in w]


@dataclass(frozen=True)
class MatrixMaximiser(_Quadratic):
    """rhs = argmax over ``var`` of the current expression, a concave quadratic in var
    whose minus Hessian is ``precision`` (positive definite)."""

    kind = "maximiser"

    def numeric(self, name, number, exprs):
        self.check_quadratic_numeric(name, number, exprs)
        return "; as the quadratic with this centre and precision at 3 random vectors each"

    def symbolic(self, exprs, definitions):
        return self.symbolic_quadratic(exprs, definitions)


@dataclass(frozen=True)
class MatrixLogIntegral(_Quadratic):
    """rhs = log of the integral of exp(current) over var in R^k (a Gaussian integral:
    f(centre) + k/2 log(2 pi) - 1/2 log det(precision))."""

    kind = "log-integral"

    def gaussian(self, w, exprs):
        k = w.k
        xhat, P = w.value(exprs["centre"]), w.value(exprs["precision"])
        fhat = self.assign(w, self.parts, xhat).value(exprs["current"])
        dim = k.const(sp.Integer(P.nrows))
        half = k.const(sp.Rational(1, 2))
        two_pi = k.mul(k.const(sp.Integer(2)), k.const(sp.pi))
        out = k.add(fhat, k.mul(k.mul(half, dim), k.log(two_pi)))
        return k.add(out, k.mul(k.const(sp.Rational(-1, 2)), k.log(k.scalar(P.det(k)))))

    def claimed(self, w, exprs, log_integral):
        return w.value(exprs["rhs"])

    def numeric(self, name, number, exprs):
        done = []

        def compare(sizes, w):
            L = self.gaussian(w, exprs)
            a, b = self.claimed(w, exprs, L), self.target(w, exprs, L)
            if not close(a, b):
                raise Failure(f"at {sizes.describe()}: the Gaussian integral gives {describe_value(b)}, "
                              f"this step claims {describe_value(a)}")
            dim = w.value(exprs["precision"]).nrows
            if dim <= 2 and len([d for d in done if d == dim]) < 2:
                self.quadrature(sizes, w, exprs, dim)
                done.append(dim)

        self.check_quadratic_numeric(name, number, exprs, compare)
        return "; as the Gaussian integral with this centre and precision, and by quadrature in dimensions 1 and 2"

    def target(self, w, exprs, log_integral):
        return log_integral

    def quadrature(self, sizes, w, exprs, dim):
        """log of the integral by quadrature, after the exact change of variables
        x = centre + R^{-1} u (R^T R = precision), which only moves and spreads the
        integrand so that the rule resolves it: a Gauss-Hermite product rule (60 nodes
        in one dimension, 30 x 30 in two) applied to exp(f(x) - f(centre) + |u|^2/2),
        which is smooth whatever the claim.  (tanh-sinh in one dimension took 15 times
        the evaluations for the same verdicts.)"""
        with mpmath.workdps(25):
            xhat, P = w.value(exprs["centre"]), w.value(exprs["precision"])
            R = cholesky_upper(P, mpmath.sqrt)
            Rinv = R.inverse(NUMERIC)
            fhat = self.assign(w, self.parts, xhat).value(exprs["current"])

            def log_integrand(u):
                x = xhat + Rinv @ Mat(tuple((ui,) for ui in u))
                return self.assign(w, self.parts, x).value(exprs["current"]) - fhat

            rule = list(zip(*_hermite(60 if dim == 1 else 30)))
            total = mpmath.fsum(
                mpmath.fprod(w for _, w in nodes) * mpmath.exp(log_integrand([u for u, _ in nodes])
                                                               + mpmath.fsum(u * u for u, _ in nodes) / 2)
                for nodes in itertools.product(rule, repeat=dim))
            value = mpmath.log(total) + fhat - mpmath.log(R.det(NUMERIC))
            a = self.claimed(w, exprs, value)
            b = self.target(w, exprs, value)
            if not abs(a - b) <= mpmath.mpf(10) ** -12 * max(1, abs(b)):
                raise Failure(f"at {sizes.describe()}: quadrature gives {mpmath.nstr(b, 15)}, "
                              f"this step claims {mpmath.nstr(a, 15)}")

    def symbolic(self, exprs, definitions):
        more = [("this step and the Gaussian integral", lambda w, _: self.claimed(w, exprs, self.gaussian(w, exprs)),
                 lambda w, _: self.target(w, exprs, self.gaussian(w, exprs)))]
        return self.symbolic_quadratic(exprs, definitions, more)


@dataclass(frozen=True)
class MatrixConditional(MatrixLogIntegral):
    """rhs = current - log of its integral over var: the log-density of var given the
    rest (Bayes' rule).  Checked at the instance's own value of var."""

    kind = "conditional"

    def claimed(self, w, exprs, log_integral):
        return w.value(exprs["rhs"])

    def target(self, w, exprs, log_integral):
        k = w.k
        return k.add(w.value(exprs["current"]), k.mul(k.const(sp.Integer(-1)), log_integral))


@dataclass(frozen=True)
class NormalReadOff(MatrixStep):
    """The current expression is the log-density of N(mean, covariance) in ``var``; rhs
    is what is read off it (``read``: "covariance" or "mean")."""

    var: object = None
    mean: object = None
    covariance: object = None
    read: str = "covariance"
    kind = "read-off"

    def expressions(self, current, definitions):
        from .model import mvn_logpdf

        if self.read not in ("mean", "covariance"):
            raise DerivationError(f"read-off step: read must be 'mean' or 'covariance', not {self.read!r}")
        out = super().expressions(current, definitions)
        out["density"] = expand(mvn_logpdf(self.var, self.mean, self.covariance), definitions)
        out["read"] = expand(self.covariance if self.read == "covariance" else self.mean, definitions)
        out["covariance"] = expand(self.covariance, definitions)
        for key in ("read", "covariance"):
            if self.var in out[key].free_symbols:
                raise DerivationError(f"read-off step: the {key} depends on {self.var}")
        return out

    def numeric(self, name, number, exprs):
        for sizes, w in self.walkers(name, number, _all(exprs)):
            if not leading_minors_positive(w.value(exprs["covariance"]), NUMERIC):
                raise Failure(f"at {sizes.describe()}: the covariance is not positive definite")
            for what, a, b in (("the expression and the normal log-density", "current", "density"),
                               (f"this step and the {self.read}", "rhs", "read")):
                va, vb = w.value(exprs[a]), w.value(exprs[b])
                if not close(va, vb):
                    raise Failure(f"at {sizes.describe()}: {what} differ: {describe_value(va)} and {describe_value(vb)}")
        return f"; matched to the $N(\\text{{mean}}, \\text{{covariance}})$ log-density"

    def symbolic(self, exprs, definitions):
        pairs = [("the expression and the normal log-density", lambda w, _: w.value(exprs["current"]),
                  lambda w, _: w.value(exprs["density"])),
                 (f"this step and the {self.read}", lambda w, _: w.value(exprs["rhs"]), lambda w, _: w.value(exprs["read"]))]
        verdict, sizes = _symbolic_identity(self, exprs, pairs)
        if verdict and positive_definite(exprs["covariance"]) is not True:
            verdict = None
        return verdict, sizes
