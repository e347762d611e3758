"""lme4's rule for a rank-deficient fixed-effect matrix (chkRank.drop.cols), shared by the
one-factor fit (:func:`.fit.full_rank`, from cross-products) and the fit with several
factors (:mod:`.blocked_fit`)."""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import InputError
from .summary import rank_note

__all__ = ["RANK_TOL", "RankDeficiencyWarning", "kept_columns"]


class RankDeficiencyWarning(UserWarning):
    """lme4's message "fixed-effect model matrix is rank deficient so dropping ..."."""


def outside_level() -> int:
    """The stacklevel of the first frame outside this package, counted from the caller:
    a warning points at the user's line (shrinkage.fit(...)), not ours."""
    import sys

    frame, level = sys._getframe(2), 2  # the caller of the function that warns: stacklevel 2
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] == "shrinkage":
        frame, level = frame.f_back, level + 1
    return level


RANK_TOL = 1e-7  # lme4's chkRank.drop.cols: qr(X, tol = 1e-7)


def kept_columns(A: np.ndarray, norm2: np.ndarray, names: tuple) -> tuple:
    """The columns :func:`.fit.full_rank` keeps, from a Gram matrix A of X's columns (centred
    where X has an intercept) and the raw columns' squared norms; warns naming the others."""
    A = np.array(A, dtype=float)
    p = A.shape[0]
    floor = RANK_TOL ** 2 * norm2
    try:
        L = np.linalg.cholesky(A)
        if np.all(np.diag(L) ** 2 > floor):
            return tuple(range(p))
    except np.linalg.LinAlgError:
        pass
    keep = []
    for k in range(p):  # right-looking Cholesky, a dropped column leaving the others untouched
        r = A[k, k]
        if r > floor[k] and r > 0:
            keep.append(k)
            col = A[k + 1:, k] / np.sqrt(r)
            A[k + 1:, k + 1:] -= np.outer(col, col)
    if not keep:
        raise InputError("every fixed-effect column is zero")
    dropped = [names[k] for k in range(p) if k not in keep]
    warnings.warn(f"{rank_note(len(dropped))}: {', '.join(dropped)}", RankDeficiencyWarning,
                  stacklevel=outside_level())
    return tuple(keep)
