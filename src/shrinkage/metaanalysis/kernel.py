"""One compiled pass per tau^2 over the studies: every sum the fit needs, each row read once.

For W = diag(w), w_i = 1/(v_i + tau^2) (the derivation's generated `numeric._meta_weight`,
compiled here by numba, so the loop runs the derived formula and not a copy of it), the
pass returns Z'W Z, Z'W^2 Z, Z'W^3 Z (Z = [1, X - means, y - ybar], upper triangles) and, when
asked, sum log w_i.  Z is never stored: each block of rows is centred into an L1-sized buffer
from the caller's arrays as it is read (a stored centred copy of 1e7 x 5 doubles cost more
than two passes).  The rows go in blocks small enough to stay in the L1 cache while the weights
and every product of two columns are summed over them (numba vectorises those sums); the
blocks' sums are added per chunk, the chunks in chunk order (`passes.chunk_results`): the
same numbers with any number of threads.  numba is imported with this module, i.e. by the
first fit large enough to use it, never by ``import shrinkage``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .. import numeric
from ..passes import chunk_results

ROWS = 512  # rows per block: 512 x (q + 4) doubles stay in the L1 cache
CHUNK = 1 << 18  # rows per chunk of a pass, the unit the cores share

GROUP = 32  # mantissas multiplied per log
TINY = np.finfo(float).tiny  # the smallest normal double
MANTISSA, ONE, LOG2 = (1 << 52) - 1, 1023 << 52, math.log(2.0)  # the bits of m; of 1.0 (exponent 0)

_weight = njit(inline="always", cache=True)(numeric._meta_weight)


@njit(nogil=True, cache=True, fastmath={"reassoc"})
def _sum_log(w, bits, mantissa, mantissa_bits, n):
    """sum log w[:n] with one log per GROUP values: w = m 2^e (m in [1, 2), from the bits),
    sum log w = log prod m + (sum e) log 2; a product of GROUP mantissas stays below
    2^GROUP.  (A subnormal w, v + tau2 > 4e307, has no such bits: that block takes logs.)"""
    if w[:n].min() < TINY:
        return np.log(w[:n]).sum()
    exponents = 0
    for i in range(n):
        exponents += (bits[i] >> 52) - 1023
        mantissa_bits[i] = (bits[i] & MANTISSA) | ONE
    out = 0.0
    for g in range(0, n, GROUP):
        product = 1.0
        for i in range(g, min(n, g + GROUP)):
            product *= mantissa[i]
        out += math.log(product)
    return out + exponents * LOG2


@njit(nogil=True, cache=True)
def _fill(M, y, shift, s, n, Zb):
    """The centred rows [s, s + n) into the block Zb (columns 1, M - means, y - ybar; one per row of Zb)."""
    m = M.shape[1]
    for i in range(n):
        Zb[0, i] = 1.0
        Zb[m + 1, i] = y[s + i] - shift[m]
    for j in range(m):
        c = shift[j]
        for i in range(n):
            Zb[j + 1, i] = M[s + i, j] - c


@njit(nogil=True, cache=True, fastmath={"reassoc", "contract"})
def _chunk(M, y, v, shift, tau2, lo, hi, logs, plain):
    """(G, sum log w) over rows [lo, hi): G[m, a, b] = sum w^(m+1) z_a z_b for a <= b (m = 0, 1, 2),
    and with plain G[3, a, b] = sum z_a z_b, for z = (1, x - means, y - ybar).

    The rows are centred block by block into a small buffer (no copy of the data): per block,
    w, then for each column a the products w^m z_a (m = 1, 2, 3), then their dot products
    with every later column b.  reassoc and contract let those dot products run as fused
    multiply-adds in vector registers; the order of the additions is fixed by the compiled
    code, not by the threads."""
    q = M.shape[1] + 2
    G = np.zeros((4 if plain else 3, q, q))
    Zb = np.empty((q, ROWS))
    wz = np.empty((3, ROWS))
    w = np.empty(ROWS)
    mantissa = np.empty(ROWS)
    bits, mantissa_bits = w.view(np.int64), mantissa.view(np.int64)
    slog = 0.0
    for s in range(lo, hi, ROWS):
        e = min(hi, s + ROWS)
        n = e - s
        _fill(M, y, shift, s, n, Zb)
        for i in range(n):
            w[i] = _weight(v[s + i], tau2)
        if logs:
            slog += _sum_log(w, bits, mantissa, mantissa_bits, n)
        for a in range(q):
            za = Zb[a]
            for i in range(n):
                x = w[i] * za[i]
                wz[0, i] = x
                x = x * w[i]
                wz[1, i] = x
                wz[2, i] = x * w[i]
            for b in range(a, q):
                zb = Zb[b]
                s1 = 0.0
                s2 = 0.0
                s3 = 0.0
                for i in range(n):
                    s1 += wz[0, i] * zb[i]
                    s2 += wz[1, i] * zb[i]
                    s3 += wz[2, i] * zb[i]
                G[0, a, b] += s1
                G[1, a, b] += s2
                G[2, a, b] += s3
                if plain:
                    s0 = 0.0
                    for i in range(n):
                        s0 += za[i] * zb[i]
                    G[3, a, b] += s0
    return G, slog


def gram_powers(M: np.ndarray, y: np.ndarray, v: np.ndarray, shift: np.ndarray, tau2: float, logs: bool,
                plain: bool = False) -> tuple[np.ndarray, float]:
    """Z'W^m Z for m = 1, 2, 3 (and Z'Z if plain; shape (3 or 4, q, q), symmetric) and sum log w (0.0
    unless logs), Z = [1, M - shift[:-1], y - shift[-1]] formed a block at a time, never stored."""
    q = M.shape[1] + 2
    G, slog = np.zeros((4 if plain else 3, q, q)), 0.0

    def work(lo, hi, _):
        return _chunk(M, y, v, shift, float(tau2), lo, hi, bool(logs), bool(plain))

    for part, part_log in chunk_results(work, len(v), CHUNK):
        G += part  # in chunk order: the same sums with any number of threads
        slog += part_log
    lower = np.tril_indices(q, -1)
    G[:, lower[0], lower[1]] = G[:, lower[1], lower[0]]
    return G, slog
