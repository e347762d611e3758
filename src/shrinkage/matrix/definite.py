"""Positive definiteness by structure, for every size at once.

A maximiser, a Gaussian integral and a normal read-off need the precision (minus the
Hessian) to be positive definite.  :func:`positive_definite` proves it from textbook
rules, each sound on its own, and the facts the model states:

* D is positive definite, Lambda_theta is lower triangular with positive diagonal (so
  invertible), sigma^2 > 0, and the stacked fixed-effects design X has full column rank p;
* I is positive definite; A^{-1} and c A (c > 0) are when A is; M^T A M is positive
  semidefinite when A is, and definite when also M is invertible; a sum is definite
  when one term is definite and the others semidefinite; I_J (x) A and a sum over
  groups of definite terms are definite;
* sum_j X_j^T W_j X_j with every W_j positive definite is definite because X has full
  column rank; so is [X Z]^T [X Z] + diag(0, P) with P positive definite.

It answers True or None (not shown), never False.
"""

from __future__ import annotations

import sympy as sp
from sympy.matrices.expressions.kronecker import KroneckerProduct

from .nodes import GroupMatSum

DEFINITE_SYMBOLS = {"D"}
INVERTIBLE_SYMBOLS = {"D", "Lambda_theta"}


def _symbol(e) -> str | None:
    return e.name if isinstance(e, sp.MatrixSymbol) else None


def _split_scalar(e):
    """A MatMul's positive scalar factor and the remaining matrix factors."""
    if isinstance(e, sp.MatMul):
        scalars = [a for a in e.args if not isinstance(a, sp.MatrixExpr)]
        mats = [a for a in e.args if isinstance(a, sp.MatrixExpr)]
        return sp.Mul(*scalars), mats
    return sp.Integer(1), [e]


def _invertible(e) -> bool:
    if _symbol(e) in INVERTIBLE_SYMBOLS or isinstance(e, sp.Identity):
        return True
    if isinstance(e, sp.Transpose):
        return _invertible(e.arg)
    return positive_definite(e) is True


def _product(mats):
    return mats[0] if len(mats) == 1 else sp.MatMul(*mats)


def _sandwiches(mats) -> list:
    """Every way to read the factors as M^T A M: pairs (M, A), with A None for M^T M."""
    found = []
    for k in range(1, len(mats) // 2 + 1):
        prefix, suffix = _product(mats[:k]), _product(mats[-k:])
        if sp.Transpose(prefix).doit() == suffix.doit():
            middle = mats[k:len(mats) - k]
            found.append((suffix, _product(middle) if middle else None))
    return found


def semidefinite(e) -> bool:
    if positive_definite(e):
        return True
    if isinstance(e, sp.MatAdd):
        return all(semidefinite(a) for a in e.args)
    if isinstance(e, GroupMatSum):
        return semidefinite(e.term)
    c, mats = _split_scalar(e)
    if c.is_positive and len(mats) == 1 and mats[0] is not e:
        return semidefinite(mats[0])
    if c.is_positive:
        return any(middle is None or semidefinite(middle) for _, middle in _sandwiches(mats))
    return False


def positive_definite(e) -> bool | None:
    """True if the rules above prove e positive definite; None otherwise."""
    if _symbol(e) in DEFINITE_SYMBOLS or isinstance(e, sp.Identity):
        return True
    if isinstance(e, sp.Inverse):
        return positive_definite(e.arg)
    if isinstance(e, sp.MatAdd):
        if _stacked_normal_equations(e):
            return True
        for k, a in enumerate(e.args):
            if positive_definite(a) and all(semidefinite(b) for i, b in enumerate(e.args) if i != k):
                return True
        return None
    if isinstance(e, GroupMatSum):
        return True if (positive_definite(e.term) or _group_sum(e.term)) else None
    if isinstance(e, KroneckerProduct):
        return True if all(positive_definite(a) for a in e.args) else None
    c, mats = _split_scalar(e)
    if not c.is_positive:
        return None
    if len(mats) == 1 and mats[0] is not e:
        return positive_definite(mats[0])
    for left, middle in _sandwiches(mats):
        if (middle is None or positive_definite(middle)) and _invertible(left):
            return True
    return None


def _group_sum(term) -> bool:
    """X_j^T W_j X_j with W_j positive definite: the sum over groups is definite since the
    stacked X has full column rank."""
    c, mats = _split_scalar(term)
    return c.is_positive is True and any(
        _symbol(left) == "X_j" and middle is not None and positive_definite(middle) is True
        for left, middle in _sandwiches(mats))


def _stacked_normal_equations(e) -> bool:
    """[X Z]^T [X Z] / c + diag(0, P) with X of full column rank and P definite."""
    gram, pad = None, None
    for a in e.args:
        if isinstance(a, sp.BlockDiagMatrix) or (isinstance(a, sp.BlockMatrix) and a.blockshape == (2, 2)):
            pad = a
        else:
            gram = a
    if gram is None or pad is None:
        return False
    c, mats = _split_scalar(gram)
    if not c.is_positive:
        return False
    blocks = pad.blocks
    return any(
        middle is None and isinstance(left, sp.BlockMatrix) and _symbol(left.blocks[0, 0]) == "X_all"
        and isinstance(blocks[0, 0], sp.ZeroMatrix) and positive_definite(blocks[1, 1]) is True
        for left, middle in _sandwiches(mats))

