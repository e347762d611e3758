"""shrinkage.testing.assert_implements: it passes correct float64 implementations, and
rejects a slip (sigma^2 where sigma^2/n_j belongs) and an algebraically equal form that
loses its digits in a corner.  Expected values are checked against exact rational
arithmetic (fractions) and SymPy's own evalf, which share no code with the reference."""

from __future__ import annotations

import math
import re
from fractions import Fraction

import mpmath
import numpy as np
import pytest
import sympy as sp

from conftest import DERIVATIONS
from shrinkage import numeric
from shrinkage.build import load_derivations
from shrinkage.errors import DerivationError
from shrinkage.testing import assert_implements, reference


# --- implementations a user might write ---------------------------------------------
def lam_textbook(n, sigma2, sigma_b2):
    return sigma_b2 / (sigma_b2 + sigma2 / n)


def lam_cleared(n, sigma2, sigma_b2):
    return n * sigma_b2 / (n * sigma_b2 + sigma2)


def lam_slip(n, sigma2, sigma_b2):  # sigma^2 where sigma^2/n_j belongs
    return sigma_b2 / (sigma_b2 + sigma2)


def lam_cancelling(n, sigma2, sigma_b2):  # equal to lambda_j, but 1 - (something near 1)
    return 1 - sigma2 / (sigma2 + n * sigma_b2)


def blup_ok(ybar, n, beta0, sigma2, sigma_b2):
    return lam_cleared(n, sigma2, sigma_b2) * (ybar - beta0)


def blup_slip(ybar, n, beta0, sigma2, sigma_b2):
    return lam_slip(n, sigma2, sigma_b2) * (ybar - beta0)


def blup_cancelling(ybar, n, beta0, sigma2, sigma_b2):
    return lam_cancelling(n, sigma2, sigma_b2) * (ybar - beta0)


def blup_distributed(ybar, n, beta0, sigma2, sigma_b2):  # lambda ybar - lambda beta0: 1e8 offsets
    lam = lam_cleared(n, sigma2, sigma_b2)
    return lam * ybar - lam * beta0


def condvar_ok(n, sigma2, sigma_b2):
    return sigma2 * sigma_b2 / (sigma2 + n * sigma_b2)


def condvar_slip(n, sigma2, sigma_b2):
    return sigma2 * sigma_b2 / (sigma2 + sigma_b2)


def condvar_cancelling(n, sigma2, sigma_b2):  # (1 - lambda) sigma_b^2: lambda near 1 loses it
    return (1 - lam_cleared(n, sigma2, sigma_b2)) * sigma_b2


def loglik_ok(n, ybar, ss_within, beta0, sigma2, sigma_b2):
    return (-0.5 * n * np.log(2 * np.pi * sigma2) - 0.5 * np.log1p(n * sigma_b2 / sigma2)
            - ss_within / (2 * sigma2) - n * (ybar - beta0) ** 2 / (2 * (sigma2 + n * sigma_b2)))


def loglik_slip(n, ybar, ss_within, beta0, sigma2, sigma_b2):
    return (-0.5 * n * np.log(2 * np.pi * sigma2) - 0.5 * np.log1p(n * sigma_b2 / sigma2)
            - ss_within / (2 * sigma2) - n * (ybar - beta0) ** 2 / (2 * (sigma2 + sigma_b2)))


def loglik_expanded(n, ybar, ss_within, beta0, sigma2, sigma_b2):  # (ybar - beta0)^2 expanded
    return (-0.5 * n * np.log(2 * np.pi * sigma2) - 0.5 * np.log1p(n * sigma_b2 / sigma2)
            - ss_within / (2 * sigma2) - n * (ybar**2 - 2 * ybar * beta0 + beta0**2) / (2 * (sigma2 + n * sigma_b2)))


def ml_ok(n, ybar, ss_within, sigma2, sigma_b2):
    w = n / (sigma2 + n * sigma_b2)
    m = np.sum(w * ybar) / np.sum(w)
    return np.sum(-0.5 * n * np.log(2 * np.pi * sigma2) - 0.5 * np.log1p(n * sigma_b2 / sigma2)
                  - ss_within / (2 * sigma2) - 0.5 * w * (ybar - m) ** 2)


def ml_slip(n, ybar, ss_within, sigma2, sigma_b2):  # unweighted mean in place of the GLS mean
    w = n / (sigma2 + n * sigma_b2)
    m = np.mean(ybar)
    return np.sum(-0.5 * n * np.log(2 * np.pi * sigma2) - 0.5 * np.log1p(n * sigma_b2 / sigma2)
                  - ss_within / (2 * sigma2) - 0.5 * w * (ybar - m) ** 2)


