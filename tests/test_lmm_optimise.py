"""The optimiser's choice of start (shrinkage.lmm.optimise.minimise).

The starts other than the moment start are evaluated on a worker thread while Newton
steps run from the moment start; those steps are kept only once the values show the
moment start the best.  So the fit is the one of evaluating every start first: the same
bits with one thread or several, L-BFGS-B from the best start when another start is
better, and a failure of the early Newton steps counts only when their start is the
best.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import shrinkage
from shrinkage.errors import InputError
from shrinkage.lmm import optimise

FORMULA = "y ~ x1 + x2 + (x1 | g)"


def frame(seed: int, J: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, J, size=30 * J)
    x1, x2 = rng.normal(size=g.size), rng.normal(size=g.size)
    b = rng.multivariate_normal([0, 0], [[1.0, 0.3], [0.3, 0.25]], size=J)
    y = 2 + 0.5 * x1 - x2 + b[g, 0] + b[g, 1] * x1 + rng.normal(size=g.size)
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2, "g": g})


def bits(r) -> tuple:
    return (r.optimum.theta.tobytes(), r.fixef.to_numpy().tobytes(), r.loglik, r.sigma2,
            r.ranef["g"].to_numpy().tobytes())


@pytest.mark.parametrize("seed", range(4))
def test_one_thread_and_several_give_the_same_fit(seed, monkeypatch):
    data = frame(seed)
    monkeypatch.setenv("SHRINKAGE_THREADS", "1")
    one = shrinkage.fit(FORMULA, data=data)
    monkeypatch.setenv("SHRINKAGE_THREADS", "3")
    assert bits(shrinkage.fit(FORMULA, data=data)) == bits(one)


def _counting(monkeypatch, name: str) -> list:
    calls = []
    original = getattr(optimise, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(optimise, name, counted)
    return calls


def _poor_moment_start(monkeypatch) -> None:
    """The moment start moved far from the optimum (30x): the identity start is better."""
    original = optimise.moment_start
    monkeypatch.setattr(optimise, "moment_start", lambda pr: 30.0 * original(pr))


def test_a_better_start_than_the_moment_start_is_run_from(monkeypatch):
    data = frame(7)
    runs = _counting(monkeypatch, "_lbfgsb")
    good = shrinkage.fit(FORMULA, data=data)
    assert not runs  # the moment start was the best: Newton steps alone
    _poor_moment_start(monkeypatch)
    # Newton steps from the poor start that claim convergence where they began: kept, they
    # would be the estimate (a wrong one); discarded, L-BFGS-B from the best start decides
    original = optimise._newton
    first = []

    def stuck(pr, method, theta, value, g=None):
        if not first:
            first.append(theta)
            return theta, value, g, True
        return original(pr, method, theta, value, g)

    monkeypatch.setattr(optimise, "_newton", stuck)
    poor = shrinkage.fit(FORMULA, data=data)
    assert runs and first  # L-BFGS-B ran, and the early Newton steps did too
    assert not np.allclose(poor.optimum.theta, first[0], rtol=1e-3)
    assert poor.loglik == pytest.approx(good.loglik, rel=1e-12)
    np.testing.assert_allclose(poor.optimum.theta, good.optimum.theta, rtol=1e-6)


def test_a_failure_of_the_early_newton_steps_counts_only_from_the_best_start(monkeypatch):
    data = frame(8)
    good = shrinkage.fit(FORMULA, data=data)
    original = optimise._newton
    state = {"failed": 0}

    def failing_once(pr, method, theta, value, g=None):
        if not state["failed"]:
            state["failed"] = 1
            raise InputError("the early Newton steps failed")
        return original(pr, method, theta, value, g)

    monkeypatch.setattr(optimise, "_newton", failing_once)
    with pytest.raises(InputError, match="early Newton steps failed"):  # from the best start: the fit's error
        shrinkage.fit(FORMULA, data=data)
    state["failed"] = 0
    _poor_moment_start(monkeypatch)
    poor = shrinkage.fit(FORMULA, data=data)  # from a start that is not the best: ignored
    assert state["failed"] == 1
    assert poor.loglik == pytest.approx(good.loglik, rel=1e-12)
