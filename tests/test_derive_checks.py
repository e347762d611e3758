"""check(): exports only from checked steps, time limits, long sums, notation per
derivation (its own symbols only), progress callbacks, failures named by label with
decimal counterexamples."""

from __future__ import annotations

import time

import pytest
import sympy as sp

from shrinkage.derive import (CHECKS, Define, Derivation, Domain, Equals, Notation, Premise, Quantity, Sign,
                              Statement, check, checks)
from shrinkage.errors import DerivationError, StepError, StepTimeoutError
from shrinkage.symbols import i, n, sigma2, sigma_b2, y

lam = sigma_b2 / (sigma_b2 + sigma2 / n)
start = Premise.of(Statement("lam", lam, r"\lambda_j", "a test statement"))


def tiny(*steps, exports=()):
    d = Derivation("tiny", "tiny", "tiny").then(start, *steps)
    for e in exports:
        d = d.export(*e)
    return d


rewrite = Equals(n * sigma_b2 / (sigma2 + n * sigma_b2), why="clear the fraction", label="cleared")


# --- exports ---------------------------------------------------------------------------
def test_an_export_of_a_checked_step_is_accepted():
    check(tiny(rewrite, exports=[("lam_fn", "cleared", (n, sigma2, sigma_b2), "doc")]))


@pytest.mark.parametrize("label", ["start", "defined", "recalled"])
def test_an_export_of_an_unchecked_step_is_refused(label):
    lam_sym = sp.Symbol("lam", positive=True)
    d = Derivation("tiny", "tiny", "tiny").then(
        Premise.of(Statement("lam", lam, "", "x"), label="start"),
        Define(lam, symbol=lam_sym, why="name it", label="defined"))
    d = d.recall("defined", lhs="", why="again", as_label="recalled")
    d = d.export("f", label, (n, sigma2, sigma_b2), "doc")
    with pytest.raises(DerivationError) as err:
        check(d)
    message = str(err.value)
    assert "'tiny'" in message and "export 'f'" in message and "not checked" in message and "\n" not in message


@pytest.mark.parametrize("name", ["import", "2x", "lam-bda", "class"])
def test_an_export_name_that_is_no_identifier_is_one_line(name):
    with pytest.raises(DerivationError, match="not a Python identifier") as err:
        check(tiny(rewrite, exports=[(name, "cleared", (n,), "doc")]))
    assert "\n" not in str(err.value)


# --- time limits and long sums -----------------------------------------------------------
def test_a_step_over_its_time_limit_stops_naming_the_step(monkeypatch):
    def forever(ctx):
        while True:
            time.sleep(0.01)

    monkeypatch.setitem(CHECKS, Equals, (forever, CHECKS[Equals][1]))
    began = time.monotonic()
    with pytest.raises(StepTimeoutError) as err:
        check(tiny(rewrite), timeout=0.3)
    assert time.monotonic() - began < 30
    assert err.value.derivation == "tiny" and err.value.step == 2 and "time limit of 0.3 s" in str(err.value)


def test_the_time_limit_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("SHRINKAGE_STEP_TIMEOUT", "0.25")
    assert checks.resolve_timeout(None) == 0.25
    assert checks.resolve_timeout(5) == 5
    assert checks.resolve_timeout(0) is None
    monkeypatch.setenv("SHRINKAGE_STEP_TIMEOUT", "soon")
    with pytest.raises(DerivationError, match="SHRINKAGE_STEP_TIMEOUT"):
        check(tiny(rewrite))
    monkeypatch.delenv("SHRINKAGE_STEP_TIMEOUT")
    assert checks.resolve_timeout(None) == checks.DEFAULT_TIMEOUT


def test_a_sum_over_a_trillion_terms_is_refused_not_hung():
    total = sp.Sum(y[i], (i, 1, 10**12))
    d = Derivation("long", "long", "long").then(Premise.of(Statement("s", total, "", "x")),
                                                Equals(sp.Sum(2 * y[i], (i, 1, 10**12)) / 2, why="halve"))
    began = time.monotonic()
    with pytest.raises(StepError, match="too long to write out"):
        check(d, timeout=60)
    assert time.monotonic() - began < 60


