"""``shrinkage report DATA --formula ...``: the random-slope report.  Its numbers against
an independent dense computation per group (numpy solve of the BLUP formula from the
fit's D and sigma^2, the group's own lstsq), its equations the checked steps of
lmm_blup (a fresh rendering equals the generated excerpts), deterministic output, no
overfull box, and one-line errors that leave nothing behind."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shrinkage import datasets
from shrinkage.lmm import lmer
from shrinkage.report_lmm import example_groups, group_numbers, render_lmm

ROOT = Path(__file__).resolve().parent.parent
SLEEP = datasets.load("sleepstudy").path
FORMULA = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def sleep():
    return lmer(FORMULA, pd.read_csv(SLEEP))


def unbalanced(seed: int = 3, J: int = 40) -> pd.DataFrame:
    """Random unbalanced groups (2..12 rows), correlated intercepts and slopes, labels with spaces."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 13, size=J)
    g = np.repeat(np.arange(J), sizes)
    x = rng.uniform(-1, 3, size=g.size)
    b = rng.multivariate_normal([0, 0], [[4.0, 1.5], [1.5, 1.0]], size=J)
    y = 10 + 2 * x + b[g, 0] + b[g, 1] * x + rng.normal(size=g.size)
    return pd.DataFrame({"grp": [f"site {k:02d}" for k in g], "x": x, "y": y})


def dense(r, j):
    """Group j from its own rows: the BLUP and Var(b_j | y) by solving the formula with numpy,
    the own deviation by lstsq of y_j - X_j beta on Z_j, Lambda_j from its definition."""
    d = r.design
    rows = d.codes == j
    X, Z, y = d.X[rows], d.Z[rows], np.asarray(d.y, float)[rows]
    D, s2 = r.D, r.sigma2
    C = Z.T @ Z / s2 + np.linalg.inv(D)
    blup = np.linalg.solve(C, Z.T @ (y - X @ r.beta) / s2)
    own = np.linalg.lstsq(Z, y - X @ r.beta, rcond=None)[0]
    shrink = D @ np.linalg.inv(D + s2 * np.linalg.inv(Z.T @ Z))
    return blup, np.linalg.inv(C), own, shrink