def ml_cancelling(n, ybar, ss_within, sigma2, sigma_b2):  # sum w ybar^2 - (sum w ybar)^2 / sum w
    w = n / (sigma2 + n * sigma_b2)
    quad = np.sum(w * ybar**2) - np.sum(w * ybar) ** 2 / np.sum(w)
    return np.sum(-0.5 * n * np.log(2 * np.pi * sigma2) - 0.5 * np.log1p(n * sigma_b2 / sigma2)
                  - ss_within / (2 * sigma2)) - 0.5 * quad


CORRECT = [("shrinkage_factor", lam_textbook), ("shrinkage_factor", lam_cleared), ("shrinkage_factor", numeric.shrinkage_factor),
           ("blup", blup_ok), ("conditional_variance", condvar_ok), ("marginal_loglik", loglik_ok),
           ("ml_criterion", ml_ok)]
SLIPS = [("shrinkage_factor", lam_slip), ("blup", blup_slip), ("conditional_variance", condvar_slip),
         ("marginal_loglik", loglik_slip), ("ml_criterion", ml_slip)]
CANCELLING = [("shrinkage_factor", lam_cancelling), ("blup", blup_cancelling), ("blup", blup_distributed),
              ("conditional_variance", condvar_cancelling), ("marginal_loglik", loglik_expanded),
              ("ml_criterion", ml_cancelling)]


def _ids(cases):
    return [f"{name}-{f.__name__}" for name, f in cases]


@pytest.mark.parametrize("name,func", CORRECT, ids=_ids(CORRECT))
def test_correct_implementations_pass(name, func):
    report = assert_implements(func, name)
    assert report.corners > 0 and report.draws == 256
    assert report.worst.error < 1e-12  # float64 does this well, far inside the tolerance


@pytest.mark.parametrize("name,func", SLIPS, ids=_ids(SLIPS))
def test_slips_are_rejected(name, func):
    with pytest.raises(AssertionError, match=rf"does not implement {name} "):
        assert_implements(func, name)


@pytest.mark.parametrize("name,func", CANCELLING, ids=_ids(CANCELLING))
def test_forms_that_lose_digits_in_a_corner_are_rejected(name, func):
    with pytest.raises(AssertionError) as e:
        assert_implements(func, name)
    assert func.__name__ in str(e.value)
    # ... only in the corners: at moderate values the same function is right
    ref = reference(name)
    point = {a: MODERATE_ARRAYS[a] if a in ref.groups else MODERATE[a] for a in ref.args}
    expected, scale, _ = ref.evaluate(point)
    with mpmath.workdps(40):
        assert abs(mpmath.mpf(float(func(**point))) - expected) <= 1e-13 * scale


MODERATE = {"n": 3.0, "sigma2": 2.0, "sigma_b2": 0.7, "ybar": 1.3, "beta0": 0.4, "ss_within": 2.2}
MODERATE_ARRAYS = {"n": np.array([2.0, 5.0, 3.0]), "ybar": np.array([0.3, -1.1, 0.8]), "ss_within": np.array([1.0, 2.0, 0.5])}


def worst_point(message: str) -> dict:
    """The arguments of the worst point, parsed back from the assertion message."""
    line = message.splitlines()[3].strip()
    return eval(f"dict({line})", {"np": np})  # noqa: S307 (our own message)


def recorded(func):
    """func, recording every scalar call's arguments."""
    calls = []

    def wrapper(**kw):
        if all(np.ndim(v) == 0 for v in kw.values()):
            calls.append(dict(kw))
        return func(**kw)

    wrapper.calls, wrapper.__name__ = calls, func.__name__
    return wrapper


def exact_lambda(n, sigma2, sigma_b2) -> Fraction:
    return Fraction(sigma_b2) / (Fraction(sigma_b2) + Fraction(sigma2) / Fraction(n))


