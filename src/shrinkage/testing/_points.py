"""Test points for a reference: a grid of corners, then random draws (numpy only).

A point is a dict from argument name to a float (a scalar argument) or a 1-d float64
array (an argument over groups).  Data-like (real) arguments of one point share an
offset (0 or +-1e8) plus unit noise, so their differences stay O(1) while each value is
large: the corner where a formula written with the wrong subtraction loses its digits.
"""

from __future__ import annotations

import itertools
from typing import Mapping

import numpy as np

from ._domains import OFFSETS, domain

MAX_CORNERS = 1024  # a larger grid is subsampled (deterministically, by the seed)
GROUP_SIZES = (1, 2, 3, 5, 8)  # numbers of groups of the random points
CORNER_GROUPS = (1, 3)  # numbers of groups of the corner points


def corner_points(domains: Mapping[str, str], groups, rng: np.random.Generator) -> list[dict]:
    """Every combination of the scalar arguments' corners and of the data offsets (0,
    1e8); arrays over groups take their entries from their domain's corners at random."""
    names = list(domains)
    scalar = [a for a in names if a not in groups and not domain(domains[a]).data]
    has_data = any(domain(domains[a]).data for a in names)
    axes = [domain(domains[a]).corner_values() for a in scalar]
    offsets = OFFSETS[:2] if has_data else (0.0,)
    sizes = CORNER_GROUPS if groups else (0,)
    grid = list(itertools.product(*axes, offsets, sizes))
    if len(grid) > MAX_CORNERS:
        keep = np.sort(rng.choice(len(grid), MAX_CORNERS, replace=False))
        grid = [grid[k] for k in keep]
    points = []
    for combo in grid:
        *values, offset, size = combo
        point = dict(zip(scalar, values))
        for a in names:
            d = domain(domains[a])
            if a in groups:
                point[a] = (d.draw(rng, size, offset) if d.data else rng.choice(np.array(d.corner_values()), size))
            elif d.data:
                point[a] = float(d.draw(rng, None, offset))
        points.append({a: point[a] for a in names})
    return points


def random_points(domains: Mapping[str, str], groups, count: int, rng: np.random.Generator) -> list[dict]:
    """``count`` points drawn from the domains' random laws; the offset of the data is 0
    for half the points and +-1e8 for the rest."""
    points = []
    for _ in range(count):
        offset = OFFSETS[0] if rng.uniform() < 0.5 else OFFSETS[rng.integers(1, len(OFFSETS))]
        size = int(rng.choice(GROUP_SIZES))
        point = {}
        for a, name in domains.items():
            d = domain(name)
            point[a] = d.draw(rng, size, offset) if a in groups else float(d.draw(rng, None, offset))
        points.append(point)
    return points
