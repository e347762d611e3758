"""``shrinkage report``: content, determinism, summaries of many groups, and errors
(one line on stderr, exit 1, no traceback, no file left behind)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shrinkage import datasets, fit
from shrinkage.cli import main
from shrinkage.report import render

DYESTUFF = datasets.load("dyestuff").path


def run_cli(*args, cwd=None):
    """The installed entry point in a subprocess: what a user sees."""
    return subprocess.run([sys.executable, "-m", "shrinkage", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def test_tex_report_content(tmp_path, capsys):
    assert main(["report", str(DYESTUFF), "--response", "Yield", "--group", "Batch", "--out", str(tmp_path),
                 "--no-pdf"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dyestuff-report.tex"]
    tex = (tmp_path / "dyestuff-report.tex").read_text()
    r = fit(datasets.load("dyestuff").y, datasets.load("dyestuff").groups)
    assert r"\hat\beta_0$ & $1527.5$" in tex
    assert "1764.05" in tex and "2451.25" in tex and "-159.8271384" in tex
    # the BLUP of batch A, step by step with its numbers
    assert r"\frac{1764.05}{1764.05 + 2451.25/5} = 0.782527" in tex
    assert f"= {r.blup[0]:.6g}" in tex
    assert tex.count(r"\texttt{A} & 5 &") == 1  # one table row per group
    assert r"\begin{axis}" in tex and "coordinates" in tex


def test_report_is_deterministic(tmp_path):
    d = datasets.load("sleepstudy")
    r = fit(d.y, d.groups, method="ML")
    assert render(r, "s.csv", "Reaction", "Subject") == render(fit(d.y, d.groups, method="ML"), "s.csv", "Reaction", "Subject")


def test_many_groups_are_summarised():
    rng = np.random.default_rng(2)
    sizes = rng.integers(1, 9, size=20000)
    g = np.repeat(np.arange(20000), sizes)
    y = rng.normal(size=20000)[g] + rng.normal(size=g.size)
    tex = render(fit(y, g), "big.csv", "y", "g")
    assert "quantiles of each column" in tex
    assert tex.count(r"\\") < 200  # no 20000-row table
    assert tex.count(r"\addplot[blue!60!black, opacity") <= 150  # a fixed subsample of segments
    assert len(tex) < 60_000


def test_singular_report_says_so():
    d = datasets.load("dyestuff2")
    tex = render(fit(d.y, d.groups), "dyestuff2.csv", "Yield", "Batch")
    assert "Singular fit" in tex and r"\lambda_j = 0" not in tex.split("Singular fit")[0]


@pytest.mark.tex
def test_pdf_is_compiled(tmp_path, requires_tex):
    run = run_cli("report", DYESTUFF, "--response", "Yield", "--group", "Batch", "--method", "ML", "--out", tmp_path)
    assert run.returncode == 0, run.stderr
    pdf = tmp_path / "dyestuff-report.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    first = pdf.read_bytes()
    run = run_cli("report", DYESTUFF, "--response", "Yield", "--group", "Batch", "--method", "ML", "--out", tmp_path)
    assert pdf.read_bytes() == first  # byte-identical when built twice


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("make, args, message", [
    (lambda d: d / "missing.csv", ("--response", "y", "--group", "g"), "no such file"),
    (lambda d: write(d / "e.csv", ""), ("--response", "y", "--group", "g"), "empty"),
    (lambda d: write(d / "h.csv", "g,y\n"), ("--response", "y", "--group", "g"), "no data rows"),
    (lambda d: write(d / "c.csv", "g,y\na,1\n"), ("--response", "yield", "--group", "g"), "no column 'yield'"),
    (lambda d: write(d / "n.csv", "g,y\na,1\na,x\n"), ("--response", "y", "--group", "g"), "not numeric: 'x' on line 3"),
    (lambda d: write(d / "m.csv", "g,y\na,1\na,\n"), ("--response", "y", "--group", "g"), "missing value on line 3"),
    (lambda d: write(d / "i.csv", "g,y\na,1\na,inf\nb,2\nb,3\n"), ("--response", "y", "--group", "g"), "infinite"),
    (lambda d: write(d / "s.csv", "g,y\na,1\na,2\na,4\n"), ("--response", "y", "--group", "g"), "single group"),
    (lambda d: write(d / "o.csv", "g,y\na,1\nb,2\nc,4\n"), ("--response", "y", "--group", "g"), "two or more observations"),
    (lambda d: DYESTUFF, ("--response", "Yield", "--group", "Batch", "--out", "{d}/file.txt/sub"), "cannot write|is a file"),
])
def test_errors_are_one_line_and_leave_nothing(tmp_path, make, args, message):
    data = make(tmp_path)
    (tmp_path / "file.txt").write_text("x")
    out = tmp_path / "out"
    args = [a.format(d=tmp_path) for a in args]
    if "--out" not in args:
        args += ["--out", str(out)]
    run = run_cli("report", data, *args, "--no-pdf")
    assert run.returncode == 1
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shrinkage: error: "), run.stderr
    assert "Traceback" not in run.stderr
    import re
    assert re.search(message, lines[0]), lines[0]
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
def test_unwritable_folder(tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    run = run_cli("report", DYESTUFF, "--response", "Yield", "--group", "Batch", "--out", out, "--no-pdf")
    assert run.returncode == 1 and "cannot write" in run.stderr
    assert list(out.iterdir()) == []
