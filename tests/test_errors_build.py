"""Clear errors for bad input: the generated numeric functions' public wrappers and the
`shrinkage build` command.  Each error names the problem; the CLI exits 1 without a
traceback and leaves no file behind."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import DERIVATIONS, ROOT
from shrinkage import numeric
from shrinkage.build import write_atomic
from shrinkage.errors import BuildError, InputError

# ----------------------------------------------------------------------------------
# Numeric wrappers
# ----------------------------------------------------------------------------------
GOOD = dict(ybar=1.0, n=5, beta0=0.5, sigma2=2.0, sigma_b2=1.5)


def call(function, **changes):
    args = {**GOOD, **changes}
    return function(*(args[a] for a in function.__code__.co_varnames[: function.__code__.co_argcount]))


@pytest.mark.parametrize("function", [numeric.shrinkage_factor, numeric.blup, numeric.conditional_variance,
                                      numeric.predicted_group_mean], ids=lambda f: f.__name__)
@pytest.mark.parametrize("changes, message", [
    (dict(sigma2=np.nan), r"sigma2 contains NaN"),
    (dict(sigma2=np.inf), r"sigma2 must be finite and > 0, got inf"),
    (dict(sigma2=-1.0), r"sigma2 must be finite and > 0, got -1.0"),
    (dict(sigma2=0.0), r"sigma2 must be finite and > 0, got 0.0"),
    (dict(sigma_b2=[1.0, -2.0]), r"sigma_b2 must be finite and >= 0, got -2.0 at index 1"),
    (dict(n=0), r"n must be whole numbers >= 1, got 0.0"),
    (dict(n=2.5), r"n must be whole numbers >= 1, got 2.5"),
    (dict(n=[]), r"n is empty"),
    (dict(n=[1, 2], sigma2=[1.0, 2.0, 3.0]), r"argument shapes do not match: .*n\(2,\).*sigma2\(3,\)"),
    (dict(sigma2="abc"), r"sigma2 must be numeric"),
])
def test_bad_arguments_are_named(function, changes, message):
    with pytest.raises(InputError, match=message):
        call(function, **changes)


@pytest.mark.parametrize("changes, message", [
    (dict(ybar=np.nan), r"ybar contains NaN"),
    (dict(ybar=[1.0, np.inf]), r"ybar must be finite, got inf at index 1"),
    (dict(beta0=-np.inf), r"beta0 must be finite, got -inf"),
])
def test_non_finite_data_is_named(changes, message):
    with pytest.raises(InputError, match=message):
        call(numeric.blup, **changes)


def test_input_errors_are_value_errors_too():
    """Callers that catch ValueError (the numpy convention) catch ours as well."""
    with pytest.raises(ValueError):
        numeric.shrinkage_factor(0, 1.0, 1.0)


# ----------------------------------------------------------------------------------
# The build command, as a user runs it
# ----------------------------------------------------------------------------------
def run_build(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "shrinkage", "build", "--no-pdf", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=600)


def assert_clean_failure(run, *phrases):
    assert run.returncode == 1, (run.returncode, run.stderr)
    assert "Traceback" not in run.stderr, run.stderr
    assert run.stderr.startswith("shrinkage: error: "), run.stderr
    for phrase in phrases:
        assert phrase in run.stderr, run.stderr


def files_in(folder):
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def test_missing_derivations_folder(tmp_path):
    out = tmp_path / "out"
    run = run_build("--derivations", tmp_path / "nowhere", "--out", out, "--numeric", out / "numeric.py")
    assert_clean_failure(run, "no derivations folder at", "nowhere")
    assert files_in(out) == []


def test_empty_derivations_folder(tmp_path):
    (tmp_path / "derivations").mkdir()
    out = tmp_path / "out"
    run = run_build("--derivations", tmp_path / "derivations", "--out", out, "--numeric", out / "numeric.py")
    assert_clean_failure(run, "no derivations in")
    assert files_in(out) == []


def test_a_derivation_with_a_syntax_error(tmp_path):
    folder = tmp_path / "derivations"
    folder.mkdir()
    (folder / "broken.py").write_text("def derivation(:\n    pass\n")
    out = tmp_path / "out"
    run = run_build("--derivations", folder, "--out", out, "--numeric", out / "numeric.py")
    assert_clean_failure(run, "broken.py, line 1: syntax error")
    assert files_in(out) == []


def test_a_derivation_whose_code_fails(tmp_path):
    folder = tmp_path / "derivations"
    folder.mkdir()
    (folder / "oops.py").write_text("def derivation():\n    return undefined_name\n")
    out = tmp_path / "out"
    run = run_build("--derivations", folder, "--out", out, "--numeric", out / "numeric.py")
    assert_clean_failure(run, "oops.py: derivation() failed: NameError")
    assert files_in(out) == []


def test_a_failing_step_names_derivation_step_and_counterexample(tmp_path):
    """A small derivation with a wrong rewriting: the message names the derivation, the
    step (by its label, else its kind: never its LaTeX reason) and a point where the two
    sides differ; nothing is written."""
    folder = tmp_path / "derivations"
    folder.mkdir()
    (folder / "wrong.py").write_text(
        "from shrinkage.derive import Derivation, Equals, Given\n"
        "from shrinkage.symbols import n, sigma2, sigma_b2\n\n"
        "def derivation():\n"
        "    return Derivation('wrong', 'w', 'w').then(\n"
        "        Given(sigma_b2 / (sigma_b2 + sigma2 / n), why='the shrinkage factor'),\n"
        "        Equals(sigma_b2 / (sigma_b2 + sigma2), why='forget n'),\n"
        "    )\n"
    )
    out = tmp_path / "out"
    numeric_path = tmp_path / "numeric.py"
    run = run_build("--derivations", folder, "--out", out, "--numeric", numeric_path)
    assert_clean_failure(run, "derivation 'wrong', step 2 (equals): check failed: at ", "n=", "previous expression")
    assert files_in(out) == [] and not numeric_path.exists()


def test_an_output_folder_that_cannot_be_created(tmp_path):
    """--out below a regular file: no folder can be made there (also as root)."""
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    folder = tmp_path / "derivations"
    folder.mkdir()
    (folder / "tiny.py").write_text(
        "from shrinkage.derive import Derivation, Equals, Given\n"
        "from shrinkage.symbols import n, sigma2, sigma_b2\n\n"
        "def derivation():\n"
        "    return Derivation('tiny', 't', 't').then(\n"
        "        Given(sigma_b2 / (sigma_b2 + sigma2 / n), why='the shrinkage factor'),\n"
        "        Equals(n * sigma_b2 / (sigma2 + n * sigma_b2), why='clear the fraction'),\n"
        "    )\n"
    )
    run = run_build("--derivations", folder, "--out", blocker / "docs", "--numeric", tmp_path / "numeric.py")
    assert_clean_failure(run, "cannot write to", "a_file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "derivations"]


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root can write anywhere")
def test_a_read_only_output_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o500)
    try:
        with pytest.raises(BuildError, match="cannot write to"):
            write_atomic(out / "x.tex", b"text")
        assert files_in(out) == []
    finally:
        out.chmod(0o700)


def test_a_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    """If writing fails half-way (disk full), the old file stays and no temp file is left."""
    target = tmp_path / "doc.tex"
    target.write_bytes(b"old")
    real_replace = os.replace

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(BuildError, match="cannot write .*doc.tex: No space left on device"):
        write_atomic(target, b"new")
    monkeypatch.setattr(os, "replace", real_replace)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.tex"]


def test_the_real_derivations_folder_exists():
    """The default --derivations folder the CLI uses is the one the tests check."""
    from shrinkage.build import default_derivations_dir

    assert default_derivations_dir().resolve() == DERIVATIONS.resolve()


@pytest.mark.parametrize("returned, kind", [("None", "NoneType"), ("42", "int"), ("'blup'", "str")])
def test_a_derivation_function_that_returns_something_else(tmp_path, returned, kind):
    folder = tmp_path / "derivations"
    folder.mkdir()
    (folder / "odd.py").write_text(f"def derivation():\n    return {returned}\n")
    out = tmp_path / "out"
    run = run_build("--derivations", folder, "--out", out)
    assert_clean_failure(run, f"odd.py: derivation() returned {kind}, not a Derivation")
    assert len(run.stderr.strip().splitlines()) == 1 and files_in(out) == []


# ----------------------------------------------------------------------------------
# `shrinkage check` refuses what `shrinkage build` refuses; a user's document
# ----------------------------------------------------------------------------------
def run_check(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "shrinkage", "check", "--no-cache", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.mark.parametrize("change, refusal", [
    (("[n, sigma2, sigma_b2]", "[n, sigma2]"), "tiny: export lam_tiny uses ['sigma_b2'], which are not among its arguments"),
    (('why="clear the fraction"', r'why="as in \\eqref{@blup:lam}"'), r"tiny: \eqref{@blup:lam} names a derivation it does not cite"),
], ids=["export missing an argument", "reference to a derivation not cited"])
def test_check_refuses_what_build_refuses(tmp_path, change, refusal):
    """Every step of these is right; what is wrong shows only when the document or the
    module is made.  `shrinkage check` makes them too (and writes nothing)."""
    from _userfolder import snapshot, write_tiny

    path = write_tiny(tmp_path / "mine")
    assert change[0] in path.read_text()
    path.write_text(path.read_text().replace(*change))
    before = snapshot(tmp_path)
    checked = run_check(tmp_path / "mine", cwd=tmp_path)
    assert_clean_failure(checked, refusal)
    assert snapshot(tmp_path) == before
    built = run_build(tmp_path / "mine", "--out", tmp_path / "out", cwd=tmp_path)
    assert_clean_failure(built, refusal)
    assert built.stderr == checked.stderr and files_in(tmp_path / "out") == []


def test_the_console_shows_plain_text_not_latex():
    from shrinkage.cli import verdict_text
    from shrinkage.derive import Verdict

    assert verdict_text(Verdict("n/a", 0, r"restates eq.~(3) of \emph{lmm\_blup}")) == "restates eq. (3) of lmm_blup"
    assert verdict_text(Verdict("n/a", 0, "restates eq.~(5)")) == "restates eq. (5)"


def test_a_users_document_names_the_users_file_and_the_module_written(tmp_path):
    from _userfolder import write_tiny

    write_tiny(tmp_path / "mine")
    run = run_build(tmp_path / "mine", "--out", tmp_path / "out", "--numeric", tmp_path / "code" / "fns.py",
                    cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    document = (tmp_path / "out" / "tiny.tex").read_text()
    assert r"\author{generated by \texttt{shrinkage build} from \texttt{tiny.py}}" in document
    assert r"definition substituted, into \texttt{fns.py}." in document
    assert "derivations/" not in document and "shrinkage.numeric" not in document
    assert "def lam_tiny(" in (tmp_path / "code" / "fns.py").read_text()


def test_check_refuses_latex_that_build_cannot_compile(tmp_path, requires_tex):
    """A reason with a macro LaTeX does not know: every step is right, the PDF fails.
    With TeX installed, check compiles as build does (into the cache only)."""
    from _userfolder import snapshot, write_tiny

    path = write_tiny(tmp_path / "mine")
    path.write_text(path.read_text().replace('why="clear the fraction"', r'why="clear \\thetahat the fraction"'))
    before = snapshot(tmp_path)
    checked = run_check(tmp_path / "mine", cwd=tmp_path)
    assert_clean_failure(checked, "LaTeX failed on tiny.tex")
    assert snapshot(tmp_path) == before
    assert run_check(tmp_path / "mine", "--no-pdf", cwd=tmp_path).returncode == 0
    built = subprocess.run([sys.executable, "-m", "shrinkage", "build", *map(str, (tmp_path / "mine", "--out",
                                                                                   tmp_path / "out"))],
                           capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert_clean_failure(built, "LaTeX failed on tiny.tex")
    assert files_in(tmp_path / "out") == []
