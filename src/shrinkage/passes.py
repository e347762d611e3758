"""Passes over the rows in chunks, on the machine's cores, with results as one thread gives.

A fit's pass over the data is a sequence of chunk computations (bincounts, dot products)
whose results are added up.  numpy releases the GIL in those, so the chunks can run on
worker threads; the results are still folded in chunk order, one after the other, so
every sum is the same floating-point number whatever the number of threads (and as the
one-thread loop gives it): output does not depend on the machine.

``SHRINKAGE_THREADS`` caps the threads (1: everything in the calling thread), as
OMP_NUM_THREADS does for BLAS.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from itertools import islice

import numpy as np

from .errors import InputError

__all__ = ["cores", "chunk_results", "take", "in_background"]

_POOL: list = []  # [(threads, pool)] once a pass has needed one
_LOCK = threading.Lock()


def cores() -> int:
    """The cores this process may run on (the affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def _threads() -> int:
    value = os.environ.get("SHRINKAGE_THREADS", "").strip()
    if not value:
        return min(cores(), 8)
    try:
        threads = int(value)
    except ValueError:
        threads = 0
    if threads < 1:
        raise InputError(f"the environment variable SHRINKAGE_THREADS must be a whole number of threads, "
                         f"1 or more; it is {value!r}")
    return threads


def _forget_pool() -> None:
    """In a forked child: the parent's worker threads do not exist there, so a task handed
    to the inherited pool would never run (the fit would hang); the child makes its own."""
    global _LOCK
    _POOL.clear()
    _LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _pool(threads: int):
    """The process's pool of ``threads`` workers (remade when the count asked for changes;
    concurrent.futures is imported here, not with shrinkage: 12 ms)."""
    from concurrent.futures import ThreadPoolExecutor

    with _LOCK:
        if not _POOL or _POOL[0][0] != threads:
            if _POOL:
                _POOL.pop()[1].shutdown(wait=False)
            _POOL.append((threads, ThreadPoolExecutor(threads, thread_name_prefix="shrinkage-pass")))
        return _POOL[0][1]


def chunk_results(work, size: int, chunk: int):
    """``work(lo, hi, buffer)`` for the consecutive chunks [lo, hi) of ``range(size)``,
    yielded in chunk order; run on worker threads when there is more than one chunk and
    more than one thread.  ``buffer(shape)`` is an empty float array of that shape, one
    per thread reused across this pass's chunks (cache-sized work space without an
    allocation per chunk; freed when the pass ends).  A chunk's exception is raised
    when its turn comes."""
    bounds = [(lo, min(lo + chunk, size)) for lo in range(0, size, chunk)]
    local = threading.local()

    def buffer(shape) -> np.ndarray:
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        buf = getattr(local, "buf", None)
        if buf is None or buf.shape[0] < shape[0] or buf.shape[1:] != shape[1:]:
            buf = local.buf = np.empty(shape[::-1]).T
        return buf[:shape[0]]

    threads = _threads()
    if len(bounds) < 2 or threads < 2 or threading.current_thread().name.startswith("shrinkage-pass"):
        for lo, hi in bounds:
            yield work(lo, hi, buffer)
        return
    pool, todo, running = _pool(threads), iter(bounds), deque()
    for lo, hi in islice(todo, 2 * threads):  # a window of chunks in flight: results held stay few
        running.append(pool.submit(work, lo, hi, buffer))
    while running:
        done = running.popleft()
        following = next(todo, None)
        if following is not None:
            running.append(pool.submit(work, *following, buffer))
        yield done.result()


def in_background(work):
    """``work()`` started on a worker thread (run here and now with one thread, or from a
    worker); returns a function that waits for its result (raising its exception)."""
    threads = _threads()
    if threads < 2 or threading.current_thread().name.startswith("shrinkage-pass"):
        try:
            value = work()
        except BaseException as exc:  # noqa: BLE001 - raised where the result is asked for, as a future does
            error = exc

            def fail():
                raise error
            return fail
        return lambda: value
    return _pool(threads).submit(work).result


def take(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """np.take(table, index) in chunks on the worker threads: random reads of a large
    table wait on memory, and threads overlap those waits (2.6x on 2 cores at N = 1e7
    into a 16 MB table).  Exact: the same array as np.take."""
    out = np.empty(index.shape, dtype=table.dtype)

    def chunk(lo: int, hi: int, _) -> None:
        np.take(table, index[lo:hi], out=out[lo:hi])

    for _ in chunk_results(chunk, index.size, 1 << 18):
        pass
    return out

