"""Reproducible builds: two builds, in different processes with different hash seeds,
give byte-identical .tex files, generated Python and (with the same TeX) PDFs.

Build A is made in this process from the session's checked derivations; build B is the
session's CLI build (tests/conftest.py: cli_build), which reads the same checks back
from the session's cache (tests/test_cache.py shows that a result read back renders to
the bytes of a fresh check) and renders, generates and compiles everything itself.
The freshness of the committed files is tested in tests/test_build.py.
"""

from __future__ import annotations

import pytest

from conftest import require_tex, tex_installed
from shrinkage.build import build


@pytest.fixture(scope="module")
def in_process_build(checked, tmp_path_factory):
    out = tmp_path_factory.mktemp("build_a")
    numeric = out / "numeric.py"
    build(out=out, numeric_module=numeric, pdf=tex_installed(), checked=list(checked.values()), say=lambda _: None)
    return out, numeric


def _files(folder, suffix):
    return {p.name: p.read_bytes() for p in sorted(folder.glob(f"*{suffix}"))}


@pytest.mark.slow
def test_two_builds_give_identical_tex_and_code(in_process_build, cli_build):
    run, out_b, numeric_b = cli_build
    assert run.returncode == 0, run.stderr
    out_a, numeric_a = in_process_build
    tex_a, tex_b = _files(out_a, ".tex"), _files(out_b, ".tex")
    assert tex_a and set(tex_a) == set(tex_b)
    for name in tex_a:
        assert tex_a[name] == tex_b[name], f"{name} differs between two builds"
    assert numeric_a.read_bytes() == numeric_b.read_bytes(), "the generated numeric module differs between two builds"


@pytest.mark.slow
@pytest.mark.tex
def test_two_builds_give_identical_pdfs(in_process_build, cli_build):
    require_tex()
    run, out_b, _ = cli_build
    assert run.returncode == 0, run.stderr
    out_a, _ = in_process_build
    pdf_a, pdf_b = _files(out_a, ".pdf"), _files(out_b, ".pdf")
    stems = lambda files: {name.rsplit(".", 1)[0] for name in files}  # noqa: E731
    assert pdf_a and stems(pdf_a) == stems(_files(out_a, ".tex")), "a document was not compiled"
    assert set(pdf_a) == set(pdf_b)
    for name in pdf_a:
        assert pdf_a[name] == pdf_b[name], f"{name} differs between two builds with the same TeX"


@pytest.mark.tex
def test_a_pdf_carries_no_date_and_no_random_id(in_process_build):
    """What makes the PDFs reproducible: no creation date, no trailer /ID."""
    require_tex()
    out_a, _ = in_process_build
    for name, data in _files(out_a, ".pdf").items():
        assert b"/CreationDate" not in data and b"/ModDate" not in data, name
        assert b"/ID [" not in data and b"/ID[" not in data, name