def test_the_message_names_the_worst_point_with_expected_got_and_error():
    f = recorded(lam_cancelling)
    with pytest.raises(AssertionError) as e:
        assert_implements(f, "shrinkage_factor", calls=("scalar",))
    message = str(e.value)
    point = worst_point(message)
    # the worst point, found independently with exact rational arithmetic over every call
    def error(p):
        exact = exact_lambda(**p)
        return abs(Fraction(lam_cancelling(**p)) - exact) / exact if exact else Fraction(0)
    worst = max(f.calls, key=error)
    assert point == worst
    assert point["n"] * point["sigma_b2"] < 1e-6 * point["sigma2"]  # the corner n sigma_b^2 << sigma^2
    got = float(re.search(r"got\s+(\S+)", message).group(1))
    expected = float(re.search(r"expected\s+(\S+)", message).group(1))
    relative = float(re.search(r"relative error (\S+)", message).group(1))
    assert got == lam_cancelling(**point)
    assert expected == pytest.approx(float(exact_lambda(**point)), rel=1e-15)
    assert relative == pytest.approx(float(error(point)), rel=1e-2)
    assert str(reference("shrinkage_factor").expr) in message and "derivation `blup`" in message


@pytest.mark.parametrize("name,exact", [
    ("shrinkage_factor", exact_lambda),
    ("blup", lambda ybar, n, beta0, sigma2, sigma_b2: exact_lambda(n, sigma2, sigma_b2) * (Fraction(ybar) - Fraction(beta0))),
    ("conditional_variance", lambda n, sigma2, sigma_b2: Fraction(sigma2) * Fraction(sigma_b2) / (Fraction(sigma2) + Fraction(n) * Fraction(sigma_b2))),
])
def test_expected_values_are_exact_to_24_digits(name, exact):
    """The reference at every corner and random point against exact rational arithmetic."""
    ref = reference(name)
    from shrinkage.testing._points import corner_points, random_points

    rng = np.random.default_rng(3)
    points = corner_points(ref.domains, ref.groups, rng) + random_points(ref.domains, ref.groups, 64, rng)
    with mpmath.workdps(40):
        for p in points:
            value, _, _ = ref.evaluate(p)
            q = exact(**p)
            assert abs(value - mpmath.mpf(q.numerator) / q.denominator) <= mpmath.mpf(10) ** -24 * abs(value), p


def test_criterion_reference_agrees_with_sympy_evalf():
    """ml_criterion (nested sums over groups) against SymPy's evalf of the same expression,
    written out for the point's number of groups: no shared printer or evaluator."""
    ref = reference("ml_criterion")
    p = {"n": np.array([1.0, 1e9, 3.0]), "ybar": 1e8 + np.array([0.25, -1.5, 0.75]),
         "ss_within": np.array([0.0, 2.5e9, 1.0]), "sigma2": 1e-6, "sigma_b2": 1e6}
    expr = ref.expr.replace(lambda x: isinstance(x, sp.Sum),
                            lambda s: sp.Add(*[s.function.xreplace({s.limits[0][0]: k}) for k in (1, 2, 3)]))
    values = {}
    for x in expr.atoms(sp.Indexed):
        values[x] = sp.Rational(float(p[x.base.label.name][int(x.indices[0]) - 1]))
    values.update({s: sp.Rational(p[s.name]) for s in expr.free_symbols if s.name in ("sigma2", "sigma_b2")})
    oracle = sp.N(expr.xreplace(values), 40)
    value, _, _ = ref.evaluate(p)
    with mpmath.workdps(40):
        assert abs(value - mpmath.mpf(str(oracle))) <= mpmath.mpf(10) ** -24 * abs(value)
    assert not expr.has(sp.Sum)


def test_a_reference_that_cancels_is_still_evaluated_exactly():
    """A step written as 1 - sigma^2/(sigma^2 + n sigma_b^2): at 30 digits it has only ~18
    right when lambda ~ 1e-12, so the precision is raised until two precisions agree."""
    from shrinkage.derive import Derivation, Given
    from shrinkage.symbols import n, sigma2, sigma_b2

    d = Derivation("cancels", "t", "s").then(Given(1 - sigma2 / (sigma2 + n * sigma_b2), why="w", label="lam"))
    ref = reference((d, "lam"))
    p = {"n": 1.0, "sigma2": 1e6, "sigma_b2": 1e-6}
    value, _, _ = ref.evaluate(p)
    q = exact_lambda(**p)
    with mpmath.workdps(60):
        assert abs(value - mpmath.mpf(q.numerator) / q.denominator) <= mpmath.mpf(10) ** -24 * value
    with mpmath.workdps(30):  # what a single 30-digit evaluation would have given
        naive = 1 - mpmath.mpf(1e6) / (mpmath.mpf(1e6) + mpmath.mpf(1e-6))
    with mpmath.workdps(60):
        assert abs(naive - mpmath.mpf(q.numerator) / q.denominator) > mpmath.mpf(10) ** -24 * value


