"""The data of a glmer call as one pandas frame (its own module: the results read new data
with it without importing the fit)."""

from __future__ import annotations

from ..lmm.columns import to_pandas

__all__ = ["_frame"]


def _frame(data):
    """The data as a pandas frame with every column (the response and offsets name
    columns the lmer coder does not see)."""
    module = type(data).__module__.split(".")[0]
    if module == "polars":
        return to_pandas(data, list(data.collect_schema().names()))
    return to_pandas(data, [])
