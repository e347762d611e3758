"""My implementation of the Fay-Herriot BLUP, verified against the checked derivation.

Run with `pytest examples/fay_herriot`.  assert_implements calls each function at the
corners of the domains (tau^2/s_j^2 from 1e-12 to 1e12, tau^2 = 0, data around 1e8) and
at random points, with scalars and with arrays, and compares with the derived formula
evaluated by mpmath at high precision.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from shrinkage.testing import assert_implements

HERE = Path(__file__).resolve().parent.parent  # the folder with fay_herriot.py


# --- my implementation -------------------------------------------------------------
def shrinkage(tau2, s2):
    return tau2 / (tau2 + s2)


def blup(y, mu, tau2, s2):
    return mu + shrinkage(tau2, s2) * (y - mu)


def conditional_variance(tau2, s2):
    return s2 * tau2 / (s2 + tau2)


# --- the tests ---------------------------------------------------------------------
@pytest.mark.parametrize("func,name", [(shrinkage, "fh_shrinkage"), (blup, "fh_blup"),
                                       (conditional_variance, "fh_conditional_variance")])
def test_my_functions_implement_the_derivation(func, name):
    assert_implements(func, name, derivations=HERE)


@pytest.fixture(scope="module")
def numeric():
    """The module that `shrinkage build examples/fay_herriot --out examples/fay_herriot/build` wrote."""
    path = HERE / "build" / "numeric.py"
    if not path.is_file():
        pytest.fail(f"no {path}: run `shrinkage build {HERE} --out {HERE / 'build'}` first")
    spec = importlib.util.spec_from_file_location("fay_herriot_numeric", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["fh_shrinkage", "fh_blup", "fh_conditional_variance"])
def test_the_generated_functions_implement_it_too(numeric, name):
    assert_implements(getattr(numeric, name), name, module=numeric, derivations=HERE)


def test_a_slip_is_caught():
    """s_j where s_j^2 belongs."""
    with pytest.raises(AssertionError, match="does not implement fh_shrinkage"):
        assert_implements(lambda tau2, s2: tau2 / (tau2 + np.sqrt(s2)), "fh_shrinkage", derivations=HERE)


def test_an_equal_formula_that_loses_digits_is_caught():
    """1 - s^2/(tau^2 + s^2) equals lambda_j, but has no correct digit left when tau^2 << s^2."""
    with pytest.raises(AssertionError, match=r"tau2=1e-06, s2=1000000.0"):
        assert_implements(lambda tau2, s2: 1 - s2 / (tau2 + s2), "fh_shrinkage", derivations=HERE)


def test_the_precision_weighted_form_fails_at_tau2_zero():
    """(y/s^2 + mu/tau^2) / (1/s^2 + 1/tau^2) is the BLUP for tau^2 > 0, but not at 0."""
    def weighted(y, mu, tau2, s2):
        return (y / s2 + mu / tau2) / (1 / s2 + 1 / tau2)

    with pytest.raises(AssertionError, match=r"tau2=0\.0"):
        assert_implements(weighted, "fh_blup", derivations=HERE)
    assert_implements(weighted, "fh_blup", derivations=HERE, domains={"tau2": "positive"})
