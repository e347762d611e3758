"""Mutation testing: every corrupted step of every derivation is rejected.

For each step of each derivation in derivations/ (loaded when the tests are collected,
so new derivations are covered without editing this file), shrinkage.derive.mutate makes
corrupted copies of the step (a number changed, a term dropped, doubled or negated, the
whole expression negated, sigma^2 and sigma_b^2 swapped, ybar_j and beta0 swapped, the
claimed sign reversed, the limit point moved, a substituted value or a joint maximiser
corrupted, the other moment read off; in the matrix derivations also an inverse or a transpose
dropped, two square factors exchanged, X_j and Z_j confused, a claimed precision corrupted)
and the checker must raise StepError for each one
that is not mathematically equal to the original (50 digits): a corrupted Premise by its
restatement check, a corrupted definition by the later checked steps that use it.  The totals (mutants, share
rejected, equivalents skipped and why) are printed at the end of the run by
tests/conftest.py.  Two tests run the real build on a corrupted derivation and check
that it stops and writes nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import DERIVATIONS, ROOT, mutation_report
from shrinkage.derive import mutate
from shrinkage.build import build, load_derivations
from shrinkage.errors import StepError

DERIVATIONS_BY_NAME = {d.name: d for d in load_derivations(DERIVATIONS)}
# Mutants judged per step: SHRINKAGE_MUTANTS=all judges every one (minutes per
# derivation); the default takes a few per step, the operators in turn from step to step.
_LIMIT = os.environ.get("SHRINKAGE_MUTANTS", "2")
LIMIT = None if _LIMIT == "all" else int(_LIMIT)
# Derivations with matrix steps (lmm_*) are mutated too: their notation adds the matrix
# operators (shrinkage.matrix.mutate: an inverse or transpose dropped, square factors
# exchanged, X_j and Z_j confused, fields of the matrix step kinds corrupted) and tests
# equivalence with the matrix checks.
MATRIX_DERIVATIONS = {name for name, d in DERIVATIONS_BY_NAME.items() if any(hasattr(s, "verify") for s in d.steps)}
CASES = [(name, k) for name, d in DERIVATIONS_BY_NAME.items() for k in range(1, len(d.steps) + 1)]


CASE_PARAMS = [pytest.param(n, k, id=f"{n}-step{k}") for n, k in CASES]


@pytest.fixture(scope="module")
def contexts():
    return {name: mutate.contexts(d) for name, d in DERIVATIONS_BY_NAME.items()}


@pytest.mark.slow
@pytest.mark.parametrize("name, number", CASE_PARAMS)
def test_every_corruption_of_the_step_is_rejected(name, number, contexts):
    d = DERIVATIONS_BY_NAME[name]
    report = mutate.mutate_step(d, number, contexts[name][number - 1], limit=LIMIT)
    mutation_report(report)
    assert report.outcomes or report.equivalent, f"no mutant could be made of {name} step {number}"
    bad = [o for o in report.outcomes if o.status != "rejected"]  # no known gaps: a Given is no premise
    assert not bad, "\n".join(f"{o.mutant.description}: {o.status} {o.detail}" for o in bad)
    for o in (o for o in report.outcomes if o.status == "rejected"):
        step = d.steps[number - 1]
        if step.claim:
            assert o.at_step == number, f"{o.mutant.description} was rejected at step {o.at_step}, not by its own check"


# ----------------------------------------------------------------------------------
# The mutation machinery itself
# ----------------------------------------------------------------------------------
def _start(expr):
    """A chain's start in a unit test: a Premise restating a test Statement."""
    from shrinkage.derive import Premise, Statement

    return Premise.of(Statement("test", expr, "", "start"))


@pytest.mark.slow
def test_every_operator_makes_mutants():
    operators = {m.operator for d in DERIVATIONS_BY_NAME.values() if d.name not in MATRIX_DERIVATIONS
                 for k in range(1, len(d.steps) + 1)
                 for m in mutate.step_mutants(d, k)}
    assert {"coefficient", "drop-term", "flip-sign", "scale-term", "swap"} <= operators
    matrix = {m.operator for name in MATRIX_DERIVATIONS for k in range(1, len(DERIVATIONS_BY_NAME[name].steps) + 1)
              for m in mutate.step_mutants(DERIVATIONS_BY_NAME[name], k)}
    assert {"coefficient", "drop-term", "flip-sign", "scale-term", "swap", "drop-inverse", "drop-transpose",
            "swap-factors", "moment"} <= matrix


