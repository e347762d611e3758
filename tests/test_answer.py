"""The answer document: a verdict for every claim, sound references, correct numbers in
its figures and table (against oracles from the model), deterministic output, and a
LaTeX compile (skipped without TeX unless CI is set)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize

from shrinkage import answer, datasets
from shrinkage.build import compile_pdf, default_documents

ROOT = Path(__file__).resolve().parent.parent
QUESTION = ROOT.parent / "shared" / "question.md"


@pytest.fixture(scope="module")
def quoted(checked):
    """The derivations the answer quotes, from the session's checked derivations."""
    return [checked[name] for name in answer.REQUIRED]


@pytest.fixture(scope="module")
def tex(quoted):
    return answer.render_answer(quoted)


def test_every_claim_of_the_question_has_a_verdict(tex):
    keys = [c.key for c in answer.CLAIMS]
    assert keys == ["slip1", "slip2", "claim1", "claim2", "claim3", "claim4", "claim5", "claim6"]
    if QUESTION.exists():  # the question lists claims 1..6
        listed = re.findall(r"^(\d)\. ", QUESTION.read_text(), flags=re.M)
        assert [f"claim{k}" for k in listed] == keys[2:]
    for c in answer.CLAIMS:
        section = tex[tex.index(rf"\label{{{c.key}}}"):]
        m = re.search(r"\\textbf\{Verdict:\} \\textcolor\{[^}]*\}\{\\textbf\{([a-z ]+)\}\}", section)
        assert m and m.group(1) == c.verdict in answer.VERDICTS, c.key
    assert {c.verdict for c in answer.CLAIMS} == set(answer.VERDICTS)  # all three occur
    assert tex.count(r"\textbf{Verdict:}") == len(answer.CLAIMS)


def test_verdicts_are_those_the_derivations_support():
    """The verdicts the question's analysis calls for (question.md, 'points a complete answer makes')."""
    verdict = {c.key: c.verdict for c in answer.CLAIMS}
    assert verdict["claim2"] == "holds" and verdict["claim3"] == "holds"
    assert verdict["claim5"] == "does not hold" and verdict["claim6"] == "does not hold"
    assert verdict["claim4"] == "holds with a correction"
    assert verdict["slip2"] == "does not hold"


def test_every_reference_resolves(tex):
    labels = set(re.findall(r"\\label\{([^}]+)\}", tex))
    refs = set(re.findall(r"\\(?:eq)?ref\{([^}]+)\}", tex))
    assert refs <= labels, sorted(refs - labels)
    assert len(labels) == len(re.findall(r"\\label\{", tex)), "a label is defined twice"
    assert "{excerpt:" not in tex and "{likelihood_documents}" not in tex and r"\textasciitilde" not in tex


def test_deterministic(quoted, tex):
    assert answer.render_answer(quoted) == tex


def test_lambda_figure_coordinates_match_the_model(tex):
    """Each curve's coordinates against lambda = Cov(b_j, ybar_j)/Var(ybar_j) from dense matrices."""
    curves = re.findall(r"\\addplot\[[^\]]*mark repeat=10[^\]]*\] coordinates \{([^}]*)\};", tex)
    assert len(curves) == len(answer.VARIANCE_RATIOS)
    for ratio, coords in zip(answer.VARIANCE_RATIOS, curves):
        points = [tuple(map(float, p.split(","))) for p in re.findall(r"\(([^)]*)\)", coords)]
        assert [int(x) for x, _ in points] == list(answer.SIZES)
        for size, value in points[:: 9]:
            k = int(size)
            V = np.eye(k) + float(ratio) * np.ones((k, k))  # sigma2 = 1
            mean = np.ones(k) / k
            assert value == pytest.approx(float(ratio) / (mean @ V @ mean), abs=5e-5)


def reml_dense(groups):
    """REML by numerical maximisation of the restricted log-likelihood, dense matrices."""
    y = np.concatenate(groups)
    sizes = [len(g) for g in groups]
    N = len(y)
    Z = np.zeros((N, len(sizes)))
    Z[np.arange(N), np.repeat(np.arange(len(sizes)), sizes)] = 1.0
    X = np.ones((N, 1))

    def neg(theta):
        s2, sb2 = np.exp(theta)
        V = s2 * np.eye(N) + sb2 * Z @ Z.T
        Vinv = np.linalg.inv(V)
        XtVX = X.T @ Vinv @ X
        beta = np.linalg.solve(XtVX, X.T @ Vinv @ y)
        r = y - X @ beta
        return 0.5 * (np.linalg.slogdet(V)[1] + np.linalg.slogdet(XtVX)[1] + r @ Vinv @ r)

    res = optimize.minimize(neg, np.log([np.var(y), np.var(y)]), method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000})
    return np.exp(res.x)


