"""A build that fails or is interrupted at any point (checking, rendering, generating,
writing, compiling, moving into place; SIGTERM and SIGINT included) leaves the previous
documents, PDFs and module exactly as they were, and no temporary file behind.

Each test starts from a folder holding an earlier build's outputs (bytes no build
writes) and compares every file below it, hidden ones included, after the failure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _userfolder import WRONG, old_outputs, snapshot, write_tiny
from conftest import ROOT
from shrinkage import build as build_module
from shrinkage import texio
from shrinkage.build import build
from shrinkage.errors import BuildError, DerivationError, StepError

DRIVER = Path(__file__).with_name("_interrupt_driver.py")


@pytest.fixture
def folder(tmp_path):
    """Two tiny derivations, so that a failure can strike after a first file is done."""
    d = tmp_path / "derivations"
    write_tiny(d, "tiny")
    write_tiny(d, "tiny2")
    return d


@pytest.fixture
def before(tmp_path):
    out = tmp_path / "out"
    return out, old_outputs(out, ("tiny", "tiny2"))


def run_build(folder, out, **kwargs):
    kwargs.setdefault("pdf", True)
    return build(paths=[folder], out=out, numeric_module=out / "numeric.py", say=lambda _: None, **kwargs)


def test_a_successful_build_replaces_everything_and_leaves_nothing_else(folder, before, monkeypatch):
    """The control: the same build with nothing failing writes new files, and only them."""
    out, old = before
    monkeypatch.setattr(build_module, "pdf_bytes", lambda tex, name: b"%PDF new " + name.encode())
    run_build(folder, out)
    new = snapshot(out)
    assert sorted(new) == sorted(old)
    assert all(new[name] != old[name] for name in old)


def test_a_failing_step(tmp_path, before):
    out, old = before
    write_tiny(tmp_path / "bad", "tiny", rhs=WRONG)
    with pytest.raises(StepError):
        run_build(tmp_path / "bad", out)
    assert snapshot(out) == old


def test_latex_failing_on_the_second_document(folder, before, monkeypatch):
    out, old = before
    calls = []

    def compile_second_fails(tex, name):
        calls.append(name)
        if len(calls) == 2:
            raise BuildError(f"LaTeX failed on {name}.tex")
        return b"%PDF new"

    monkeypatch.setattr(build_module, "pdf_bytes", compile_second_fails)
    with pytest.raises(BuildError, match="LaTeX failed on tiny2.tex"):
        run_build(folder, out)
    assert calls == ["tiny", "tiny2"]
    assert snapshot(out) == old


def test_rendering_failing(folder, before, monkeypatch):
    out, old = before
    real = build_module.render

    def render_fails_on_tiny2(cd, *where):  # where: the user's file and module the document names
        if cd.derivation.name == "tiny2":
            raise DerivationError("cannot render tiny2")
        return real(cd, *where)

    monkeypatch.setattr(build_module, "render", render_fails_on_tiny2)
    with pytest.raises(DerivationError, match="cannot render tiny2"):
        run_build(folder, out)
    assert snapshot(out) == old


def test_an_export_that_is_not_a_python_name(tmp_path, before):
    """An export named `import` would write a module with a syntax error: one line, nothing written."""
    out, old = before
    write_tiny(tmp_path / "d", "tiny", function="import")
    with pytest.raises(DerivationError, match="'import'"):
        run_build(tmp_path / "d", out)
    assert snapshot(out) == old


def test_a_disk_full_while_staging_the_third_file(folder, before, monkeypatch):
    out, old = before
    real, writes = texio.Staging.write, []

    def third_write_fails(self, target, data):
        writes.append(target)
        if len(writes) == 3:
            raise BuildError(f"cannot write {target}: No space left on device")
        return real(self, target, data)

    monkeypatch.setattr(texio.Staging, "write", third_write_fails)
    monkeypatch.setattr(build_module, "pdf_bytes", lambda tex, name: b"%PDF new")
    with pytest.raises(BuildError, match="No space left on device"):
        run_build(folder, out)
    assert len(writes) == 3 and snapshot(out) == old


def test_a_rename_failing_half_way_through_the_move_puts_everything_back(folder, before, monkeypatch):
    """The move into place is itself all or nothing: the files already moved go back."""
    out, old = before
    real, renames = os.replace, []

    def second_move_fails(src, dst):
        renames.append(Path(dst).name)
        if not Path(dst).name.startswith(".old-") and len([r for r in renames if not r.startswith(".old-")]) == 2:
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(build_module, "pdf_bytes", lambda tex, name: b"%PDF new")
    monkeypatch.setattr(os, "replace", second_move_fails)
    with pytest.raises(BuildError, match="nothing was changed"):
        run_build(folder, out)
    monkeypatch.setattr(os, "replace", real)
    assert snapshot(out) == old


def test_a_failure_into_a_new_folder_leaves_no_folder(folder, tmp_path, monkeypatch):
    out = tmp_path / "new" / "docs"
    monkeypatch.setattr(build_module, "pdf_bytes", lambda tex, name: (_ for _ in ()).throw(BuildError("no TeX")))
    with pytest.raises(BuildError):
        run_build(folder, out)
    assert not (tmp_path / "new").exists()


# ----------------------------------------------------------------------------------
# Signals, in a subprocess build stopped at a chosen moment (tests/_interrupt_driver.py);
# slow: each starts a Python that imports SymPy
# ----------------------------------------------------------------------------------
def interrupt(tmp_path, point: str, folder: Path, out: Path, sig=signal.SIGTERM, *extra: str):
    """Run the driver, wait until it reaches ``point``, send ``sig``; the finished run."""
    ready = tmp_path / f"ready-{point}"
    args = [sys.executable, str(DRIVER), point, str(ready), "build", str(folder), "--out", str(out),
            "--numeric", str(out / "numeric.py"), "--jobs", "1", *extra]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(DRIVER.parent)])}
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 300
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            out_, err = process.communicate(timeout=60)
            pytest.fail(f"the build never reached {point}: {process.returncode}\n{out_}\n{err}")
        time.sleep(0.05)
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=120)
    return process.returncode, stdout, stderr, ready.read_text()


@pytest.mark.slow
@pytest.mark.parametrize("point", ["checking", "compiling", "staged"])
def test_sigterm_at_any_moment_leaves_the_old_outputs(point, folder, before, tmp_path):
    out, old = before
    code, _, stderr, _ = interrupt(tmp_path, point, folder, out)
    assert code == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr and "interrupted (SIGTERM): nothing was written" in stderr, stderr
    assert snapshot(out) == old


@pytest.mark.slow
def test_ctrl_c_while_compiling_leaves_the_old_outputs(folder, before, tmp_path):
    out, old = before
    code, _, stderr, _ = interrupt(tmp_path, "compiling", folder, out, signal.SIGINT)
    assert code == 128 + signal.SIGINT and "interrupted (SIGINT)" in stderr, stderr
    assert snapshot(out) == old


@pytest.mark.slow
def test_sigterm_during_the_renames_is_held_until_every_file_is_in_place(folder, before, tmp_path):
    """The driver stalls inside the first rename; the signal waits for the last one
    (a build without PDFs: the .tex files and the module are new, the PDFs untouched)."""
    out, old = before
    code, _, stderr, _ = interrupt(tmp_path, "renaming", folder, out)
    assert code == 128 + signal.SIGTERM and "after every output was in place" in stderr, stderr
    new = snapshot(out)
    assert sorted(new) == sorted(old)
    assert all((new[k] == old[k]) == k.endswith(".pdf") for k in old), new


@pytest.mark.slow
def test_sigterm_between_write_and_rename_leaves_no_temporary_file(tmp_path):
    """write_atomic (the report's and the cache's writer) under a SIGTERM."""
    target = tmp_path / "out" / "report.tex"
    target.parent.mkdir()
    target.write_bytes(b"old")
    code, _, stderr, _ = interrupt(tmp_path, "write_atomic", tmp_path, target.parent)
    assert code == 128 + signal.SIGTERM, stderr
    assert snapshot(target.parent) == {"report.tex": b"old"}


@pytest.mark.slow
def test_sigterm_while_workers_check_stops_them(tmp_path):
    """Checking in worker processes: the build stops its workers and leaves no process."""
    folder = tmp_path / "derivations"
    for name in ("slow_a", "slow_b"):
        write_tiny(folder, name)
        source = (folder / f"{name}.py").read_text()
        (folder / f"{name}.py").write_text(
            "import os, sys, time\n"
            f"if sys.argv[0] == '-c':  # in a checking worker: say so, then take long\n"
            f"    open({str(tmp_path / 'ready-parallel')!r} + '.' + {name!r}, 'w').write(str(os.getpid()))\n"
            "    time.sleep(120)\n" + source)
    out = tmp_path / "out"
    old = old_outputs(out, ("slow_a", "slow_b"))
    args = [sys.executable, "-m", "shrinkage", "build", str(folder), "--out", str(out), "--jobs", "2", "--no-pdf"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    markers = [tmp_path / f"ready-parallel.{n}" for n in ("slow_a", "slow_b")]
    deadline = time.monotonic() + 300
    while not all(m.exists() and m.read_text() for m in markers):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    pids = [int(m.read_text()) for m in markers]
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert snapshot(out) == old
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