def test_an_equivalent_mutant_is_recognised_and_a_wrong_one_is_not():
    """(ybar - beta0)^2 is symmetric in ybar and beta0: swapping them is no corruption;
    swapping the variances in sigma_b2/(sigma_b2 + sigma2/n) is."""
    from shrinkage.derive import Derivation, Equals
    from shrinkage.symbols import beta0, n, sigma2, sigma_b2, ybar

    d = Derivation("eq", "eq", "eq").then(
        _start((ybar - beta0) ** 2 + sigma_b2 / (sigma_b2 + sigma2 / n)),
        Equals((ybar - beta0) ** 2 + n * sigma_b2 / (sigma2 + n * sigma_b2), why="rewrite"),
    )
    ctx = mutate.contexts(d)[1]
    by_description = {m.description: m for m in mutate.step_mutants(d, 2)}
    assert mutate.equivalent(d, by_description["swap ybar and beta0"], ctx)
    assert not mutate.equivalent(d, by_description["swap sigma2 and sigma_b2"], ctx)
    report = mutate.mutate_step(d, 2, ctx)
    assert [m.description for m in report.equivalent] == ["swap ybar and beta0"]
    assert all(o.status == "rejected" for o in report.outcomes)


# ----------------------------------------------------------------------------------
# End to end: the build refuses a corrupted derivation and writes nothing
# ----------------------------------------------------------------------------------
def _corrupted_folder(tmp_path, name: str, number: int, operator: str):
    """A derivations folder holding only ``name``, with its step ``number`` corrupted by
    the first mutant of the given operator; returns (folder, mutant)."""
    d = DERIVATIONS_BY_NAME[name]
    mutant = next(m for m in mutate.step_mutants(d, number) if m.operator == operator)
    folder = tmp_path / "derivations"
    folder.mkdir()
    (folder / f"{name}.py").write_text(mutate.mutant_file_source(DERIVATIONS / f"{name}.py", number, mutant.description))
    return folder, mutant


def _first_checked_step(d) -> int:
    return next(k for k, s in enumerate(d.steps, start=1) if s.claim and k > 1)


@pytest.mark.slow
def test_a_build_with_a_corrupted_step_stops_and_writes_nothing(tmp_path):
    d = DERIVATIONS_BY_NAME["blup"]
    number = _first_checked_step(d)
    folder, mutant = _corrupted_folder(tmp_path, "blup", number, "swap")
    out = tmp_path / "out"
    with pytest.raises(StepError) as err:
        build(derivations_dir=folder, out=out, numeric_module=out / "numeric.py", pdf=False, say=lambda _: None)
    assert err.value.derivation == "blup" and err.value.step == number
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.slow
def test_the_cli_refuses_a_corrupted_premise(tmp_path):
    """A corrupted model statement (step 1, a Premise) no longer restates the model; the
    CLI says which derivation, which step and why, exits 1, and writes nothing."""
    folder, mutant = _corrupted_folder(tmp_path, "blup", 1, "flip-sign")
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, "-m", "shrinkage", "build", "--derivations", str(folder), "--out", str(out),
         "--numeric", str(out / "numeric.py"), "--no-pdf"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert "derivation 'blup', step 1" in run.stderr and "does not restate the model statement" in run.stderr
    assert not out.exists() or not any(out.iterdir())


# ----------------------------------------------------------------------------------
# Engine strengthenings found by mutation testing
# ----------------------------------------------------------------------------------
def _lam_chain(*steps):
    from shrinkage.derive import Derivation
    from shrinkage.symbols import n, sigma2, sigma_b2

    return Derivation("m", "m", "m").then(_start(sigma_b2 / (sigma_b2 + sigma2 / n)), *steps)


def test_a_sign_step_checks_the_bound_it_shows():
    """lambda > 0 holds; "lambda > 1" (a corrupted bound) must not pass as checked."""
    import sympy as sp
    from shrinkage.derive import Sign, check

    check(_lam_chain(Sign(sp.S.Zero, sign=1, why="positive")))
    with pytest.raises(StepError, match="the bound 1"):
        check(_lam_chain(Sign(sp.S.One, sign=1, why="above one")))


def test_a_claim_that_cannot_be_evaluated_is_rejected_not_a_crash():
    """log(-lambda) is not real anywhere: a StepError, never a ValueError/TypeError."""
    import sympy as sp
    from shrinkage.derive import Equals, check
    from shrinkage.symbols import n, sigma2, sigma_b2

    with pytest.raises(StepError, match="cannot be evaluated numerically"):
        check(_lam_chain(Equals(sp.log(-sigma_b2 / (sigma_b2 + sigma2 / n)), why="nonsense")))


def test_a_derivative_claim_without_its_variable_is_checked():
    import sympy as sp
    from shrinkage.derive import Derivative, check
    from shrinkage.symbols import gamma

    d = _lam_chain(Derivative(sp.S.Zero, var=gamma, why="lambda does not involve gamma"))
    check(d)
    with pytest.raises(StepError):
        check(_lam_chain(Derivative(sp.S.One, var=gamma, why="wrong")))


