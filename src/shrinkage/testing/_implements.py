"""assert_implements: judge a user's float64 function against a derived result."""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import mpmath
import numpy as np

from ._domains import DOMAINS
from ._points import corner_points, random_points
from ._reference import Reference, for_function, for_step

DEFAULT_RTOL = 1e-9
FLOAT_MAX = mpmath.mpf(np.finfo(float).max)
FLOAT_TINY = mpmath.mpf(np.finfo(float).tiny)  # the least normal float64: below it no relative precision
COMPARE_DPS = 40  # got - expected is formed at this precision, not at mpmath's default 15 digits


@dataclass(frozen=True)
class Evaluation:
    """One comparison: the arguments, how they were passed, expected and got."""

    point: dict
    kind: str  # "corner" or "random"
    call: str  # "scalar call", "array call" (all points at once), "call with arrays over groups"
    expected: mpmath.mpf
    scale: mpmath.mpf
    got: float
    limit: bool

    @property
    def error(self) -> float:
        """|got - expected| relative to the scale (inf for a non-finite result)."""
        if not np.isfinite(self.got):
            return float("inf")
        with mpmath.workdps(COMPARE_DPS):
            diff = abs(mpmath.mpf(self.got) - self.expected)
            return float(diff / self.scale) if self.scale > 0 else (0.0 if diff == 0 else float("inf"))

    def within(self, rtol: float, atol: float) -> bool:
        if not np.isfinite(self.got):
            return False
        with mpmath.workdps(COMPARE_DPS):
            return abs(mpmath.mpf(self.got) - self.expected) <= atol + rtol * self.scale


@dataclass(frozen=True)
class Report:
    """What assert_implements compared, returned when every comparison passed."""

    reference: Reference
    evaluations: int
    corners: int
    draws: int
    worst: Evaluation | None
    skipped: int  # points whose expected value leaves float64's normal range (overflow, underflow)

    def __str__(self) -> str:
        worst = f"{self.worst.error:.2g}" if self.worst else "n/a"
        return (f"{self.reference.name}: {self.evaluations} evaluations ({self.corners} corners, {self.draws} "
                f"random points), worst relative error {worst}")


def assert_implements(func, name, *, rtol: float = DEFAULT_RTOL, atol: float = 0.0, draws: int = 256,
                      seed: int = 0, corners: bool = True, calls=("scalar", "array"),
                      module: ModuleType | None = None, derivations: str | Path | None = None,
                      domains: dict | None = None) -> Report:
    """Check that ``func`` computes the derived result ``name`` in float64, corners included.

    ``name``: a generated function's name (in ``module``, default ``shrinkage.numeric``;
    for a module generated from your own derivations pass ``derivations=FOLDER``), or
    ``(derivation, label)`` for any labelled step (a Derivation, a CheckedDerivation, a
    file, or a derivation's name), or a :class:`Reference`.

    ``func`` is called with the result's argument names as keywords, as floats: at a grid
    of corners (variances 1e-6 and 1e6, so ratios 1e-12 ... 1e12; counts 1, 2 and 1e9;
    sigma_b^2 = 0 where the generated function accepts it; data at offsets 0 and 1e8 with
    unit noise), then at ``draws`` random points (``seed``).  An elementwise result is
    called once per point with scalars and once with arrays of all points; a result
    summed over groups once per point, with 1-d arrays for its arguments over groups.
    ``domains`` overrides an argument's domain (e.g. ``{"sigma_b2": "positive"}``).

    Expected values come from the SymPy expression (the one the code generator prints),
    evaluated by mpmath from the exact float64 inputs, at 30, 60, ... digits until two
    precisions agree to 24 digits: never from generated float64 code.  Unless ``name``
    is a CheckedDerivation's step, the expression is taken as the derivation states it;
    ``shrinkage check`` / the build check its steps, this function does not.

    Tolerance policy: |got - expected| <= atol + rtol * scale, where scale is |expected|,
    or, for a result that is a sum of terms (a log-likelihood), the sum of the terms'
    magnitudes, since float64 cannot sum to better than its largest terms' rounding.
    The default rtol = 1e-9 leaves float64 (1.1e-16) seven digits of room for a correct
    formula, and rejects one that loses more than 7 digits anywhere, or is wrong.

    Raises AssertionError naming the worst point (arguments, expected, got, relative
    error); returns a :class:`Report` when everything agrees.
    """
    ref = _resolve(name, module, derivations)
    if domains:
        unknown = sorted(set(domains) - set(ref.args))
        if unknown:
            raise ValueError(f"domains names {unknown}, which are not arguments of {ref.name} {list(ref.args)}")
        ref = _with_domains(ref, domains)
    for a, d in ref.domains.items():
        if d not in DOMAINS:
            raise ValueError(f"argument {a!r} has the domain {d!r}, for which shrinkage.testing has no float64 "
                             f"draws; pass domains={{{a!r}: ...}} with one of {sorted(DOMAINS)}")
    _check_signature(func, ref)
    rng = np.random.default_rng(seed)
    points = [(p, "corner") for p in (corner_points(ref.domains, ref.groups, rng) if corners else [])]
    points += [(p, "random") for p in random_points(ref.domains, ref.groups, draws, rng)]
    expected, kept, skipped = [], [], 0
    for point, kind in points:
        value, scale, limit = ref.evaluate(point)
        if abs(value) > FLOAT_MAX or 0 < abs(value) < FLOAT_TINY:  # float64 cannot hold it to rtol
            skipped += 1
            continue
        kept.append((point, kind))
        expected.append((value, scale, limit))
    evaluations = list(_run(func, ref, kept, expected, calls))
    bad = [e for e in evaluations if not e.within(rtol, atol)]
    if bad:
        raise AssertionError(_message(func, ref, bad, len(evaluations), rtol, atol))
    worst = max(evaluations, key=lambda e: e.error, default=None)
    n_corners = sum(1 for _, k in kept if k == "corner")
    return Report(ref, len(evaluations), n_corners, len(kept) - n_corners, worst, skipped)


