"""`shrinkage check PATH...` and `shrinkage build PATH... --out DIR` on a user's own
derivation files, anywhere: verdicts as they come, a clean stop at the first failure,
nothing written by check, everything into DIR by build, the package's own numeric.py
never touched, and a generated module that imports with numpy alone."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import numpy as np
import pytest

from _userfolder import WRONG, snapshot, write_tiny
from conftest import ROOT

PACKAGE_MODULE = ROOT / "src" / "shrinkage" / "numeric.py"


def shrinkage(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", "shrinkage", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


@pytest.fixture
def user(tmp_path):
    """A user's folder, away from the source tree, with two derivations."""
    folder = tmp_path / "mine"
    write_tiny(folder, "tiny")
    write_tiny(folder, "tiny2")
    return folder


def test_check_prints_each_verdict_and_writes_nothing(user, tmp_path):
    before = snapshot(tmp_path)
    run = shrinkage("check", user, "--no-cache", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    for name in ("tiny", "tiny2"):
        assert f"{name} step 1/2 premise:" in run.stdout
        assert f"{name} step 2/2 cleared: proved by SymPy; numeric check passed" in run.stdout
    assert "nothing was written" in run.stdout.splitlines()[-1]
    assert snapshot(tmp_path) == before


def test_check_stops_at_the_first_failure_naming_derivation_step_and_counterexample(tmp_path):
    folder = tmp_path / "mine"
    write_tiny(folder, "wrong", rhs=WRONG)
    run = shrinkage("check", folder / "wrong.py", "--no-cache", cwd=tmp_path)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    message = run.stderr.strip()
    assert message.startswith("shrinkage: error: derivation 'wrong', step 2 (cleared): check failed: at ")
    assert "n=" in message and "sigma2=" in message and len(message.splitlines()) == 1
    assert "wrong step 1/2 premise:" in run.stdout  # the steps before it were reported


def test_check_names_a_path_that_is_not_there(tmp_path):
    run = shrinkage("check", tmp_path / "nothing.py", cwd=tmp_path)
    assert run.returncode == 1 and run.stderr.strip() == f"shrinkage: error: no derivation file at {tmp_path / 'nothing.py'}"


def test_two_derivations_of_one_name_are_refused(tmp_path):
    write_tiny(tmp_path / "a", "tiny")
    write_tiny(tmp_path / "b", "tiny")
    run = shrinkage("check", tmp_path / "a", tmp_path / "b", cwd=tmp_path)
    assert run.returncode == 1 and "two derivations named 'tiny'" in run.stderr, run.stderr


def test_build_writes_into_out_and_leaves_the_package_alone(user, tmp_path):
    package_module = PACKAGE_MODULE.read_bytes(), PACKAGE_MODULE.stat().st_mtime_ns
    out = tmp_path / "out"
    run = shrinkage("build", user, "--out", out, "--no-pdf", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in out.iterdir()) == ["numeric.py", "tiny.tex", "tiny2.tex"]
    assert (PACKAGE_MODULE.read_bytes(), PACKAGE_MODULE.stat().st_mtime_ns) == package_module
    assert "From derivation `tiny`, step 2" in (out / "numeric.py").read_text()


def test_build_needs_out_for_a_user_folder(user, tmp_path):
    run = shrinkage("build", user, "--no-pdf", cwd=tmp_path)
    assert run.returncode == 1 and "--out DIR" in run.stderr, run.stderr


def test_build_refuses_to_write_the_package_module_from_a_user_folder(user, tmp_path):
    before = PACKAGE_MODULE.read_bytes()
    run = shrinkage("build", user, "--out", tmp_path / "out", "--numeric", PACKAGE_MODULE, "--no-pdf", cwd=tmp_path)
    assert run.returncode == 1 and "generated only from the package's own derivations" in run.stderr, run.stderr
    assert PACKAGE_MODULE.read_bytes() == before and not (tmp_path / "out").exists()


BLOCK_SHRINKAGE = (
    "import sys\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('shrinkage', 'sympy', 'mpmath', 'scipy'):\n"
    "            raise ImportError(f'{name} is blocked: numpy alone')\n"
    "sys.meta_path.insert(0, Block())\n"
)


def test_a_generated_module_imports_and_works_with_numpy_alone(user, tmp_path):
    out = tmp_path / "out"
    assert shrinkage("build", user, "--out", out, "--no-pdf", cwd=tmp_path).returncode == 0
    code = BLOCK_SHRINKAGE + (
        "sys.path.insert(0, sys.argv[1])\n"
        "import numeric\n"
        "assert set(sys.modules) & {'shrinkage', 'sympy'} == set()\n"
        "print(repr(float(numeric.lam_tiny(5, 2.0, 1.5))))\n"
        "print(numeric.lam_tiny([1, 10], [1.0, 1.0], [0.5, 0.5]).tolist())\n"
        "try:\n"
        "    numeric.lam_tiny(5, -2.0, 1.5)\n"
        "except ValueError as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    run = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, timeout=120,
                         env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    scalar, vector, error = run.stdout.splitlines()
    n, s2, sb2 = 5, 2.0, 1.5  # the factor by its definition, sigma_b^2 / (sigma_b^2 + sigma^2/n)
    assert float(scalar) == pytest.approx(sb2 / (sb2 + s2 / n), rel=1e-15)
    assert np.allclose(ast.literal_eval(vector), [0.5 / (0.5 + 1.0), 0.5 / (0.5 + 0.1)], rtol=1e-15, atol=0)
    assert error == "InputError sigma2 must be finite and > 0, got -2.0"


def test_a_derivation_can_import_a_helper_beside_it(tmp_path):
    """Files starting with "_" are helpers, not derivations, and are importable."""
    folder = tmp_path / "mine"
    (folder).mkdir()
    (folder / "_shared.py").write_text("WHY = 'clear the fraction'\n")
    path = write_tiny(folder, "tiny")
    path.write_text("from _shared import WHY\n" + path.read_text().replace('"clear the fraction"', "WHY"))
    run = shrinkage("check", folder, "--no-cache", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "tiny step 2/2 cleared: proved" in run.stdout and "_shared" not in run.stdout


def test_build_writes_markdown_and_html_beside_the_tex(user, tmp_path):
    out = tmp_path / "out"
    run = shrinkage("build", user, "--out", out, "--no-pdf", "--format", "md", "--format", "html", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in out.glob("tiny.*")) == ["tiny.html", "tiny.md", "tiny.tex"]
    markdown = (out / "tiny.md").read_text()
    assert '<a id="tiny-2"></a>' in markdown and r"\tag{2}" in markdown and "$$" in markdown


def test_docs_points_at_the_package_documents(tmp_path):
    run = shrinkage("docs", "blup", cwd=tmp_path)
    assert run.returncode == 0 and run.stdout.strip() == str(ROOT / "docs" / "blup.pdf"), run.stderr
    listing = shrinkage("docs", cwd=tmp_path)
    assert listing.returncode == 0 and "  blup" in listing.stdout.splitlines()
    missing = shrinkage("docs", "nope", cwd=tmp_path)
    assert missing.returncode == 1 and missing.stderr.startswith("shrinkage: error: no document named 'nope': "
                                                                 "the documents are: answer, ")
