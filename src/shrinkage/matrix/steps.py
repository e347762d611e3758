"""Step kinds for matrix derivations, and how each is checked.

Every kind is checked twice, like the scalar steps of shrinkage.derive:

* numerically at ``POINTS`` random instances: q = 1, 2, 3, 4 in turn, random p and n_j
  (1-3 groups where a sum over groups appears), random positive definite D, at ``DPS``
  digits with mpmath;
* symbolically with explicit matrices of symbols at q = 1 and q = 2 (small n_j, p),
  in exact rational-function arithmetic (shrinkage.matrix.numbers).

This module holds the base class and the two kinds that are identities (equal, equal
after a substitution); shrinkage.matrix.gaussian holds the kinds about a vector
variable (maximiser, integral, conditional density, read-off).
"""

from __future__ import annotations

from dataclasses import dataclass

import mpmath
import sympy as sp

from ..derive import Step, Verdict, substitute
from ..errors import DerivationError, StepError
from .checking import DPS, POINTS, Failure, assign, close, describe_value, exact_walker, explicit_sizes, numeric_walkers
from .linalg import Mat
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

    # -- where the numeric check evaluates: a kind for other designs overrides these ----
    def walkers(self, name: str, number: int, exprs):
        """(sizes, walker) at each random instance of the numeric check."""
        return numeric_walkers(self, name, number, exprs)

    def assign(self, w, parts, x: Mat):
        """The walker with the (stacked) vector variable ``parts`` set to x."""
        return assign(w, parts, x)

    def equality(self, rhs, why: str) -> "MatrixStep":
        """The equality check of this kind's instances (mutation testing's equivalence)."""
        return MatrixEquals(rhs, why=why, at=self.at, full_rank=self.full_rank)

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
            except DerivationError as e:  # e.g. a matrix no Define step gives a meaning: name the step
                raise Failure(str(e)) from None
            verdict, sizes = (self.symbolic(exprs, definitions) if symbolic else (None, ()))
        except Failure as failure:
            raise StepError(name, number, self.why, str(failure), self.label or self.kind) from None
        return Verdict(verdict, POINTS, self.method(exprs, extra, sizes))

    # -- to be provided by each kind ---------------------------------------------------
    def expressions(self, current, definitions) -> dict:
        """The expressions of the claim with every definition substituted (and, not an
        expression, the claim as written: for :func:`_held_identity`)."""
        return {"current": expand(current, definitions), "rhs": expand(self.rhs, definitions),
                "as_written": (current, self.rhs, definitions)}

    def numeric(self, name, number, exprs) -> str:
        raise NotImplementedError

    def symbolic(self, exprs, definitions):
        raise NotImplementedError

    def method(self, exprs, extra: str, sizes) -> str:
        groups = " (1 to 3 groups)" if _groups(exprs) else ""
        q, p = self.fixed("q"), self.fixed("p")
        where = f"$q = {q}$" if q else "$q = 1, 2, 3, 4$"
        sizes_p = f"$p = {p}$" if p else "$p$"
        text = f"{POINTS} random points at {where}, random $n_j$ and {sizes_p}{groups}, {DPS} digits{extra}"
        if sizes == HELD:
            text += "; SymPy with the defined quantities held as symbols"
        elif sizes:
            text += "; SymPy exact with explicit matrices at " + ", ".join(s.describe_tex() for s in sizes)
        return text


def expand(expr, definitions):
    return substitute(expr, definitions, keep_sums=True) if expr is not None else None


def _groups(exprs) -> bool:
    from .instances import uses_groups

    return uses_groups(*[e for e in exprs.values() if isinstance(e, sp.Basic)])


def _as_scalar(k, v):
    """A 1x1 matrix compares with a scalar as its entry."""
    return k.scalar(v.rows[0][0]) if isinstance(v, Mat) and v.shape == (1, 1) else v


def _all(exprs):
    return [e for e in exprs.values() if isinstance(e, sp.Basic)]


