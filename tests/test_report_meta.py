"""`shrinkage report DATA.csv --yi COL --vi COL`: the meta-analysis report."""

from __future__ import annotations

import numpy as np
import pytest

import shrinkage
from shrinkage.cli import main
from shrinkage.report_meta import render

# Colditz et al. (1994), BCG vaccine trials (metadat's dat.bcg), log risk ratios as metafor's escalc("RR") gives them
YI = [-0.88931133, -1.58538866, -1.34807315, -1.44155119, -0.21754732, -0.78611559, -1.62089822, 0.01195233,
      -0.46941765, -1.37134480, -0.33935883, 0.44591340, -0.01731395]
VI = [0.32558477, 0.19458112, 0.41536797, 0.02001003, 0.05121017, 0.00690562, 0.22301725, 0.00396158,
      0.05643421, 0.07302479, 0.01241221, 0.53250585, 0.07140466]


@pytest.fixture
def csv(tmp_path):
    path = tmp_path / "bcg.csv"
    path.write_text("trial,logrr,var\n" + "".join(f"{i + 1},{y!r},{v!r}\n" for i, (y, v) in enumerate(zip(YI, VI))))
    return path


def test_tex_report_content_and_determinism(csv, tmp_path):
    out = tmp_path / "out"
    assert main(["report", str(csv), "--yi", "logrr", "--vi", "var", "--out", str(out), "--no-pdf"]) == 0
    tex = (out / "bcg-report.tex").read_text()
    r = shrinkage.meta(YI, VI, "REML")
    assert f"$\\hat\\tau^2$ & ${r.tau2:.6g}$" in tex
    assert f"= {r.blup[7]:.6g}" in tex  # the most precise study's BLUP, worked with its numbers
    assert tex.count("error bars/.cd") == 2 and "Forest plot" in tex and "Shrinkage:" in tex
    assert tex.count(r"\addplot[blue!60!black, mark=*") == len(YI)  # one shrinkage segment per study
    assert render(r, "bcg.csv", "logrr", "var") == tex  # deterministic
    assert main(["report", str(csv), "--yi", "logrr", "--vi", "var", "--method", "DL", "--out", str(out),
                 "--no-pdf"]) == 0
    assert f"${shrinkage.meta(YI, VI, 'DL').tau2:.6g}$" in (out / "bcg-report.tex").read_text()


@pytest.mark.parametrize("content, message", [
    ("logrr,var\n0.1,0.2\nx,0.3\n0.2,0.1\n", "line 3, column 'logrr': 'x' is not a finite number"),
    ("logrr,var\n0.1,0.2\n0.3,\n0.2,0.1\n", "line 3, column 'var': a missing value is not a finite number"),
    ("logrr,v\n0.1,0.2\n", "has no column 'var'"),
    ("logrr,var\n0.1,0.2\n0.3,-1\n0.2,0.1\n", "line 3, column 'var': a sampling variance must be > 0, not -1"),
])
def test_bad_data_is_named_and_nothing_written(tmp_path, capsys, content, message):
    path = tmp_path / "d.csv"
    path.write_text(content)
    out = tmp_path / "out"
    assert main(["report", str(path), "--yi", "logrr", "--vi", "var", "--out", str(out), "--no-pdf"]) == 1
    assert message in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_yi_without_vi_is_refused(csv, capsys):
    assert main(["report", str(csv), "--yi", "logrr", "--no-pdf"]) == 1
    assert "needs --yi and --vi" in capsys.readouterr().err


def test_pdf_is_compiled(csv, tmp_path, requires_tex):
    assert main(["report", str(csv), "--yi", "logrr", "--vi", "var", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "bcg-report.pdf").read_bytes()[:5] == b"%PDF-"


def test_blup_column_matches_the_fit():
    r = shrinkage.meta(np.array(YI), np.array(VI))
    assert np.all(np.abs(r.blup - r.mu) <= np.abs(np.array(YI) - r.mu))  # every estimate moves towards mu
