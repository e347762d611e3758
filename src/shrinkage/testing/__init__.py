"""Verify your own implementation of a derived formula: ``assert_implements``.

    from shrinkage.testing import assert_implements

    def my_lambda(n, sigma2, sigma_b2):
        return n * sigma_b2 / (n * sigma_b2 + sigma2)

    assert_implements(my_lambda, "shrinkage_factor")   # raises AssertionError if it differs

Hypothesis strategies for the symbols' domains are in :mod:`shrinkage.testing.strategies`
(imported only on request, so hypothesis is needed only when they are used).
"""

from ._implements import DEFAULT_RTOL, Evaluation, Report, assert_implements
from ._reference import Reference, for_function, for_step


def reference(name, *, module=None, derivations=None) -> Reference:
    """The reference ``assert_implements`` uses for ``name`` (a generated function's name,
    or ``(derivation, label)``): its expression, arguments, domains and an mpmath
    evaluator (``Reference.evaluate``)."""
    if isinstance(name, tuple):
        return for_step(name[0], name[1], derivations)
    return for_function(name, module, derivations)


__all__ = ["assert_implements", "reference", "Reference", "Report", "Evaluation", "DEFAULT_RTOL"]
