"""Argument validation for the public numeric functions (numpy only, no SymPy).

The domain names are those of :mod:`shrinkage.symbols`; the code generator writes
them into each public function, so the domains have one source of truth.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError

_DOMAIN_TEST = {
    "real": (lambda a: np.all(np.isfinite(a)), "finite"),
    "positive": (lambda a: np.all(np.isfinite(a)) and np.all(a > 0), "finite and > 0"),
    "unit": (lambda a: np.all(np.isfinite(a)) and np.all((a > 0) & (a < 1)), "in (0, 1)"),
    "few": (lambda a: np.all(np.isfinite(a)) and np.all(a >= 1) and np.all(a == np.floor(a)), "whole numbers >= 1"),
    "count": (lambda a: np.all(np.isfinite(a)) and np.all(a >= 1) and np.all(a == np.floor(a)), "whole numbers >= 1"),
    "nonnegative": (lambda a: np.all(np.isfinite(a)) and np.all(a >= 0), "finite and >= 0"),
    "several": (lambda a: np.all(np.isfinite(a)) and np.all(a >= 2) and np.all(a == np.floor(a)), "whole numbers >= 2"),
}


def _first_bad(a: np.ndarray, test) -> str:
    """The first element of ``a`` outside its domain, and where it is (for arrays)."""
    if a.ndim == 0:
        return repr(float(a))
    for index in np.ndindex(a.shape):
        if not test(a[index]):
            where = index[0] if len(index) == 1 else index
            return f"{float(a[index])!r} at index {where}"
    return "a value outside it"


def require(*specs: tuple[str, object, str]) -> tuple[np.ndarray, ...]:
    """Convert each (name, value, domain) to a float array and check it lies in its
    domain, naming the argument and the problem otherwise.  Arrays must broadcast."""
    arrays = []
    for name, value, domain in specs:
        try:
            a = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise InputError(f"{name} must be numeric, got {type(value).__name__}") from None
        if a.size == 0:
            raise InputError(f"{name} is empty")
        test, wanted = _DOMAIN_TEST[domain]
        if not test(a):
            if np.any(np.isnan(a)):
                raise InputError(f"{name} contains NaN")
            raise InputError(f"{name} must be {wanted}, got {_first_bad(a, test)}")
        arrays.append(a)
    try:
        np.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError:
        shapes = ", ".join(f"{n}{a.shape}" for (n, _, _), a in zip(specs, arrays))
        raise InputError(f"argument shapes do not match: {shapes}") from None
    return tuple(arrays)
