"""shrinkage.meta refuses what it cannot fit with an InputError naming the problem and its position."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import shrinkage
from shrinkage import InputError

Y = np.array([0.1, -0.3, 0.5, 0.2, 0.0])
V = np.array([0.04, 0.09, 0.05, 0.02, 0.07])


@pytest.mark.parametrize("kwargs, message", [
    ({"yi": [0.1, np.nan, 0.3], "vi": [1, 1, 1]}, r"yi has a missing or infinite value at position 1"),
    ({"yi": [0.1, 0.2, 0.3], "vi": [1, np.inf, 1]}, r"vi has a missing or infinite value at position 1"),
    ({"yi": [0.1, 0.2, 0.3], "vi": [1, 0.0, 1]}, r"vi must be positive: vi\[1\] = 0.0"),
    ({"yi": [0.1, 0.2, 0.3], "vi": [1, 1]}, r"yi has 3 values but vi has 2"),
    ({"yi": [0.1], "vi": [1]}, r"1 studies cannot estimate tau\^2 beside 1 coefficient"),
    ({"yi": Y, "vi": V, "method": "FE"}, r"method must be one of DL, PM, EB, ML, REML, HE, SJ, HS, not 'FE'"),
    ({"yi": Y, "vi": V, "test": "t"}, r"test must be 'z' or 'knha'"),
    ({"yi": Y, "vi": V, "mods": np.ones(5)}, r"not of full rank"),
    ({"yi": Y, "vi": V, "mods": [[1.0], [2.0], [np.nan], [0.0], [1.0]]}, r"moderator 'mods1' is missing or infinite at row 2"),
    ({"yi": Y, "vi": V, "mods": np.arange(4.0)}, r"mods has 4 rows but there are 5 studies"),
    ({"yi": Y, "vi": V, "mods": "~ x"}, r"a moderator formula needs data="),
    ({"yi": [["a"]], "vi": [1]}, r"yi must be numeric"),
])
def test_bad_input_is_named(kwargs, message):
    with pytest.raises(InputError, match=message):
        shrinkage.meta(**kwargs)


def test_a_missing_column_is_named():
    df = pd.DataFrame({"yi": Y, "vi": V})
    with pytest.raises(InputError, match="no column 'v' in data"):
        shrinkage.meta("yi", "v", data=df)


def test_confint_level_is_checked():
    with pytest.raises(InputError, match="level must be in"):
        shrinkage.meta(Y, V).confint_tau2(1.5)
