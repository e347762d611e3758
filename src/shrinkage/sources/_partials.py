"""Partial statistics of pieces of data as tables, and their exact merge.

A piece (a partition, a chunk) is summarised as rows (label, n, mean, ss) by the
two-pass :class:`~shrinkage.stats.GroupStats`; pieces merge by the k-way form of the rule
of Chan, Golub & LeVeque (1979):

    n = sum_k n_k,   mean = sum_k n_k mean_k / n,   S = sum_k [S_k + n_k (mean_k - mean)^2],

exact in real arithmetic and stable in floating point (it adds squared deviations of
partial means from the total mean, never subtracts large sums of squares).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..stats import GroupStats

COLUMNS = ("label", "n", "mean", "ss")


def to_frame(stats: GroupStats):
    """GroupStats as a pandas DataFrame in the units of y (no internal scaling)."""
    import pandas as pd

    mean, ss = stats.mean * stats.scale, stats.ss * stats.scale**2
    if not (np.isfinite(mean).all() and np.isfinite(ss).all()):
        raise InputError("the data are too extreme in scale to be summarised piecewise (S_j overflows); "
                         "rescale the response first")
    return pd.DataFrame({"label": stats.labels, "n": stats.n, "mean": mean, "ss": ss})


def piece_stats(frame, response: str, group: str, shift=None):
    """One pandas piece -> its partial statistics (a DataFrame with COLUMNS) of y, or of
    y - shift[label] when ``shift`` (a pandas Series indexed by label) is given.
    Missing labels or responses are refused naming the row by its index label."""
    import pandas as pd

    if len(frame) == 0:
        return pd.DataFrame({"label": frame[group].iloc[:0], "n": np.zeros(0, np.int64),
                             "mean": np.zeros(0), "ss": np.zeros(0)})
    g, y = frame[group], frame[response]
    bad = g.isna().to_numpy()
    if bad.any():
        raise InputError(f"column {group!r} has a missing label in the row with index {frame.index[bad.argmax()]!r}")
    try:
        yv = y.to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):
        raise InputError(f"column {response!r} is not numeric (dtype {y.dtype})") from None
    bad = ~np.isfinite(yv)
    if bad.any():
        raise InputError(f"column {response!r} has a missing or non-finite value in the row with index "
                         f"{frame.index[bad.argmax()]!r}")
    if shift is not None:
        yv = yv - shift.reindex(g).to_numpy()
    return to_frame(GroupStats.from_data(yv, g.to_numpy()))


def merge_frames(parts):
    """Concatenated partial statistics (several rows per label) -> one row per label."""
    import pandas as pd

    if len(parts) == 0:
        return parts
    codes, uniques = pd.factorize(parts["label"], sort=False)
    n_k = parts["n"].to_numpy(dtype=float)
    m_k = parts["mean"].to_numpy(dtype=float)
    n = np.bincount(codes, weights=n_k)
    mean = np.bincount(codes, weights=n_k * m_k) / n
    d = m_k - mean[codes]
    ss = np.bincount(codes, weights=parts["ss"].to_numpy(dtype=float) + n_k * d * d)
    labels = uniques if not hasattr(uniques, "to_numpy") else uniques.to_numpy()
    return pd.DataFrame({"label": labels, "n": n.astype(np.int64), "mean": mean, "ss": ss})


def from_frame(frame) -> GroupStats:
    """The merged table -> GroupStats (sorted labels, validated)."""
    if len(frame) == 0:
        raise InputError("the data have no rows: no observations to fit")
    return GroupStats.from_arrays(frame["label"].to_numpy(), frame["n"].to_numpy(), frame["mean"].to_numpy(),
                                  frame["ss"].to_numpy())
