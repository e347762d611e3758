"""Generated functions at sigma_b^2 = 0 (a singular fit): the derivations assume
sigma_b^2 > 0, so the public functions may accept 0 only where the formula extends
continuously there.  Every function with a sigma_b2 (or gamma) argument is evaluated
at 0 and at a tiny positive value; both must be finite and agree."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from shrinkage import numeric
from shrinkage.errors import InputError

BOUNDARY_ARGS = ("sigma_b2", "gamma")

# Typical values for every other argument (a small unbalanced design).
N_GROUPS = np.array([1.0, 3.0, 7.0, 12.0])
VALUES = {
    "n": N_GROUPS, "ybar": np.array([0.3, -1.2, 0.8, 2.0]), "ss_within": np.array([0.0, 2.5, 6.1, 9.9]),
    "beta0": 0.4, "sigma2": 1.7, "var_beta0": 0.2,
}


def public_functions_with_boundary():
    for name, f in vars(numeric).items():
        if name.startswith("_") or not inspect.isfunction(f) or f.__module__ != numeric.__name__:
            continue
        params = list(inspect.signature(f).parameters)
        if any(p in params for p in BOUNDARY_ARGS):
            yield name, f, params


CASES = sorted(public_functions_with_boundary(), key=lambda c: c[0])


def test_there_are_functions_to_check():
    assert {"shrinkage_factor", "blup", "conditional_variance", "marginal_loglik"} <= {c[0] for c in CASES}


@pytest.mark.parametrize("name,f,params", CASES, ids=[c[0] for c in CASES])
def test_continuous_at_zero_random_effect_variance(name, f, params):
    if not all(p in VALUES or p in BOUNDARY_ARGS for p in params):
        pytest.skip(f"{name} takes arguments this test has no values for: {params}")
    at = lambda v: f(**{p: (v if p in BOUNDARY_ARGS else VALUES[p]) for p in params})  # noqa: E731
    zero, tiny = np.asarray(at(0.0)), np.asarray(at(1e-14))
    assert np.all(np.isfinite(zero)), f"{name} is not finite at sigma_b2 = 0"
    np.testing.assert_allclose(zero, tiny, rtol=1e-10, atol=1e-12)


def test_negative_variance_is_still_refused():
    with pytest.raises(InputError, match="sigma_b2"):
        numeric.shrinkage_factor(3, 1.0, -1e-9)


def test_zero_is_complete_pooling():
    assert np.all(numeric.shrinkage_factor(N_GROUPS, 2.0, 0.0) == 0)
    np.testing.assert_array_equal(numeric.predicted_group_mean(VALUES["ybar"], N_GROUPS, 0.4, 2.0, 0.0), 0.4)
