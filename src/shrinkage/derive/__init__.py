"""shrinkage.derive: write derivations as chains of checked steps, check them, build on them.

A user declares the symbols in a :class:`Notation` (assumptions, sampling domain, LaTeX
and code names), states the model in :class:`Statement` objects, writes steps, and
checks:

    >>> import sympy as sp
    >>> from shrinkage.derive import Derivation, Equals, Notation, Premise, Quantity, Statement, check
    >>> N = Notation([Quantity("tau2", r"\\tau^2", "between-study variance", "positive"),
    ...               Quantity("s2", r"s_j^2", "sampling variance of study j", "positive")])
    >>> tau2, s2 = N.symbol("tau2"), N.symbol("s2")
    >>> model = Statement("weight", tau2 / (tau2 + s2), r"B_j", r"the shrinkage weight of study $j$")
    >>> d = Derivation("fh", "Fay-Herriot", "A weight.", notation=N).then(
    ...     Premise.of(model), Equals(1 / (1 + s2 / tau2), why="divide by tau^2", label="w"))
    >>> check(d).steps[1].verdict.symbolic
    True

Step kinds (each claim is checked symbolically by SymPy and numerically by mpmath at
50 digits at 24 random points of the symbols' domains):

==========================  ==========================================================
Premise.of(statement)       a statement of the model (not checked; must restate it)
Define(rhs, symbol=s)       s := rhs (a later checked step must use s)
Equals(rhs)                 rhs equals the current expression
Substitute(rhs, values=)    rhs is the current expression with values put in
Derivative(rhs, var=)       rhs = d(current)/d(var)
Maximiser(rhs, var=)        stationary with negative curvature at rhs
ConstrainedMaximiser(...)   maximiser over var >= lower (truncated, piecewise), KKT per piece
ReadOffNormal(rhs, var=)    mean or variance of the normal density exp(current)
LogIntegral / Conditional   log of the integral over var (quadrature), Bayes' rule
Limit(rhs, var=, point=)    the limit, with the distance shrinking geometrically
Sign(bound, sign=)          current > bound (or <) everywhere
Recall / Cite               restate a step of this or of another (checked) derivation
==========================  ==========================================================

``check(d, timeout=, on_step=, sources=)`` returns a :class:`CheckedDerivation` or
raises :class:`~shrinkage.errors.StepError` naming the derivation, the step and a
counterexample.  Exports must name checked steps, and every symbol must be the
notation's own (``N.symbol("tau2")``, not ``sympy.symbols("tau2")``, which lacks its
assumptions): check refuses any other at once, naming it.  A new kind registers its two checks
in :data:`CHECKS`, or has a ``verify`` method of its own.

derive imports nothing of the package but its own files and errors.py: a derivation that
names no notation takes the one installed by :func:`use_by_default` (importing
shrinkage.symbols installs the project's), and a notebook shows derivations through
shrinkage.render.notebook (registered with IPython by ``import shrinkage``).
"""

from .algebra import is_zero, substitute
from .checks import (CHECKS, DEFAULT_TIMEOUT, TIMEOUT_ENV, CheckedDerivation, CheckedStep, Verdict, check,
                     check_exports, verify, verify_step)
from .notation import DOMAINS, Domain, Notation, Quantity, Sampler, default_notation, domain, use_by_default
from .points import DPS, POINTS, REL_TOL
from .steps import (Cite, Conditional, ConstrainedMaximiser, Define, Derivation, Derivative, Equals, Export, Given,
                    Limit, LogIntegral, Maximiser, Premise, ReadOffNormal, Recall, Sign, Statement, Step, Substitute)
from .walk import Context, walk

__all__ = [
    "Cite", "Conditional", "ConstrainedMaximiser", "Define", "Derivation", "Derivative", "Equals", "Export",
    "Given", "Limit", "LogIntegral", "Maximiser", "Premise", "ReadOffNormal", "Recall", "Sign", "Statement",
    "Step", "Substitute",
    "CheckedDerivation", "CheckedStep", "Verdict", "check", "check_exports", "verify", "verify_step",
    "CHECKS", "DEFAULT_TIMEOUT", "TIMEOUT_ENV", "DPS", "POINTS", "REL_TOL",
    "DOMAINS", "Domain", "Notation", "Quantity", "Sampler", "domain", "default_notation", "use_by_default",
    "Context", "walk", "is_zero", "substitute",
]
