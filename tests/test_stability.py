"""Numerical stability of the generated functions.

Every exported function of every derivation (found when the tests are collected, so new
exports are covered without editing this file) is evaluated in float64 and compared
with its exact SymPy expression (the derivation's result, definitions substituted)
evaluated at 50 digits at the very same float inputs.  The relative error must be at
most 1e-9 across

* sigma_b^2 / sigma^2 (and gamma) from 1e-12 to 1e12, sigma^2 from 1e-4 to 1e4;
* n_j (and N, nu) from 1 to 1e9;
* data with a common offset: ybar_j and beta0 around 0 or 1e8 with unit noise;
* aggregate quantities (Q, D, W, R, U, S_j) over many orders of magnitude.

hypothesis searches this space with a fixed profile (derandomized), so the run is the
same everywhere.  A function of another helper's derivation that fails is listed in
KNOWN_UNSTABLE with the reason (strict xfail: it turns red once fixed, so the entry
gets removed).
"""

from __future__ import annotations

import importlib.util
import math
import sys

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sympy.codegen.cfunctions import log1p

from conftest import DERIVATIONS
from shrinkage import codegen
from shrinkage.derive import mutate
from shrinkage.build import load_derivations
from shrinkage.derive import CheckedDerivation, Define
from shrinkage.symbols import quantity

REL_TOL = 1e-9
DIGITS = 50

