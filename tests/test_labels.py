"""Data grouped as written: labels to codes (four routes), missing labels, CSV text labels.

The oracle groups rows with a Python dict keyed by the label itself (no numpy, no
pandas), so it shares no code with shrinkage.labels."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import polars as pl
import pytest

from shrinkage import GroupStats, InputError, fit
from shrinkage.labels import factorize
import shrinkage.labels as labels_module
from shrinkage.table import read_columns, stream_stats


def oracle(y, labels):
    """{label: (n, mean, S)} by a dict over the labels as given, two passes in Python."""
    rows: dict = {}
    for v, g in zip(y, labels):
        rows.setdefault(g, []).append(float(v))
    out = {}
    for g in sorted(rows):
        vals = rows[g]
        m = sum(vals) / len(vals)
        out[g] = (len(vals), m, sum((v - m) ** 2 for v in vals))
    return out


def assert_is_oracle(stats, y, labels):
    ex = oracle(y, labels)
    assert stats.labels.tolist() == list(ex)
    assert stats.n.tolist() == [v[0] for v in ex.values()]
    np.testing.assert_allclose(stats.mean, [v[1] for v in ex.values()], rtol=1e-13)
    np.testing.assert_allclose(stats.ss, [v[2] for v in ex.values()], rtol=1e-11, atol=1e-12)


LABELS = {
    "compact ints": lambda rng, n: rng.integers(-3, 40, size=n),
    "scattered int64": lambda rng, n: rng.integers(0, 30, size=n) * 7_919_000_003 - 2**40,
    "large uint64": lambda rng, n: (rng.integers(0, 25, size=n).astype(np.uint64) + np.uint64(2**64 - 100)),
    "int8": lambda rng, n: rng.integers(-5, 5, size=n).astype(np.int8),
    "bool": lambda rng, n: rng.integers(0, 2, size=n).astype(bool),
    "floats": lambda rng, n: rng.integers(0, 20, size=n) * 0.37 - 2.0,
    "strings": lambda rng, n: np.array([f"s{k}" for k in rng.integers(0, 30, size=n)]),
    "object strings": lambda rng, n: np.array([f"s{k:03d}" for k in rng.integers(0, 30, size=n)], dtype=object),
    "datetimes": lambda rng, n: np.datetime64("2020-01-01") + rng.integers(0, 15, size=n).astype("timedelta64[D]"),
}


@pytest.mark.parametrize("kind", list(LABELS))
@pytest.mark.parametrize("pandas_present", [True, False])
def test_every_route_groups_as_the_oracle(rng, kind, pandas_present, monkeypatch):
    labels = LABELS[kind](rng, 500)
    y = rng.normal(size=500) + 3.0
    if not pandas_present:
        monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas -> ImportError: np.unique route
    assert_is_oracle(GroupStats.from_data(y, labels), y, labels.tolist())


def test_compact_route_is_taken_and_scattered_is_hashed(rng):
    g = rng.integers(5, 50, size=1000)
    lab, codes = factorize(g)
    assert lab[0] == 5 and codes.max() <= 44  # offset, no hashing: labels are the range
    lab2, codes2 = factorize(g * 10**12)
    assert np.array_equal(lab2[codes2], g * 10**12)  # hashed: codes name the labels ...
    used = np.unique(codes2)
    assert sorted(lab2[used].tolist()) == sorted(set((g * 10**12).tolist()))  # ... one code per label


def _check_codes(g):
    """labels[codes] is every row's label, the labels are the distinct ones in sorted
    order (Python's sort of the Python ints), and the codes are 0..J-1, all used."""
    lab, codes = factorize(g)
    assert lab.dtype == g.dtype
    assert [lab[c] for c in codes.tolist()] == g.tolist()  # element by element, in Python
    assert lab.tolist() == sorted(set(g.tolist()))
    assert sorted(set(codes.tolist())) == list(range(lab.size))
    return lab, codes


@pytest.mark.parametrize("kind", ["spread", "powers_of_two", "uint64_top", "int32", "extremes", "all_distinct"])
def test_hashing_rounds_code_every_row(rng, kind, monkeypatch):
    """Integer labels outside a compact range go through the hashing rounds: keys that
    collide (multiples of 2^40 share low bits; uint64 beyond 2^63; int32 spread over its
    range; int64's extremes; every label distinct) still get one code per label."""
    monkeypatch.setattr(labels_module, "_FEW", 0)  # the hashing rounds at any J
    J = 5000
    g = {"spread": lambda: rng.choice(10**14, size=J, replace=False)[rng.integers(0, J, 40000)],
         "powers_of_two": lambda: (rng.integers(0, J, 40000) << 40) - (1 << 62),
         "uint64_top": lambda: rng.integers(0, J, 40000).astype(np.uint64) * np.uint64(2**50) + np.uint64(2**63),
         "int32": lambda: rng.integers(-2**31, 2**31 - 1, 40000).astype(np.int32),
         "extremes": lambda: np.array([2**63 - 1, -2**63, 0, 5, 2**63 - 1, -2**63] * 7, dtype=np.int64),
         "all_distinct": lambda: rng.permutation(40000).astype(np.int64) * 3**30}[kind]()
    _check_codes(g)


def test_hashing_leftovers_are_sorted(rng, monkeypatch):
    """After the last round, keys still unplaced are coded by a sort: with a multiplier
    that sends every key to the same slot, one key is placed per round, the rest left over."""


    monkeypatch.setattr(labels_module, "_FEW", 0)
    monkeypatch.setattr(labels_module, "_multiplier", lambda r: 1)  # h = top bits of the key: all equal here
    g = rng.integers(0, 3000, 20000) * 7_919 + 10**15  # spread past the compact range: hashed
    seen = []
    real = labels_module._in_sorted_order
    monkeypatch.setattr(labels_module, "_in_sorted_order", lambda t, rest, c, d: seen.append(rest.size) or real(t, rest, c, d))
    _check_codes(g)
    assert seen[0] > 0  # keys were left over after the last round, and coded by the sort


def test_text_labels_are_not_coerced(tmp_path):
    """'007' and '7', '+5' and '5' are different groups; the integer coercion of the past
    (the test of the test) would have merged them."""
    labels = ["007", "7", "+5", "5", "007", "7", "+5", "5", "x", "x"]
    y = [1.0, 2.0, 3.5, 4.0, 1.5, 2.25, 3.0, 4.5, 9.0, 9.5]
    path = tmp_path / "d.csv"
    path.write_text("y,g\n" + "".join(f"{v},{g}\n" for v, g in zip(y, labels)))
    s = stream_stats(path, "y", "g")
    assert s.labels.tolist() == ["+5", "007", "5", "7", "x"]
    assert_is_oracle(s, y, labels)
    assert GroupStats.from_data(y, [str(int(v)) if v != "x" else v for v in labels]).n_groups == 3


def test_grouping_independent_of_order_and_chunking(tmp_path, rng):
    """Chunks of one row to all rows, rows shuffled: the same groups and statistics.
    Some chunks hold only integer-looking labels, others not (the old per-chunk decision)."""
    labels = [str(k) for k in rng.integers(0, 12, size=300)] + ["07", "7.0", "a"] * 10
    y = rng.normal(size=len(labels))
    whole = oracle(y, labels)
    for order in (np.arange(len(y)), rng.permutation(len(y))):
        path = tmp_path / "d.csv"
        path.write_text("g,y\n" + "".join(f"{labels[i]},{float(y[i])!r}\n" for i in order))
        for chunk in (1, 7, 299, 10**6):
            s = stream_stats(path, "y", "g", chunk_rows=chunk)
            assert s.labels.tolist() == list(whole)
            assert s.n.tolist() == [v[0] for v in whole.values()]
            np.testing.assert_allclose(s.ss, [v[2] for v in whole.values()], rtol=1e-11)
    assert fit(stats=s).loglik == pytest.approx(fit(y, np.array(labels, dtype=object)).loglik, rel=1e-13)


def test_empty_csv_field_is_a_missing_label(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('y,g\n1,a\n2,a\n\n3,"b\nc"\n4,\n5,b\n')
    with pytest.raises(InputError, match=r"column 'g' has a missing value on line 7"):
        stream_stats(path, "y", "g", chunk_rows=2)
    with pytest.raises(InputError, match=r"line 7"):
        read_columns(path, "y", "g")


def test_na_is_missing_as_r_writes_it(tmp_path):
    """R's write.csv writes a missing value as NA in any column (quoted text beside it);
    read.csv, pandas and DuckDB (fit(data=...)) read it as missing: so does the report's
    reader, never a group called "NA"."""
    from shrinkage.sources import group_stats

    path = tmp_path / "d.csv"
    path.write_text('"y","g"\n1,"a"\n2,NA\n3,"b"\n5,"b"\n')
    for read in (lambda: stream_stats(path, "y", "g"), lambda: group_stats(path, "y", "g")):
        with pytest.raises(InputError, match="column 'g' has (a missing value on line 3|1 missing label)"):
            read()
    path.write_text("y,g\n1,a\nNA,a\n")
    with pytest.raises(InputError, match="column 'y' has a missing value on line 3"):
        stream_stats(path, "y", "g")


def _datetimes_with_nat():
    return np.array(["2020-01-01", "2020-01-02", "NaT", "2020-01-01"], dtype="datetime64[D]")


MISSING = {
    "float64 NaN": lambda: np.array([1.0, 2.0, np.nan, 1.0]),
    "float32 NaN": lambda: np.array([1.0, 2.0, np.nan, 1.0], dtype=np.float32),
    "float16 NaN": lambda: np.array([1.0, 2.0, np.nan, 1.0], dtype=np.float16),
    "float32 NaN in objects": lambda: np.array(["a", "b", np.float32("nan"), "a"], dtype=object),
    "None in objects": lambda: np.array(["a", "b", None, "a"], dtype=object),
    "pandas NA in objects": lambda: np.array(["a", "b", pd.NA, "a"], dtype=object),
    "NaT in objects": lambda: np.array(["a", "b", pd.NaT, "a"], dtype=object),
    "NaT in datetime64": _datetimes_with_nat,
    "None in a list": lambda: ["a", "b", None, "a"],
    "pandas string Series": lambda: pd.Series(["a", "b", None, "a"], dtype="string"),
    "pandas Int64 array": lambda: pd.array([1, 2, None, 1], dtype="Int64"),
    "pandas Categorical": lambda: pd.Categorical(["a", "b", None, "a"]),
    "polars null": lambda: pl.Series(["a", "b", None, "a"]),
}


@pytest.mark.parametrize("kind, pandas_present", [(k, True) for k in MISSING]
                         + [(k, False) for k in MISSING if "pandas" not in k])
def test_missing_labels_are_refused_with_their_position(kind, pandas_present, monkeypatch):
    """Without pandas the labels are checked by a loop (v is None or v != v)."""
    g = MISSING[kind]()
    if not pandas_present:
        monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(InputError, match=r"missing label .* at position 2 \(1 missing in all\)"):
        fit([1.0, 2.0, 3.0, 4.0], g)


def test_unsortable_labels_are_named(rng):
    with pytest.raises(InputError, match="cannot be sorted"):
        GroupStats.from_data([1.0, 2.0, 3.0], np.array([1, "a", 1], dtype=object))


@pytest.mark.parametrize("N, J", [(1000, 7), (100_000, 1000), (100_000, 20_000), (100_000, 100_000)])
def test_hash_table_size_hint_estimates_the_number_of_labels(rng, N, J):
    """The sampled estimate is within a factor 3 of 2 J (capped at N), so pandas' table is
    neither resized over and over nor sized for every row."""
    from shrinkage.labels import _size_hint
    g = rng.permutation(np.arange(J))[rng.integers(0, J, size=N)] * 1_000_003
    distinct = np.unique(g).size
    hint = _size_hint(g, pd)
    assert min(N, 2 * distinct) / 3 <= hint <= min(N, 3 * 2 * distinct + 16)
