"""shrinkage.meta: a random-effects meta-analysis, or a Fay-Herriot model, as metafor's rma.uni fits it."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from . import algebra
from .algebra import Powers
from .estimators import METHODS, estimate
from .result import MetaResult

TESTS = ("z", "knha")


def _vector(name, values) -> np.ndarray:
    try:
        a = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be numeric") from None
    if a.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, not of shape {a.shape}")
    return np.ascontiguousarray(a)


def _finite(name, a):
    bad = np.flatnonzero(~np.isfinite(a))
    if len(bad):
        raise InputError(f"{name} has a missing or infinite value at position {int(bad[0])} ({a[bad[0]]})")


def check_values(y, v, M, names) -> None:
    """Every value finite, every vi positive, else an InputError naming the first bad one.  Above
    KERNEL_MIN studies only when the first pass's sums are not finite (they are unless a value is
    missing or infinite, or vi <= 0: its log or weight is nan or inf), so a clean fit reads the data once less."""
    if not np.isfinite(y.sum()):
        _finite("yi", y)
    if not np.isfinite(v.sum()):
        _finite("vi", v)
    if not np.isfinite(M.sum()):
        bad = np.argwhere(~np.isfinite(M))
        raise InputError(f"moderator {names[bad[0][1] + 1]!r} is missing or infinite at row {int(bad[0][0])}")
    if not v.min() > 0:
        bad = np.flatnonzero(v <= 0)
        raise InputError(f"vi must be positive: vi[{int(bad[0])}] = {v[bad[0]]}")


def moderators(mods, k: int, data=None) -> tuple[np.ndarray, tuple]:
    """The moderators (k x m, no intercept: one is always added) and the coefficients' names."""
    if mods is None:
        return np.empty((k, 0)), ("intrcpt",)
    if isinstance(mods, str):
        if data is None:
            raise InputError("a moderator formula needs data= (a DataFrame)")
        import formulaic

        try:
            mm = formulaic.model_matrix(mods if "~" in mods else "~ " + mods, data, na_action="raise")
        except Exception as e:  # formulaic raises many kinds; name the formula
            raise InputError(f"moderator formula {mods!r}: {e}") from None
        keep = [c for c in mm.columns if c != "Intercept"]
        M, names = np.asarray(mm[keep], dtype=float), tuple(keep)
    else:
        M = np.asarray(mods, dtype=float)
        M = M.reshape(-1, 1) if M.ndim == 1 else M
        if M.ndim != 2:
            raise InputError(f"mods must be a matrix (studies x moderators), not of shape {M.shape}")
        names = tuple(str(n) for n in getattr(mods, "columns", [f"mods{j + 1}" for j in range(M.shape[1])]))
    if M.shape[0] != k:
        raise InputError(f"mods has {M.shape[0]} rows but there are {k} studies")
    if not (M.flags.c_contiguous or M.flags.f_contiguous):
        M = np.ascontiguousarray(M)
    return M, ("intrcpt",) + names


def meta(yi, vi, method: str = "REML", mods=None, test: str = "z", *, data=None, level: float = 0.95,
         connection=None, sql=None) -> MetaResult:
    """Random-effects meta-analysis y_i ~ N(theta_i, v_i), theta_i ~ N(x_i'beta, tau^2), v_i known.

    method: "REML" (default), "ML", "DL", "PM", "EB", "HE", "SJ", "HS" (metafor's definitions;
    every tau^2 truncated at 0, found exactly).  mods: None, a matrix of moderators (an
    intercept is added), a list of column names of data, or a formula "~ x + z" on data.
    test: "z" or "knha" (Knapp-Hartung).  With data= (a DataFrame, a path to CSV/Parquet
    files, a DuckDB relation or SQL query with connection=, a Dask or PySpark DataFrame),
    yi and vi are column names.
    """
    if method not in METHODS:
        raise InputError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if test not in TESTS:
        raise InputError(f"test must be 'z' or 'knha', not {test!r}")
    if not 0 < level < 1:
        raise InputError(f"level must be in (0, 1), not {level!r}")
    if data is not None and isinstance(yi, str):
        from .sources import fetch

        if not isinstance(vi, str):
            raise InputError("with data=, yi and vi are column names")
        data, mods = fetch(data, yi, vi, mods, connection=connection, sql=sql)
        yi, vi = data[yi].to_numpy(), data[vi].to_numpy()
    y, v = _vector("yi", yi), _vector("vi", vi)
    if len(y) != len(v):
        raise InputError(f"yi has {len(y)} values but vi has {len(v)}")
    M, names = moderators(mods, len(y), data)
    k, p = len(y), M.shape[1] + 1
    if k < algebra.KERNEL_MIN:
        check_values(y, v, M, names)
    if k - p < 1:
        raise InputError(f"{k} studies cannot estimate tau^2 beside {p} coefficient(s): need at least {p + 1}")
    powers = Powers(M, y, v)
    if not powers.finite:
        check_values(y, v, M, names)
        raise InputError("the weighted sums overflow: a value of yi or a moderator beyond 1e154 in size, or a vi "
                         "within 1e-308 of 0")
    tau2, se_tau2 = estimate(method, powers)
    return _assemble(method, test, level, names, y, v, tau2, se_tau2, powers)


def _assemble(method, test, level, names, y, v, tau2, se_tau2, powers) -> MetaResult:
    k, p = len(y), powers.p
    s = powers.at(tau2)
    beta, vb = powers.user(s)
    if test == "knha":
        vb *= 0.0 if s.rss <= np.finfo(float).eps else s.rss / (k - p)
    return MetaResult(method=method, test=test, level=level, k=k, p=p, names=names, yi=y, vi=v, powers=powers,
                      at=s, tau2=float(tau2), se_tau2=float(se_tau2), beta=beta, vb=vb)
