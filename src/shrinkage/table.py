"""Reading a CSV of (response, group) columns, with errors that name the problem.

Used by ``shrinkage report`` and :mod:`shrinkage.datasets`.  The standard library's
csv module, numpy for the columns; no pandas.  :func:`stream_stats` summarises a CSV of
any size chunk by chunk into mergeable :class:`~shrinkage.stats.GroupStats`.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import InputError
from .stats import GroupStats

__all__ = ["read_columns", "iter_chunks", "stream_stats", "parse_column"]


def _open(path) -> "csv.reader":
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a CSV file")
    try:
        return open(path, newline="", encoding="utf-8-sig")
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None


def _header(reader, path, wanted: tuple[str, ...]) -> list[int]:
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(f"{path} is empty (no header line)") from None
    except (csv.Error, UnicodeDecodeError) as e:
        raise InputError(f"{path} is not a readable CSV file: {e}") from None
    header = [h.strip() for h in header]
    where = []
    for name in wanted:
        if name not in header:
            raise InputError(f"{path} has no column {name!r}; its columns are: {', '.join(header) or '(none)'}")
        where.append(header.index(name))
    return where


def parse_column(values: list[str], name: str, numeric: bool, first_line: int = 2) -> np.ndarray:
    """Strings of one column -> numbers (float) or labels (int when all are integers, else
    str).  Empty cells and, for a numeric column, non-numbers are InputErrors naming the
    line."""
    for k, v in enumerate(values):
        if v == "" or v.upper() in ("NA", "NAN", "NULL"):
            raise InputError(f"column {name!r} has a missing value on line {first_line + k}")
    if numeric:
        try:
            return np.array(values, dtype=float)
        except ValueError:
            for k, v in enumerate(values):
                try:
                    float(v)
                except ValueError:
                    raise InputError(f"column {name!r} is not numeric: {v!r} on line {first_line + k}") from None
            raise
    try:
        return np.array([int(v) for v in values], dtype=np.int64)
    except ValueError:
        return np.array(values, dtype=str)


def iter_chunks(path, response: str, group: str, chunk_rows: int = 1_000_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (y, groups) arrays of at most ``chunk_rows`` rows each."""
    with _open(path) as f:
        reader = csv.reader(f)
        iy, ig = _header(reader, path, (response, group))
        line = 2
        ys: list[str] = []
        gs: list[str] = []
        try:
            for row in reader:
                if not row:
                    line += 1
                    continue
                if len(row) <= max(iy, ig):
                    raise InputError(f"{path}, line {line}: too few fields ({len(row)})")
                ys.append(row[iy].strip())
                gs.append(row[ig].strip())
                if len(ys) >= chunk_rows:
                    yield parse_column(ys, response, True, line - len(ys) + 1), parse_column(gs, group, False, line - len(gs) + 1)
                    ys, gs = [], []
                line += 1
        except (csv.Error, UnicodeDecodeError) as e:
            raise InputError(f"{path}, line {line}: not a readable CSV file: {e}") from None
        if ys:
            yield parse_column(ys, response, True, line - len(ys)), parse_column(gs, group, False, line - len(gs))


def read_columns(path, response: str, group: str) -> tuple[np.ndarray, np.ndarray]:
    """The whole response column (floats) and group column (labels) of a CSV file."""
    parts = list(iter_chunks(path, response, group, chunk_rows=1 << 62))
    if not parts:
        raise InputError(f"{path} has a header but no data rows")
    (y, g), = parts
    return y, g


def stream_stats(path, response: str, group: str, chunk_rows: int = 1_000_000) -> GroupStats:
    """GroupStats of a CSV of any size, read ``chunk_rows`` rows at a time and merged."""
    total = None
    for y, g in iter_chunks(path, response, group, chunk_rows):
        part = GroupStats.from_data(y, g)
        total = part if total is None else total.merge(part)
    if total is None:
        raise InputError(f"{path} has a header but no data rows")
    return total
