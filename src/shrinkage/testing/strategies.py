"""Hypothesis strategies for the symbols' domains, for your own property tests.

    from hypothesis import given
    from shrinkage.testing import strategies as sst

    @given(sst.arguments("shrinkage_factor"))
    def test_between_zero_and_one(kw):
        assert 0 <= my_lambda(**kw) <= 1

The values are those :func:`shrinkage.testing.assert_implements` draws (one table,
``shrinkage.testing._domains``): variances log-uniform on [1e-6, 1e6] with their
corners, counts up to 1e9, data at offsets 0 and +-1e8 with unit noise.  Importing this
module needs hypothesis; nothing else in shrinkage does.
"""

from __future__ import annotations

import math

import numpy as np

try:
    from hypothesis import strategies as st
except ImportError as e:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError("shrinkage.testing.strategies needs hypothesis: pip install hypothesis") from e

from ._domains import OFFSETS, domain
from ._points import corner_points

NOISE = 4.0  # data are offset + a value in [-NOISE, NOISE]


def values(domain_name: str, *, offset: float | None = None) -> st.SearchStrategy:
    """Floats of a domain ("positive", "nonnegative", "count", "real", ...): its corners,
    or a random value; counts are whole floats.  ``offset``: data only (default: any of
    0, 1e8, -1e8)."""
    d = domain(domain_name)
    if d.data:
        return data(offset=offset)
    lo, hi = (math.log10(d.low), math.log10(d.high)) if d.log else (d.low, d.high)
    random = st.floats(min_value=lo, max_value=hi, allow_nan=False).map(lambda u: 10.0**u if d.log else u)
    if d.integer:
        random = st.one_of(st.integers(int(d.low), max(int(d.low), 10)).map(float),
                           random.map(lambda x: float(min(max(round(x), d.low), d.high))))
    else:
        random = random.filter(lambda x: d.low <= x <= d.high and not (d.name == "unit" and x >= 1.0))
    return st.one_of(st.sampled_from(d.corner_values()), random)


def variances(*, allow_zero: bool = False) -> st.SearchStrategy:
    """Variances: log-uniform on [1e-6, 1e6] and its corners (0 too with allow_zero)."""
    return values("nonnegative" if allow_zero else "positive")


def counts() -> st.SearchStrategy:
    """Group sizes 1 ... 1e9 (as floats), with the corners 1, 2, 1e9."""
    return values("count")


def offsets() -> st.SearchStrategy:
    return st.sampled_from(OFFSETS)


def data(*, offset: float | None = None) -> st.SearchStrategy:
    """A data-like value: an offset (0, 1e8 or -1e8 unless given) plus O(1) noise."""
    noise = st.floats(min_value=-NOISE, max_value=NOISE, allow_nan=False)
    where = st.just(float(offset)) if offset is not None else offsets()
    return st.tuples(where, noise).map(lambda t: t[0] + t[1])


def data_vectors(*, min_size: int = 1, max_size: int = 8, offset: float | None = None) -> st.SearchStrategy:
    """1-d float arrays of data-like values sharing one offset (group means, say)."""
    where = st.just(float(offset)) if offset is not None else offsets()
    noise = st.floats(min_value=-NOISE, max_value=NOISE, allow_nan=False)
    return st.tuples(where, st.lists(noise, min_size=min_size, max_size=max_size)).map(
        lambda t: t[0] + np.array(t[1], dtype=float))


def arguments(name, *, module=None, derivations=None, max_groups: int = 8) -> st.SearchStrategy:
    """Keyword arguments for a generated function (or ``(derivation, label)``): every
    argument from its domain; arrays over groups share one length; data-like arguments
    share one offset.  A third of the examples are corner points."""
    from . import reference

    ref = reference(name, module=module, derivations=derivations)

    @st.composite
    def point(draw):
        offset = draw(offsets())
        size = draw(st.integers(1, max_groups))
        out = {}
        for a in ref.args:
            if a in ref.groups:
                if domain(ref.domains[a]).data:
                    out[a] = draw(data_vectors(min_size=size, max_size=size, offset=offset))
                else:
                    out[a] = np.array(draw(st.lists(values(ref.domains[a]), min_size=size, max_size=size)), dtype=float)
            else:
                out[a] = draw(values(ref.domains[a], offset=offset))
        return out

    return st.one_of(point(), corners(name, module=module, derivations=derivations))


def corners(name, *, module=None, derivations=None) -> st.SearchStrategy:
    """The corner points assert_implements uses for ``name`` (seed 0), as keyword dicts."""
    from . import reference

    ref = reference(name, module=module, derivations=derivations)
    grid = corner_points(ref.domains, ref.groups, np.random.default_rng(0))
    return st.sampled_from(grid).map(lambda p: {a: (v.copy() if isinstance(v, np.ndarray) else v) for a, v in p.items()})