def dyestuff_groups() -> list[np.ndarray]:
    d = datasets.load("dyestuff")
    return [d.y[d.groups == g] for g in sorted(set(d.groups))]


def test_dyestuff_reml_matches_dense_maximisation(quoted):
    ex = answer.dyestuff_example(answer.generated_functions(quoted))
    groups = dyestuff_groups()
    s2_d, sb2_d = reml_dense(groups)
    assert ex.sigma2 == pytest.approx(s2_d, rel=1e-6)
    assert ex.sigma_b2 == pytest.approx(sb2_d, rel=1e-6)
    assert ex.beta0 == pytest.approx(np.mean(np.concatenate(groups)), rel=1e-14)
    # not the ML estimate: ML divides the between-group sum of squares by J, not J - 1
    means = np.array([np.mean(v) for v in groups])
    ml_sb2 = (5 * np.sum((means - means.mean()) ** 2) / 6 - ex.sigma2) / 5
    assert abs(ml_sb2 - ex.sigma_b2) > 100


def test_dyestuff_table_against_dense_blups(quoted):
    ex = answer.dyestuff_example(answer.generated_functions(quoted))
    d = datasets.load("dyestuff")
    y = np.concatenate([d.y[d.groups == g] for g in ex.labels])
    sizes = [int(np.sum(d.groups == g)) for g in ex.labels]
    Z = np.zeros((len(y), len(sizes)))
    Z[np.arange(len(y)), np.repeat(np.arange(len(sizes)), sizes)] = 1.0
    V = ex.sigma2 * np.eye(len(y)) + ex.sigma_b2 * Z @ Z.T
    blups = ex.sigma_b2 * Z.T @ np.linalg.solve(V, y - ex.beta0)
    np.testing.assert_allclose(ex.predicted - ex.beta0, blups, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(ex.cond_sd**2, 1 / (ex.n / ex.sigma2 + 1 / ex.sigma_b2), rtol=1e-12)
    assert np.all(ex.pev_sd > ex.cond_sd)


def test_build_adds_the_answer_only_when_its_derivations_are_there(quoted):
    assert set(default_documents(quoted)) == {"answer"}
    assert default_documents(quoted[:2]) == {}


def test_answer_compiles(tex, tmp_path, requires_tex):
    path = tmp_path / "answer.tex"
    path.write_text(tex)
    pdf = compile_pdf(path)
    assert pdf.exists() and pdf.stat().st_size > 50_000


def test_equations_are_named_by_label_never_by_number():
    """The answer's sources quote and cite steps by label, so a renumbered derivation
    cannot leave a wrong number behind."""
    for path in (ROOT / "src" / "shrinkage" / "answer").glob("*.py"):
        source = path.read_text()
        assert not re.search(r"\{excerpt:[a-z_]+:\d", source), path.name
        assert not re.search(r"\{excerpt:[a-z_]+:[a-z_0-9+-]+:\d", source), path.name
        assert not re.search(r"eqs?\.~\(\d|equation~\(\d|\(\\textsf\{[a-z_]+\}~\d", source), path.name
        assert not re.search(r"\\S\d", source), path.name


def test_every_symbol_of_the_quoted_steps_is_defined(tex):
    """S_j, c_j and every other symbol of a quoted step appear in the notation table."""
    notation = tex.split(r"\paragraph{Notation.}")[1].split(r"\end{tabularx}")[0]
    defined = set(re.findall(r"^\$(.+?)\$ & ", notation, flags=re.M))
    assert {r"S_j", r"c_j", r"\lambda_j", r"\bar y_j"} <= defined
    for block in re.findall(r"\\begin\{align\}(.*?)\\end\{align\}", tex, re.S):
        maths = re.sub(r"\\intertext\{.*", "", block)
        for printed, listed in ((r"S_{j}", "S_j"), ("c_j", "c_j"), (r"W_{-j}", r"W_{-j}"), ("p_j", "p_j")):
            if printed in maths:
                assert listed in defined, printed


def test_a_note_cites_the_previous_line_only_when_it_is_shown(tex):
    for block in re.findall(r"\\begin\{align\}(.*?)\\end\{align\}", tex, re.S):
        notes = re.findall(r"\\stepnote\{([a-z\\_]+)~(\d+)\}\{(.*)", block)
        for k, (name, number, text) in enumerate(notes):
            if re.search(r"previous (line|step|equation)", text):
                assert k > 0 and notes[k - 1][:2] == (name, str(int(number) - 1)), (name, number)