def test_the_corners_are_reached():
    f = recorded(lam_cleared)
    assert_implements(f, "shrinkage_factor", calls=("scalar",))
    seen = {a: {c[a] for c in f.calls} for a in ("n", "sigma2", "sigma_b2")}
    assert {1.0, 2.0, 1e9} <= seen["n"] and {0.0, 1e-6, 1e6} <= seen["sigma_b2"]
    ratios = {c["sigma_b2"] / c["sigma2"] for c in f.calls if c["sigma_b2"] > 0}
    assert min(ratios) == pytest.approx(1e-12) and max(ratios) == pytest.approx(1e12)
    g = recorded(blup_ok)
    assert_implements(g, "blup", calls=("scalar",))
    far = [c for c in g.calls if c["ybar"] > 1e8 - 10]
    assert far and all(abs(c["ybar"] - c["beta0"]) < 20 for c in far)  # offset 1e8, unit noise


def test_wrong_only_in_one_corner_is_caught():
    def wrong_for_huge_groups(n, sigma2, sigma_b2):
        return np.where(n > 1e8, 1.0, lam_cleared(n, sigma2, sigma_b2))

    def wrong_at_zero(n, sigma2, sigma_b2):
        return np.where(sigma_b2 == 0, np.nan, lam_cleared(n, sigma2, sigma_b2))

    with pytest.raises(AssertionError, match="n=1000000000.0"):
        assert_implements(wrong_for_huge_groups, "shrinkage_factor")
    with pytest.raises(AssertionError, match=r"sigma_b2=0\.0(.|\n)*got\s+nan"):
        assert_implements(wrong_at_zero, "shrinkage_factor")
    assert_implements(wrong_at_zero, "shrinkage_factor", domains={"sigma_b2": "positive"})


def test_tolerance_is_adjustable_and_stated():
    def off_by_1e7(n, sigma2, sigma_b2):
        return lam_cleared(n, sigma2, sigma_b2) * (1 + 1e-7)

    with pytest.raises(AssertionError, match=r"rtol=1e-09, atol=0"):
        assert_implements(off_by_1e7, "shrinkage_factor")
    with pytest.raises(AssertionError, match=r"rtol=1e-08"):
        assert_implements(off_by_1e7, "shrinkage_factor", rtol=1e-8)
    assert assert_implements(off_by_1e7, "shrinkage_factor", rtol=2e-7).worst.error == pytest.approx(1e-7, rel=1e-6)


def test_scalars_and_arrays_are_both_called():
    def scalar_only(n, sigma2, sigma_b2):
        return math.fsum([n * sigma_b2]) / (n * sigma_b2 + sigma2)

    with pytest.raises(AssertionError, match="array call"):
        assert_implements(scalar_only, "shrinkage_factor")
    assert_implements(scalar_only, "shrinkage_factor", calls=("scalar",))

    def keeps_a_dimension(n, sigma2, sigma_b2):
        return np.atleast_1d(lam_cleared(n, sigma2, sigma_b2))

    with pytest.raises(AssertionError, match=r"shape \(1,\).*expected shape \(\)"):
        assert_implements(keeps_a_dimension, "shrinkage_factor")


def test_exceptions_and_signatures_name_the_point_or_the_arguments():
    def pure_python(n, sigma2, sigma_b2):
        return 1 / (n / sigma2 + 1 / sigma_b2)  # ZeroDivisionError at sigma_b2 = 0

    with pytest.raises(AssertionError, match=r"raised ZeroDivisionError(.|\n)*sigma_b2=0\.0"):
        assert_implements(pure_python, "conditional_variance", calls=("scalar",))
    assert_implements(pure_python, "conditional_variance", calls=("scalar",), domains={"sigma_b2": "positive"})
    with pytest.raises(AssertionError, match=r"returned values of dtype complex128, not real numbers"):
        assert_implements(lambda n, sigma2, sigma_b2: np.sqrt(lam_cleared(n, sigma2, sigma_b2) - 2 + 0j),
                          "shrinkage_factor")
    with pytest.raises(AssertionError, match=r"cannot be called with the arguments of blup, ybar, n, beta0"):
        assert_implements(lambda x, n: x, "blup")


