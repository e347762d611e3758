"""The step kinds of shrinkage.derive: each accepts a true claim and rejects a wrong one.

Chains start from a test Statement (a Premise), as a user's derivation starts from its
model.  Every kind gets a deliberately wrong claim that must raise StepError.
"""

from __future__ import annotations

from dataclasses import replace

import sympy as sp
import pytest

from shrinkage import model
from shrinkage.derive import (Cite, ConstrainedMaximiser, Define, Derivation, Equals, Limit, Notation, Premise,
                              ReadOffNormal, Statement, Substitute, check)
from shrinkage.errors import DerivationError, StepError
from shrinkage.symbols import NOTATION, J, b, beta0, const, n, quantity, sigma2, sigma_b2, ss_within, ybar


def chain(expr, *steps, name="t"):
    start = Premise.of(Statement("test_start", expr, "f", "a test statement"))
    return Derivation(name, name, name, notation=SEVERAL).then(start, *steps)


# --- Substitute -----------------------------------------------------------------------
group_n = quantity("group_size").symbol
# the package's notation with J >= 2 (a balanced design's between-group mean square needs it)
SEVERAL = Notation([replace(q, domain="several") if q.code == "J" else q for q in NOTATION], NOTATION.definitions,
                   name="shrinkage.symbols, J >= 2")
msw, msb, tau = quantity("msw").symbol, quantity("msb").symbol, quantity("tau").symbol


def reml(t):
    return -(J * (group_n - 1) * sp.log(2 * sp.pi * sigma2) + (J - 1) * sp.log(2 * sp.pi * t)
             + sp.log(J * group_n) + J * (group_n - 1) * msw / sigma2 + (J - 1) * msb / t) / 2


def test_a_substitution_is_checked_literally():
    d = chain(reml(tau), Substitute(reml(sigma2 + group_n * sigma_b2), values={tau: sigma2 + group_n * sigma_b2},
                                    why="tau = sigma^2 + n sigma_b^2"))
    assert check(d).steps[1].verdict.symbolic is True
    with pytest.raises(StepError, match="the substitution ="):
        check(chain(reml(tau), Substitute(reml(sigma2 + 2 * group_n * sigma_b2),
                                          values={tau: sigma2 + group_n * sigma_b2}, why="slip")))


def test_a_substitution_of_an_absent_symbol_is_refused():
    with pytest.raises(StepError, match="does not contain"):
        check(chain(reml(tau), Substitute(reml(tau), values={beta0: 0}, why="nothing to put in")))


def test_beta0_put_to_its_estimate():
    """Profiling: put beta0 = ybar into a log-likelihood (not an identity: a substitution)."""
    ell = -(ybar - beta0) ** 2 / (2 * sigma2) - sp.log(sigma2) / 2
    check(chain(ell, Substitute(-sp.log(sigma2) / 2, values={beta0: ybar}, why="beta0 = ybar")))
    with pytest.raises(StepError):
        check(chain(ell, Substitute(-sp.log(sigma2), values={beta0: ybar}, why="lost the half")))


# --- ReadOffNormal ----------------------------------------------------------------------
precision = n / sigma2 + 1 / sigma_b2
log_constants = -n * sp.log(2 * sp.pi * sigma2) / 2 - sp.log(2 * sp.pi * sigma_b2) / 2
completed_square = (-precision * (b - (n / sigma2) * (ybar - beta0) / precision) ** 2 / 2
                    - (ybar - beta0) ** 2 / (2 * (sigma_b2 + sigma2 / n)) - ss_within / (2 * sigma2) + const)


def square(*steps):
    return chain(completed_square, Define(log_constants, symbol=const, why="constants"), *steps)


def test_the_conditional_variance_is_read_off_as_checked():
    """Var(b_j | y_j) = (n_j/sigma^2 + 1/sigma_b^2)^(-1), lme4's condVar."""
    cd = check(square(ReadOffNormal(1 / precision, var=b, moment="variance", why="read off the variance")))
    assert cd.steps[-1].verdict.symbolic is True and cd.steps[-1].verdict.points > 0


