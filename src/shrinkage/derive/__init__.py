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
"""

from .algebra import is_zero, substitute
from .checks import (CHECKS, DEFAULT_TIMEOUT, TIMEOUT_ENV, CheckedDerivation, CheckedStep, Verdict, check,
                     check_exports, verify, verify_step)
from .notation import DOMAINS, Domain, Notation, Quantity, Sampler, domain
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
    "DOMAINS", "Domain", "Notation", "Quantity", "Sampler", "domain",
    "Context", "walk", "is_zero", "substitute",
]