settings.register_profile(
    "stability", derandomize=True, max_examples=150, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# function name -> reason; strict xfail.  Only for derivations this suite does not own.
KNOWN_UNSTABLE: dict[str, str] = {}

# Functions whose value is a difference of terms that cancel where it matters (a slope
# near its root, where the fit looks for it): no formula in these arguments can give a
# small *relative* error there (e.g. ml_profile_slope at N=3.2e7, Q=10, W=3.2e6, R=1:
# N R/(2Q) - W/2 with rel. error 5e-9).  For them the error is measured relative to the
# size of the terms of the final sum (|ref| + sum of |terms|): the evaluation must be
# as accurate as its inputs allow, which is what a root finder needs.
CANCELLING_SUMS: dict[str, str] = {
    "ml_profile_slope": "derivative of the profiled ML criterion, zero at the estimate",
    "reml_profile_slope": "derivative of the profiled REML criterion, zero at the estimate",
}


def _unchecked(d) -> CheckedDerivation:
    """The derivation with its definitions collected but no step checked: enough to
    generate its code and its exact results (checking is tested elsewhere)."""
    definitions = dict(mutate.contexts(d)[-1].definitions)
    if isinstance(d.steps[-1], Define):
        definitions[d.steps[-1].symbol] = d.steps[-1].rhs
    return CheckedDerivation(d, (), definitions)


UNCHECKED = [_unchecked(d) for d in load_derivations(DERIVATIONS)]
# scalar results; the matrix ones (random slopes) are judged against dense matrices in
# test_lmm_derivations
EXPORTS = {e.function: (cd, e) for cd in UNCHECKED for e in cd.derivation.exports
           if not any(isinstance(a, sp.MatrixSymbol) for a in e.args)}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The numeric module the current derivations generate, imported from a temp file."""
    path = tmp_path_factory.mktemp("numeric") / "numeric_under_test.py"
    path.write_text(codegen.generate(UNCHECKED))
    spec = importlib.util.spec_from_file_location("shrinkage._numeric_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


# ----------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------
def _log_uniform(lo: float, hi: float):
    return st.floats(math.log10(lo), math.log10(hi)).map(lambda e: 10.0**e)


def _whole(lo: int, hi: int):
    """Whole numbers, log-uniform in [lo, hi], with the ends themselves likely."""
    return st.one_of(st.sampled_from([lo, hi]), _log_uniform(lo, hi).map(lambda x: float(min(hi, max(lo, round(x))))))


NOISE = st.integers(-5 * 10**6, 5 * 10**6).map(lambda k: k / 1e6)  # unit noise, no subnormals
RATIO = _log_uniform(1e-12, 1e12)
AGGREGATE = _log_uniform(1e-6, 1e12)
BY_NAME = {
    "sigma2": _log_uniform(1e-4, 1e4),
    "gamma": RATIO,
    "n": _whole(1, 10**9),
    "N": _whole(1, 10**9),
    "nu": _whole(1, 10**9),
    "lam": st.floats(1e-12, 1 - 1e-12),
    # a GLMM's linear predictor: |eta| up to 600 (probabilities and rates down to 1e-261; beyond,
    # m exp(eta) itself leaves float64 for the largest m drawn, and no fit evaluates there)
    "eta": st.floats(-600.0, 600.0),
}
BY_DOMAIN = {
    "positive": AGGREGATE,
    "count": _whole(1, 10**9),
    "few": _whole(1, 1000),
    "several": _whole(2, 10**6),
    "unit": st.floats(1e-12, 1 - 1e-12),
}


@st.composite
def inputs(draw, args, arrays, notation):
    """Values for ``args`` (name -> float or list of floats for the array arguments)."""
    offset = draw(st.sampled_from([0.0, 1e8, -1e8]))
    length = draw(st.integers(1, 6))
    values = {}

    def one(name, domain):
        if name == "sigma_b2":
            return values["sigma2"] * draw(RATIO)
        if name in ("ss_within", "ss_g"):
            return draw(_log_uniform(1e-3, 1e10))
        if domain == "real" and name not in BY_NAME:
            return offset + draw(NOISE)
        return draw(BY_NAME.get(name, BY_DOMAIN.get(domain)))

    ordered = sorted(args, key=lambda a: a.name != "sigma2")  # sigma2 first: sigma_b2 is drawn as a ratio to it
    for a in ordered:
        q = notation.quantity_of(a)  # the derivation's own notation (J >= 2 in balanced)
        domain = q.domain if isinstance(q.domain, str) else q.accepted_domain  # a domain of its own: what code accepts
        if a.name in arrays:
            values[a.name] = [one(a.name, domain) for _ in range(length)]
        else:
            values[a.name] = one(a.name, domain)
    return values


# ----------------------------------------------------------------------------------
# The reference: the exact expression at 50 digits
# ----------------------------------------------------------------------------------
def _array_bases(expr) -> set[str]:
    return {str(x.base.label) for x in expr.atoms(sp.Indexed)}


_REFERENCES: dict = {}


def _reference_function(function: str, expr: sp.Expr, names: tuple[str, ...], length: int):
    """An mpmath function of the scalar inputs and the array elements (in that order):
    expr with its sums over groups written out at ``length`` groups.  Cached."""
    key = (function, length, names)
    if key not in _REFERENCES:
        e = expr.replace(lambda x: isinstance(x, log1p), lambda x: sp.log(1 + x.args[0]))

        def write_out(s: sp.Sum) -> sp.Expr:
            ((var, lo, _),) = s.limits
            return sp.Add(*[s.function.xreplace({var: lo + k}) for k in range(length)])

        bases = _array_bases(e)  # before writing out: one group may cancel an array away
        e = e.replace(lambda x: isinstance(x, sp.Sum), write_out)
        by_name = {s.name: s for s in e.free_symbols if isinstance(s, sp.Symbol)}
        scalars = [by_name.get(n, sp.Dummy(n)) for n in names if n not in bases]
        lows = {n: 1 for n in bases}
        for x in e.atoms(sp.Indexed):
            lows[str(x.base.label)] = min(lows[str(x.base.label)], x.indices[0])
        elements, slots = {}, []
        for n in names:
            if n in bases:
                for k in range(length):
                    d = sp.Dummy(f"{n}_{k}")
                    slots.append(d)
                    elements[quantity(n).indexed[lows[n] + k]] = d
        e = e.xreplace(elements)
        left = e.free_symbols - set(scalars) - set(slots)
        if left:
            raise AssertionError(f"{function}: the exact result still has {sorted(map(str, left))}")
        _REFERENCES[key] = (sp.lambdify(scalars + slots, e, modules="mpmath"), [n for n in names if n not in bases],
                            [n for n in names if n in bases])
    return _REFERENCES[key]


def reference(function: str, expr: sp.Expr, values: dict) -> mpmath.mpf:
    """expr at the (exact) float inputs, evaluated with mpmath at 80 digits (the inputs
    are exact binary floats, so only the evaluation rounds; DIGITS digits survive any
    cancellation these inputs can produce)."""
    lengths = {len(v) for v in values.values() if isinstance(v, list)} or {1}
    (length,) = lengths
    f, scalar_names, array_names = _reference_function(function, expr, tuple(values), length)
    with mpmath.workdps(DIGITS + 30):
        args = [mpmath.mpf(float(values[n])) for n in scalar_names]
        args += [mpmath.mpf(float(v)) for n in array_names for v in values[n]]
        return +f(*args)


def relative_error(value: float, ref: mpmath.mpf) -> float:
    with mpmath.workdps(DIGITS):
        if ref == 0:
            return 0.0 if value == 0 else math.inf
        return float(abs((mpmath.mpf(value) - ref) / ref))


# ----------------------------------------------------------------------------------
# The tests
# ----------------------------------------------------------------------------------
def _cases():
    for name in sorted(EXPORTS):
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_UNSTABLE[name])] if name in KNOWN_UNSTABLE else []
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("function", list(_cases()))
def test_generated_function_is_accurate_to_1e_9(function, generated):
    cd, export = EXPORTS[function]
    expr = codegen.inline_group_definitions(cd.result(export.label), cd.definitions, export.args)
    size = sp.Add(*[sp.Abs(t) for t in sp.Add.make_args(expr)]) if function in CANCELLING_SUMS else None
    arrays = _array_bases(expr) & {a.name for a in export.args}
    kernel = getattr(generated, function)
    worst = {"error": 0.0, "at": None}

    @settings(settings.get_profile("stability"))
    @given(values=inputs(export.args, arrays, cd.derivation.resolved_notation()))
    def check(values):
        args = [np.asarray(values[a.name], dtype=float) for a in export.args]
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            value = float(kernel(*args))
        ref = reference(function, expr, values)
        if size is None:
            err = relative_error(value, ref)
        else:
            scale = reference(function + " (size of its terms)", size, values)
            with mpmath.workdps(DIGITS):
                err = float(abs(mpmath.mpf(value) - ref) / max(abs(ref), scale))
        if err > worst["error"]:
            worst.update(error=err, at=values)
        assert err <= REL_TOL, f"{function}{values}: {value!r} vs exact {mpmath.nstr(ref, 20)} (rel. error {err:.2e})"

    check()


def test_the_reference_catches_a_naive_formula():
    """A test of the test: 1 - lambda written as 1 - sigma_b2/(sigma_b2 + sigma2/n) loses
    every digit when lambda is near 1, and the comparison above sees it."""
    from shrinkage.symbols import n, sigma2, sigma_b2

    expr = 1 - sigma_b2 / (sigma_b2 + sigma2 / n)
    values = {"n": 1e9, "sigma2": 1.0, "sigma_b2": 1e3}
    naive = 1 - values["sigma_b2"] / (values["sigma_b2"] + values["sigma2"] / values["n"])
    stable = values["sigma2"] / (values["sigma2"] + values["n"] * values["sigma_b2"])
    ref = reference("naive one minus lambda", expr, values)
    assert relative_error(naive, ref) > 1e-6
    assert relative_error(stable, ref) < 1e-15