@pytest.mark.parametrize("case", ["sleepstudy", "unbalanced"])
def test_numbers_against_a_dense_computation(sleep, case):
    r = sleep if case == "sleepstudy" else lmer("y ~ x + (x | grp)", unbalanced())
    g = group_numbers(r)
    for j in range(r.ngroups):
        blup, cov, own, shrink = dense(r, j)
        np.testing.assert_allclose(g.blup[j], blup, rtol=1e-9, atol=1e-9 * np.abs(blup).max())
        np.testing.assert_allclose(g.condvar[j], cov, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(g.own[j], own, rtol=1e-9, atol=1e-9 * np.abs(own).max())
        np.testing.assert_allclose(g.shrink[j], shrink, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(shrink @ own, blup, rtol=1e-8, atol=1e-9 * np.abs(blup).max())
    # the fit's own ranef (lme4's, tested against lme4 in test_lmm_lme4.py) is the same BLUP
    np.testing.assert_allclose(g.blup, r.b, rtol=1e-7, atol=1e-8 * np.abs(r.b).max())


def test_the_dense_check_rejects_a_wrong_shrinkage_matrix(sleep):
    """A test of the test: Lambda_j with Z'Z where (Z'Z)^-1 belongs does not pass."""
    g = group_numbers(sleep)
    j = 0
    wrong = sleep.D @ np.linalg.inv(sleep.D + sleep.sigma2 * g.ZtZ[j])
    assert not np.allclose(wrong @ g.own[j], g.blup[j], rtol=1e-3)
    assert not np.allclose(wrong, dense(sleep, j)[3], rtol=1e-3)


def matrices_after(tex: str, lhs: str, count: int = 2) -> list[np.ndarray]:
    """The numbers of the pmatrix printed after ``lhs &=`` (first ``count`` occurrences)."""
    found = []
    for m in re.finditer(r"(?m)^" + re.escape(lhs) + r" &= \\begin\{pmatrix\}(.*?)\\end\{pmatrix\}", tex):
        cells = [c.strip() for row in m.group(1).split(r"\\") for c in row.split("&")]
        found.append(np.array([float(c.replace(r"\times 10^{", "e").replace("}", "")) for c in cells]))
    return found[:count]


def test_the_report_prints_those_numbers_for_the_smallest_and_the_largest_group():
    r = lmer("y ~ x + (x | grp)", unbalanced())
    tex = render_lmm(r, "u.csv")
    g = group_numbers(r)
    js = example_groups(g)
    assert g.n[js[0]] == g.n.min() and g.n[js[1]] == g.n.max() and len(js) == 2
    for k, j in enumerate(js):
        assert f"Group \\texttt{{{r.labels[j]}}}: $n_j = {g.n[j]}$" in tex
        blup, cov, own, shrink = dense(r, j)
        for lhs, want in ((r"\hat{\mathbf b}_j", blup), (r"\tilde{\mathbf b}_j", own),
                          (r"\boldsymbol\Lambda_j", shrink.ravel()),
                          (r"\operatorname{Var}(\mathbf b_j \mid \mathbf y_j)", cov.ravel())):
            printed = matrices_after(tex, lhs)[k]
            np.testing.assert_allclose(printed, want, rtol=1e-4)  # printed to 5-6 significant digits


def test_sleepstudy_report_content(sleep):
    tex = render_lmm(sleep, "sleepstudy.csv")
    from shrinkage._report_excerpts import EXCERPTS

    for name, block in EXCERPTS.items():
        assert block in tex, name  # the checked steps, verbatim
    # each run is the step the report means (a step inserted into lmm_blup cannot shift it unseen)
    for name, start in (("blup", r"\hat{\mathbf b}_j = \operatorname*{arg"), ("condvar", r"\operatorname{Var}"),
                        ("shrinkage", r"\tilde{\mathbf b}_j &\coloneqq"), ("form", r"\hat{\mathbf b}_j &= \boldsymbol\Lambda_j"),
                        ("one_way", r"\lambda_j &=")):
        assert start in EXCERPTS[name], name
    assert r"\boldsymbol\Lambda_j &\coloneqq" in EXCERPTS["shrinkage"]
    assert tex.count(r"\nextgroupplot") == 18
    assert "All groups have the same" in tex  # balanced Days 0..9: one Z_j'Z_j
    refs = set(re.findall(r"\\eqref\{([^}]+)\}", tex))
    assert refs and refs <= set(re.findall(r"\\label\{([^}]+)\}", tex))


def test_q1_model_has_the_one_way_factor_and_no_line_figure():
    r = lmer("Reaction ~ Days + (1 | Subject)", pd.read_csv(SLEEP))
    g = group_numbers(r)
    sb2 = float(r.D[0, 0])
    np.testing.assert_allclose(g.shrink[:, 0, 0], sb2 / (sb2 + r.sigma2 / g.n), rtol=1e-12)
    tex = render_lmm(r, "s.csv")
    assert r"\nextgroupplot" not in tex and "is drawn for a model of the form" in tex


def test_deterministic(sleep):
    assert render_lmm(sleep, "s.csv") == render_lmm(lmer(FORMULA, pd.read_csv(SLEEP)), "s.csv")


def test_excerpts_are_fresh(checked):
    """The generated module is what the checked lmm_blup renders today."""
    from shrinkage import report_excerpts

    assert report_excerpts.generate(list(checked.values())) == report_excerpts.MODULE.read_text(), \
        "stale: run `PYTHONPATH=src python -m shrinkage.report_excerpts` (or `shrinkage build`)"


def test_many_groups_are_summarised_and_subsampled():
    r = lmer("y ~ x + (x | grp)", unbalanced(7, J=120))
    tex = render_lmm(r, "u.csv")
    assert tex.count(r"\nextgroupplot") == 30 and "30 of the 120 groups" in tex
    assert "quantiles over the groups" in tex and tex.count(r"\\") < 150


def test_rows_with_a_missing_value_are_dropped_and_said():
    frame = pd.read_csv(SLEEP)
    frame.loc[[3, 50], "Reaction"] = np.nan
    r = lmer(FORMULA, frame)
    assert r.nobs == 178
    assert "2 row(s) with a missing value" in render_lmm(r, "s.csv")


def test_the_report_loads_no_sympy(tmp_path):
    """Writing a report (fit, numbers, LaTeX) never loads SymPy or checks a derivation."""
    code = ("import sys; from shrinkage.report_lmm import write_lmm_report; "
            f"write_lmm_report({str(SLEEP)!r}, {FORMULA!r}, out={str(tmp_path)!r}, pdf=False, say=print); "
            "assert 'sympy' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT / "src")})


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "shrinkage", "report", *map(str, args)], capture_output=True,
                          text=True, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("make, args, message", [
    (lambda d: SLEEP, ("--formula", "Reaction ~ Dayz + (Dayz | Subject)"), "'Dayz' not in the data"),
    (lambda d: write(d / "one.csv", "g,x,y\na,1,2\na,2,3\na,3,5\nb,1,2\nc,1,1\nc,2,4\nc,3,4\n"),
     ("--formula", "y ~ x + (x | g)"), "group 'b' of 'g' has 1 observation"),
    (lambda d: write(d / "flat.csv", "g,x,y\na,1,2\na,2,3\na,3,5\nb,2,2\nb,2,3\nc,1,1\nc,2,4\nc,3,4\n"),
     ("--formula", "y ~ x + (x | g)"), "group 'b' of 'g' has 2 observation.*singular"),
    (lambda d: d / "missing.csv", ("--formula", "y ~ x + (x | g)"), "no such file"),
    (lambda d: write(d / "e.csv", ""), ("--formula", "y ~ x + (x | g)"), "empty"),
    (lambda d: write(d / "h.csv", "g,x,y\n"), ("--formula", "y ~ x + (x | g)"), "no data rows"),
    (lambda d: SLEEP, ("--formula", FORMULA, "--response", "Reaction"), "not both"),
    (lambda d: SLEEP, (), "say which model"),
])
def test_errors_are_one_line_and_leave_nothing(tmp_path, make, args, message):
    out = tmp_path / "out"
    out.mkdir()
    run = run_cli(make(tmp_path), *args, "--out", out, "--no-pdf")
    assert run.returncode == 1 and run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shrinkage: error: "), run.stderr
    assert re.search(message, lines[0]), lines[0]
    assert list(out.iterdir()) == []


@pytest.mark.tex
def test_pdf_is_byte_identical_and_has_no_overfull_box(tmp_path, requires_tex):
    from shrinkage.render.texlog import overfull_boxes

    for k in range(2):
        run = run_cli(SLEEP, "--formula", FORMULA, "--out", tmp_path / str(k))
        assert run.returncode == 0, run.stderr
    first, second = ((tmp_path / str(k) / "sleepstudy-report.pdf").read_bytes() for k in range(2))
    assert first.startswith(b"%PDF") and first == second
    # the sleepstudy report and one of many unbalanced groups with long labels: nothing off the page
    texts = {"sleep": (tmp_path / "0" / "sleepstudy-report.tex").read_text(),
             "singular": render_lmm(lmer("y ~ x + (x | g)", singular_frame()), "s.csv"),
             "q1": render_lmm(lmer("Reaction ~ Days + (1 | Subject)", pd.read_csv(SLEEP)), "s.csv")}
    for J in (30, 120):  # a table of every group; quantiles and a subsample of panels
        frame = unbalanced(5, J=J)
        frame["grp"] = "a-rather-long-label-" + frame["grp"].str.replace(" ", "-")
        frame = frame.rename(columns={"y": "response_column", "x": "covariate_with_a_long_name"})
        frame["response_column"] = 1e7 * frame["response_column"] - 3e8
        texts[f"many{J}"] = render_lmm(lmer("response_column ~ covariate_with_a_long_name + "
                                            "(covariate_with_a_long_name | grp)", frame),
                                       "a_rather_long_file_name_of_data.csv")
    for name, text in texts.items():
        (tmp_path / f"{name}.tex").write_text(text)
        done = subprocess.run(["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", f"{name}.tex"],
                              cwd=tmp_path, capture_output=True, text=True)
        log = (tmp_path / f"{name}.log").read_text(errors="replace")
        assert done.returncode == 0, log[-1500:]
        assert overfull_boxes(log) == [], name


def singular_frame() -> pd.DataFrame:
    """Intercepts only in truth: (x | g) is fitted on the boundary (a correlation of -1)."""
    rng = np.random.default_rng(1)
    sizes = rng.integers(3, 8, size=12)
    g = np.repeat(np.arange(12), sizes)
    x = rng.uniform(0, 4, size=g.size)
    y = 1 + 0.5 * x + rng.normal(size=12)[g] + rng.normal(size=g.size)
    return pd.DataFrame({"g": g, "x": x, "y": y})


def test_a_singular_fit_uses_the_theta_forms_and_says_so():
    r = lmer("y ~ x + (x | g)", singular_frame())
    assert r.singular
    g = group_numbers(r)
    d = r.design
    for j in range(r.ngroups):  # the BLUP without D^-1: D Z' V^-1 (y - X beta)
        rows = d.codes == j
        X, Z, y = d.X[rows], d.Z[rows], np.asarray(d.y, float)[rows]
        V = Z @ r.D @ Z.T + r.sigma2 * np.eye(rows.sum())
        blup = r.D @ Z.T @ np.linalg.solve(V, y - X @ r.beta)
        np.testing.assert_allclose(g.blup[j], blup, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(g.shrink[j] @ g.own[j], blup, rtol=1e-7, atol=1e-9)
    tex = render_lmm(r, "s.csv")
    assert "Singular fit" in tex and "lmm\\_blup}~" in tex.split("Singular fit")[1][:900]


from test_lmm_lme4 import lme4  # noqa: E402,F401  (the fixture: lme4 through Rscript, tight optimiser)


@pytest.mark.parametrize("case", ["sleepstudy", "unbalanced"])
def test_the_reports_numbers_are_lme4s(lme4, case):
    """ranef and condVar of every group, and the printed BLUPs of the worked groups."""
    frame, formula, group = ((pd.read_csv(SLEEP), FORMULA, "Subject") if case == "sleepstudy" else
                             (unbalanced(), "y ~ x + (x | grp)", "grp"))
    r = lmer(formula, frame)
    ref = lme4(frame, formula, "REML", group)
    assert [str(v) for v in r.labels] == ref["labels"]
    g = group_numbers(r)
    sd = np.sqrt(np.diag(r.D))
    assert np.max(np.abs(g.blup - ref["ranef"]) / sd) < 1e-6
    assert np.max(np.abs(g.condvar - ref["condvar"]) / np.outer(sd, sd)) < 1e-6
    tex = render_lmm(r, "d.csv")
    printed_D = re.search(r"\\hat\{\\mathbf D\} = \\begin\{pmatrix\}(.*?)\\end\{pmatrix\}", tex).group(1)
    cells = [float(c) for row in printed_D.split(r"\\") for c in row.split("&")]
    np.testing.assert_allclose(cells, ref["varcorr"].ravel(), rtol=1e-5)
    for name, value in ref["fixef"].items():
        printed = re.search(rf"\\texttt\{{{re.escape(name)}\}} & \$([-0-9.]+)\$", tex).group(1)
        assert float(printed) == pytest.approx(value, rel=1e-5), name
    for k, j in enumerate(example_groups(g)):
        np.testing.assert_allclose(matrices_after(tex, r"\hat{\mathbf b}_j")[k], ref["ranef"][j], rtol=1e-5)


def test_large_groups_are_thinned_in_the_figure():
    rng = np.random.default_rng(4)
    g = np.repeat(np.arange(6), 5000)
    x = rng.uniform(0, 10, size=g.size)
    y = 3 + x + rng.normal(size=6)[g] + 0.3 * rng.normal(size=6)[g] * x + rng.normal(size=g.size)
    tex = render_lmm(lmer("y ~ x + (x | g)", pd.DataFrame({"g": g, "x": x, "y": y})), "big.csv")
    marks = re.findall(r"\\addplot\[only marks[^\]]*\] coordinates \{([^}]*)\}", tex)
    assert len(marks) == 6 and all(m.count("(") == 200 for m in marks)
    assert "at most 200 observations per panel" in tex and len(tex) < 80_000


def test_a_covariate_far_from_zero_is_not_taken_for_a_constant():
    frame = unbalanced(8, J=20)
    frame["x"] = 1e5 + frame["x"]
    g = group_numbers(lmer("y ~ x + (x | grp)", frame))  # no "singular" error
    assert np.all(np.isfinite(g.shrink))
    eig = np.linalg.eigvalsh(g.ZtZ)
    assert np.any(eig[:, 0] <= 1e-10 * eig[:, -1])  # what a check on the raw Z_j'Z_j would have refused
