"""shrinkage.testing.strategies: optional (hypothesis needed only when used), drawing
inside the symbols' domains with their corners, and useful: a property test written with
them finds the slip that assert_implements finds."""

from __future__ import annotations

import numpy as np
import pytest

from shrinkage import numeric


def lam_slip(n, sigma2, sigma_b2):  # sigma^2 where sigma^2/n_j belongs
    return sigma_b2 / (sigma_b2 + sigma2)


def test_strategies_are_optional_and_say_what_is_missing():
    """Without hypothesis: shrinkage.testing imports and works; the strategies module
    names the missing package."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "import shrinkage.testing as t\n"
            "t.assert_implements(lambda n, sigma2, sigma_b2: n*sigma_b2/(n*sigma_b2+sigma2), 'shrinkage_factor', draws=8)\n"
            "try:\n    import shrinkage.testing.strategies\nexcept ImportError as e:\n    print('ImportError:', e)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "ImportError: shrinkage.testing.strategies needs hypothesis: pip install hypothesis" in run.stdout


def test_strategies_draw_inside_the_domains_and_reach_the_corners():
    hypothesis = pytest.importorskip("hypothesis")
    from shrinkage.testing import strategies as sst

    seen = {"var": [], "var0": [], "n": [], "data": [], "kw": []}

    @hypothesis.settings(max_examples=300, database=None, derandomize=True)
    @hypothesis.given(sst.variances(), sst.variances(allow_zero=True), sst.counts(), sst.data(),
                      sst.arguments("gls_beta0"))
    def collect(v, v0, n, x, kw):
        seen["var"].append(v), seen["var0"].append(v0), seen["n"].append(n), seen["data"].append(x)
        seen["kw"].append(kw)

    collect()
    assert all(1e-6 <= v <= 1e6 for v in seen["var"]) and {1e-6, 1e6} <= set(seen["var"])
    assert 0.0 in seen["var0"] and all(v >= 0 for v in seen["var0"])
    assert all(n >= 1 and n == int(n) and n <= 1e9 for n in seen["n"]) and 1e9 in seen["n"]
    assert any(abs(x) > 1e8 - 10 for x in seen["data"]) and any(abs(x) < 10 for x in seen["data"])
    for kw in seen["kw"]:
        assert set(kw) == {"n", "ybar", "sigma2", "sigma_b2"}
        assert kw["n"].shape == kw["ybar"].shape and kw["n"].ndim == 1
        assert np.ptp(kw["ybar"]) <= 2 * 4.0  # one shared offset, unit-scale noise


def test_a_property_test_with_the_strategies_finds_the_slip():
    """What a user's property test gets: the slipped lambda is found wrong, quickly."""
    hypothesis = pytest.importorskip("hypothesis")
    from shrinkage.testing import strategies as sst

    @hypothesis.settings(max_examples=200, database=None, derandomize=True)
    @hypothesis.given(sst.arguments("shrinkage_factor"))
    def agrees(kw):
        np.testing.assert_allclose(lam_slip(**kw), numeric.shrinkage_factor(**kw), rtol=1e-9)

    with pytest.raises(AssertionError):
        agrees()
