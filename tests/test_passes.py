"""Passes on worker threads give the numbers one thread gives, bit for bit (shrinkage.passes).

The chunks of a pass may finish in any order; their results are folded in chunk order,
so sums do not depend on the number of threads (and output not on the machine).
"""

from __future__ import annotations

import random
import re
import time

import numpy as np
import pytest

from shrinkage import passes
from shrinkage.errors import InputError
from shrinkage.labels import factorize
from shrinkage.lmm.crossprod import cross_products
from shrinkage.stats import GroupStats


def test_chunks_come_back_in_order_whatever_order_they_finish_in(monkeypatch):
    monkeypatch.setenv("SHRINKAGE_THREADS", "4")
    delays = random.Random(1).sample(range(20), 20)

    def work(lo, hi, buffer):
        time.sleep(delays[lo // 10] / 2000)  # later chunks often finish first
        b = buffer(hi - lo)
        b[:] = np.arange(lo, hi)
        return b.copy()

    got = list(passes.chunk_results(work, 195, 10))
    assert [int(g[0]) for g in got] == list(range(0, 195, 10))
    assert np.array_equal(np.concatenate(got), np.arange(195))


def test_a_chunks_error_reaches_the_caller(monkeypatch):
    monkeypatch.setenv("SHRINKAGE_THREADS", "2")

    def work(lo, hi, _):
        if lo == 30:
            raise ArithmeticError(f"chunk at {lo}")
        return lo

    with pytest.raises(ArithmeticError, match="chunk at 30"):
        list(passes.chunk_results(work, 100, 10))


def test_a_bad_thread_count_is_named(monkeypatch):
    monkeypatch.setenv("SHRINKAGE_THREADS", "two")
    with pytest.raises(InputError, match="SHRINKAGE_THREADS.*'two'"):
        list(passes.chunk_results(lambda lo, hi, _: lo, 100, 10))


@pytest.mark.parametrize("value", ["abc", "0", "-2", "1.5"])
def test_a_bad_thread_count_is_named_by_every_fit(monkeypatch, tmp_path, value):
    """Issue 19: "abc" reached the one-way fit as an IndexError; 0 and -2 were taken as 1."""
    import pandas as pd

    import shrinkage
    from shrinkage import fit

    monkeypatch.setenv("SHRINKAGE_THREADS", value)
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(30), 5)
    x = rng.normal(size=g.size)
    y = 0.1 * g + x + rng.normal(size=g.size)
    df = pd.DataFrame({"y": y, "x": x, "g": g})
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    calls = (lambda: fit(y, g), lambda: fit("y ~ x + (1 | g)", data=df),
             lambda: fit(data=str(path), response="y", group="g"),  # DuckDB's one-way pass: fitted (issue 19 again)
             lambda: shrinkage.sources.group_stats(df, "y", "g"))
    for call in calls:
        with pytest.raises(InputError, match=f"SHRINKAGE_THREADS .*'{re.escape(value)}'"):
            call()


def test_take_equals_numpy(monkeypatch):
    monkeypatch.setenv("SHRINKAGE_THREADS", "3")
    rng = np.random.default_rng(5)
    table = rng.normal(size=1000)
    index = rng.integers(0, 1000, size=(1 << 18) * 3 + 17)
    assert np.array_equal(passes.take(table, index), np.take(table, index))
    with pytest.raises(IndexError):
        passes.take(table, np.array([0, 1000]))


def _fingerprints():
    """Every pass that may run on threads, on data large enough for many chunks."""
    rng = np.random.default_rng(11)
    N, J = 1_500_000, 20_000
    codes = rng.integers(0, J, N)
    y = 1e3 + rng.normal(size=J)[codes] + rng.normal(size=N)
    x1, x2 = rng.normal(size=N) + 5, rng.uniform(size=N)
    s = GroupStats.from_codes(y, codes)
    ids = rng.integers(0, 10**14, size=60_000)  # labels spread over 1e14: the hashing route
    labels, hashed = factorize(ids[rng.integers(0, ids.size, N)])
    cp = cross_products(y, [None, x1, x2], [None, x1], codes, np.arange(J), ("(Intercept)", "x1", "x2"),
                        ("(Intercept)", "x1"))
    return [s.n, s.mean, s.ss, labels, hashed, cp.XtX, cp.XtZ, cp.ZtZ, cp.Xty, cp.Zty, np.array(cp.yty)]


def test_one_thread_and_several_give_the_same_bits(monkeypatch):
    monkeypatch.setenv("SHRINKAGE_THREADS", "1")
    one = _fingerprints()
    monkeypatch.setenv("SHRINKAGE_THREADS", "3")
    several = _fingerprints()
    for a, b in zip(one, several):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_runs_its_own_passes(monkeypatch):
    """The parent's pool threads are not copied into a child: without a fresh pool there,
    the child's pass would wait forever for them."""
    import os
    import signal

    monkeypatch.setenv("SHRINKAGE_THREADS", "2")
    assert list(passes.chunk_results(lambda lo, hi, _: lo, 100, 10)) == list(range(0, 100, 10))  # pool made
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if the pass completes
        signal.alarm(20)  # a hang ends the child by SIGALRM
        ok = False
        try:
            ok = list(passes.chunk_results(lambda lo, hi, _: lo, 100, 10)) == list(range(0, 100, 10))
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status


def test_a_slow_consumer_holds_only_a_window_of_results(monkeypatch):
    monkeypatch.setenv("SHRINKAGE_THREADS", "2")
    started, ahead = [], []

    def work(lo, hi, _):
        started.append(lo)
        return lo

    for consumed, _ in enumerate(passes.chunk_results(work, 400, 10), start=1):
        time.sleep(0.002)  # the workers could run far ahead if nothing held them back
        ahead.append(len(started) - consumed)
    assert len(started) == 40 and max(ahead) <= 4, max(ahead)


def test_fits_from_several_user_threads_at_once_share_the_pool_correctly(monkeypatch):
    """A server fitting requests in its own threads: every fit equals the same fit alone."""
    from concurrent.futures import ThreadPoolExecutor

    import shrinkage

    monkeypatch.setenv("SHRINKAGE_THREADS", "2")
    rng = np.random.default_rng(2)
    data = []
    for k in range(6):
        g = rng.integers(0, 300 + 50 * k, 400_000)
        data.append((rng.normal(size=g.max() + 1)[g] + rng.normal(size=g.size), g))
    alone = [shrinkage.fit(y, g) for y, g in data]
    with ThreadPoolExecutor(6) as users:
        together = list(users.map(lambda d: shrinkage.fit(*d), data))
    for a, b in zip(alone, together):
        assert (a.beta0, a.sigma2, a.sigma_b2, a.loglik) == (b.beta0, b.sigma2, b.sigma_b2, b.loglik)
        assert a.blup.tobytes() == b.blup.tobytes()


def test_a_bad_code_in_a_late_block_is_named_with_its_position(monkeypatch):
    monkeypatch.setenv("SHRINKAGE_THREADS", "2")
    codes = np.zeros(3 << 20, dtype=np.intp)
    codes[3_000_001] = -4
    with pytest.raises(InputError, match="got -4 at position 3000001"):
        GroupStats.from_codes(np.ones(codes.size), codes)


@pytest.mark.parametrize("threads", ["1", "2"])
def test_work_in_the_background_gives_its_value_or_its_error_when_asked(monkeypatch, threads):
    monkeypatch.setenv("SHRINKAGE_THREADS", threads)
    assert passes.in_background(lambda: 41 + 1)() == 42
    waiting = passes.in_background(lambda: 1 / 0)  # raised where the result is asked for
    with pytest.raises(ZeroDivisionError):
        waiting()
