"""Sufficient statistics: stable two-pass computation, exact chunk merging, validation."""

from __future__ import annotations

import sqlite3
from fractions import Fraction

import numpy as np
import pytest

from shrinkage import GroupStats, InputError, fit
from shrinkage.table import stream_stats


def exact_stats(y, g):
    """Oracle: n, mean, S per label in exact rational arithmetic (no floating point)."""
    out = {}
    for label in sorted(set(g.tolist())):
        vals = [Fraction(v) for v in y[g == label]]
        m = sum(vals) / len(vals)
        out[label] = (len(vals), m, sum((v - m) ** 2 for v in vals))
    return out


def assert_matches_exact(stats, y, g, rtol):
    ex = exact_stats(y, g)
    assert stats.labels.tolist() == list(ex)
    for k, label in enumerate(ex):
        n, m, s = ex[label]
        assert stats.n[k] == n
        assert abs(stats.mean[k] - float(m)) <= rtol * abs(float(m)) + 1e-300
        assert abs(stats.ss[k] - float(s)) <= rtol * float(s) + 1e-300


@pytest.fixture
def data():
    rng = np.random.default_rng(20261125)
    g = rng.integers(0, 9, size=700)
    y = rng.normal(size=700) + g * 0.3
    return y, g


def test_two_pass_matches_exact_arithmetic(data):
    y, g = data
    assert_matches_exact(GroupStats.from_data(y, g), y, g, rtol=1e-12)


@pytest.mark.parametrize("offset", [1e6, 1e8, 1e10])
def test_large_offset_keeps_its_digits(data, offset):
    """y around 1e8 with unit noise: S_j to ~1e-7 relative, where sum y^2 - n ybar^2 fails."""
    y, g = data
    y = y + offset
    stats = GroupStats.from_data(y, g)
    ex = exact_stats(y, g)
    naive = np.array([float(np.sum(y[g == k] ** 2) - np.sum(g == k) * np.mean(y[g == k]) ** 2) for k in ex])
    exact = np.array([float(v[2]) for v in ex.values()])
    ours = np.max(np.abs(stats.ss - exact) / exact)
    bad = np.max(np.abs(naive - exact) / exact)
    assert ours < 1e-6 * (offset / 1e8) ** 2 + 1e-9
    assert bad > 1e3 * ours  # the test of the test: the naive formula is measurably worse


@pytest.mark.parametrize("between", [1.0, 1e3, 1e6])
def test_shifted_pass_is_kept_only_where_accurate(between):
    """Groups whose means lie far apart (between-group scale 1e3, 1e6 against unit noise,
    about 1e8): the one shifted pass would cancel up to 2 x 6 decimal digits there, so its
    guard sends them to the exact second pass; with groups close together (1.0) it is kept.
    Either way S_j matches exact rational arithmetic to 1e-12."""
    from shrinkage import stats as stats_module

    rng = np.random.default_rng(7)
    g = rng.integers(0, 15, size=900)
    y = 1e8 + between * rng.normal(size=15)[g] + rng.normal(size=900)
    n = np.bincount(g)
    _, ss, redo = stats_module._shifted(y, g, n)
    assert ss is not None
    assert (redo is None) == (between == 1.0)
    assert_matches_exact(GroupStats.from_data(y, g), y, g, rtol=1e-12)


def test_shifted_pass_without_its_guard_is_wrong(monkeypatch):
    """The test of the test: with the guard off, the shifted formula's cancellation shows
    (groups 1e6 apart, unit noise): S_j is off by far more than the 1e-12 above."""
    from shrinkage import stats as stats_module

    monkeypatch.setattr(stats_module, "_CANCEL", 0.0)
    rng = np.random.default_rng(7)
    g = rng.integers(0, 15, size=900)
    y = 1e8 + 1e6 * rng.normal(size=15)[g] + rng.normal(size=900)
    with pytest.raises(AssertionError):
        assert_matches_exact(GroupStats.from_data(y, g), y, g, rtol=1e-8)


