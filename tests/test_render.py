"""What a reader of a document sees: maths typeset as maths (log(1 + x), not log1p; no
ASCII in the function tables), each symbol listed once, the premises listed at the start,
and a closing sentence about the checks that is true of the document it closes."""

from __future__ import annotations

import re

import sympy as sp
from sympy.codegen.cfunctions import log1p

from shrinkage.derive import (CheckedDerivation, CheckedStep, Define, Derivation, Equals, Given, Premise, Statement,
                              Verdict)
from shrinkage.render.document import closing, premises_section, render, symbols_table
from shrinkage.render.prose import symbol_names, typeset
from shrinkage.render.tex import tex
from shrinkage.symbols import NOTATION, lam, n, sigma2, sigma_b2

NAMES = symbol_names(NOTATION)


def equations(document: str) -> str:
    """The text of every align block of a document (its displayed maths)."""
    return "\n".join(re.findall(r"\\begin\{align\}(.*?)\\end\{align\}", document, re.S))


def test_log1p_is_typeset_as_log_of_one_plus():
    x = sp.Symbol("x", positive=True)
    assert tex(log1p(x / 2)) == r"\log{\left(1 + \frac{x}{2} \right)}"


def test_no_document_shows_log1p_or_a_code_name_in_its_equations(checked):
    for name, cd in checked.items():
        maths = re.sub(r"\\intertext\{.*", "", equations(render(cd)))
        assert "log1p" not in maths, name
        assert "operatorname{log" not in maths, name


def test_plain_text_maths_is_typeset():
    assert typeset("ML estimate of sigma_b^2 (0 when F = MSB/MSW <= J/(J-1)).", NAMES) == (
        r"ML estimate of $\sigma_b^2$ (0 when $F = \mathrm{MSB}/\mathrm{MSW} \le J/(J-1)$).")
    assert typeset("REML log-likelihood at given variances (nu = N - 1).", NAMES) == (
        r"REML log-likelihood at given variances ($\nu = N - 1$).")
    assert typeset("Marginal log-likelihood of one group, log p(y_j).", NAMES) == (
        r"Marginal log-likelihood of one group, $\log p(y_{j})$.")
    assert typeset("GLS estimate of beta0 given the variances: a precision-weighted mean.", NAMES) == (
        r"GLS estimate of $\beta_0$ given the variances: a precision-weighted mean.")
    assert typeset(r"Already $\LaTeX$: 50% kept", NAMES) == r"Already $\LaTeX$: 50\% kept"
    assert typeset("Variance of a group's mean, i.e. of n values", NAMES) == (
        r"Variance of a group's mean, i.e. of $n_j$ values")


def test_function_tables_print_maths_not_ascii(checked):
    tables = [render(cd).split(r"\section*{Generated numeric functions}")[-1].split(r"\section*")[0]
              for cd in checked.values() if cd.derivation.exports]
    assert tables  # the documents export functions; the check below is not vacuous
    for table in tables:
        rows = [line for line in table.splitlines() if "& eq.~" in line]
        for row in rows:
            what = row.split("&")[-1]
            assert "textasciicircum" not in what and "<=" not in what and ">=" not in what, row
            assert not re.search(r"(?<![\\a-z])(sigma_b|sigma2|beta0)\b", what.replace(r"\_", "_")), row
    assert any("$" in t for t in tables)


def test_each_symbol_is_listed_once(checked):
    for name, cd in checked.items():
        rows = [line for line in symbols_table(cd) if line.startswith("$")]
        symbols = [row.split("&")[0].strip() for row in rows]
        assert len(symbols) == len(set(symbols)), (name, symbols)


# --- premises and the closing sentence, on small chains (no checking needed) -------------
MODEL = Statement("toy", sigma_b2 / (sigma_b2 + sigma2 / n), r"\lambda_j", r"the toy model's statement")
LAMBDA = sigma_b2 / (sigma_b2 + sigma2 / n)


def chain(*verdicts) -> CheckedDerivation:
    """Premise, definition, then one Equals per verdict in ``verdicts`` (True: proved, None: numeric only)."""
    steps = [Premise.of(MODEL), Define(LAMBDA, symbol=lam, why="name it")]
    steps += [Equals(n * sigma_b2 / (n * sigma_b2 + sigma2), why=f"rewrite {k}") for k, _ in enumerate(verdicts)]
    d = Derivation("toy", "Toy", "A toy.").then(*steps)
    marks = [Verdict("n/a", 0, "premise (model statement)"), Verdict("n/a", 0, "definition")]
    marks += [Verdict(v, 24, "24 random points, 50 digits") for v in verdicts]
    return CheckedDerivation(d, tuple(CheckedStep(s, k + 1, LAMBDA, v) for k, (s, v) in enumerate(zip(steps, marks))))


def test_premises_are_listed_at_the_start():
    cd = chain(True)
    section = premises_section(cd)
    assert section[0] == r"\section*{Premises}"
    assert any("the toy model's statement" in line and r"\eqref{toy:1}" in line for line in section)
    document = render(cd)
    assert document.index(r"\section*{Premises}") < document.index(r"\section*{Derivation}")


def test_closing_sentence_counts_the_verdicts():
    assert "numerically only" not in closing(chain(True, True))
    assert "No step beyond the model's statements and the names is stated without both checks." in closing(
        chain(True, True))
    numeric = closing(chain(True, None, True))
    assert r"checked \emph{numerically only}" in numeric and r"(eq.~\eqref{toy:4})" in numeric
    assert "No step beyond" not in numeric
    assert "2 were proved by SymPy" in numeric and "1 states the model (eq.~\\eqref{toy:1})" in numeric


def test_closing_sentence_names_a_step_stated_without_a_check():
    cd = chain(True)
    given = Given(LAMBDA, why="asserted", note="read off")
    d = cd.derivation.then(given)
    cd = CheckedDerivation(d, cd.steps + (CheckedStep(given, 4, LAMBDA, Verdict("n/a", 0, "read off")),))
    text = closing(cd)
    assert r"1 is \emph{stated without a check} (eq.~\eqref{toy:4}" in text
    assert "No step beyond" not in text


def test_documents_close_with_what_their_verdicts_say(checked):
    for name, cd in checked.items():
        document = render(cd)
        numeric = [cs.number for cs in cd.steps if cs.verdict.symbolic is None]
        for k in numeric:
            assert rf"\eqref{{{name}:{k}}}" in document.split(r"\section*{How the steps were checked}")[1], name
        if not numeric and not cd.unchecked:
            assert "No step beyond" in document, name