# --- notation ----------------------------------------------------------------------------------
def _claim_below_one(notation):
    x = notation.symbol("s2j")
    return Derivation("user", "u", "u", notation=notation).then(
        Premise.of(Statement("x", x, "", "x")), Sign(sp.S.One, sign=-1, why="below one"))


def test_two_notations_with_the_same_name_do_not_collide():
    """s2j in (0, 1) in one derivation, s2j > 0 in another: each is checked with its own."""
    in_unit = Notation([Quantity("s2j", r"s_j^2", "a share", "unit")], name="A")
    positive = Notation([Quantity("s2j", r"\sigma_j^2", "a variance", "positive")], name="B")
    check(_claim_below_one(in_unit))
    with pytest.raises(StepError, match="s2j="):
        check(_claim_below_one(positive))
    check(_claim_below_one(in_unit))  # and the first is unaffected
    assert in_unit.quantity("s2j").latex != positive.quantity("s2j").latex


def test_a_symbol_without_an_entry_is_named():
    notation = Notation([Quantity("s2j", r"s_j^2", "a share", "unit")], name="mine")
    stranger = sp.Symbol("tau2", positive=True)
    d = Derivation("user", "u", "u", notation=notation).then(
        Premise.of(Statement("x", stranger, "", "x")), Equals(2 * stranger / 2, why="x"))
    with pytest.raises(DerivationError, match=r"notation 'mine' does not give: not declared \(add a Quantity for "
                                              r"each\): tau2$"):
        check(d)


def test_a_user_sampler_decides_where_the_check_looks():
    tiny_domain = Domain("tiny", lambda rng: sp.Rational(rng.randint(1, 9), 10**6), {"positive": True})
    notation = Notation([Quantity("s2j", r"s_j^2", "tiny", tiny_domain)], name="tiny")
    x = notation.symbol("s2j")
    d = Derivation("user", "u", "u", notation=notation).then(
        Premise.of(Statement("x", x, "", "x")), Sign(sp.Rational(1, 10**5), sign=-1, why="tiny"))
    check(d)
    with pytest.raises(DerivationError, match="unknown domain"):
        Notation([Quantity("z", "z", "z", "tinyy")])


def test_on_step_reports_each_step_before_and_after():
    calls = []
    check(tiny(rewrite), on_step=lambda *a: calls.append(a))
    assert [(c[0], c[1], c[2]) for c in calls] == [("tiny", 1, "premise")] * 2 + [("tiny", 2, "cleared")] * 2
    assert calls[2][3] is None and calls[3][3].symbolic is True


def test_check_refuses_what_is_not_a_derivation():
    with pytest.raises(DerivationError, match="needs a Derivation, got NoneType"):
        check(None)


def test_a_definition_restated_by_a_checked_step_can_be_exported():
    """The pattern for exporting a defined quantity: recall it, restate it with Equals."""
    lam_sym = sp.Symbol("lam", positive=True)
    d = Derivation("tiny", "tiny", "tiny").then(start, Define(lam, symbol=lam_sym, why="name it", label="defined"))
    d = d.recall("defined", lhs=r"\lambda_j", why="again").then(rewrite)
    check(d.export("lam_fn", "cleared", (n, sigma2, sigma_b2), "doc"))


def test_an_outer_alarm_survives_a_step_time_limit():
    """A caller's own SIGALRM timer keeps running through check()'s per-step limits."""
    import signal

    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *a: fired.append(1))
    signal.setitimer(signal.ITIMER_REAL, 30)
    try:
        check(tiny(rewrite), timeout=5)
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0 < remaining <= 30 and not fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_step_kind_that_checks_itself_is_handed_its_context():
    from dataclasses import dataclass

    from shrinkage.derive import Step, Verdict

    seen = []

    @dataclass(frozen=True)
    class SelfChecking(Step):
        def verify(self, name, number, current, definitions, symbolic=True):
            seen.append((name, number, current))
            if self.rhs != current:
                raise StepError(name, number, self.why, "not the same")
            return Verdict(True, 1, "by itself")

    cd = check(tiny(SelfChecking(lam, why="same")))
    assert seen == [("tiny", 2, lam)] and cd.steps[1].verdict.method == "by itself"
    with pytest.raises(StepError, match="not the same"):
        check(tiny(SelfChecking(2 * lam, why="double")))