def _mixed_guard_draw(seed: int, failing: int, K: int = 12, N: int = 600):
    """y around 1e8 whose group means lie within 1e3 of each other: groups with noise
    1e3 pass the shifted pass's guard, the ``failing`` groups with unit noise do not
    (their means sit ~1e2-1e3 of their spread from the shift: up to 6 digits cancel)."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, K, size=N)
    sd = np.where(np.arange(K) < failing, 1.0, 1e3)
    y = 1e8 + rng.uniform(-1e3, 1e3, size=K)[g] + sd[g] * rng.normal(size=N)
    return y, g


@pytest.mark.parametrize("failing, route", [(2, "their rows"), (9, "all rows")])
def test_groups_failing_the_guard_are_redone_alone(monkeypatch, failing, route):
    """Only the groups that fail the guard take the exact second pass: over their own rows
    when they hold at most a quarter of the data, else over all; the kept and the redone
    S_j both match exact rational arithmetic to 1e-12, over 20 random draws."""
    from shrinkage import stats as stats_module

    seen = []
    real = stats_module._squared_deviations
    monkeypatch.setattr(stats_module, "_squared_deviations", lambda y, c, m: seen.append(y.size) or real(y, c, m))
    for seed in range(20):
        y, g = _mixed_guard_draw(seed, failing)
        _, _, redo = stats_module._shifted(y, g, np.bincount(g))
        assert redo is not None and 0 < redo.sum() < redo.size  # a mixture: some kept, some redone
        seen.clear()
        assert_matches_exact(GroupStats.from_data(y, g), y, g, rtol=1e-12)
        rows = int(np.isin(g, np.flatnonzero(redo)).sum())
        assert seen == [rows if route == "their rows" else y.size]


def test_groups_failing_the_guard_are_wrong_unless_redone(monkeypatch):
    """The test of the test: without the second pass for the failing groups their S_j
    (the shifted formula's) misses the exact value by far more than 1e-12."""
    from shrinkage import stats as stats_module

    monkeypatch.setattr(stats_module, "_redo_groups", lambda *a: None)
    y, g = _mixed_guard_draw(0, 2)
    with pytest.raises(AssertionError):
        assert_matches_exact(GroupStats.from_data(y, g), y, g, rtol=1e-12)


def test_merge_of_chunks_equals_whole(data):
    y, g = data
    whole = GroupStats.from_data(y, g)
    cuts = [0, 1, 50, 51, 300, 699, 700]
    parts = [GroupStats.from_data(y[a:b], g[a:b]) for a, b in zip(cuts, cuts[1:])]
    merged = parts[0]
    for p in parts[1:]:
        merged = merged.merge(p)
    assert merged.labels.tolist() == whole.labels.tolist()
    np.testing.assert_array_equal(merged.n, whole.n)
    np.testing.assert_allclose(merged.mean, whole.mean, rtol=1e-13)
    np.testing.assert_allclose(merged.ss, whole.ss, rtol=1e-11)
    # merging is symmetric and handles groups present on one side only
    a = GroupStats.from_data(y[:10], g[:10])
    b = GroupStats.from_data(y[10:], g[10:])
    np.testing.assert_allclose(a.merge(b).ss, b.merge(a).ss, rtol=1e-12)


def test_string_labels_sorted_and_codes_path():
    y = np.array([1.0, 2.0, 4.0, 8.0, 3.0])
    g = np.array(["b", "a", "b", "c", "a"])
    s = GroupStats.from_data(y, g)
    assert s.labels.tolist() == ["a", "b", "c"]
    assert s.n.tolist() == [2, 2, 1]
    np.testing.assert_allclose(s.mean, [2.5, 2.5, 8.0])
    np.testing.assert_allclose(s.ss, [0.5, 4.5, 0.0])
    c = GroupStats.from_codes(y, np.array([1, 0, 1, 3, 0]))  # code 2 never occurs: dropped
    assert c.labels.tolist() == [0, 1, 3]
    np.testing.assert_allclose(c.ss, [0.5, 4.5, 0.0])


def test_stats_are_read_only(data):
    s = GroupStats.from_data(*data)
    with pytest.raises(ValueError):
        s.mean[0] = 1.0


def test_streaming_csv_equals_in_memory(tmp_path, data):
    y, g = data
    path = tmp_path / "d.csv"
    path.write_text("grp,val\n" + "".join(f"g{k},{float(v)!r}\n" for k, v in zip(g, y)))
    streamed = stream_stats(path, response="val", group="grp", chunk_rows=97)
    whole = GroupStats.from_data(y, np.array([f"g{k}" for k in g]))
    assert streamed.labels.tolist() == whole.labels.tolist()
    np.testing.assert_allclose(streamed.ss, whole.ss, rtol=1e-11)
    a, b = fit(stats=streamed), fit(y, np.array([f"g{k}" for k in g]))
    assert a.loglik == pytest.approx(b.loglik, rel=1e-12)


def test_sqlite_group_by(data):
    """The README's database recipe: two passes in SQL, then GroupStats.from_arrays."""
    y, g = data
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE obs (grp INTEGER, y REAL)")
    con.executemany("INSERT INTO obs VALUES (?, ?)", zip(g.tolist(), y.tolist()))
    rows = con.execute("""
        WITH m AS (SELECT grp, COUNT(*) AS n, AVG(y) AS mean FROM obs GROUP BY grp)
        SELECT m.grp, m.n, m.mean, SUM((o.y - m.mean) * (o.y - m.mean))
        FROM obs o JOIN m ON o.grp = m.grp GROUP BY m.grp ORDER BY m.grp""").fetchall()
    stats = GroupStats.from_arrays(*map(np.array, zip(*rows)))
    whole = GroupStats.from_data(y, g)
    np.testing.assert_allclose(stats.ss, whole.ss, rtol=1e-10)
    assert fit(stats=stats).loglik == pytest.approx(fit(y, g).loglik, rel=1e-12)


@pytest.mark.parametrize("y, g, message", [
    ([], [], "empty"),
    ([1.0, np.nan], [1, 2], "NaN"),
    ([1.0, np.inf], [1, 2], "infinite"),
    ([1.0, 2.0], [1], "different lengths"),
    (["a", "b"], [1, 2], "numeric"),
    ([[1.0], [2.0]], [1, 2], "1-d"),
    ([1.0, 2.0], [1.0, np.nan], "NaN"),
    ([1.0, 2.0], np.array([None, "a"], dtype=object), "missing"),
    ([1.0, 2.0], np.array([1, "a"], dtype=object), "mixed types"),
])
def test_bad_input_is_named(y, g, message):
    with pytest.raises(InputError, match=message):
        GroupStats.from_data(y, g)


@pytest.mark.parametrize("kw, message", [
    (dict(labels=[1, 2], n=[2, 0], mean=[0, 0], ss=[1, 0]), "whole numbers"),
    (dict(labels=[1, 2], n=[2, 1.5], mean=[0, 0], ss=[1, 0]), "whole numbers"),
    (dict(labels=[1, 2], n=[2, 2], mean=[0, np.nan], ss=[1, 0]), "mean"),
    (dict(labels=[1, 2], n=[2, 2], mean=[0, 0], ss=[1, -1]), ">= 0"),
    (dict(labels=[1, 2], n=[2, 1], mean=[0, 0], ss=[1, 1]), "one observation"),
    (dict(labels=[1, 1], n=[2, 2], mean=[0, 0], ss=[1, 1]), "distinct"),
    (dict(labels=[1, 2], n=[2], mean=[0, 0], ss=[1, 1]), "different lengths"),
    (dict(labels=[], n=[], mean=[], ss=[]), "no groups"),
])
def test_from_arrays_validates(kw, message):
    with pytest.raises(InputError, match=message):
        GroupStats.from_arrays(**kw)


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint16, np.uint64])
def test_codes_of_any_integer_type(dtype):
    y = np.array([1.0, 2.0, 4.0, 8.0])
    s = GroupStats.from_codes(y, np.array([0, 1, 0, 1], dtype=dtype))
    np.testing.assert_allclose(s.ss, [4.5, 18.0])


@pytest.mark.parametrize("codes, message", [
    (np.array([0.0, 1.0, 0.0, 1.0]), "integers"),
    (np.array([True, False, True, False]), "integers"),
    (np.array([0, -1, 0, 1]), ">= 0"),
    (np.array([0, 1, 0]), "different lengths"),
])
def test_bad_codes(codes, message):
    with pytest.raises(InputError, match=message):
        GroupStats.from_codes(np.array([1.0, 2.0, 4.0, 8.0]), codes)
