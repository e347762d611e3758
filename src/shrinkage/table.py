"""Reading a CSV of (response, group) columns, with errors that name the problem.

Used by ``shrinkage report`` and :mod:`shrinkage.datasets`.  The standard library's
csv module, numpy for the columns; no pandas.  Group labels are kept as text, exactly
as written, spaces included (as DuckDB and pandas read them: " a", "a " and "a" are three
groups on every path); an empty field or NA (R's missing value, as read.csv, pandas and
DuckDB read it) is a missing label.  :func:`stream_stats` summarises a CSV of
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


def parse_column(values: list[str], name: str, numeric: bool, lines=2) -> np.ndarray:
    """Strings of one column -> numbers (float) or labels (text as written, an object
    array of str: no integer coercion, so "007" and "7" are two groups and the grouping
    does not depend on how the rows are chunked).  A missing value (an empty field or NA,
    as R writes one; for a numeric column also NaN, NULL, in any case) is an InputError
    naming the line: ``lines`` is the line number of each value, or that of the first
    when they are consecutive."""
    line = (lambda k: lines + k) if isinstance(lines, int) else lines.__getitem__
    for k, v in enumerate(values):
        if v in ("", "NA") or (numeric and v.upper() in ("NA", "NAN", "NULL")):
            raise InputError(f"column {name!r} has a missing value on line {line(k)}")
    if numeric:
        try:
            return np.array(values, dtype=float)
        except ValueError:
            for k, v in enumerate(values):
                try:
                    float(v)
                except ValueError:
                    raise InputError(f"column {name!r} is not numeric: {v!r} on line {line(k)}") from None
            raise
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _lines(f, bar):
    """The file's lines, counting characters read into the progress bar."""
    for line in f:
        bar.update(len(line))
        yield line


def iter_chunks(path, response: str, group: str, chunk_rows: int = 1_000_000,
                progress=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (y, groups) arrays of at most ``chunk_rows`` rows each (groups as text);
    ``progress``: see :mod:`shrinkage.progress` (a bar over the file's size)."""
    from .progress import progress_bar

    with _open(path) as f, progress_bar(Path(path).stat().st_size, f"reading {Path(path).name}", progress) as bar:
        reader = csv.reader(_lines(f, bar))
        iy, ig = _header(reader, path, (response, group))
        ys: list[str] = []
        gs: list[str] = []
        lines: list[int] = []
        try:
            for row in reader:
                if not row:
                    continue
                if len(row) <= max(iy, ig):
                    raise InputError(f"{path}, line {reader.line_num}: too few fields ({len(row)})")
                ys.append(row[iy].strip())
                gs.append(row[ig])
                lines.append(reader.line_num)
                if len(ys) >= chunk_rows:
                    yield parse_column(ys, response, True, lines), parse_column(gs, group, False, lines)
                    ys, gs, lines = [], [], []
        except (csv.Error, UnicodeDecodeError) as e:
            raise InputError(f"{path}, line {reader.line_num + 1}: not a readable CSV file: {e}") from None
        if ys:
            yield parse_column(ys, response, True, lines), parse_column(gs, group, False, lines)


def read_columns(path, response: str, group: str) -> tuple[np.ndarray, np.ndarray]:
    """The whole response column (floats) and group column (labels) of a CSV file."""
    parts = list(iter_chunks(path, response, group, chunk_rows=1 << 62, progress=False))
    if not parts:
        raise InputError(f"{path} has a header but no data rows")
    (y, g), = parts
    return y, g


def stream_stats(path, response: str, group: str, chunk_rows: int = 1_000_000, progress=None) -> GroupStats:
    """GroupStats of a CSV of any size, read ``chunk_rows`` rows at a time and merged
    (the same groups however the rows are ordered or chunked: labels stay text)."""
    total = None
    for y, g in iter_chunks(path, response, group, chunk_rows, progress):
        part = GroupStats.from_data(y, g)
        total = part if total is None else total.merge(part)
    if total is None:
        raise InputError(f"{path} has a header but no data rows")
    return total