def _resolve(name, module, derivations) -> Reference:
    if isinstance(name, Reference):
        return name
    if isinstance(name, tuple) and len(name) == 2:
        return for_step(name[0], name[1], derivations)
    if isinstance(name, str):
        return for_function(name, module, derivations)
    raise TypeError(f"name must be a function name, (derivation, label) or a Reference, got {name!r}")


def _with_domains(ref: Reference, domains: dict) -> Reference:
    from dataclasses import replace

    return replace(ref, domains={**ref.domains, **domains})


def _check_signature(func, ref: Reference) -> None:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return  # a builtin without a signature: the first call will tell
    try:
        signature.bind(**{a: 0.0 for a in ref.args})
    except TypeError as e:
        raise AssertionError(f"{_name(func)}{signature} cannot be called with the arguments of {ref.name}, "
                             f"{', '.join(ref.args)} (as keywords): {e}") from None


def _call(func, kwargs, where: str):
    """func(**kwargs) as a float array; only values are judged (numpy warnings such as a
    division by zero that yields the right limit are not)."""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            out = func(**kwargs)
    except Exception as e:
        raise AssertionError(f"{_name(func)} raised {type(e).__name__}: {e}\n  {where}") from e
    got = np.asarray(out)
    if not (np.issubdtype(got.dtype, np.floating) or np.issubdtype(got.dtype, np.integer) or got.dtype == bool):
        raise AssertionError(f"{_name(func)} returned values of dtype {got.dtype}, not real "
                             f"numbers\n  {where}")
    return got.astype(float)


def _run(func, ref: Reference, points, expected, calls):
    unknown = set(calls) - {"scalar", "array"}
    if unknown or not calls:
        raise ValueError(f"calls must be a non-empty selection of 'scalar' and 'array', got {calls!r}")
    if not ref.elementwise:
        for (point, kind), (value, scale, limit) in zip(points, expected):
            got = _call(func, _plain(point), f"at {_fmt_point(point)}")
            _require_shape(func, got, (), point)
            yield Evaluation(point, kind, "call with arrays over groups", value, scale, float(got), limit)
        return
    if "scalar" in calls:
        for (point, kind), (value, scale, limit) in zip(points, expected):
            got = _call(func, _plain(point), f"at {_fmt_point(point)} (scalar call)")
            _require_shape(func, got, (), point)
            yield Evaluation(point, kind, "scalar call", value, scale, float(got), limit)
    if "array" in calls and points:
        arrays = {a: np.array([p[a] for p, _ in points], dtype=float) for a in ref.args}
        got = _call(func, arrays, f"in the array call over all {len(points)} points")
        _require_shape(func, got, (len(points),), None)
        for k, ((point, kind), (value, scale, limit)) in enumerate(zip(points, expected)):
            yield Evaluation(point, kind, "array call", value, scale, float(got[k]), limit)


def _plain(point: dict) -> dict:
    return {a: (v.copy() if isinstance(v, np.ndarray) else float(v)) for a, v in point.items()}


def _require_shape(func, got: np.ndarray, shape: tuple, point) -> None:
    if got.shape != shape:
        where = f" at {_fmt_point(point)}" if point is not None else ""
        raise AssertionError(f"{_name(func)} returned an array of shape {got.shape}{where}; expected shape {shape}")


def _name(func) -> str:
    return getattr(func, "__name__", None) or repr(func)


def _fmt_value(v) -> str:
    if isinstance(v, np.ndarray):
        return "np.array([" + ", ".join(repr(float(x)) for x in v) + "])"
    return repr(float(v))


def _fmt_point(point: dict) -> str:
    return ", ".join(f"{a}={_fmt_value(v)}" for a, v in point.items())


def _message(func, ref: Reference, bad, total: int, rtol, atol) -> str:
    worst = max(bad, key=lambda e: e.error)
    scale = "|expected|" if ref._scale is None else "the sum of the magnitudes of its terms"
    checked = "checked" if ref.checked else "as written (`shrinkage check` checks it; not checked here)"
    limit = " (the limit as the zero arguments tend to 0 from above)" if worst.limit else ""
    return "\n".join([
        f"{_name(func)} does not implement {ref.name} to rtol={rtol:g}, atol={atol:g}:",
        f"  reference: {ref.source}, {checked}:  {ref.expr}",
        f"  {len(bad)} of {total} evaluations differ; the worst ({worst.kind} point, {worst.call}):",
        f"    {_fmt_point(worst.point)}",
        f"    expected {mpmath.nstr(worst.expected, 17)}{limit}",
        f"    got      {worst.got!r}",
        f"    relative error {worst.error:.3g} (relative to {scale} = {mpmath.nstr(worst.scale, 6)})",
    ])