def test_a_step_kind_without_a_check_is_named():
    from dataclasses import dataclass

    from shrinkage.derive import Step

    @dataclass(frozen=True)
    class Unknown(Step):
        pass

    with pytest.raises(DerivationError, match="no check for the step kind Unknown"):
        check(tiny(Unknown(lam, why="?")))


def test_an_export_argument_named_by_a_keyword_is_refused():
    with pytest.raises(DerivationError, match="argument lambda"):
        check(tiny(rewrite, exports=[("f", "cleared", (sp.Symbol("lambda"),), "doc")]))


def test_a_definition_no_checked_step_uses_is_refused():
    """A wrong unused definition would be printed unnoticed: check() names it."""
    lam_sym = sp.Symbol("lam", positive=True)
    with pytest.raises(StepError, match="defines lam, but no later checked step uses it") as err:
        check(tiny(Define(lam, symbol=lam_sym, why="name it"), rewrite))
    assert err.value.step == 2
    check(tiny(Define(lam, symbol=lam_sym, why="name it"), Equals(lam_sym * 1, why="use it")))


def test_a_scalar_and_an_array_of_the_same_name_are_different_quantities():
    """n (one group's size) beside n[j] (every group's): both sampled, neither rewrites the other."""
    from shrinkage.symbols import J, j

    n_j = sp.IndexedBase("n", integer=True, positive=True)
    total = sp.Sum(n_j[j], (j, 1, J))
    d = Derivation("mix", "m", "m").then(Premise.of(Statement("mix", n + total * sigma2, "", "x")))
    check(d.then(Equals(sigma2 * total + n, why="commute")))
    with pytest.raises(StepError, match="previous expression"):
        check(d.then(Equals(sigma2 * total + total, why="n is not the total")))


def test_a_citation_may_not_change_a_symbols_domain():
    unit = Notation([Quantity("s2j", r"s_j^2", "a share", "unit")], name="A")
    positive = Notation([Quantity("s2j", r"s_j^2", "a variance", "positive")], name="B")
    source = _claim_below_one(unit).then(Equals(unit.symbol("s2j") * 1, why="same", label="x"))
    with pytest.raises(DerivationError, match="where s2j is unit, but here it is positive"):
        check(Derivation("c", "c", "c", notation=positive).cite(source, "x", lhs="", why="cite"))


def test_a_claim_off_in_the_twentieth_digit_is_rejected():
    """The comparison is at 50 digits, not at mpmath's default 15 (where 1 + 1e-20 == 1)."""
    with pytest.raises(StepError, match="previous expression"):
        check(tiny(Equals(lam * (1 + sp.Rational(1, 10**20)), why="off by 1e-20")))
    with pytest.raises(StepError):
        check(tiny(Equals(lam * (1 + sp.Rational(1, 10**30)), why="off by 1e-30")))


# --- what a user writing a first derivation meets (issue 19, item 12) --------------------
WEIGHTS = Notation([Quantity("tau2", r"\tau^2", "between-study variance", "positive"),
                    Quantity("s2", r"s_j^2", "sampling variance of study j", "positive")], name="mine")


def weight_chain(tau2, s2):
    return Derivation("mine", "m", "m", notation=WEIGHTS).then(
        Premise.of(Statement("weight", tau2 / (tau2 + s2), r"B_j", "the weight")),
        Equals(1 / (1 + s2 / tau2), why=r"divide by $\tau^2$", label="divided"))


