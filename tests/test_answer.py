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


# --- the section on covariates and random slopes ---------------------------------------
SLOPE_STEPS = {("lmm_blup", ref) for ref in ("first+1", "blup_stats", "condvar_stats", "shrinkage_matrix-1",
                                             "shrinkage_matrix", "shrinkage_form", "shrinkage_form+1",
                                             "shrinkage_one_way")} | {("lmm_marginal", "gls")}


def slopes_part(tex: str) -> str:
    return tex[tex.index(r"\label{slopes}"):tex.index(r"\section*{The standalone documents}")]


def test_the_slopes_section_displays_only_checked_steps(tex, checked):
    """Every display of the section is a quoted step of lmm_blup or lmm_marginal, named by
    label in the source; each passed its checks (proved by SymPy, or a definition)."""
    from shrinkage.derive import Define
    from shrinkage.render.excerpts import step_number

    part = slopes_part(tex)
    assert r"\[" not in part and r"\begin{equation" not in part and r"$$" not in part
    rows = [r for block in re.findall(r"\\begin\{align\}(.*?)\\end\{align\}", part, re.S)
            for r in re.split(r"\\\\\n", block) if "&" in re.sub(r"\\intertext\{.*", "", r)]
    rows = [r for r in rows if r"\notag" not in r]  # a step broken over lines is tagged on its last line
    tags = [re.search(r"\\tag\{\\textsf\{([a-z\\_]+)\}~(\d+)\}", r) for r in rows]
    assert all(tags), "an untagged display row"
    shown = {(m.group(1).replace("\\_", "_"), int(m.group(2))) for m in tags}
    expected = {(name, step_number(checked[name], ref)) for name, ref in SLOPE_STEPS}
    assert shown == expected
    for name, number in shown:
        cs = checked[name].steps[number - 1]
        assert isinstance(cs.step, Define) or cs.verdict.symbolic is True, (name, number)
    # the steps named relative to a label are the ones the prose means (guards against inserted steps)
    blup = checked["lmm_blup"]
    own = blup.steps[step_number(blup, "shrinkage_matrix-1") - 1].step
    assert isinstance(own, Define) and own.symbol.name == "b_ls_j"
    one_way = blup.steps[step_number(blup, "shrinkage_form+1") - 1].step
    assert one_way.lhs == r"\hat b_j" and "sigma_b2" in {x.name for x in one_way.rhs.free_symbols}
    # the penalty the section names is in the quoted joint density
    assert r"\mathbf b_j^{T} \mathbf D^{-1} \mathbf b_j" in part
    for symbol in (r"$\boldsymbol\Lambda_j$ & ", r"$\mathbf D$ & ", r"$\tilde{\mathbf b}_j$ & ", r"$\mathbf Z_j$ & "):
        assert symbol in tex.split(r"\paragraph{Notation.}")[1].split(r"\end{tabularx}")[0], symbol


@pytest.fixture(scope="module")
def slope_example(quoted):
    from shrinkage.answer.slopes import sleepstudy_example

    return sleepstudy_example(answer.generated_functions(quoted))


def dense_subject(ex, label: str):
    """One subject from its own rows and the model alone: the BLUP D Z' V^-1 (y - X beta)
    (V = Z D Z' + sigma^2 I), its own least squares, and Lambda_j as the regression of
    b_j on the own estimate, Cov(b_j, tilde b_j) Var(tilde b_j)^-1."""
    import pandas as pd

    d = pd.read_csv(datasets.load("sleepstudy").path)
    rows = d[d["Subject"].astype(str) == label]
    Z = np.column_stack([np.ones(len(rows)), rows["Days"].to_numpy(float)])
    r = rows["Reaction"].to_numpy(float) - Z @ ex.beta  # X = Z here
    V = Z @ ex.D @ Z.T + ex.sigma2 * np.eye(len(rows))
    blup = ex.D @ Z.T @ np.linalg.solve(V, r)
    A = np.linalg.pinv(Z)  # tilde b = A (y - X beta)
    own = A @ r
    shrink = (ex.D @ Z.T @ A.T) @ np.linalg.inv(A @ V @ A.T)
    return blup, own, shrink


def test_the_slopes_example_against_dense_matrices(slope_example):
    ex = slope_example
    for j, label in enumerate(ex.labels):
        blup, own, shrink = dense_subject(ex, label)
        np.testing.assert_allclose(ex.blup[j], blup, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(ex.own[j], own, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(ex.shrink[j], shrink, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ex.shrink[j] @ ex.own[j], blup, rtol=1e-8, atol=1e-9)
    # a test of the test: the shrinkage matrix with Z'Z in place of its inverse is rejected
    wrong = ex.D @ np.linalg.inv(ex.D + ex.sigma2 * ex.ZtZ[0])
    assert not np.allclose(wrong @ ex.own[0], ex.blup[0], rtol=1e-3)


def test_the_slopes_example_prints_what_it_computed(tex, slope_example):
    ex, part = slope_example, slopes_part(tex)
    k = ex.k
    blup, own, shrink = dense_subject(ex, ex.labels[k])
    coupling = np.abs(ex.shrink[:, 0, 1] * ex.own[:, 1])
    assert coupling[k] == coupling.max()  # the subject whose slope moves its intercept most
    for value, digits in ((shrink[0, 1], 3), (shrink[1, 1], 3), (own[0], 2), (own[1], 2), (blup[0], 2),
                          (shrink[0, 1] * own[1], 2), (ex.sigma2, 2)):
        assert f"{value:.{digits}f}" in part, value
    assert f"Subject {ex.labels[k]}'s own estimates" in part
    if "other side of the population" in part:  # the sentence is printed only when it is true
        assert np.sign(blup[0]) != np.sign(own[0])
    corr = ex.D[0, 1] / np.sqrt(ex.D[0, 0] * ex.D[1, 1])
    assert f"a correlation of ${corr:.3f}$" in part


def test_the_slopes_figure_draws_the_subjects_own_and_shrunk_lines(tex, slope_example):
    """The own line is the subject's straight-line fit to its raw data (np.polyfit), the
    shrunk one beta_hat + the dense BLUP."""
    import pandas as pd

    ex = slope_example
    fig = tex[tex.index(r"\begin{figure}", tex.index(r"\label{slopes}")):tex.index(r"\label{fig:slopes}")]
    lines = re.findall(r"\\addplot\[[^\]]*\] coordinates \{\(([-0-9.]+),([-0-9.]+)\) \(([-0-9.]+),([-0-9.]+)\)\};", fig)
    assert len(lines) == 3  # own, shrunk, population
    d = pd.read_csv(datasets.load("sleepstudy").path)
    rows = d[d["Subject"].astype(str) == ex.labels[ex.k]]
    slope, intercept = np.polyfit(rows["Days"], rows["Reaction"], 1)
    blup = dense_subject(ex, ex.labels[ex.k])[0]
    for (x0, y0, x1, y1), (a, b) in zip(lines, [(intercept, slope), ex.beta + blup, ex.beta]):
        assert float(y0) == pytest.approx(a + b * float(x0), abs=0.006)
        assert float(y1) == pytest.approx(a + b * float(x1), abs=0.006)
    points = re.search(r"only marks[^\]]*\] coordinates \{([^}]*)\}", fig).group(1)
    assert points.count("(") == len(rows)
