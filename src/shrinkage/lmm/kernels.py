"""Compiled loops (numba) where numpy's cost per call, not the arithmetic, was the cost.

The pass over the rows (:func:`row_kernel`).  numpy needed one np.bincount per product
(seven at ``y ~ x1 + x2 + (x1 | g)``), each a sweep over the rows.  Here one sweep forms
a row's products in registers and adds them to its group's row of a table that stays in
cache.  A loop over a run-time list of products keeps them in memory and runs 2.5x
slower, so the kernel is written out for the formula's shape (how many columns, which
ones the random terms use), once per shape, as Python source that numba compiles; the
source goes to the user's cache folder (content-addressed, written atomically) so numba
caches the machine code beside it and a shape is compiled once per machine.

Every product is the same floating-point number, added in the same row order, as
np.bincount adds it, so the per-group sums are bit for bit the bincounts' (the numpy
pass this replaced; tests/test_lmm_kernels.py).  No fastmath: every sum is in the
order written.  ``nogil``: chunks run on the worker
threads of :mod:`shrinkage.passes`.  After the pass, :func:`move_kernel` completes the
table (a product of two random-term columns is added once a row, its twin copied) and
moves it from the first rows' means to the overall means, in one sweep over the groups.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import sys
import threading
import types

__all__ = ["compiled", "row_kernel", "row_source", "move_kernel", "move_source", "wide_kernels", "UNROLL_MAX"]

UNROLL_MAX = 6  # distinct columns up to which the pass is written out (12 columns took 18 s to compile)

# Past UNROLL_MAX the source grows as k^2 and numba's compile time faster (42 columns did
# not compile in 600 s), so a formula with many fixed-effect columns (a factor with many
# levels) runs these two loops over the columns instead, one compile for every shape; the
# sums over all rows are then BLAS products of blocks of rows (crossprod.py).
WIDE_SOURCE = """import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def group_products_any(codes, V, S, lo, out):
    \"\"\"out[j, b*len(S) + s] += V[i, S[s]] V[i, b] for the rows i of the block V (rows lo..,
    columns A_i - means, column 0 the constant 1) and their groups j; every entry (no
    twins).  Returns -1, or the first row whose code is outside 0..J-1.\"\"\"
    w, k, J = S.shape[0], V.shape[1], out.shape[0]
    for i in range(V.shape[0]):
        j = codes[lo + i]
        if j < 0 or j >= J:
            return lo + i
        for s in range(w):
            vs = V[i, S[s]]
            for b in range(k):
                out[j, b * w + s] += V[i, b] * vs
    return -1


@njit(nogil=True, cache=True)
def move_products_any(out, delta, S):
    \"\"\"move_source's moves for any shape: the entries of a full table (no twins) from
    rows about means to rows about means + delta, the same operations in the same order.\"\"\"
    w = S.shape[0]
    k = out.shape[1] // w
    c0 = 0
    while S[c0] != 0:
        c0 += 1
    t, h = np.empty(k), np.empty(w)
    for j in range(out.shape[0]):
        n = out[j, c0]
        for b in range(k):
            t[b] = out[j, b * w + c0]
        for s in range(w):
            h[s] = out[j, s]
        for b in range(k):
            for s in range(w):
                a = S[s]
                if a == 0 and b == 0:
                    continue
                x = out[j, b * w + s]
                if a:
                    x = x - (n if b == 0 else t[b]) * delta[a]
                if b:
                    x = x - delta[b] * (n if a == 0 else h[s])
                if a and b:
                    x = x + n * (delta[b] * delta[a])
                out[j, b * w + s] = x
