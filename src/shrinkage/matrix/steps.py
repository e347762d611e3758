"""Step kinds for matrix derivations, and how each is checked.

Every kind is checked twice, like the scalar steps of shrinkage.engine:

* numerically at ``POINTS`` random instances: q = 1, 2, 3, 4 in turn, random p and n_j
  (1-3 groups where a sum over groups appears), random positive definite D, at ``DPS``
  digits with mpmath;
* symbolically with explicit matrices of symbols at q = 1 and q = 2 (small n_j, p),
  in exact rational-function arithmetic (shrinkage.matrix.numbers).

Claims about a vector variable x (a maximiser, a Gaussian integral) are reduced to the
identity f(x) = f(xhat) - (x - xhat)^T P (x - xhat)/2 with the step's ``centre`` xhat and
``precision`` P, checked at random x (numeric) or for symbolic x (exact), plus P
positive definite (Sylvester's criterion at every instance; structurally, for every
size, by shrinkage.matrix.definite).  Integrals over at most two dimensions are also
checked by quadrature.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import mpmath
import sympy as sp

from ..engine import Step, Verdict, _seed, substitute
from ..errors import DerivationError, StepError
from .checking import (DPS, POINTS, Failure, NUMERIC, close, describe_value, exact_walker, explicit_sizes,
                       numeric_walkers, vector_shape, assign, probe_vector, probe_symbols)
from .definite import positive_definite
from .linalg import Mat, cholesky_upper, leading_minors_positive
from .nodes import Scalar
from .numbers import NotExact


@dataclass(frozen=True)
class MatrixStep(Step):
    """A step about matrix expressions.  ``full_rank``: draw n_j >= q, so Z_j^T Z_j is
    invertible; ``at``: fixed sizes, e.g. (("q", 1), ("p", 1)) for the one-way case."""

    full_rank: bool = False
    at: tuple = ()
    exact_sizes: tuple = ()  # Sizes of the symbolic check, if not the default q = 1, 2

    def fixed(self, name: str):
        return dict(self.at).get(name)

    def verify(self, name: str, number: int, current, definitions, symbolic: bool = True) -> Verdict:
        exprs = self.expressions(current, definitions)
        with mpmath.workdps(DPS + 10):
            return self._verify(name, number, exprs, definitions, symbolic)

    def _verify(self, name, number, exprs, definitions, symbolic) -> Verdict:
        try:
            try:
                extra = self.numeric(name, number, exprs)
            except (ArithmeticError, ValueError, TypeError) as e:
                raise Failure(f"the claim cannot be evaluated numerically on the symbols' domains: {e}") from None
            verdict, sizes = (self.symbolic(exprs, definitions) if symbolic else (None, ()))
        except Failure as failure:
            raise StepError(name, number, self.why, str(failure)) from None
        return Verdict(verdict, POINTS, self.method(exprs, extra, sizes))

    # -- to be provided by each kind ---------------------------------------------------
    def expressions(self, current, definitions) -> dict:
        """The expressions of the claim with every definition substituted."""
        return {"current": expand(current, definitions), "rhs": expand(self.rhs, definitions)}

    def numeric(self, name, number, exprs) -> str:
        raise NotImplementedError

    def symbolic(self, exprs, definitions):
        raise NotImplementedError

    def method(self, exprs, extra: str, sizes) -> str:
        groups = " (1 to 3 groups)" if _groups(exprs) else ""
        q = self.fixed("q")
        where = f"q = {q}" if q else "q = 1, 2, 3, 4"
        text = f"{POINTS} random points at {where}, random $n_j$ and $p${groups}, {DPS} digits{extra}"
        if sizes:
            text += "; SymPy exact with explicit matrices at " + ", ".join(s.describe_tex() for s in sizes)
        return text


def expand(expr, definitions):
    return substitute(expr, definitions, keep_sums=True) if expr is not None else None


def _groups(exprs) -> bool:
    from .instances import uses_groups

    return uses_groups(*[e for e in exprs.values() if isinstance(e, sp.Basic)])


def _all(exprs):
    return [e for e in exprs.values() if isinstance(e, sp.Basic)]


def _difference_is_zero(k, a, b) -> bool:
    if isinstance(a, Mat):
        return all(x == y for x, y in zip(a.entries(), b.entries())) if a.shape == b.shape else False
    return (a - b).is_zero()


def _symbolic_identity(step, exprs, pairs, probes=None):
    """Exact check of every pair (left(walker), right(walker)) at the explicit sizes.
    Returns (True, sizes) if all vanish, (None, sizes) if the exact arithmetic cannot
    represent the claim; raises Failure if a difference is provably non-zero."""
    sizes = explicit_sizes(step, _groups(exprs))
    for s in sizes:
        try:
            w, probe = exact_walker(_all(exprs), s, probes)
            for what, left, right in pairs:
                a, b = left(w, probe), right(w, probe)
                if not _difference_is_zero(w.k, a, b):
                    raise Failure(f"exact arithmetic at {s.describe()}: {what} differ")
        except NotExact:
            return None, sizes
    return True, sizes


# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class MatrixEquals(MatrixStep):
    """rhs equals the current expression (scalar or matrix), at every size."""

    kind = "equals"

    def numeric(self, name, number, exprs):
        for sizes, w in numeric_walkers(self, name, number, _all(exprs)):
            a, b = w.value(exprs["current"]), w.value(exprs["rhs"])
            if not close(a, b):
                raise Failure(f"at {sizes.describe()}: previous expression = {describe_value(a)}, "
                              f"this step = {describe_value(b)}")
        return ""

    def symbolic(self, exprs, definitions):
        return _symbolic_identity(self, exprs, [("the two sides", lambda w, _: w.value(exprs["current"]),
                                                 lambda w, _: w.value(exprs["rhs"]))])


@dataclass(frozen=True)
class MatrixSubstitute(MatrixStep):
    """rhs is the current expression with ``values`` ((symbol, replacement), ...)
    substituted, e.g. D = sigma^2 Lambda Lambda^T, or Z_j = 1 for the one-way case."""

    values: tuple = ()
    kind = "substitution"

    def expressions(self, current, definitions):
        out = super().expressions(current, definitions)
        replaced = {s for s, _ in self.values}
        if out["rhs"].free_symbols & replaced:
            raise DerivationError(f"substitution step: the result still contains {sorted(map(str, replaced & out['rhs'].free_symbols))}")
        for k, (_, r) in enumerate(self.values):
            out[f"value{k}"] = expand(r, definitions)
        return out

    def _substituted(self, w, exprs):
        from .notation import BY_CODE

        per_group, shared = {}, {}
        for k, (s, _) in enumerate(self.values):
            scope = BY_CODE[s.name].scope if isinstance(s, sp.MatrixSymbol) and s.name in BY_CODE else "global"
            (per_group if scope == "group" else shared)[s] = exprs[f"value{k}"]
        child = w.with_values({s: w.value(r) for s, r in shared.items()})
        for g in range(w.inst.J):
            if per_group:
                child = child.with_values({s: w.value(r, g) for s, r in per_group.items()}, group=g)
        return child.value(exprs["current"])

    def numeric(self, name, number, exprs):
        for sizes, w in numeric_walkers(self, name, number, _all(exprs)):
            a, b = self._substituted(w, exprs), w.value(exprs["rhs"])
            if not close(a, b):
                raise Failure(f"at {sizes.describe()}: substituted expression = {describe_value(a)}, "
                              f"this step = {describe_value(b)}")
        return ""

    def symbolic(self, exprs, definitions):
        return _symbolic_identity(self, exprs, [("the substituted expression and this step",
                                                 lambda w, _: self._substituted(w, exprs),
                                                 lambda w, _: w.value(exprs["rhs"]))])


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
        fx, fhat = assign(w, self.parts, x).value(f), assign(w, self.parts, xhat).value(f)
        d = x - xhat
        half = k.const(sp.Rational(1, 2))
        return k.add(k.add(fx, k.mul(k.const(sp.Integer(-1)), fhat)), k.mul(half, k.scalar((d.T @ P @ d).rows[0][0])))

    def check_quadratic_numeric(self, name, number, exprs, extra=None):
        rng = random.Random(_seed(name, number, "probe"))
        for sizes, w in numeric_walkers(self, name, number, _all(exprs)):
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
        fhat = assign(w, self.parts, xhat).value(exprs["current"])
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
        return "; as the Gaussian integral with this centre and precision, and by quadrature in dimension 1 and 2"

    def target(self, w, exprs, log_integral):
        return log_integral

    def quadrature(self, sizes, w, exprs, dim):
        """log of the integral by mpmath.quad at 20 digits, after the exact change of
        variables x = centre + R^{-1} u (R^T R = precision), which only spreads the
        integrand so the quadrature resolves it."""
        with mpmath.workdps(25):
            xhat, P = w.value(exprs["centre"]), w.value(exprs["precision"])
            R = cholesky_upper(P, mpmath.sqrt)
            Rinv = R.inverse(NUMERIC)
            fhat = assign(w, self.parts, xhat).value(exprs["current"])

            def integrand(*u):
                x = xhat + Rinv @ Mat(tuple((ui,) for ui in u))
                return mpmath.exp(assign(w, self.parts, x).value(exprs["current"]) - fhat)

            limits = [[-mpmath.inf, -3, 0, 3, mpmath.inf]] * dim
            value = mpmath.log(mpmath.quad(integrand, *limits)) + fhat - mpmath.log(R.det(NUMERIC))
            a = self.claimed(w, exprs, value)
            b = self.target(w, exprs, value)
            if not abs(a - b) <= mpmath.mpf(10) ** -15 * max(1, abs(b)):
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


__all__ = ["MatrixStep", "MatrixEquals", "MatrixSubstitute", "MatrixMaximiser", "MatrixLogIntegral",
           "MatrixConditional", "Scalar", "vector_shape"]
