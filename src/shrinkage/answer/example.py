"""The numbers the answer shows: Dyestuff fitted by REML, and the shrinkage quantities
computed by the functions generated from the very derivations the answer quotes.

The estimates come from :func:`shrinkage.fit` (the package's REML fit, tested against
lme4 and dense matrices); everything per batch (lambda_j, the predictions, the
standard deviations) from the numeric module generated in memory from the checked
derivations, so a figure never uses a stale ``numeric.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .. import datasets
from ..derive import CheckedDerivation
from ..fit import fit


def generated_functions(checked: Sequence[CheckedDerivation]) -> dict:
    """The numeric module generated from exactly these checked derivations, in memory."""
    from ..codegen import generate

    namespace: dict = {"__name__": "shrinkage._answer_numeric", "__package__": "shrinkage"}
    exec(compile(generate(checked), "<generated numeric module>", "exec"), namespace)
    return namespace


@dataclass(frozen=True)
class Example:
    """Dyestuff: the REML fit and, per batch, lambda_j, predictions and standard deviations."""

    labels: tuple[str, ...]
    n: np.ndarray
    ybar: np.ndarray
    beta0: float
    sigma2: float
    sigma_b2: float
    lam: np.ndarray
    predicted: np.ndarray
    cond_sd: np.ndarray
    pev_sd: np.ndarray


def dyestuff_example(fns: Mapping, name: str = "dyestuff") -> Example:
    d = datasets.load(name)
    r = fit(d.y, d.groups, method="REML")
    n, ybar = r.n.astype(float), r.ybar
    s2, sb2, beta0 = r.sigma2, r.sigma_b2, r.beta0
    lam = fns["shrinkage_factor"](n, s2, sb2)
    predicted = fns["predicted_group_mean"](ybar, n, beta0, s2, sb2)
    cond = fns["conditional_variance"](n, s2, sb2)
    pev = fns["prediction_error_variance"](n, s2, sb2, fns["gls_beta0_variance"](n, s2, sb2))
    labels = tuple(str(g) for g in r.groups)
    return Example(labels, n, ybar, beta0, s2, sb2, lam, predicted, np.sqrt(cond), np.sqrt(pev))
