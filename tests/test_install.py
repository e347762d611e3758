"""Installed like any package: a NON-editable `pip install` into a fresh virtual
environment, then, from a folder that is not the source tree, `shrinkage build --out
DIR` builds every document of the package, `shrinkage docs NAME` finds its PDF,
`shrinkage check` checks a user's folder, and the installed package is unchanged.

Slow (it builds a wheel and installs it).  The venv sees the packages of the
environment running the tests (numpy, SymPy, pandas ...: no downloads), not the system
Python's, which may have nothing but the standard library (a fresh machine where the
README's `pip install -e '.[test]'` went into a venv); the test makes sure it runs the
installed copy, not this checkout.  The build reads the session's cache (same sources,
same keys), so the derivations are not checked a third time.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from _userfolder import write_tiny
from conftest import ROOT

pytestmark = pytest.mark.slow


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def installed(tmp_path_factory, checked):
    """(venv's shrinkage command, its python, the installed package folder)."""
    base = tmp_path_factory.mktemp("install")
    source = base / "source"  # a copy: building a wheel writes build/ into the tree
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__",
                                                                 ".pytest_cache", ".hypothesis", ".venv"))
    env_dir = base / "venv"
    venv.EnvBuilder(system_site_packages=False, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    inner = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                capture_output=True, text=True, check=True).stdout.strip())
    (inner / "_running_environment.pth").write_text("".join(f"{p}\n" for p in running_site_packages()))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-cache-dir", "-q",
         str(source)] if _has_wheel_tools() else
        [str(python), "-m", "pip", "install", "--no-deps", "--no-cache-dir", "-q", str(source)],
        capture_output=True, text=True, env=env, timeout=900)
    assert install.returncode == 0, install.stdout + install.stderr
    where = subprocess.run([str(python), "-c", "import shrinkage, pathlib; print(pathlib.Path(shrinkage.__file__).parent)"],
                           capture_output=True, text=True, env=env, cwd=base, check=True).stdout.strip()
    package = Path(where)
    assert env_dir in package.parents, f"the venv imports shrinkage from {package}, not its own install"
    return env_dir / "bin" / "shrinkage", python, package, env, base


def running_site_packages() -> list[str]:
    """The folders the running interpreter imports installed packages from (a venv's own,
    and the system's too if that venv sees them), for the test's venv to see through a
    .pth file.  Only site-packages folders, not this checkout's src/ (which an editable
    install puts on sys.path); and the .pth files inside folders added this way are not
    run, so the editable install's finder of this checkout stays out of the test's venv."""
    found = [sysconfig.get_path("purelib"), sysconfig.get_path("platlib"),
             *(p for p in sys.path if Path(p).name in ("site-packages", "dist-packages"))]
    return [p for p in dict.fromkeys(found) if Path(p).is_dir()]


def _has_wheel_tools() -> bool:
    try:
        import wheel  # noqa: F401
    except ImportError:
        return False
    return True


def test_the_package_carries_its_derivations_and_documents(installed):
    _, _, package, _, _ = installed
    shipped = sorted(p.name for p in (package / "_derivations").glob("*.py"))
    assert shipped == sorted(p.name for p in (ROOT / "derivations").glob("*.py"))
    assert sorted(p.name for p in (package / "_docs").glob("*.pdf")) == sorted(p.name for p in (ROOT / "docs").glob("*.pdf"))


def test_an_installed_package_builds_every_document_from_any_folder(installed, tmp_path):
    command, _, package, env, _ = installed
    before = tree_digest(package)
    out = tmp_path / "out"
    run = subprocess.run([str(command), "build", "--out", str(out), "--no-pdf"], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=1800)
    assert run.returncode == 0, run.stdout + run.stderr
    built = sorted(p.stem for p in out.glob("*.tex"))
    assert built == sorted(p.stem for p in (ROOT / "docs").glob("*.tex")), built
    assert (out / "numeric.py").exists()
    rebuilt = subprocess.run([str(command), "build", "--out", str(out), "--no-pdf"], capture_output=True, text=True,
                             cwd=tmp_path, env=env, timeout=600)
    derivations = len(list((ROOT / "derivations").glob("*.py")))
    assert rebuilt.returncode == 0 and rebuilt.stdout.count("(from the cache)") == derivations, rebuilt.stdout
    assert tree_digest(package) == before, "building changed the installed package"


def test_an_installed_package_points_at_its_documents(installed, tmp_path):
    command, _, package, env, _ = installed
    run = subprocess.run([str(command), "docs", "blup"], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    pdf = Path(run.stdout.strip())
    assert pdf == package / "_docs" / "blup.pdf" and pdf.read_bytes().startswith(b"%PDF")
    from shrinkage import numeric  # the docstrings send a reader to that command

    assert "`shrinkage docs blup`" in numeric.blup.__doc__


def test_an_installed_package_checks_a_user_folder(installed, tmp_path):
    command, _, package, env, _ = installed
    before = tree_digest(package)
    write_tiny(tmp_path / "mine")
    run = subprocess.run([str(command), "check", str(tmp_path / "mine")], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=600)
    assert run.returncode == 0 and "tiny step 2/2 cleared: proved" in run.stdout, run.stdout + run.stderr
    assert tree_digest(package) == before
