"""Separation: a direction d of the fixed effects along which every row's likelihood rises
or stays (X d >= 0 where all trials succeed, <= 0 where none does or a count is 0, = 0
elsewhere, > 0 or < 0 on some row).  Along beta + t d the marginal likelihood then rises
for every theta, so its maximum is at infinity: lme4 stops somewhere out there with huge
estimates and convergence warnings (no documented value); here the fit is refused, naming
the columns, once the optimiser has failed (the linear program runs only then).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog

from ..errors import InputError

__all__ = ["separating_direction", "separated_or"]


def separating_direction(pr, cols=None) -> np.ndarray | None:
    """d (one entry per column of X, or of its columns ``cols``; max |d| = 1) if the rows
    are separated, else None (a linear program: maximise the summed one-sided X d subject
    to the signs above)."""
    use = pr.m > 0
    X, y = pr.X[use], pr.y[use]
    if cols is not None:
        X = X[:, cols]
    scale = np.maximum(np.max(np.abs(X), axis=0), 1e-300)
    Xs = X / scale
    low = y <= 0
    high = (y >= 1) if pr.family.name == "binomial" else np.zeros(y.size, dtype=bool)
    sign = np.where(high, 1.0, -1.0)
    edge = low | high
    if not edge.any():
        return None
    rows = sign[edge, None] * Xs[edge]
    inner = Xs[~edge]
    res = linprog(-rows.sum(axis=0), A_ub=-rows, b_ub=np.zeros(rows.shape[0]),
                  A_eq=inner if inner.size else None, b_eq=np.zeros(inner.shape[0]) if inner.size else None,
                  bounds=[(-1, 1)] * X.shape[1], method="highs")
    if res.status != 0 or -res.fun <= 1e-7 * max(1, edge.sum()):
        return None
    return res.x / np.max(np.abs(res.x))


def _refuse(pr, names) -> None:
    """An InputError naming the separating columns, if the rows are separated."""
    d = separating_direction(pr)
    if d is None:
        return
    icpt = [k for k, n in enumerate(names) if n == "(Intercept)"]
    alone = [n for k, n in enumerate(names) if n != "(Intercept)" and separating_direction(pr, icpt + [k]) is not None]
    cols = alone or [n for n, v in zip(names, d) if abs(v) > 1e-6]  # a column that separates alone, else the LP's
    shown = [n for n in cols if n != "(Intercept)"] or cols
    raise InputError(f"the response is perfectly separated by the fixed effect{'s' if len(shown) > 1 else ''} "
                     f"{', '.join(shown)}: the likelihood rises without bound along X d with d = "
                     f"({', '.join(f'{n}: {v:.3g}' for n, v in zip(names, d))}), so no finite estimate "
                     "exists (lme4 stops at huge values with convergence warnings); drop or merge the "
                     "column, or use a penalised fit")


def separated_or(run, pr, names):
    """run() (an optimum with .modes.eta); where it fails, or ends with a fitted mean
    within e^-30 of 0 (or of 1 for the binomial) on some row, the linear program decides:
    separated rows are refused naming the columns."""
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out = run()
    except (InputError, np.linalg.LinAlgError):
        _refuse(pr, names)
        raise
    eta = out.modes.eta[pr.m > 0]
    if np.any(eta < -EXTREME) or (pr.family.name == "binomial" and np.any(eta > EXTREME)):
        _refuse(pr, names)
    return out


EXTREME = 30.0  # |eta| beyond which a fitted mean is within e^-30 of its bound
