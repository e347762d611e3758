"""The build: committed outputs are fresh, the CLI works as a user runs it, documents
compile, and the generated module needs numpy only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from shrinkage.build import build

COMMITTED_NUMERIC = ROOT / "src" / "shrinkage" / "numeric.py"
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def fresh_build(checked, tmp_path_factory):
    """Build (no PDF) into a temporary folder from the session's checked derivations."""
    out = tmp_path_factory.mktemp("docs")
    numeric = out / "numeric.py"
    build(out=out, numeric_module=numeric, pdf=False, checked=list(checked.values()), say=lambda _: None)
    return out, numeric


def test_committed_numeric_module_is_what_the_derivations_generate(checked):
    from shrinkage.codegen import generate

    assert COMMITTED_NUMERIC.read_text() == generate(list(checked.values())), (
        "src/shrinkage/numeric.py is stale: run `shrinkage build` and commit the result"
    )


def test_a_build_into_a_folder_writes_a_standalone_module_there(fresh_build, checked):
    """Built anywhere but the package's docs/, the module is the same functions with
    the validation inlined, and the package's own numeric.py is left alone."""
    from shrinkage.codegen import generate

    _, numeric = fresh_build
    text = numeric.read_text()
    assert text == generate(list(checked.values()), standalone=True)
    assert "from ._validation" not in text and "def require(" in text
    assert COMMITTED_NUMERIC.read_text() != text


def test_committed_documents_are_what_the_derivations_render(fresh_build):
    out, _ = fresh_build
    built = {p.name: p.read_text() for p in out.glob("*.tex")}
    committed = {p.name: p.read_text() for p in DOCS.glob("*.tex")}
    assert set(built) == set(committed), "docs/ has missing or extra .tex files: rebuild"
    for name, text in built.items():
        assert committed[name] == text, f"docs/{name} is stale: run `shrinkage build` and commit"


def test_committed_pdfs_exist_for_every_document():
    for tex in DOCS.glob("*.tex"):
        assert tex.with_suffix(".pdf").exists(), f"{tex.name} has no compiled PDF in docs/"


def test_generated_module_imports_without_sympy():
    code = ("import sys, shrinkage, shrinkage.numeric; assert 'sympy' not in sys.modules, 'sympy imported'; "
            "assert 'numba' not in sys.modules, 'numba imported'")  # numba: with the first formula fit
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_generated_functions_name_their_source_step():
    from shrinkage import numeric

    for name in ("shrinkage_factor", "blup", "conditional_variance"):
        doc = getattr(numeric, name).__doc__
        assert "From derivation `blup`, step" in doc and "`shrinkage docs blup`" in doc


def test_every_document_compiles(fresh_build, tmp_path, requires_tex):
    from shrinkage.build import compile_pdf

    out, _ = fresh_build
    for tex in sorted(out.glob("*.tex")):
        copy = tmp_path / tex.name
        copy.write_bytes(tex.read_bytes())
        pdf = compile_pdf(copy)
        assert pdf.read_bytes().startswith(b"%PDF")


@pytest.mark.slow
def test_cli_build_end_to_end(cli_build, fresh_build):
    """`python -m shrinkage build` as a user runs it: says what it checked and wrote, and
    generates the same module as a build in this process."""
    run, out, numeric = cli_build
    assert run.returncode == 0, run.stderr
    assert "checked blup:" in run.stdout and f"wrote {out / 'blup.tex'}" in run.stdout
    assert numeric.read_text() == fresh_build[1].read_text()
