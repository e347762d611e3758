"""The compiled pass of shrinkage.meta (metaanalysis/kernel.py) against dense sums and the numpy pass.

The kernel gives Z'W^mZ (m = 1, 2, 3) and sum log w in one read of each row; here they are
checked against the dense products Z' diag(w)^m Z written out, every fit quantity against
the numpy pass it replaces above KERNEL_MIN studies (1e-12), and the sums are the same bits
with one thread or two, the chunks small enough that there are many.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import shrinkage
from shrinkage.metaanalysis import algebra, kernel


def draw(k, m, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(k, m)) * [1.0, 30.0, 1e-3][:m] + [0.0, 5.0, 2.0][:m]
    v = rng.gamma(2.0, 0.5, size=k)
    y = 3.0 + X @ np.linspace(0.4, -0.2, m) + rng.normal(scale=np.sqrt(v + 0.4))
    return y, v, X


def shift(X, y):
    return np.append(X.mean(axis=0), y.mean())


@pytest.mark.parametrize("order", ["C", "F"])
def test_kernel_sums_equal_the_dense_products(order):
    """The kernel centres each block of rows as it reads them (no copy): its sums equal the dense
    products of the centred matrix written out, for a row- or a column-ordered X."""
    y, v, X = draw(3001, 2)
    X = np.asarray(X, order=order)
    Z = np.column_stack([np.ones(len(y)), X - X.mean(axis=0), y - y.mean()])
    tau2 = 0.37
    G, slog = kernel.gram_powers(X, y, v, shift(X, y), tau2, True, plain=True)
    w = 1.0 / (v + tau2)
    for m in range(4):
        dense = Z.T @ np.diag(w ** (m + 1) if m < 3 else np.ones(len(y))) @ Z
        np.testing.assert_allclose(G[m], dense, rtol=1e-13, atol=1e-13 * np.abs(dense).max())
    logs = np.log(w)
    assert abs(slog - logs.sum()) <= 1e-14 * np.abs(logs).sum()
    assert kernel.gram_powers(X, y, v, shift(X, y), tau2, False)[1] == 0.0


@pytest.mark.parametrize("where, value, message", [
    ("y", np.nan, r"yi has a missing or infinite value at position 7"),
    ("v", np.inf, r"vi has a missing or infinite value at position 7"),
    ("v", 0.0, r"vi must be positive: vi\[7\] = 0.0"),
    ("v", -0.0, r"vi must be positive: vi\[7\] = -0.0"),
    ("v", -0.5, r"vi must be positive: vi\[7\] = -0.5"),
    ("M", np.nan, r"moderator 'mods2' is missing or infinite at row 7"),
    ("M", -np.inf, r"moderator 'mods2' is missing or infinite at row 7"),
    ("y", 1e200, r"the weighted sums overflow"),
])
def test_bad_values_are_named_by_the_compiled_path(monkeypatch, where, value, message):
    """Above KERNEL_MIN the values are checked by the first pass's sums (no read of its own): a bad
    value makes them nan or inf, and is then found and named as below it."""
    y, v, X = draw(300, 2)
    monkeypatch.setattr(algebra, "KERNEL_MIN", 8)
    monkeypatch.setattr(kernel, "CHUNK", 64)
    {"y": y, "v": v}.get(where, X[:, 1])[7] = value
    with pytest.raises(shrinkage.InputError, match=message):
        shrinkage.meta(y, v, mods=X)


@pytest.mark.parametrize("scale", [1e-300, 1e-5, 1.0, 1e5, 1e300, 1e308])
def test_kernel_log_sum_over_the_whole_range(scale):
    """sum log w by mantissas and exponents (one log per 32 studies): right for tiny, huge and
    (v = 1e308: w below the smallest normal double) subnormal weights."""
    rng = np.random.default_rng(1)
    v = scale * rng.uniform(0.5, 1.0, size=1500)
    logs = np.log(1.0 / v)
    slog = kernel.gram_powers(np.empty((1500, 0)), np.zeros(1500), v, np.zeros(1), 0.0, True)[1]
    assert abs(slog - logs.sum()) <= 1e-14 * np.abs(logs).sum()


def test_kernel_bits_do_not_depend_on_threads(monkeypatch):
    y, v, X = draw(20_000, 3)
    monkeypatch.setattr(kernel, "CHUNK", 1000)  # 20 chunks: several on each thread
    out = []
    for threads in ("1", "2"):
        monkeypatch.setenv("SHRINKAGE_THREADS", threads)
        out.append(kernel.gram_powers(X, y, v, shift(X, y), 0.2, True))
    assert np.array_equal(out[0][0], out[1][0]) and out[0][1] == out[1][1]


FIELDS = ("tau2", "se_tau2", "beta", "se", "QE", "I2", "H2", "vt", "QM")


@pytest.mark.parametrize("method", ["REML", "ML", "PM", "DL", "HS"])
@pytest.mark.parametrize("m", [0, 2])
def test_fit_through_the_kernel_equals_the_numpy_pass(monkeypatch, method, m):
    y, v, X = draw(4000, m, seed=m + 1)
    mods = X if m else None
    monkeypatch.setattr(algebra, "KERNEL_MIN", 10 ** 12)
    ref = shrinkage.meta(y, v, method, mods=mods)
    monkeypatch.setattr(algebra, "KERNEL_MIN", 1)
    monkeypatch.setattr(kernel, "CHUNK", 1000)
    got = shrinkage.meta(y, v, method, mods=mods)
    assert ref.tau2 > 0
    for name in FIELDS:
        np.testing.assert_allclose(getattr(got, name), getattr(ref, name), rtol=1e-12, err_msg=name)
    for fit in ("ML", "REML"):
        for stat in ("logLik", "deviance", "AIC"):
            assert got.fit_stats[fit][stat] == pytest.approx(ref.fit_stats[fit][stat], rel=1e-12)


def test_small_fits_do_not_load_numba():
    code = ("import sys, shrinkage; shrinkage.meta([0.1, 0.5, -0.2, 0.9], [0.1, 0.2, 0.15, 0.3]); "
            "assert 'numba' not in sys.modules, 'numba was loaded'")
    subprocess.run([sys.executable, "-c", code], check=True, env=os.environ.copy())