"""

_KERNELS: dict = {}
_LOCK = threading.Lock()


def twin(S: tuple, b: int, s: int) -> int | None:
    """The entry of the table holding the same product as (b, s) when that one is not
    added by the row kernel (v[b] v[S[s]] with b also in S and b > S[s]: added once, at
    (S[s], S.index(b))); None for an entry the kernel adds."""
    return S[s] * len(S) + S.index(b) if b in S and b > S[s] else None


def row_source(k: int, S: tuple, rest: tuple) -> str:
    """The kernel for rows v = [1, c_1 - m_1, ..., c_(k-1) - m_(k-1)]: out[j, b*len(S) + s] +=
    v[S[s]] v[b] for the row's group j (a product of two columns of S once: its
    :func:`twin` entry is left alone, for :func:`move_source` to fill), and rest[r] +=
    v[a] v[b] for (a, b) = rest[r].  Returns -1, or the first row whose code is outside
    0..J-1."""
    v = ["1.0"] + [f"v{a}" for a in range(1, k)]

    def product(a: int, b: int) -> str:
        return v[b] if a == 0 else v[a] if b == 0 else f"{v[a]} * {v[b]}"

    cols = ", ".join(f"c{a}" for a in range(1, k))
    lines = [
        "from numba import njit", "", "",
        "@njit(nogil=True, cache=True)",
        "def group_products(codes, cols, means, lo, hi, out, rest):",
        f"    ({cols},) = cols",
        *(f"    m{a} = means[{a}]" for a in range(1, k)),
        *(f"    r{r} = 0.0\n    s{r} = 0.0" for r in range(len(rest))),
        "    J = out.shape[0]",
        "    for i in range(lo, hi):",
        "        j = codes[i]",
        "        if j < 0 or j >= J:",
        "            return i",
        *(f"        v{a} = c{a}[i] - m{a}" for a in range(1, k)),
        *(f"        out[j, {b * len(S) + s}] += {product(a, b)}" for b in range(k) for s, a in enumerate(S)
          if twin(S, b, s) is None),
        # sums over every row of the chunk, in blocks of 256 rows: one running sum of 2^18
        # squares loses ~1e-13 of y'y (the log-likelihood ~1e-8); compensated sums cost 20%
        *(f"        s{r} += {product(a, b)}" for r, (a, b) in enumerate(rest)),
        *(["        if (i & 255) == 255:"] if rest else []),
        *(f"            r{r} += s{r}\n            s{r} = 0.0" for r in range(len(rest))),
        *(f"    rest[{r}] += r{r} + s{r}" for r in range(len(rest))),
        "    return -1", "",
    ]
    return "\n".join(lines)


def move_source(k: int, S: tuple) -> str:
    """The kernel that completes a table of :func:`row_source` (rows about ``means``), its
    twin entries copied, and moves it to rows about means + delta: (v_b - d_b)(v_s - d_s)
    summed is the entry minus d_s (sum of v_b) minus d_b (sum of v_s) plus n d_b d_s, the
    sums being the products with the constant (entries s = 0 and b = 0).  In place, one
    pass over the groups (numpy's broadcasting over axes of length len(S) ran 50x slower)."""
    c0, w = S.index(0), len(S)
    lines = [
        "from numba import njit", "", "",
        "@njit(nogil=True, cache=True)",
        "def move_products(out, delta):",
        *(f"    d{a} = delta[{a}]" for a in range(1, k)),
        "    for j in range(out.shape[0]):",
        *(f"        out[j, {b * w + s}] = out[j, {twin(S, b, s)}]"
          for b in range(k) for s in range(w) if twin(S, b, s) is not None),
        f"        n = out[j, {c0}]",
        *(f"        t{b} = out[j, {b * w + c0}]" for b in range(1, k)),
        *(f"        h{s} = out[j, {s}]" for s in range(w) if S[s]),
    ]
    for b in range(k):
        for s, a in enumerate(S):
            if b == 0 and a == 0:
                continue
            terms = []
            if a:
                terms.append(f" - {'n' if b == 0 else f't{b}'} * d{a}")
            if b:
                terms.append(f" - d{b} * {'n' if a == 0 else f'h{s}'}")
            if a and b:
                terms.append(f" + n * (d{b} * d{a})")
            lines.append(f"        out[j, {b * w + s}] = out[j, {b * w + s}]{''.join(terms)}")
    return "\n".join(lines + [""])


def compiled(source: str, kind: str):
    """The module of generated ``source``, imported from the cache folder (numba caches
    only functions with a file; content-addressed, so a file is never rewritten), once a
    process.  Where that folder cannot be written it is compiled in memory (no cache)."""
    from ..paths import cache_dir
    from ..texio import write_atomic

    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    with _LOCK:
        if digest in _KERNELS:
            return _KERNELS[digest]
        path = cache_dir() / "kernels" / f"{kind}_{digest}.py"
        name = f"shrinkage_kernel_{path.stem}"  # the same name for the same file: numba records it
        try:
            if not path.is_file() or path.read_text() != source:
                write_atomic(path, source.encode())
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # numba's cache finds the functions' module by its name
            spec.loader.exec_module(module)
        except Exception:  # noqa: BLE001 - a read-only home, a full disk: the same kernels, uncached
            module = types.ModuleType(name)
            exec(compile(source.replace("cache=True", "cache=False"), f"<shrinkage kernel {digest}>", "exec"),
                 module.__dict__)
        _KERNELS[digest] = module
        return module


def wide_kernels():
    """(group_products_any, move_products_any): the loops for any number of columns."""
    module = compiled(WIDE_SOURCE, "wide")
    return module.group_products_any, module.move_products_any


@functools.lru_cache(maxsize=None)
def move_kernel(k: int, S: tuple):
    """The compiled kernel of :func:`move_source` for this shape."""
    return compiled(move_source(k, S), "move").move_products


@functools.lru_cache(maxsize=None)
def row_kernel(k: int, S: tuple, rest: tuple):
    """The compiled kernel of :func:`row_source` for this shape."""
    return compiled(row_source(k, S, rest), "rows").group_products

