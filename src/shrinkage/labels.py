"""Group labels to integer codes in O(N), with missing labels named by position.

Four routes, the cheapest that applies:

* integer labels in a compact range (span <= 2 N + 2^20): the code is the label minus
  the smallest label, no hashing and no sort (bincount later drops codes that never occur);
* other integer labels, when about 2^15 or more are distinct: vectorised multiplicative
  hashing in rounds (:func:`_hashed`), O(N), 2.5-2.8x faster than ``pandas.factorize``
  at N = 1e7, J = 1e6 (its table misses the cache on every row; here each round is a few
  whole-array numpy passes); with fewer, pandas' table fits in cache and wins (1.7x at
  J = 1e4).  Its labels come out sorted and its codes dense (0..J-1 in label order);
* anything else, when pandas is importable: ``pandas.factorize`` (hashing, O(N));
* otherwise ``np.unique`` (a sort, O(N log N)).

Only the J distinct labels are ever sorted (by the hashing route itself, else by
:class:`~shrinkage.stats.GroupStats`), so results still list groups in sorted label order.  Labels are taken as given: "007" and
"7" are two groups; missing labels (NaN of any float type, None, NaT, pandas NA) are
refused with the position of the first, never made a group.  numpy only, pandas optional.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import InputError
from .passes import take

__all__ = ["as_labels", "missing_mask", "factorize"]

_COMPACT_SLACK = 1 << 20


def as_labels(groups, size: int | None = None) -> np.ndarray:
    """groups as a 1-d numpy array (pandas/polars Series and lists accepted)."""
    try:
        g = np.asarray(groups)
    except Exception:  # noqa: BLE001 - anything that is not array-like
        raise InputError("groups must be a 1-d array of labels") from None
    if g.ndim != 1:
        raise InputError(f"groups must be 1-d, got shape {g.shape}")
    if size is not None and g.size != size:
        raise InputError(f"y and groups have different lengths ({size} and {g.size})")
    if g.size == 0:
        raise InputError("groups is empty: no observations to fit")
    return g


def _missing_object(g: np.ndarray) -> np.ndarray:
    try:
        import pandas as pd
    except ImportError:
        pd = None
    if pd is not None:
        return np.asarray(pd.isna(g), dtype=bool)

    def missing(v) -> bool:
        if v is None:
            return True
        try:
            return bool(v != v)  # NaN of any float type, NaT
        except TypeError:  # pandas NA refuses bool(); without pandas it cannot occur
            return True

    return np.fromiter((missing(v) for v in g), dtype=bool, count=g.size)


def missing_mask(g: np.ndarray) -> np.ndarray | None:
    """Where labels are missing (None, NaN of any float type, NaT, pandas NA), or None
    when the dtype cannot hold a missing value."""
    kind = g.dtype.kind
    if kind in "fc":
        return np.isnan(g)
    if kind in "mM":
        return np.isnat(g)
    if kind == "O":
        return _missing_object(g)
    return None


def _describe(v) -> str:
    if v is None:
        return "None"
    if isinstance(v, (float, np.floating)):
        return f"NaN ({type(v).__name__})"
    text = str(v)
    return "pandas NA" if text == "<NA>" else text


def _refuse_missing(g: np.ndarray) -> None:
    mask = missing_mask(g)
    if mask is not None and mask.any():
        where = np.flatnonzero(mask)
        raise InputError(f"groups has a missing label ({_describe(g[where[0]])}) at position {where[0]} "
                         f"({where.size} missing in all); drop or fill those rows first")


def _compact(g: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Integer labels in a compact range: (labels by code, codes) without hashing."""
    if g.dtype.kind == "b":
        return np.array([False, True]), g.view(np.uint8).astype(np.intp)
    limit = 2 * g.size + _COMPACT_SLACK
    sample = g[::max(1, g.size // _SAMPLE)]  # its span is at most the whole's: a wide one settles it
    if int(sample.max()) - int(sample.min()) > limit:
        return None
    lo, hi = g.min(), g.max()
    if int(hi) - int(lo) > limit:
        return None
    if lo == 0 and g.dtype == np.intp:
        codes = g
    elif g.dtype.kind == "u":
        codes = (g - lo).astype(np.intp)
    else:
        codes = np.subtract(g, lo, dtype=np.intp)
    labels = np.arange(int(lo), int(hi) + 1, dtype=np.int64 if g.dtype.kind == "i" or int(hi) < 2**63 else np.uint64)
    return labels, codes


_SAMPLE = 1 << 16


def _size_hint(g: np.ndarray, pd) -> int:
    """An estimate of the number of distinct labels, for the hash table's initial size:
    pandas' default sizes it for every row, which at N = 1e6 and J = 1e4 made factorize
    4x slower (cache misses in a table 100x too large).  From a strided sample of s rows
    with k distinct labels, J solves k = J (1 - exp(-s/J)) (labels drawn evenly)."""
    step = max(1, g.size // _SAMPLE)
    sample = g[::step]
    s, k = sample.size, len(pd.unique(sample))
    return int(min(g.size, 2 * _distinct_from_sample(s, k, g.size) + 16))


_HASH_SAMPLE = 1 << 13  # rows sampled to size a round's table (a sort of these: ~0.5 ms)
_FEW = 1 << 15  # fewer distinct labels (estimated): pandas' table stays in cache and is faster
_ROUNDS = 24  # hashing rounds before the sort takes what is left (about 0.2^24 of the keys)


def _multiplier(r: int) -> int:
    """Round r's odd 64-bit multiplier: splitmix64's output r (the golden ratio's first),
    so that keys which collide in one round are independent in the next."""
    z = (0x9E3779B97F4A7C15 * (r + 1)) % 2**64
    if r == 0:
        return z
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
    return (z ^ (z >> 31)) | 1


def _distinct(keys: np.ndarray) -> int:
    """An estimate of the number of distinct keys, from a strided sample of s rows with
    k distinct keys: J solves k = J (1 - exp(-s/J)) (labels drawn evenly)."""
    step = max(1, keys.size // _HASH_SAMPLE)
    sample = keys[::step]
    s, k = sample.size, np.unique(sample).size
    return int(min(keys.size, _distinct_from_sample(s, k, keys.size)))


def _distinct_from_sample(s: int, k: int, total: int) -> float:
    """J solving k = J (1 - exp(-s/J)): s sampled rows showed k distinct labels (``total``
    when every sampled label was new)."""
    if k >= s:
        return float(total)
    lo, hi = float(k), float(total)
    for _ in range(60):  # bisection in log J: f(J) = J (1 - exp(-s/J)) increases with J
        mid = math.sqrt(lo * hi)
        if mid * -math.expm1(-s / mid) < k:
            lo = mid
        else:
            hi = mid
    return hi


def _slots(keys: np.ndarray, mult: int, bits: int, out: np.ndarray | None = None) -> np.ndarray:
    """Each key's slot in a table of 2^bits: the top bits of key x mult (mod 2^64)."""
    h = np.multiply(keys.view(np.uint64), np.uint64(mult), out=None if out is None else out.view(np.uint64))
    h >>= np.uint64(64 - bits)  # the product wraps mod 2^64, as intended
    return h.view(np.intp)  # < 2^bits


def _hashed(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted labels, codes 0..J-1 in that order) for integer labels, by hashing in
    rounds, each a few whole-array passes.  A round hashes the keys still unplaced into a
    table of 2^k slots (about 2 per distinct key: :func:`_slots`), writes every key into
    its slot (one of the keys sharing a slot wins) and reads the slots back: a row whose
    slot holds its own key is placed (slot = round offset + h, and all rows of a key
    share its verdict), the others (keys that lost a collision, about 20% of keys) go to
    the next round, with another multiplier; what is left after the last round (nothing,
    unless the keys defeat every multiplier) is sorted.  Then the J distinct keys are
    sorted (np.sort, no argsort) and looked up in the tables to number the slots in
    sorted order: codes are dense and GroupStats has nothing to drop or permute."""
    keys = g.astype(np.int64, copy=False) if g.dtype.kind == "i" else g.astype(np.uint64, copy=False)
    codes = np.empty(keys.size, dtype=np.intp)
    tables, base, rows = [], 0, None  # rows: positions still unplaced (None: all)
    rest = keys[:0]
    for r in range(_ROUNDS):
        mult = _multiplier(r)
        sub = keys if rows is None else keys[rows]
        bits = max(4, (2 * _distinct(sub) - 1).bit_length())
        h = _slots(sub, mult, bits, out=codes if rows is None else None)  # round 0: the slots are the codes
        table = np.full(1 << bits, sub[0], dtype=sub.dtype)
        table[h] = sub
        lost = take(table, h) != sub
        if rows is not None:
            h += base
            codes[rows] = h
        tables.append((mult, bits, table, base))
        base += table.size
        if not lost.any():
            break
        rows = np.flatnonzero(lost) if rows is None else rows[lost]
    else:
        rest, rest_codes = np.unique(keys[rows], return_inverse=True)
        codes[rows] = rest_codes.reshape(-1) + base
    return _in_sorted_order(tables, rest, codes, g.dtype)


def _in_sorted_order(tables, rest, codes, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Sorted labels and the codes renumbered to match, from the rounds' tables (mult,
    bits, table, offset) and the sorted leftovers ``rest`` (coded after the tables).
    A slot holds a key of its round exactly when that key hashes to it (an unwritten
    slot holds the round's first key, whose own slot was written), and a key is found
    again in the first round whose table holds it in its slot."""
    held = [t[_slots(t, m, b) == np.arange(t.size)] for m, b, t, _ in tables]
    labels = np.sort(np.concatenate(held + [rest]))
    slot = np.empty(labels.size, dtype=np.intp)
    todo, idx = labels, None  # keys not yet found, and their positions (None: all)
    for mult, bits, table, offset in tables:
        h = _slots(todo, mult, bits)
        hit = table[h] == todo
        h += offset
        if idx is None:
            slot[hit] = h[hit]
            idx = np.flatnonzero(~hit)
        else:
            slot[idx[hit]] = h[hit]
            idx = idx[~hit]
        todo = labels[idx]
        if not idx.size:
            break
    if idx.size:  # the leftovers, coded after the last table
        slot[idx] = tables[-1][3] + tables[-1][2].size + np.searchsorted(rest, todo)
    rank = np.empty(tables[-1][3] + tables[-1][2].size + rest.size, dtype=np.intp)
    rank[slot] = np.arange(labels.size)
    return labels.astype(dtype, copy=False), take(rank, codes)


def _factorize_any(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pandas.factorize (hashing) when importable and the labels hashable, else np.unique."""
    try:
        import pandas as pd
    except ImportError:
        pd = None
    if pd is not None:
        try:
            codes, labels = pd.factorize(g, sort=False, use_na_sentinel=True, size_hint=_size_hint(g, pd))
        except TypeError:  # unhashable labels (lists ...): the sorting route
            pass
        else:
            return np.asarray(labels), codes.astype(np.intp, copy=False)
    try:
        labels, codes = np.unique(g, return_inverse=True)
    except TypeError:
        raise InputError("group labels cannot be sorted: mixed types (e.g. numbers and strings)?") from None
    return labels, codes.reshape(-1)


def factorize(groups, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(labels, codes): ``labels[codes[i]]`` is row i's label.  Labels are not sorted
    (except from the hashing route), and for integer labels in a compact range some
    codes may never occur (GroupStats drops them)."""
    g = as_labels(groups, size)
    _refuse_missing(g)
    if g.dtype.kind in "biu":
        direct = _compact(g)
        if direct is not None:
            return direct
        if g.dtype.itemsize <= 8 and _distinct(g) >= _FEW:
            return _hashed(g)
    return _factorize_any(g)
