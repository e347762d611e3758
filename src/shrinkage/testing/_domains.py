"""Float64 draws from the symbols' domains, corners included (numpy only).

One table says, for each domain name of the derivations (``positive``, ``count`` ...),
where float64 test points come from: a random law and a few corner values.  Both
:func:`shrinkage.testing.assert_implements` and the Hypothesis strategies read it, so
the two never disagree about what "a variance" or "a count" is.

Why these ranges: a positive quantity (a variance) is log-uniform on [1e-6, 1e6], so the
ratio of two of them (sigma_b^2/sigma^2, tau^2/s_j^2) spans 1e-12 ... 1e12; counts reach
1e9; data-like reals are an offset (0 or +-1e8, shared by every data-like argument of a
point) plus unit noise, the case where sums of squares written as sum y^2 - n ybar^2 lose
every digit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OFFSETS = (0.0, 1e8, -1e8)  # shared location of the data-like (real) arguments of a point


@dataclass(frozen=True)
class Domain:
    """How to draw float64 values of one domain.

    ``low``/``high``: the range of random draws (log-uniform when ``log``); ``integer``:
    draws are rounded to whole numbers; ``corners``: values every corner grid includes;
    ``zero``: 0 itself is allowed (drawn as a corner and now and then at random);
    ``data``: a data-like real, drawn as a shared offset plus unit noise."""

    name: str
    low: float
    high: float
    log: bool = True
    integer: bool = False
    corners: tuple[float, ...] = ()
    zero: bool = False
    data: bool = False

    def draw(self, rng: np.random.Generator, size, offset=0.0) -> np.ndarray:
        """``size`` random values (``offset``: the point's shared location, data only)."""
        if self.data:
            return offset + rng.standard_normal(size)
        u = rng.uniform(np.log10(self.low), np.log10(self.high), size) if self.log else rng.uniform(self.low, self.high, size)
        x = 10.0**u if self.log else u
        if self.integer:
            # a third of the counts are small (1..10), where the formulas differ most
            small = rng.integers(int(self.low), max(int(self.low), 10) + 1, size)
            x = np.where(rng.uniform(size=size) < 1 / 3, small, np.clip(np.round(x), self.low, self.high))
        if self.zero:
            x = np.where(rng.uniform(size=size) < 1 / 8, 0.0, x)
        return np.asarray(x, dtype=float)

    def corner_values(self, offset=0.0) -> tuple[float, ...]:
        if self.data:
            return (offset,)  # plus unit noise, added where the corner grid is made
        return ((0.0,) if self.zero else ()) + self.corners


_VARIANCE = dict(low=1e-6, high=1e6, corners=(1e-6, 1.0, 1e6))
_COUNT = dict(integer=True, corners=(1.0, 2.0, 1e9))

DOMAINS: dict[str, Domain] = {d.name: d for d in (
    Domain("positive", **_VARIANCE),
    Domain("nonnegative", zero=True, **_VARIANCE),
    Domain("count", low=1, high=1e9, **_COUNT),
    Domain("few", low=1, high=1e3, integer=True, corners=(1.0, 2.0, 1e3)),
    Domain("several", low=2, high=1e9, integer=True, corners=(2.0, 3.0, 1e9)),
    Domain("unit", low=1e-12, high=1.0, corners=(1e-12, 0.5, 1.0 - 1e-12)),
    Domain("real", low=-1.0, high=1.0, log=False, data=True),
)}


def domain(name: str) -> Domain:
    try:
        return DOMAINS[name]
    except KeyError:
        raise KeyError(f"no float64 draws for the domain {name!r}; known: {sorted(DOMAINS)}") from None