def test_plain_sympy_symbols_are_refused_at_once_naming_them():
    """sympy.symbols makes symbols without the notation's assumptions: SymPy could then
    spend the step's whole time limit; check() says which symbols, before any step."""
    tau2, s2 = sp.symbols("tau2 s2")  # what the notation's symbols are not
    started = []
    with pytest.raises(DerivationError) as err:
        check(weight_chain(tau2, s2), on_step=lambda *event: started.append(event))
    assert started == []
    message = str(err.value)
    assert message.startswith("derivation 'mine' uses symbols its notation 'mine' does not give: made with other "
                              "assumptions than the notation's")
    assert message.endswith("s2: no assumptions instead of positive=True; "
                            "tau2: no assumptions instead of positive=True"), message
    assert "NOTATION.symbol('s2')" in message and "\n" not in message
    assert check(weight_chain(WEIGHTS.symbol("tau2"), WEIGHTS.symbol("s2"))).steps[1].verdict.symbolic is True


def test_two_symbols_of_one_name_are_refused():
    """tau2 from the notation in one place, sp.Symbol("tau2") in another: SymPy takes them
    for two variables, so a claim about one says nothing about the other."""
    tau2, s2 = WEIGHTS.symbol("tau2"), WEIGHTS.symbol("s2")
    d = weight_chain(tau2, s2).then(Equals(1 / (1 + s2 / sp.Symbol("tau2")), why="again"))
    with pytest.raises(DerivationError, match=r"2 different symbols are named tau2 \(no assumptions; positive=True\): "
                                              r"SymPy takes them for different variables; use the notation's$"):
        check(d)


def test_an_undeclared_defined_symbol_is_named():
    """A Define's symbol needs an entry too (its LaTeX name, its domain in generated code)."""
    tau2, s2 = WEIGHTS.symbol("tau2"), WEIGHTS.symbol("s2")
    w = sp.Symbol("w", positive=True)
    d = weight_chain(tau2, s2).then(Define(tau2 / (tau2 + s2), symbol=w, why="name it"), Equals(w * 1, why="use"))
    with pytest.raises(DerivationError, match=r"not declared \(add a Quantity for each\): w$"):
        check(d)


def _failure(d) -> StepError:
    with pytest.raises(StepError) as err:
        check(d)
    return err.value


def test_a_failing_step_is_named_by_its_label_with_its_counterexample_in_decimals():
    """The console names a step as its progress lines do (label, else kind), not by its
    LaTeX reason; the point reads as decimals, not as 10**(13/50)/10."""
    err = _failure(tiny(Equals(sigma_b2 / (sigma_b2 + sigma2), why=r"forget $n_j$", label="forgot")))
    assert str(err).startswith("derivation 'tiny', step 2 (forgot): check failed: at n=")
    assert err.why == r"forget $n_j$" and err.tag == "forgot"
    point = str(err).split("check failed: at ")[1].split(": ")[0]
    values = dict(item.split("=") for item in point.split(", "))
    assert set(values) == {"n", "sigma2", "sigma_b2"}
    assert values["n"].isdigit()
    for name in ("sigma2", "sigma_b2"):  # 10 significant digits of a draw from [1e-2, 1e2]
        assert "/" not in values[name] and "*" not in values[name]
        assert 1e-2 <= float(values[name]) <= 1e2 and len(values[name].strip("0.").replace(".", "")) <= 10
    unlabelled = _failure(tiny(Equals(sigma_b2 / (sigma_b2 + sigma2), why=r"forget $n_j$")))
    assert str(unlabelled).startswith("derivation 'tiny', step 2 (equals): check failed: at n=")


def test_the_counterexample_is_the_point_to_ten_digits():
    from shrinkage.derive.points import fmt_point

    x, k = sp.Symbol("x", positive=True), sp.Symbol("k", integer=True, positive=True)
    point = {x: sp.Integer(10) ** sp.Rational(13, 50) / 10, k: sp.Integer(7), sigma2: sp.Rational(441, 125)}
    assert fmt_point(point) == f"x={float(point[x]):.10g}, k=7, sigma2=3.528"