def _difference_is_zero(k, a, b) -> bool:
    a, b = _as_scalar(k, a), _as_scalar(k, b)
    if isinstance(a, Mat):
        return all(x == y for x, y in zip(a.entries(), b.entries())) if a.shape == b.shape else False
    return (a - b).is_zero()


HELD = "held"  # sizes of a symbolic check done on the claim as written (see _held_identity)


def _held_identity(exprs, left, changed=()):
    """(True, HELD) if SymPy shows left(current) = rhs as written, with the defined
    quantities held as symbols on their declared domains, else None.  Sound when the
    claim is scalar and no held definition involves a symbol the step replaces
    (``changed``): an identity for every value of the held symbols holds for theirs."""
    from .nodes import GroupMatSum, GroupStack, GroupSum, Scalar

    current, rhs, definitions = exprs["as_written"]
    a, b = left(current), rhs
    if any(e.has(sp.MatrixSymbol, Scalar, GroupSum, GroupMatSum, GroupStack) for e in (a, b)):
        return None
    for sym in (a.free_symbols | b.free_symbols) & set(definitions):
        if expand(sym, definitions).free_symbols & set(changed):
            return None
    difference = sp.simplify(sp.expand_log(a - b, force=False))
    return (True, HELD) if difference == 0 else None


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
        for sizes, w in self.walkers(name, number, _all(exprs)):
            a, b = w.value(exprs["current"]), w.value(exprs["rhs"])
            if not close(a, b):
                raise Failure(f"at {sizes.describe()}: previous expression = {describe_value(a)}, "
                              f"this step = {describe_value(b)}")
        return ""

    def symbolic(self, exprs, definitions):
        return _held_identity(exprs, self.as_written) or _symbolic_identity(
            self, exprs, [("the two sides", lambda w, _: w.value(exprs["current"]), lambda w, _: w.value(exprs["rhs"]))])

    def as_written(self, current):
        """The written current expression as this kind compares it with rhs."""
        return current


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
        absent = sorted(str(s) for s, _ in self.values if s not in exprs["current"].free_symbols)
        if absent:
            raise Failure(f"the expression does not contain {', '.join(absent)}: substituting it claims nothing")
        for sizes, w in self.walkers(name, number, _all(exprs)):
            a, b = self._substituted(w, exprs), w.value(exprs["rhs"])
            if not close(a, b):
                raise Failure(f"at {sizes.describe()}: substituted expression = {describe_value(a)}, "
                              f"this step = {describe_value(b)}")
        return ""

    def symbolic(self, exprs, definitions):
        held = _held_identity(exprs, lambda c: c.xreplace(dict(self.values)), changed=[v for v, _ in self.values])
        return held or _symbolic_identity(self, exprs, [("the substituted expression and this step",
                                                 lambda w, _: self._substituted(w, exprs),
                                                 lambda w, _: w.value(exprs["rhs"]))])


@dataclass(frozen=True)
class MatrixSumOverGroups(MatrixEquals):
    """rhs = the current expression (a term of group j) summed over the groups j = 1..J:
    the groups are independent, so their log-densities add."""

    kind = "sum over groups"

    def expressions(self, current, definitions):
        from .nodes import GroupSum

        out = super().expressions(current, definitions)
        out["current"] = GroupSum(out["current"])
        return out

    def as_written(self, current):
        from .nodes import GroupSum

        return GroupSum(current)


@dataclass(frozen=True)
class MatrixRescale(MatrixEquals):
    """rhs = ``factor`` times the current expression: e.g. lme4's deviance, -2 times a
    log-likelihood.  Checked as the identity factor * current = rhs."""

    factor: sp.Expr = sp.Integer(-2)
    kind = "rescaling"

    def __post_init__(self):
        object.__setattr__(self, "factor", sp.sympify(self.factor))

    def expressions(self, current, definitions):
        out = super().expressions(current, definitions)
        out["current"] = sp.Mul(sp.sympify(self.factor), out["current"], evaluate=False)
        return out

    def as_written(self, current):
        return sp.Mul(sp.sympify(self.factor), current, evaluate=False)
