"""The proof of the global ML/REML maximum (metaanalysis/certify.py) against dense matrices.

Every verdict `certify` gives on an interval is checked on a fine grid of the score computed
from the k x k matrix P itself; the tail bound T is checked beyond it; likelihoods with two
local maxima (a boundary and an interior one, or two interior ones: found by scanning the
dense log-likelihood over random data sets of the kind that has them, precise and imprecise
studies mixed) reach the dense global maximum with the proof, not the grid scan.
"""

from __future__ import annotations

import numpy as np
import pytest

import shrinkage
from shrinkage.metaanalysis import certify, estimators
from shrinkage.metaanalysis.algebra import Powers
from test_meta_dense import dense_loglik, dense_P, draw


def mixed(seed):
    """Half the studies precise (v = 0.001), half imprecise: such data sets can have two maxima."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(4, 9))
    v = np.where(rng.uniform(size=k) < 0.5, 0.001, rng.uniform(1, 50, size=k))
    y = rng.normal(size=k) * np.sqrt(v + rng.choice([0.01, 1.0, 10.0]))
    return np.ones((k, 1)), y, v


def dense_score(X, y, v, t, reml):
    P = dense_P(X, 1 / (v + t))
    Py = P @ y
    return 0.5 * (Py @ Py - (np.trace(P) if reml else np.sum(1 / (v + t))))


def local_maxima(X, y, v, reml):
    grid = np.geomspace(1e-4, 1e3, 400)
    ll = np.array([dense_loglik(X, y, v, t, reml) for t in grid])
    inner = (ll[1:-1] > ll[:-2]) & (ll[1:-1] > ll[2:])
    return int(inner.sum() + (dense_loglik(X, y, v, 0.0, reml) > ll[0]))


def likelihood(X, y, v, reml):
    return estimators.Likelihood(Powers(X[:, 1:], y, v), reml)


@pytest.mark.parametrize("reml", [False, True])
def test_every_verdict_holds_on_a_fine_grid(reml, monkeypatch):
    judged = []
    real = certify._judge
    monkeypatch.setattr(certify, "_judge", lambda a, b: judged.append((a[0], b[0], real(a, b))) or judged[-1][2])
    for seed in range(25):
        X, y, v = draw(seed)
        judged.clear()
        like = likelihood(X, y, v, reml)
        assert certify.maximise(like, 0.1, estimators.root) is not None
        for a, b, verdict in judged:
            ts = np.linspace(a, b, 41)
            s = np.array([dense_score(X, y, v, t, reml) for t in ts])
            slack = 1e-9 * np.abs(s).max()
            if verdict == "+":
                assert (s > -slack).all(), (seed, a, b)
            elif verdict == "-":
                assert (s < slack).all(), (seed, a, b)
            elif verdict in ("down", "up"):
                steps = np.diff(s) * (1 if verdict == "up" else -1)
                assert (steps > -slack).all(), (seed, a, b, verdict)


@pytest.mark.parametrize("reml", [False, True])
def test_the_score_is_negative_beyond_the_tail_bound(reml):
    for seed in range(25):
        X, y, v = draw(seed)
        T = certify.tail_bound(Powers(X[:, 1:], y, v), reml)
        for t in T * np.geomspace(1, 1e6, 30) if T > 0 else np.geomspace(1e-8, 1e6, 30):
            assert dense_score(X, y, v, t, reml) < 0, (seed, t, T)


@pytest.mark.parametrize("seed, reml", [(9, False), (14, False), (21, False), (84, False)])
def test_two_maxima_the_global_one_is_proven(seed, reml, monkeypatch):
    X, y, v = mixed(seed)
    assert local_maxima(X, y, v, reml) >= 2  # the data set is one of the kind the proof must handle

    def no_scan(*args):
        raise AssertionError("the grid scan ran: the proof gave up")

    monkeypatch.setattr(Powers, "scores", no_scan)
    r = shrinkage.meta(y, v, "REML" if reml else "ML")
    grid = np.concatenate([[0.0], np.geomspace(1e-6, 1e4, 4000)])
    best = max(dense_loglik(X, y, v, t, reml) for t in grid)
    assert dense_loglik(X, y, v, r.tau2, reml) >= best - 1e-9 * abs(best)


def test_the_scan_takes_over_after_the_limit(monkeypatch):
    X, y, v = mixed(84)
    proven = shrinkage.meta(y, v, "ML").tau2
    monkeypatch.setattr(certify, "LIMIT", 2)
    assert shrinkage.meta(y, v, "ML").tau2 == pytest.approx(proven, rel=1e-9)
