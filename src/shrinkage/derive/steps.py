"""Step kinds and the Derivation: immutable values that state claims; checks.py checks them.

Each step states a new expression ``rhs`` and *how it follows* from the current one
(the rhs of the step before).  ``lhs`` is LaTeX shown to its left (empty: the chain
continues with ``=``), ``why`` the one-line justification, ``label`` a name other
steps, exports and documents refer to it by.  Only :class:`Premise` (a statement of
the model) and :class:`Define` (naming an expression) are not claims; every other
kind is checked symbolically and numerically.  A tiny chain:

    >>> import sympy as sp
    >>> x, s = sp.symbols("x s", positive=True)
    >>> d = Derivation("tiny", "A tiny derivation", "For the docs.").then(
    ...     Equals(s / (s + x), why="a fraction", label="start"))
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping

import sympy as sp

from ..errors import DerivationError
from .notation import Notation, default_notation


@dataclass(frozen=True)
class Step:
    """Base class of every step kind."""

    rhs: sp.Expr
    why: str
    lhs: str = ""
    label: str = ""

    relation = "="
    kind = "step"
    claim = True  # checked against the current expression (False: a premise or definition)


# ----------------------------------------------------------------------------------
# Not claims: where a chain starts, and names
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Statement:
    """A distributional statement of the model, stated once (the project's are in
    shrinkage.model): ``expr`` is the log-density it gives, ``lhs`` its LaTeX left side,
    ``text`` the sentence the document lists among its premises."""

    name: str
    expr: sp.Expr
    lhs: str
    text: str


@dataclass(frozen=True)
class Premise(Step):
    """A chain that starts from a statement of the model.  Not checked (it is what is
    assumed), but it must restate ``statement`` exactly, and every document lists the
    premises it uses at its start.  Build it with :meth:`of`:

        >>> import sympy as sp
        >>> from shrinkage.derive import Statement
        >>> x = sp.Symbol("x", real=True)
        >>> normal = Statement("std_normal", -x**2/2 - sp.log(2*sp.pi)/2, r"\\log p(x)", r"$x \\sim N(0, 1)$")
        >>> Premise.of(normal).rhs == normal.expr
        True
    """

    statement: Statement | None = None
    kind = "premise"
    claim = False

    @classmethod
    def of(cls, statement: Statement, why: str | None = None, lhs: str | None = None, label: str = "") -> "Premise":
        return cls(statement.expr, why=why if why is not None else statement.text,
                   lhs=statement.lhs if lhs is None else lhs, label=label, statement=statement)


@dataclass(frozen=True)
class Given(Step):
    """Deprecated: an unchecked statement.  Use Premise for the model's statements and a
    checked kind (Substitute, ReadOffNormal, Cite, ...) for everything else; a Given is
    reported by :attr:`CheckedDerivation.unchecked` and cannot be exported."""

    note: str = "given (model statement)"
    kind = "given"
    claim = False


@dataclass(frozen=True)
class Define(Step):
    """Introduce ``symbol := rhs``.  Later checks substitute the definition; the current
    expression of the chain is unchanged.  Not a claim, so never exported itself:

        >>> import sympy as sp
        >>> lam, s, t = sp.symbols("lam s t", positive=True)
        >>> Define(s / (s + t), symbol=lam, why="name the factor").symbol
        lam
    """

    symbol: sp.Symbol = None
    relation = r"\coloneqq"
    kind = "definition"
    claim = False


# ----------------------------------------------------------------------------------
# Claims about the current expression
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Equals(Step):
    """rhs equals the current expression (a rewriting)."""

    kind = "equals"


@dataclass(frozen=True)
class Substitute(Step):
    """rhs is the current expression with ``values`` put in (symbol -> expression): e.g.
    beta0 set to its estimate, or sigma_b^2 written as (tau - sigma^2)/n.  Checked by
    doing the substitution literally and comparing it with rhs, exactly and at random
    points.  ``values`` may be a dict; it is stored as sorted pairs.

        >>> import sympy as sp
        >>> b, m = sp.symbols("b m", real=True)
        >>> Substitute(-(m - 1)**2, values={b: 1}, why="put b = 1").mapping
        {b: 1}
    """

    values: tuple = ()
    kind = "substitution"

    def __post_init__(self):
        pairs = self.values.items() if isinstance(self.values, Mapping) else self.values
        pairs = tuple(sorted(((sp.sympify(k), sp.sympify(v)) for k, v in pairs), key=lambda kv: str(kv[0])))
        object.__setattr__(self, "values", pairs)

    @property
    def mapping(self) -> dict:
        return dict(self.values)


@dataclass(frozen=True)
class ReadOffNormal(Step):
    """rhs is the ``moment`` ("mean" or "variance") of ``var`` under the density exp(current):
    the current expression is a log-density quadratic in ``var``, so it is normal, with
    variance -1/(second derivative) and mean at the stationary point.  E.g. from the
    completed square, Var(b_j | y_j) = (n_j/sigma^2 + 1/sigma_b^2)^(-1):

        >>> import sympy as sp
        >>> b, p = sp.Symbol("b", real=True), sp.Symbol("p", positive=True)
        >>> ReadOffNormal(1 / p, var=b, moment="variance", why="read off").moment
        'variance'
    """

    var: sp.Symbol = None
    moment: str = "variance"
    kind = "read-off"

    def __post_init__(self):
        if self.moment not in ("mean", "variance"):
            raise DerivationError(f"ReadOffNormal: moment must be 'mean' or 'variance', not {self.moment!r}")


@dataclass(frozen=True)
class Maximiser(Step):
    """rhs is the maximiser over ``var`` of the current expression: the derivative
    vanishes there and the second derivative is negative."""

    var: sp.Symbol = None
    kind = "maximiser"


@dataclass(frozen=True)
class ConstrainedMaximiser(Step):
    """rhs is the maximiser of the current expression over ``var >= lower``, jointly with
    the variables in ``jointly`` (pairs variable -> its maximiser, unconstrained).  rhs
    and the joint maximisers may be piecewise (``Max(0, x)``, ``Piecewise``): a truncated
    estimator.  Checked on each piece: where ``var`` is interior, every partial derivative
    vanishes and the Hessian is negative definite; where ``var = lower``, the slope in
    ``var`` points out of the domain (is <= 0) and the others are stationary.

        >>> import sympy as sp
        >>> x, m = sp.Symbol("x", real=True), sp.Symbol("m", real=True)
        >>> ConstrainedMaximiser(sp.Max(0, m), var=x, why="truncate at 0").lower
        0
    """

    var: sp.Symbol = None
    lower: sp.Expr = sp.S.Zero
    jointly: tuple = ()
    kind = "constrained maximiser"

    def __post_init__(self):
        pairs = self.jointly.items() if isinstance(self.jointly, Mapping) else self.jointly
        object.__setattr__(self, "jointly", tuple((sp.sympify(k), sp.sympify(v)) for k, v in pairs))


@dataclass(frozen=True)
class LogIntegral(Step):
    """rhs = log of the integral over the real line, in ``var``, of exp(current).
    ``centre``/``scale`` only guide the quadrature (break points); they claim nothing."""

    var: sp.Symbol = None
    centre: sp.Expr = sp.S.Zero
    scale: sp.Expr = sp.S.One
    kind = "log-integral"


@dataclass(frozen=True)
class Conditional(LogIntegral):
    """rhs = current - log of the integral of exp(current) over ``var``: the log-density
    of ``var`` given everything else (Bayes' rule, when current is a joint log-density)."""

    kind = "conditional"


@dataclass(frozen=True)
class Recall(Step):
    """Restate the rhs of an earlier step (``of``, a label) to start a new chain from it."""

    of: str = ""
    kind = "recall"
    claim = False  # a restatement: checked to restate its step exactly


@dataclass(frozen=True)
class Cite(Step):
    """Restate the rhs of step ``of`` of another derivation ``source`` (checked with it),
    to start a new chain from it.  Build it with :meth:`Derivation.cite`, which copies the
    expression, so a cited result is never re-typed; the check compares it with the
    source's step and brings the source's definitions it uses along."""

    source: "Derivation" = None
    of: str = ""
    kind = "citation"
    claim = False  # a restatement: checked to restate the source's step exactly


@dataclass(frozen=True)
class Derivative(Step):
    """rhs = d(current)/d(var)."""

    var: sp.Symbol = None
    kind = "derivative"


@dataclass(frozen=True)
class Limit(Step):
    """rhs = limit of the current expression as ``var`` tends to ``point`` (0 from the
    right, or +oo).  rhs must not involve ``var``; along a sequence approaching the point
    the distance to rhs must shrink geometrically (see checks).

    ``lhs`` names what tends to rhs, not the limit: ``lhs=r"\\lambda_j"`` prints
    ``\\lambda_j \\xrightarrow{n \\to \\infty} 1``, the arrow naming ``var`` and ``point``.
    An lhs that writes the limit itself (``r"\\lim_{n \\to \\infty} \\lambda_j"``) is
    printed with "=" instead, so the limit is never shown twice."""

    var: sp.Symbol = None
    point: sp.Expr = sp.oo
    relation = r"\to"
    kind = "limit"


@dataclass(frozen=True)
class Sign(Step):
    """The current expression has sign ``sign`` (+1 or -1) relative to the bound ``rhs``
    everywhere on the symbols' domains; the current expression is unchanged."""

    sign: int = 1
    kind = "sign"

    @property
    def relation(self) -> str:  # type: ignore[override]
        return ">" if self.sign > 0 else "<"


def expressions_of(step: Step) -> list:
    """Every expression a step states: rhs and the expression fields of its kind
    (substituted values, bounds, joint maximisers, quadrature guides)."""
    out = []
    for name, value in vars(step).items():
        if name in ("symbol", "var", "statement", "source"):
            continue
        if isinstance(value, sp.Basic):
            out.append(value)
        elif isinstance(value, tuple):
            out.extend(v for pair in value if isinstance(pair, tuple) for v in pair if isinstance(v, sp.Basic))
    return out


# ----------------------------------------------------------------------------------
# Exports and the derivation
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Export:
    """A result turned into a generated numeric function: the rhs of the checked step
    ``label``, with every definition substituted, as a function of ``args``.  The first
    line of ``doc`` is a plain-words summary; the rest goes to the docstring.
    ``over_groups``: the formula sums over the groups, so its per-group arguments take one
    entry per group along their last axis; declared here, checked by the code generator."""

    function: str
    label: str
    args: tuple[sp.Symbol, ...]
    doc: str
    over_groups: bool = False


@dataclass(frozen=True)
class Derivation:
    """An immutable chain of steps.  ``then`` returns a new derivation.  ``notation``
    gives every symbol its domain and names; None means the default one the application
    installed (:func:`~shrinkage.derive.notation.use_by_default`: the project's
    :data:`shrinkage.symbols.NOTATION`)."""

    name: str
    title: str
    summary: str
    steps: tuple[Step, ...] = ()
    exports: tuple[Export, ...] = ()
    notation: "Notation | None" = field(default=None, compare=False)

    def then(self, *steps: Step) -> "Derivation":
        return replace(self, steps=self.steps + tuple(steps))

    def export(self, function: str, label: str, args: Iterable[sp.Symbol], doc: str,
               over_groups: bool = False) -> "Derivation":
        return replace(self, exports=self.exports + (Export(function, label, tuple(args), doc, over_groups),))

    def recall(self, label: str, lhs: str, why: str, as_label: str = "") -> "Derivation":
        """Continue with a new chain that starts from the rhs of step ``label``."""
        earlier = self.steps[self.step_index(label)]
        return self.then(Recall(earlier.rhs, why=why, lhs=lhs, label=as_label, of=label))

    def cite(self, source: "Derivation", label: str, lhs: str, why: str, as_label: str = "") -> "Derivation":
        """Continue with a new chain that starts from step ``label`` of ``source``."""
        earlier = source.steps[source.step_index(label)]
        return self.then(Cite(earlier.rhs, why=why, lhs=lhs, label=as_label, source=source, of=label))

    def substitute_definitions(self, symbols: Iterable[sp.Symbol], rhs: sp.Expr, why: str, lhs: str = "",
                               label: str = "") -> "Derivation":
        """Continue with a Substitute step that puts in the definitions (the latest Define
        so far) of ``symbols``: the values are copied from the Define steps, not re-typed."""
        values = {}
        for sym in symbols:
            defs = [s for s in self.steps if isinstance(s, Define) and s.symbol == sym]
            if not defs:
                raise DerivationError(f"derivation {self.name!r}: {sym} has no Define step to substitute")
            values[sym] = defs[-1].rhs
        return self.then(Substitute(rhs, why=why, lhs=lhs, label=label, values=values))

    def step(self, label: str) -> Step:
        return self.steps[self.step_index(label)]

    def step_index(self, label: str) -> int:
        for k, s in enumerate(self.steps):
            if s.label == label:
                return k
        raise DerivationError(f"derivation {self.name!r} has no step labelled {label!r}")

    def resolved_notation(self) -> "Notation":
        """The notation this derivation is checked and printed with."""
        return self.notation if self.notation is not None else default_notation()
