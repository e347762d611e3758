"""The derivation engine: correct steps pass, wrong ones stop the build with a
counterexample, and a step SymPy cannot settle is never shown as proven."""

from __future__ import annotations

import sympy as sp
import pytest

from shrinkage.derive import claims
from shrinkage.derive import Derivation, Equals, Maximiser, Premise, Statement, check
from shrinkage.errors import DerivationError, StepError
from shrinkage.render.document import render
from shrinkage.symbols import b, beta0, n, sigma2, sigma_b2, ybar


def given(expr, why="a test statement"):
    """A chain's start in a unit test: a Premise restating a test Statement."""
    return Premise.of(Statement("test", expr, "", why))


def tiny(*steps):
    return Derivation("tiny", "A tiny derivation", "For tests.").then(
        given(sigma_b2 / (sigma_b2 + sigma2 / n), why="the shrinkage factor"), *steps
    )


def test_a_true_rewriting_is_proved_and_checked_numerically():
    cd = check(tiny(Equals(n * sigma_b2 / (sigma2 + n * sigma_b2), why="clear the fraction")))
    verdict = cd.steps[1].verdict
    assert verdict.symbolic is True
    assert verdict.points >= 20


def test_a_false_rewriting_stops_with_a_counterexample():
    with pytest.raises(StepError) as err:
        check(tiny(Equals(sigma_b2 / (sigma_b2 + sigma2), why="forget n")))
    message = str(err.value)
    assert "'tiny'" in message and "step 2 (equals)" in message and err.value.why == "forget n"
    assert "n=" in message and "previous expression" in message


def test_a_wrong_maximiser_is_rejected():
    quadratic = -(b - ybar) ** 2 / (2 * sigma2) - b**2 / (2 * sigma_b2)
    d = Derivation("q", "q", "q").then(given(quadratic, why="a concave quadratic"))
    check(d.then(Maximiser(sigma_b2 / (sigma_b2 + sigma2) * ybar, var=b, why="right")))
    with pytest.raises(StepError, match="claimed maximiser"):
        check(d.then(Maximiser(ybar, var=b, why="the unshrunk mean")))


def test_a_step_sympy_cannot_settle_is_marked_numeric_only(monkeypatch):
    monkeypatch.setattr(claims, "is_zero", lambda expr: None)
    cd = check(tiny(Equals(n * sigma_b2 / (sigma2 + n * sigma_b2), why="clear the fraction")))
    assert cd.steps[1].verdict.symbolic is None
    tex = render(cd)
    assert "not settled, numeric check only" in tex
    assert "SymPy: proved" not in tex


def test_symbols_without_a_domain_are_refused():
    stranger = sp.Symbol("stranger", positive=True)
    d = Derivation("s", "s", "s").then(given(stranger * n, why="a stranger"), Equals(n * stranger, why="commute"))
    with pytest.raises(DerivationError, match="stranger"):
        check(d)


def test_derivations_are_immutable_values():
    d = tiny()
    d2 = d.then(Equals(n * sigma_b2 / (sigma2 + n * sigma_b2), why="x"))
    assert len(d.steps) == 1 and len(d2.steps) == 2
    with pytest.raises(AttributeError):
        d.steps = ()  # type: ignore[misc]


def test_every_derivation_checks(checked):
    """The committed derivations all pass (this is what `shrinkage build` requires)."""
    assert "blup" in checked
    for cd in checked.values():
        assert all(s.verdict.symbolic in (True, None, "n/a") for s in cd.steps)


def test_the_blup_derivation_proves_every_step_symbolically(checked):
    steps = checked["blup"].steps
    assert all(s.verdict.symbolic in (True, "n/a") for s in steps)
    assert sum(s.verdict.symbolic is True for s in steps) >= 10


def test_the_blup_derivation_states_the_sum_over_every_observation(checked):
    """The question's slip: the product must run over i = 1..n_j inside j = 1..J."""
    first = checked["blup"].derivation.steps[0].rhs
    outer = first.atoms(sp.Sum)
    limits = {str(lim[0]) for s in outer for lim in s.limits}
    assert {"i", "j"} <= limits


def test_sums_split_by_linearity_prove_the_envelope_identity_and_nothing_near_it():
    """sum_j w_j (ybar_j - beta0_hat) = 0 with beta0_hat = sum_k w_k ybar_k / sum_k w_k:
    proved with the sums as indeterminates (index renamed, free factors pulled out);
    a wrong weight, a shorter range or a stray term is never proved."""
    from shrinkage.derive.algebra import is_zero
    from shrinkage.symbols import J, gamma, j, k

    nn = sp.IndexedBase("n", integer=True, positive=True)
    yb = sp.IndexedBase("ybar", real=True)
    w = lambda i: nn[i] / (gamma * nn[i] + 1)  # noqa: E731
    beta_hat = sp.Sum(w(k) * yb[k], (k, 1, J)) / sp.Sum(w(k), (k, 1, J))
    assert is_zero(sp.Sum(w(j) * (yb[j] - beta_hat), (j, 1, J))) is True
    for wrong in (sp.Sum(w(j) ** 2 * (yb[j] - beta_hat), (j, 1, J)),
                  sp.Sum(w(j) * (yb[j] - beta_hat), (j, 1, J - 1)),
                  sp.Sum(w(j) * (yb[j] - beta_hat) + nn[j] * 0 + gamma, (j, 1, J))):
        assert is_zero(wrong) is None


def test_a_derivative_through_a_defined_symbol_is_not_proved_by_treating_it_as_constant(monkeypatch):
    """The profiled ML criterion is written in Q, which stands for Q(gamma): claiming its
    derivative is 0 (what differentiating the symbol Q would give) is no theorem, and
    the true derivative is proved."""
    from dataclasses import replace

    from conftest import DERIVATIONS
    from shrinkage.build import load_file
    from shrinkage.derive.algebra import linear_sums
    from shrinkage.derive.walk import walk

    d = load_file(DERIVATIONS / "profile.py")
    ctx = list(walk(d))[d.step_index("ml_slope") - 1]  # the Derivative step before ml_slope
    assert type(ctx.step).__name__ == "Derivative"
    assert claims.symbolic_derivative(ctx) is True
    zero = replace(ctx, step=replace(ctx.step, rhs=sp.S.Zero))
    asked = []
    monkeypatch.setattr(claims, "is_zero", lambda e: asked.append(e))  # what would be proved zero
    assert claims.symbolic_derivative(zero) is not True
    (difference,) = asked
    assert sp.cancel(sp.together(linear_sums(difference))) != 0  # the derivative itself, not 0 - 0
    with pytest.raises(claims.Failure):
        claims.numeric_derivative(zero)
