"""Data at extreme scales: fitted exactly as the same data at unit scale, or refused with
the true reason (the variance itself leaves double precision), never as "no
within-group variation".

The oracle is the fit at unit scale and the exact transformation rule of the model:
y -> k y multiplies beta0 and the BLUPs by k, the variances by k^2, and subtracts
(N - p) log k from the log-likelihood (p = 1 for REML, 0 for ML)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shrinkage import GroupStats, InputError, datasets, fit

SCALE_RTOL = 1e-12


def _data():
    d = datasets.load("dyestuff")
    return d.y, d.groups


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("k", [1e-150, 1e-120, 1e-60, 1e60, 1e125, 1e150])
def test_scaled_data_fit_as_unit_data(k, method):
    y, g = _data()
    ref, r = fit(y, g, method), fit(y * k, g, method)
    p = 1 if method == "REML" else 0
    assert r.beta0 == pytest.approx(ref.beta0 * k, rel=SCALE_RTOL)
    assert r.sigma2 == pytest.approx(ref.sigma2 * k * k, rel=SCALE_RTOL)
    assert r.sigma_b2 == pytest.approx(ref.sigma_b2 * k * k, rel=SCALE_RTOL)
    assert r.loglik == pytest.approx(ref.loglik - (len(y) - p) * math.log(k), rel=SCALE_RTOL)
    np.testing.assert_allclose(r.blup, ref.blup * k, rtol=1e-11)
    np.testing.assert_allclose(r.conditional_variance, ref.conditional_variance * k * k, rtol=1e-11)
    np.testing.assert_allclose(r.ybar, ref.ybar * k, rtol=1e-14)
    np.testing.assert_allclose(r.ss, ref.ss * k * k, rtol=1e-12)


def test_rescaling_happens_only_where_the_squares_would_fail():
    y, g = _data()
    assert GroupStats.from_data(y, g).scale == 1.0
    assert GroupStats.from_data(y * 1e150, g).scale != 1.0
    assert GroupStats.from_data(y * 1e-150, g).scale != 1.0


@pytest.mark.parametrize("k, side", [(1e154, "above the largest"), (1e300, "above the largest"),
                                     ("max", "above the largest"), (1e-200, "below the smallest"),
                                     (1e-300, "below the smallest"), (2.0 ** -1060, "below the smallest")])
def test_unrepresentable_variances_are_refused_for_that_reason(k, side):
    y, g = _data()
    k = 1e308 / y.max() if k == "max" else k
    sigma2 = fit(y, g).sigma2
    with pytest.raises(InputError, match=f"estimate of sigma2 is about 1e[-0-9.]+, {side}") as e:
        fit(y * k, g)
    expected = math.log10(sigma2) + 2 * math.log10(k)
    assert f"1e{expected:.1f}" in str(e.value)
    assert "within-group" not in str(e.value)


def test_large_offset_unit_noise_still_fits():
    y, g = _data()
    ref = fit(y, g)
    r = fit(y + 1e8, g)
    assert r.sigma2 == pytest.approx(ref.sigma2, rel=1e-8)
    assert r.beta0 == pytest.approx(ref.beta0 + 1e8, rel=1e-15)


def test_merge_of_differently_scaled_chunks(rng):
    """One chunk needs rescaling and the other not: the merge equals the whole."""
    g = rng.integers(0, 5, size=200)
    y = rng.normal(size=200) * 1e119
    y[100:] *= 16.0  # second half beyond 2^400 in its means? make it so:
    a, b = GroupStats.from_data(y[:100], g[:100]), GroupStats.from_data(y[100:] * 1e3, g[100:])
    whole = GroupStats.from_data(np.concatenate([y[:100], y[100:] * 1e3]), g)
    assert a.scale != b.scale
    m = a.merge(b)
    assert m.scale == max(a.scale, b.scale)
    np.testing.assert_allclose(m.mean * m.scale, whole.mean * whole.scale, rtol=1e-12)
    np.testing.assert_allclose(m.ss * m.scale**2, whole.ss * whole.scale**2, rtol=1e-12)


def test_non_finite_y_named_although_not_checked_up_front():
    with pytest.raises(InputError, match="NaN at position 3"):
        fit([1.0, 2.0, 3.0, np.nan, 5.0], [0, 0, 1, 1, 1])
    with pytest.raises(InputError, match="infinite value at position 0"):
        fit([-np.inf, 2.0, 3.0, 4.0, 5.0], [0, 0, 1, 1, 1])
    with pytest.raises(InputError, match=r"infinite value at position 0 \(3 non-finite"):  # inf - inf: NaN sum
        fit([np.inf, np.nan, -np.inf, 4.0, 5.0], [0, 0, 0, 1, 1])
