"""The compiled loops over the groups behind :mod:`.objective`, for the model's q: their
source generated from the derivations (.kernel_source, .derived), kept, compiled.

numpy vectorised over groups costs one call (about a microsecond, and a temporary of J
values) per scalar operation of the q x q algebra, and loops over q x q arrays compiled as
written are no better (23 ns a group for one 2 x 2 product: the loops' overhead), so the
kernels have the q x q algebra written out for the model's q, every entry a local
variable, and the fixed effects p a loop.  From BLAS_P fixed effects on, the O(J q p^2) sum
of Y_j'Y_j is left to BLAS (``criterion_blocks`` stores the Y_j); the gradient's REML term
always is (the kernel stores W_j).  The generated source for a (q, p) is kept in the cache
folder, keyed by the files it comes from, so SymPy is imported only when one changes.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from ..errors import BuildError
from .kernels import compiled

__all__ = ["pls_kernels", "pls_source", "blocks_kernels", "criteria", "rx_scale", "generated", "BLAS_P", "P_SPECIALISED"]


def generated(q: int, p: int | None = None) -> str:
    """The kernels' source for (q, p), generated now (.kernel_source: SymPy, the derivations)."""
    from .kernel_source import generated as write  # SymPy: only when the cached source is missing

    return write(q, p)


def _inputs_digest() -> str:
    """The files the generated source depends on (the derivations, the matrix library and
    its backend, this plumbing), hashed: a change to any regenerates."""
    here = Path(__file__).resolve().parent
    from ..paths import package_derivations_dir

    files = sorted(package_derivations_dir().glob("lmm_*.py")) + sorted((here.parent / "matrix").glob("*.py"))
    files += [here / "derived.py", here / "kernel_source.py"]
    h = hashlib.sha256()
    for path in files:
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def pls_source(q: int, p: int | None = None) -> str:
    """:func:`generated`, read from the cache folder when it was written before for the
    same inputs (no SymPy then)."""
    from ..paths import cache_dir
    from ..texio import write_atomic

    path = cache_dir() / "kernels" / f"plsgen_{_inputs_digest()}_{q}_{'any' if p is None else p}.py"
    try:
        return path.read_text()
    except OSError:  # not generated yet (or unreadable): generate it
        pass
    source = generated(q, p)
    try:
        write_atomic(path, source.encode())
    except (OSError, BuildError):  # a read-only home: generated again next time
        pass
    return source


P_SPECIALISED = 4  # up to this many fixed effects the kernels are compiled for p (seconds)


def pls_kernels(q: int, p: int):
    """(criterion_terms, gradient_terms, group_least_squares, blup_terms, criterion_many)
    for q random-effect columns and p fixed effects, compiled once a process: for p up
    to P_SPECIALISED the loops over the fixed effects get a constant length, which LLVM
    unrolls (1.2x to 1.4x faster than the loops at q = 2, p = 3, J = 1e4); beyond, one kernel per
    q for every p (no compile per shape)."""
    module = _kernels(q, p if p <= P_SPECIALISED else None)
    return (module.criterion_terms, module.gradient_terms, module.group_least_squares, module.blup_terms,
            module.criterion_many)


def criteria(q: int, p: int):
    """The generated module's scalar functions (ml_deviance, reml_criterion, sigma2_ml,
    sigma2_reml, ml_gradient, reml_gradient: .derived.criteria_source) for (q, p)."""
    return _kernels(q, p if p <= P_SPECIALISED else None)


def rx_scale(q: int, p: int) -> float:
    """The number lmm_gradient's d_logdet_RX puts in front of sum_j W_j A^-1 W_j' Lambda."""
    return _kernels(q, p if p <= P_SPECIALISED else None).RX_SCALE


BLAS_P = 32  # from this many fixed effects the p-sized sums are left to BLAS (objective.py)


def blocks_kernels(q: int):
    """criterion_blocks for q random-effect columns and any p: the kernel without the
    O(J q p^2) sum over groups, which BLAS forms from the stored blocks."""
    return _kernels(q, None).criterion_blocks


@functools.lru_cache(maxsize=None)
def _kernels(q: int, p: int | None):
    """The compiled module of :func:`pls_source` (once a process)."""
    return compiled(pls_source(q, p), "pls")