def test_a_wrong_variance_or_mean_is_not_read_off():
    with pytest.raises(StepError, match="normal form has variance"):
        check(square(ReadOffNormal(sigma2 / n, var=b, why="forget the prior")))
    with pytest.raises(StepError, match="normal form has mean"):
        check(square(ReadOffNormal(ybar - beta0, var=b, moment="mean", why="the unshrunk mean")))
    check(square(ReadOffNormal((n / sigma2) * (ybar - beta0) / precision, var=b, moment="mean", why="mean")))


def test_a_density_that_is_not_normal_is_not_read_off():
    with pytest.raises(StepError, match="not quadratic"):
        check(chain(-b**4 / sigma2, ReadOffNormal(sigma2, var=b, why="not a normal density")))


# --- ConstrainedMaximiser -----------------------------------------------------------------
total = J * (group_n - 1) * msw + (J - 1) * msb
reml_sigma2 = sp.Piecewise((msw, msb > msw), (total / (J * group_n - 1), True))


def reml_chain(*steps):
    return chain(reml(sigma2 + group_n * sigma_b2), *steps)


def test_the_truncated_reml_estimator_is_checked_on_both_pieces():
    """sigma_b^2-hat = max(0, (MSB - MSW)/n) jointly with sigma^2-hat, in a balanced design."""
    check(reml_chain(ConstrainedMaximiser(sp.Max(0, (msb - msw) / group_n), var=sigma_b2,
                                          jointly={sigma2: reml_sigma2}, why="REML, truncated at 0")))


def test_a_wrong_truncated_estimator_is_rejected():
    with pytest.raises(StepError, match="derivative in"):
        check(reml_chain(ConstrainedMaximiser(sp.Max(0, (msb - 2 * msw) / group_n), var=sigma_b2,
                                              jointly={sigma2: reml_sigma2}, why="a wrong constant")))


def test_the_untruncated_estimator_leaves_the_domain():
    with pytest.raises(StepError, match="outside the domain"):
        check(reml_chain(ConstrainedMaximiser((msb - msw) / group_n, var=sigma_b2, jointly={sigma2: msw}, why="no max")))


def test_the_boundary_is_refused_where_the_slope_points_inside():
    with pytest.raises(StepError, match="slope"):
        check(reml_chain(ConstrainedMaximiser(sp.S.Zero, var=sigma_b2, jointly={sigma2: total / (J * group_n - 1)},
                                              why="always zero")))


def test_a_branch_the_domains_never_reach_is_refused():
    """A third branch where F > 10^6: log-uniform mean squares on [1e-2, 1e2] never get there."""
    never = sp.Piecewise((sp.Integer(5), msb > 10**6 * msw), ((msb - msw) / group_n, msb > msw), (sp.S.Zero, True))
    with pytest.raises(StepError, match="cannot be checked"):
        check(reml_chain(ConstrainedMaximiser(never, var=sigma_b2, jointly={sigma2: reml_sigma2}, why="a dead branch")))


# --- Limit ------------------------------------------------------------------------------
lam = sigma_b2 / (sigma_b2 + sigma2 / n)


def test_a_true_limit_is_proved():
    assert check(chain(lam, Limit(sp.S.One, var=sigma_b2, why="no shrinkage"))).steps[1].verdict.symbolic is True


def test_a_limit_that_moves_with_its_variable_is_rejected():
    """The mutant lambda_j -> 1 - 1/sigma_b^2 as sigma_b^2 -> oo: close at any one far point."""
    with pytest.raises(StepError, match="depends on sigma_b2"):
        check(chain(lam, Limit(1 - 1 / sigma_b2, var=sigma_b2, why="mutant")))


def test_a_limit_off_by_a_tiny_constant_is_rejected_by_the_rate():
    with pytest.raises(StepError, match="does not shrink geometrically"):
        check(chain(lam, Limit(1 + sp.Rational(1, 10**30), var=sigma_b2, why="off by 1e-30")))


