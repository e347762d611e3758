"""In-memory DataFrames (pandas, polars): the two columns, then numpy's two passes."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..stats import GroupStats


def check_column(names: list, name: str) -> None:
    """``name`` must be exactly one of the frame's columns (pandas and Dask allow a name
    twice, and then give a frame where a column was meant)."""
    k = names.count(name)
    if k == 0:
        raise InputError(f"the data have no column {name!r}; columns: {', '.join(map(str, names))}")
    if k > 1:
        raise InputError(f"the data have {k} columns named {name!r}: rename them so that the name is one column")


def _columns(data, response: str, group: str):
    names = list(data.collect_schema().names()) if hasattr(data, "collect_schema") else list(data.columns)
    for name in (response, group):
        check_column(names, name)
    if type(data).__name__ == "LazyFrame":
        data = data.select([response, group]).collect()
    return data[response], data[group]


def frame_stats(data, response: str, group: str) -> GroupStats:
    y, g = _columns(data, response, group)
    try:
        yv = y.to_numpy().astype(float)
    except (TypeError, ValueError):
        raise InputError(f"column {response!r} is not numeric (dtype {y.dtype})") from None
    bad = ~np.isfinite(yv)
    if bad.any():
        raise InputError(f"column {response!r} has a missing or non-finite value at row {int(bad.argmax())}")
    return GroupStats.from_data(yv, g.to_numpy())