@pytest.mark.slow
def test_corruptions_of_the_new_step_kinds_are_rejected():
    """Every judged mutant of a Premise, Substitute, ReadOffNormal, ConstrainedMaximiser and
    Cite step is rejected by the check (or set aside as equivalent)."""
    import sympy as sp
    from shrinkage import model
    from shrinkage.derive import (ConstrainedMaximiser, Derivation, Equals, Premise, ReadOffNormal, Substitute,
                                  check)
    from shrinkage.symbols import b, n, quantity, sigma2, sigma_b2

    from test_derive_steps import SEVERAL  # the package's notation with J >= 2
    from shrinkage.symbols import J

    group_n = quantity("group_size").symbol
    msw, msb, tau = quantity("msw").symbol, quantity("msb").symbol, quantity("tau").symbol

    def reml(t):
        return -(J * (group_n - 1) * sp.log(2 * sp.pi * sigma2) + (J - 1) * sp.log(2 * sp.pi * t)
                 + J * (group_n - 1) * msw / sigma2 + (J - 1) * msb / t) / 2

    total = J * (group_n - 1) * msw + (J - 1) * msb
    precision = n / sigma2 + 1 / sigma_b2
    src = Derivation("src", "s", "s", notation=SEVERAL).then(_start(reml(tau)), Equals(reml(tau) * 1, why="same",
                                                                                      label="crit"))
    d = Derivation("kinds", "k", "k", notation=SEVERAL).then(
        Premise.of(model.GROUP_JOINT),
        ReadOffNormal(1 / precision, var=b, why="variance"),
    ).cite(src, "crit", lhs="", why="cite").then(
        Substitute(reml(sigma2 + group_n * sigma_b2), values={tau: sigma2 + group_n * sigma_b2}, why="tau"),
        ConstrainedMaximiser(sp.Max(0, (msb - msw) / group_n), var=sigma_b2,
                             jointly={sigma2: sp.Piecewise((msw, msb > msw), (total / (J * group_n - 1), True))},
                             why="truncated"),
    )
    check(d)
    for number in range(1, len(d.steps) + 1):
        report = mutate.mutate_step(d, number, limit=4)
        assert report.outcomes, f"no mutant of step {number}"
        bad = [o for o in report.outcomes if o.status != "rejected"]
        assert not bad, "\n".join(f"step {number}: {o.mutant.description}: {o.status} {o.detail}" for o in bad)


# ----------------------------------------------------------------------------------
# Matrix derivations: the operators of shrinkage.matrix.mutate
# ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_matrix_mutants_never_change_a_shape_or_an_inverse_exponent():
    """Numbers in a matrix's shape (y_j is n x 1) and Inverse's fixed -1 are not
    coefficients: a mutant that changed them would be nonsense, or seem equivalent."""
    import sympy as sp

    for name in sorted(MATRIX_DERIVATIONS):
        d = DERIVATIONS_BY_NAME[name]
        by_code = {q.code: q.symbol for q in getattr(d.resolved_notation(), "matrices", ())}  # its own matrices
        for k in range(1, len(d.steps) + 1):
            for m in mutate.step_mutants(d, k):
                for e in mutate_expressions(m.step):
                    for s in e.atoms(sp.MatrixSymbol):
                        assert s == by_code[s.name], (name, k, m.description)
                    assert all(i.args[1] == -1 for i in e.atoms(sp.Inverse)), (name, k, m.description)


def mutate_expressions(step):
    from shrinkage.derive.steps import expressions_of

    return [e for e in expressions_of(step) if e is not None]


def test_a_matrix_mutant_equal_to_the_original_is_recognised_and_a_wrong_one_is_not():
    """D is symmetric, so dropping the transpose of D^T is no corruption; dropping that
    of Lambda^T, or exchanging D and Lambda, is."""
    from shrinkage.derive import Derivation
    from shrinkage.matrix.nodes import mplus, mtimes, tr
    from shrinkage.matrix.notation import MATRIX_NOTATION, D, Lambda_theta
    from shrinkage.matrix.steps import MatrixEquals

    current = mplus(mtimes(D, Lambda_theta), mtimes(Lambda_theta, tr(Lambda_theta)))
    d = Derivation("mx", "mx", "mx", notation=MATRIX_NOTATION).then(
        _start(current),
        MatrixEquals(mplus(mtimes(tr(D), Lambda_theta), mtimes(Lambda_theta, tr(Lambda_theta))), why="D = D^T"))
    report = mutate.mutate_step(d, 2, mutate.contexts(d)[1])
    assert [m.description for m in report.equivalent] == ["drop the transpose of D at (0, 0)"]
    described = {o.mutant.description: o.status for o in report.outcomes}
    assert described["drop the transpose of Lambda_theta at (1, 1)"] == "rejected"
    assert described["exchange the factors D.T and Lambda_theta at (0,)"] == "rejected"
    assert all(status == "rejected" for status in described.values())


def test_a_corrupted_field_of_a_matrix_step_is_rejected():
    """The precision of a maximiser and the moment read off are claims too."""
    d = DERIVATIONS_BY_NAME["lmm_blup"]
    ctxs = mutate.contexts(d)
    for label, needle in (("blup", "precision: "), (None, "read off the mean")):
        number = d.step_index(label) + 1 if label else next(
            k for k, s in enumerate(d.steps, start=1) if s.kind == "read-off")
        mutants = [m for m in mutate.step_mutants(d, number) if needle in m.description]
        assert mutants, (label, needle)
        for m in mutants:
            assert mutate.judge(d, m, ctxs[number - 1]).status == "rejected", m.description