@pytest.mark.parametrize("lhs, shown", [
    (r"\lambda_j", r"\lambda_j &\xrightarrow{\;\sigma_b^2 \to \infty\;} 1"),
    (r"\lim_{\sigma_b^2 \to \infty} \lambda_j", r"\lim_{\sigma_b^2 \to \infty} \lambda_j &= 1"),
])
def test_a_limit_is_shown_once_whichever_lhs_convention(lhs, shown):
    """A Limit's lhs is what tends to rhs, and the arrow names the variable and the point;
    an lhs that writes the limit itself (\\lim) is printed with "=", not the limit twice."""
    from shrinkage.render.document import render

    document = render(check(chain(lam, Limit(sp.S.One, var=sigma_b2, lhs=lhs, why="no shrinkage"))))
    row = next(line for line in document.splitlines() if line.startswith(lhs))
    assert row.startswith(shown), row
    assert (row.count(r"\lim") + row.count(r"\xrightarrow")) == 1, row


# --- Premise and Cite ----------------------------------------------------------------------
def test_a_premise_must_restate_its_statement_and_is_listed():
    good = Derivation("p", "p", "p").then(Premise.of(model.GROUP_JOINT))
    assert check(good).premises == (model.GROUP_JOINT,)
    bad = Derivation("p", "p", "p").then(Premise(-model.GROUP_JOINT.expr, why="x", statement=model.GROUP_JOINT))
    with pytest.raises(StepError, match="does not restate the model statement 'group_joint'"):
        check(bad)


def source():
    return chain(lam, Equals(n * sigma_b2 / (sigma2 + n * sigma_b2), why="clear", label="lam"), name="src")


def test_a_citation_restates_a_checked_step_of_its_source():
    d = Derivation("c", "c", "c").cite(source(), "lam", lhs=r"\lambda_j", why="from src")
    d = d.then(Limit(sp.S.One, var=sigma_b2, why="limit", label="one"))
    cd = check(d)
    assert [s.derivation.name for s in cd.sources] == ["src"]
    assert [p.name for p in cd.premises] == ["test_start"]


def test_a_retyped_citation_is_rejected():
    wrong = Cite(sigma_b2 / (sigma2 + sigma_b2), why="retyped", source=source(), of="lam")
    with pytest.raises(StepError, match="does not restate step 2 of 'src'"):
        check(Derivation("c", "c", "c").then(wrong))


def test_a_citation_of_a_wrong_source_fails_in_the_source():
    bad = chain(lam, Equals(sigma_b2 / (sigma2 + sigma_b2), why="forget n", label="lam"), name="src")
    with pytest.raises(StepError) as err:
        check(Derivation("c", "c", "c").cite(bad, "lam", lhs="", why="x"))
    assert err.value.derivation == "src"


def test_the_truncated_estimator_is_proved_symbolically():
    """Both pieces proved: stationarity, curvature (using J, n >= 2), slope = -(positive)(MSW - MSB)."""
    cd = check(reml_chain(ConstrainedMaximiser(sp.Max(0, (msb - msw) / group_n), var=sigma_b2,
                                               jointly={sigma2: reml_sigma2}, why="REML, truncated at 0")))
    assert cd.steps[-1].verdict.symbolic is True


@pytest.mark.parametrize("module", ["shrinkage.derive", "shrinkage.derive.steps", "shrinkage.derive.notation"])
def test_the_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


def test_definitions_are_substituted_from_their_define_steps():
    lam_sym = quantity("lam").symbol
    d = chain(lam_sym * (ybar - beta0), Define(sigma_b2 / (sigma_b2 + sigma2 / n), symbol=lam_sym, why="lambda"))
    check(d.substitute_definitions([lam_sym], sigma_b2 / (sigma_b2 + sigma2 / n) * (ybar - beta0), why="put in"))
    with pytest.raises(StepError):
        check(d.substitute_definitions([lam_sym], sigma_b2 / (sigma_b2 + sigma2) * (ybar - beta0), why="lost n"))
    with pytest.raises(DerivationError, match="no Define step"):
        d.substitute_definitions([b], b, why="x")
