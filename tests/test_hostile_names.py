"""Nothing a user names is run, and every name gets its report (issue 19, items 1, 8, 10).

A data file's name, its column names and its group labels reach TeX only as escaped
text: TeX compiles a fixed job name in a private scratch folder (latexmk without rc
files, pdflatex without shell escape), and the PDF is moved to the user's name.
Characters pdflatex cannot typeset are shown as their code points; group labels keep
their spaces on every path that reads a CSV.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import require_tex
from shrinkage import fit
from shrinkage.render.preamble import _T1_TEXT, escape_verbatim
from shrinkage.table import stream_stats

HOSTILE = [  # the longest: its report's name "<stem>-report.tex" has the 255 bytes a name may have
    "--leading dash.csv", "100%.csv", "$HOME.csv", "~tilde.csv", """say "hi" 'there'.csv""", "back\\slash.csv",
    "  spaces  .csv", "semi;colon & amp.csv", "new\nline\ttab.csv", "unicodé αβγ 数据 🎉.csv", "a.tex.csv",
    "{brace} #hash ^caret _under.csv", "\\input{x}.csv", "x" * 244 + ".csv",
]


def box(code: str) -> str:
    """How a character TeX cannot show is printed: its code point, boxed."""
    return rf"{{\fboxsep=1pt\protect\fbox{{\tiny {code}}}}}"


LABELS = ["α", "数据", "🎉", "tab\there", "new\nline", "bell\x07", "é ß Łódź", "{}\\%$#_^~&", " a", "a ", "a"]


def _csv(path: Path, labels=("A", "B", "C"), columns=("y", "g")) -> Path:
    """Four rows per label, y from a seeded generator (any numbers do: the tests are
    about names); written by the csv module, so a label with a newline is quoted."""
    rng = np.random.default_rng(19)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for k, label in enumerate(labels):
            for _ in range(4):
                w.writerow([f"{k + rng.normal():.6f}", label])
    return path


def run_cli(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "shrinkage", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})})


# --------------------------------------------------------------------------------------
# item 1: a command in a name is never run
# --------------------------------------------------------------------------------------
# Each runs `touch MARKER` in the parent of TeX's scratch folder (TMPDIR below) if a shell
# or latexmk reads it: as latexmk's option -pdflatex=..., or inside latexmk's quotes.
COMMANDS = ["-pdflatex=cd ..;touch MARKER;false ", "x$(cd ..;touch MARKER)y", "x`cd ..;touch MARKER`y"]


@pytest.mark.tex
@pytest.mark.parametrize("stem", COMMANDS)
def test_a_command_in_a_data_file_name_is_not_run(tmp_path, stem):
    require_tex()
    scratch, work = tmp_path / "scratch", tmp_path / "work"
    scratch.mkdir()
    name = stem + ".csv"
    _csv(work / name)
    run = run_cli("report", "./" + name, "--response", "y", "--group", "g", cwd=work, env={"TMPDIR": str(scratch)})
    assert [p.name for p in tmp_path.rglob("MARKER")] == []
    assert run.returncode == 0, run.stderr
    assert sorted(os.listdir(work)) == sorted([name, f"{stem}-report.tex", f"{stem}-report.pdf"])
    assert (work / f"{stem}-report.pdf").read_bytes().startswith(b"%PDF")
    assert os.listdir(scratch) == []  # the scratch folders are gone


@pytest.mark.tex
def test_a_command_in_a_derivation_name_is_not_run(tmp_path):
    """`shrinkage build` compiles a document per derivation, named after its file."""
    from _userfolder import write_tiny

    require_tex()
    scratch, work = tmp_path / "scratch", tmp_path / "work"
    scratch.mkdir()
    name = COMMANDS[0]
    write_tiny(work / "derivations", name, function="lam")
    run = run_cli("build", "derivations", "--out", "out", cwd=work, env={"TMPDIR": str(scratch)})
    assert [p.name for p in tmp_path.rglob("MARKER")] == []
    assert run.returncode == 0, run.stderr
    assert sorted(os.listdir(work / "out")) == sorted([f"{name}.tex", f"{name}.pdf", "numeric.py"])


def test_docs_opens_only_the_package_documents():
    """`shrinkage docs NAME --open` hands a path to the PDF viewer: a NAME is a document's
    name, never a path (these two reach an existing PDF, the package's own)."""
    from shrinkage.errors import ShrinkageError
    from shrinkage.paths import document, documents_dir

    folder = documents_dir()
    for name in (f"../{folder.name}/blup", str(folder / "blup"), "..", ""):
        with pytest.raises(ShrinkageError, match="no document named"):
            document(name)
    assert document("blup") == folder / "blup.pdf"


# --------------------------------------------------------------------------------------
# item 1: any name a file system allows gets its report
# --------------------------------------------------------------------------------------
@pytest.mark.tex
@pytest.mark.parametrize("name", HOSTILE, ids=range(len(HOSTILE)))
def test_every_file_name_gets_its_report(tmp_path, name):
    require_tex()
    data = _csv(tmp_path / "in" / name)
    out = tmp_path / "out"
    run = run_cli("report", data, "--response", "y", "--group", "g", "--out", out, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    stem = Path(name).stem
    assert sorted(os.listdir(out)) == [f"{stem}-report.pdf", f"{stem}-report.tex"]
    assert (out / f"{stem}-report.pdf").read_bytes().startswith(b"%PDF")
    tex = (out / f"{stem}-report.tex").read_text(encoding="utf-8")
    assert rf"\author{{\texttt{{shrinkage report}} on \texttt{{{escape_verbatim(name)}}}}}" in tex


def test_a_name_of_undecodable_bytes_gets_its_report(tmp_path):
    """Linux allows any bytes in a name; Python keeps the non-UTF-8 ones as lone surrogates."""
    name = os.fsdecode(b"caf\xe9.csv")
    try:
        data = _csv(tmp_path / name)
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    run = run_cli("report", data, "--response", "y", "--group", "g", "--out", tmp_path / "out", "--no-pdf",
                  cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert os.listdir(os.fsencode(tmp_path / "out")) == [b"caf\xe9-report.tex"]
    assert "caf" + box("0xE9") in (tmp_path / "out" / f"{Path(name).stem}-report.tex").read_text(encoding="utf-8")
    assert "wrote" in run.stdout and "caf\\xe9-report.tex" in run.stdout


def test_a_name_too_long_for_its_report_is_cut_at_a_character(tmp_path):
    """A name with the 255 bytes a name may have: `<stem>-report.tex` would not fit."""
    name = "é" * 125 + ".csv"  # 254 bytes
    data = _csv(tmp_path / name)
    run = run_cli("report", data, "--response", "y", "--group", "g", "--out", tmp_path / "out", "--no-pdf",
                  cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    written, = os.listdir(tmp_path / "out")
    assert written == "é" * 122 + "-report.tex" and len(os.fsencode(written)) == 255
    assert "too long a name" in run.stdout


# --------------------------------------------------------------------------------------
# item 8: labels and column names in any script
# --------------------------------------------------------------------------------------
def test_user_strings_are_escaped_boxed_and_their_spaces_kept():
    assert escape_verbatim("{}\\%$#_^~&") == (r"\{\}\textbackslash{}\%\$\#\_\textasciicircum{}"
                                              r"\textasciitilde{}\&")
    assert escape_verbatim("é ß Łódź") == "é ß Łódź"  # T1 has them
    assert escape_verbatim("α数🎉") == box("U+03B1") + box("U+6570") + box("U+1F389")
    assert escape_verbatim("a\tb\nc\x07\x7f") == f"a{box('U+0009')}b{box('U+000A')}c{box('U+0007')}{box('U+007F')}"
    assert escape_verbatim("\u00a0\u00ad") == box("U+00A0") + box("U+00AD")  # they would look like " " and ""
    shown = [escape_verbatim(s) for s in (" a", "a ", "a", "a  b", "a b")]
    assert len(set(shown)) == 5 and shown[-1] == "a b"


@pytest.mark.tex
def test_the_characters_left_as_they_are_are_those_t1_declares():
    """_T1_TEXT against LaTeX's own table (t1enc.dfu) of this TeX installation."""
    require_tex()
    dfu = subprocess.run(["kpsewhich", "t1enc.dfu"], capture_output=True, text=True).stdout.strip()
    declared = {chr(int(h, 16)) for h in re.findall(r"DeclareUnicodeCharacter\{([0-9A-F]+)\}", Path(dfu).read_text())}
    assert _T1_TEXT <= declared
    assert {c for c in declared if 0xA0 <= ord(c) < 0x180} - _T1_TEXT == {"\u00a0", "\u00ad"}


def _pdf_text(pdf: Path) -> str:
    if shutil.which("pdftotext") is None:
        if os.environ.get("CI"):
            pytest.fail("pdftotext (poppler-utils) is required when CI is set")
        pytest.skip("pdftotext is not installed")
    return subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout


@pytest.mark.tex
def test_labels_and_column_names_in_any_script_are_typeset(tmp_path):
    require_tex()
    data = _csv(tmp_path / "données α.csv", LABELS, columns=("réponse ω", "grp 数"))
    run = run_cli("report", data, "--response", "réponse ω", "--group", "grp 数", "--out", tmp_path, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    tex = (tmp_path / "données α-report.tex").read_text(encoding="utf-8")
    for label in LABELS:
        assert rf"\texttt{{{escape_verbatim(label)}}} & 4 &" in tex, label  # its row in the table of groups
    text = _pdf_text(tmp_path / "données α-report.pdf")
    for shown in ("U+03B1", "U+6570", "U+636E", "U+1F389", "U+0009", "U+000A", "U+0007", "é ß Łódź",
                  "{}\\%$#_^~&", "données", "réponse", "U+03C9", "␣a", "a␣"):
        assert shown in text, shown


@pytest.mark.tex
def test_a_formula_report_typesets_any_label(tmp_path):
    """The random-slope report draws a panel per group, titled by its label, and names
    its columns in the figure's caption."""
    require_tex()
    rng = np.random.default_rng(8)
    path = tmp_path / "slopes.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["yα", "x ω", "g"])
        for k, label in enumerate(LABELS):
            for x in range(5):
                w.writerow([f"{k + (1 + 0.1 * k) * x + rng.normal():.6f}", x, label])
    run = run_cli("report", path, "--formula", "yα ~ `x ω` + (`x ω` | g)", "--out", tmp_path, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    tex = (tmp_path / "slopes-report.tex").read_text(encoding="utf-8")
    assert rf"\nextgroupplot[title={{\texttt{{{escape_verbatim('α')}}}}}]" in tex
    text = _pdf_text(tmp_path / "slopes-report.pdf")
    for shown in ("U+03B1", "U+1F389", "U+03C9", "␣a", "a␣"):
        assert shown in text, shown


# --------------------------------------------------------------------------------------
# item 10: a label's spaces are part of it, on every path
# --------------------------------------------------------------------------------------
def test_labels_keep_their_spaces_on_every_path(tmp_path):
    """" a", "a " and "a" are three groups, read by the csv module, by DuckDB and by pandas."""
    import pandas as pd

    data = _csv(tmp_path / "spaces.csv", [" a", "a ", "a", " "])
    frame = pd.read_csv(data, dtype={"g": str}, keep_default_na=False)
    expected = fit(frame["y"].to_numpy(), frame["g"].to_numpy(dtype=object))
    assert sorted(expected.groups) == [" ", " a", "a", "a "]
    for got in (fit(stats=stream_stats(data, "y", "g")), fit(data=str(data), response="y", group="g")):
        assert [str(g) for g in got.groups] == [str(g) for g in expected.groups]
        np.testing.assert_array_equal(got.n, expected.n)
        np.testing.assert_allclose(got.blup, expected.blup, rtol=1e-9, atol=1e-12)