def test_unknown_names_are_refused_clearly():
    from shrinkage.errors import DerivationError

    with pytest.raises(DerivationError, match=r"no function 'shrinkage_facotr'.*'shrinkage_factor'"):
        assert_implements(lam_cleared, "shrinkage_facotr")
    with pytest.raises(DerivationError, match=r"no step labelled 'nope'"):
        assert_implements(lam_cleared, ("blup", "nope"))
    with pytest.raises(ValueError, match=r"domains names \['sigma'\]"):
        assert_implements(lam_cleared, "shrinkage_factor", domains={"sigma": "positive"})
    with pytest.raises(ValueError, match=r"'n' has the domain 'odd'.*domains=\{'n': \.\.\.\}"):
        assert_implements(lam_cleared, "shrinkage_factor", domains={"n": "odd"})


def test_a_checked_result_by_derivation_and_label():
    """(CheckedDerivation, label): the reference says it is checked; (name, label) too."""
    from shrinkage.derive import Derivation, Equals, Given, check
    from shrinkage.symbols import n, sigma2, sigma_b2

    d = Derivation("tiny", "t", "s").then(
        Given(sigma_b2 / (sigma_b2 + sigma2 / n), why="the factor"),
        Equals(n * sigma_b2 / (n * sigma_b2 + sigma2), why="clear n", label="lam"))
    report = assert_implements(lam_textbook, (check(d), "lam"))
    assert report.reference.checked and report.reference.args == ("n", "sigma2", "sigma_b2")
    with pytest.raises(AssertionError, match=r"tiny`, step 2 \('lam'\), checked"):
        assert_implements(lam_slip, (check(d), "lam"))
    unchecked = assert_implements(blup_ok, ("blup", "blup")).reference  # a file's step, by label
    assert not unchecked.checked and set(unchecked.args) == {"ybar", "n", "beta0", "sigma2", "sigma_b2"}


PUBLIC = sorted(n for n, f in vars(numeric).items()
                if callable(f) and not n.startswith("_") and getattr(f, "__module__", "") == numeric.__name__)
# the matrix results (random slopes) take matrix arguments; they are judged against dense
# matrices in test_lmm_derivations, and assert_implements says it judges scalar results
MATRIX = sorted({e.function for d in load_derivations(DERIVATIONS) for e in d.exports
                 if any(isinstance(a, sp.MatrixSymbol) for a in e.args)})
SCALAR = [name for name in PUBLIC if name not in MATRIX]


@pytest.mark.slow  # 24 functions, the criteria's references take seconds to make
@pytest.mark.parametrize("name", SCALAR)
def test_every_generated_function_is_accurate_in_the_corners(name):
    """The generated float64 code itself, judged like a user's code (fewer random draws)."""
    assert_implements(getattr(numeric, name), name, draws=48)


def test_a_matrix_function_is_refused_with_the_reason():
    assert MATRIX and set(MATRIX) <= set(PUBLIC)
    with pytest.raises(DerivationError, match="is a matrix result"):
        assert_implements(getattr(numeric, MATRIX[0]), MATRIX[0])


def test_a_generated_module_of_ones_own_by_path_and_a_stale_one(tmp_path):
    """module= a user's generated module (here a stand-in file): its function names the
    derivation; one whose arguments no longer match the export is refused as stale."""
    from pathlib import Path

    from shrinkage.errors import DerivationError

    folder = Path(__file__).resolve().parent.parent / "examples" / "fay_herriot"
    doc = '"""Shrinkage factor.\n\n    From derivation `fay_herriot`, step 6.\n    """'
    (tmp_path / "numeric.py").write_text(f"def fh_shrinkage(tau2, s2):\n    {doc}\n    return tau2 / (tau2 + s2)\n")
    (tmp_path / "stale.py").write_text(f"def fh_shrinkage(s2, tau2, extra):\n    {doc}\n    return tau2 / (tau2 + s2)\n")
    report = assert_implements(lam_of_fh, "fh_shrinkage", module=tmp_path / "numeric.py", derivations=folder)
    assert report.reference.source.startswith("derivation `fay_herriot`, step 6")
    with pytest.raises(DerivationError, match=r"takes \(s2, tau2, extra\) but the derivation exports it with "
                                              r"\(tau2, s2\): the module is stale"):
        assert_implements(lam_of_fh, "fh_shrinkage", module=tmp_path / "stale.py", derivations=folder)
    with pytest.raises(DerivationError, match=r"has no function 'fh_blup'; it has \['fh_shrinkage'\]"):
        assert_implements(lam_of_fh, "fh_blup", module=tmp_path / "numeric.py", derivations=folder)


def lam_of_fh(tau2, s2):
    return tau2 / (tau2 + s2)
