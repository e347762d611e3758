"""Shared fixtures and the one TeX policy of the test suite.

* ``rng``: a seeded numpy Generator, so every random test is reproducible.
* ``checked``: every derivation in derivations/, checked once per test session
  (through the session's cache, which later builds and CLI runs read).
* ``requires_tex``: skip where TeX is absent, but never when the CI variable is set.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
DERIVATIONS = ROOT / "derivations"
SHARED_DATA = ROOT.parent / "shared" / "data"


def tex_installed() -> bool:
    return shutil.which("latexmk") is not None and shutil.which("pdflatex") is not None


def require_tex() -> None:
    """Skip a test that needs TeX when TeX is absent; in CI a missing TeX is a failure."""
    if tex_installed():
        return
    if os.environ.get("CI"):
        pytest.fail("TeX (latexmk, pdflatex) is required when CI is set")
    pytest.skip("TeX is not installed")


@pytest.fixture
def requires_tex() -> None:
    require_tex()


R_FIXTURES = {"lme4", "lme4_summary"}  # tests/test_lme4.py, tests/test_lmm_lme4.py: lme4 through Rscript


def pytest_collection_modifyitems(items):
    """A test that compiles TeX (the tex marker or the requires_tex fixture) or starts R
    (an lme4 fixture) belongs to the slow tier: a PDF or an R session takes seconds, the
    fast tier's budget is for the mathematics."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if item.get_closest_marker("tex") or "requires_tex" in fixtures or fixtures & R_FIXTURES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261125)


def _user_cache() -> Path:
    """The folder `shrinkage build` caches into (shrinkage.cache.cache_dir, not imported
    here: it loads SymPy)."""
    if os.environ.get("SHRINKAGE_CACHE_DIR"):
        return Path(os.environ["SHRINKAGE_CACHE_DIR"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "shrinkage"


def pytest_configure(config):
    """Every check of the session goes through one cache in a fresh folder (tests never
    write to the user's cache): the derivations are checked once, by the first fixture
    that needs them, and every later build (in-process or a CLI subprocess, which
    inherits the variable) reads them back.

    Outside CI the folder starts as a copy of the user's cache, so a session after a
    `shrinkage build` reuses its verdicts: an entry is found only under the hash of
    everything its verdict depends on (shrinkage.cache.check_key), and
    tests/test_cache.py shows a cached verdict is the one a fresh check gives.  In CI,
    or with SHRINKAGE_TEST_FRESH=1, every derivation is checked from scratch.
    SHRINKAGE_TEST_CACHE_DIR keeps one folder across sessions instead."""
    import tempfile

    if os.environ.get("PYTEST_XDIST_WORKER"):  # a worker of pytest -n: the controller's folder, inherited
        config._shrinkage_cache = None
        return
    kept = os.environ.get("SHRINKAGE_TEST_CACHE_DIR")
    folder = kept or tempfile.mkdtemp(prefix="shrinkage-test-cache-")
    if not kept and not (os.environ.get("CI") or os.environ.get("SHRINKAGE_TEST_FRESH")):
        for kind in ("checks", "out", "kernels"):  # verdicts, rendered text, compiled kernels; PDFs afresh
            seed = _user_cache() / kind
            if seed.is_dir():
                shutil.copytree(seed, Path(folder) / kind, dirs_exist_ok=True)
    config._shrinkage_cache = None if kept else folder
    os.environ["SHRINKAGE_CACHE_DIR"] = folder  # shrinkage.cache.CACHE_ENV


def pytest_unconfigure(config):
    folder = getattr(config, "_shrinkage_cache", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def session_cache():
    """The session's cache of checked derivations (and PDFs)."""
    from shrinkage.cache import Cache

    return Cache()


@pytest.fixture(scope="session")
def checked(session_cache):
    """All derivations, checked once per session, in parallel (a failing step fails
    every test that uses this)."""
    import fcntl

    from shrinkage.build import check_all, default_jobs, load_sources

    # with pytest -n, the first worker here checks; the others wait, then read its cache
    with open(session_cache.folder / ".checking.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = check_all(load_sources([DERIVATIONS]), say=lambda _: None, cache=session_cache, jobs=default_jobs())
    return {cd.derivation.name: cd for cd in found}


# --- mutation testing: the reports of tests/test_mutations.py, summed up at the end ---
def mutation_report(report) -> None:
    """Keep a shrinkage.derive.mutate.StepReport for the summary (in the session's folder: with
    pytest -n the tests run in worker processes, the summary in the controller)."""
    import pickle
    import uuid
    from types import SimpleNamespace as NS

    def mutant(m):
        return NS(derivation=m.derivation, number=m.number, operator=m.operator, description=m.description)

    report = NS(derivation=report.derivation, number=report.number, kind=report.kind,
                outcomes=[NS(status=o.status, detail=str(o.detail), mutant=mutant(o.mutant)) for o in report.outcomes],
                equivalent=[mutant(m) for m in report.equivalent])
    folder = Path(os.environ["SHRINKAGE_CACHE_DIR"]) / "mutation-reports"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{uuid.uuid4().hex}.pickle").write_bytes(pickle.dumps(report))


def _mutation_reports() -> list:
    import pickle

    folder = Path(os.environ.get("SHRINKAGE_CACHE_DIR", "")) / "mutation-reports"
    found = [pickle.loads(f.read_bytes()) for f in sorted(folder.glob("*.pickle"))] if folder.is_dir() else []
    return sorted(found, key=lambda r: (r.derivation, r.number, r.kind))


def pytest_terminal_summary(terminalreporter):
    """Print how many mutants were made, rejected, and set aside as equivalent."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    MUTATION_REPORTS = _mutation_reports()
    if not MUTATION_REPORTS:
        return
    from collections import Counter

    from shrinkage.derive.mutate import HORIZON

    outcomes = [o for r in MUTATION_REPORTS for o in r.outcomes]
    equivalent = [m for r in MUTATION_REPORTS for m in r.equivalent]
    status = Counter(o.status for o in outcomes)
    by_operator = Counter(o.mutant.operator for o in outcomes)
    rejected = status["rejected"]
    premises = status["unchecked-premise"]
    judged = len(outcomes) - premises
    share = rejected / judged if judged else 1.0
    tr = terminalreporter
    tr.write_sep("=", "mutation testing")
    tr.write_line(f"{len(MUTATION_REPORTS)} steps in {len({r.derivation for r in MUTATION_REPORTS})} derivations; "
                  f"{len(outcomes)} mutants judged; of the {judged} corrupting a checked step, a definition "
                  f"or a recall, {rejected} rejected ({share:.1%}), {status['survived']} survived, "
                  f"{status['crashed']} crashed the checker")
    tr.write_line(f"{premises} corrupted Given statements (unchecked premises, marked so in the documents) "
                  f"were not caught by the next {HORIZON} checked steps")
    tr.write_line("by operator: " + ", ".join(f"{k} {v}" for k, v in sorted(by_operator.items())))
    tr.write_line(f"{len(equivalent)} mutants skipped as equivalent to the original step "
                  "(equal at every random point, 50 digits):")
    for r in MUTATION_REPORTS:
        for m in r.equivalent:
            tr.write_line(f"  {m.derivation} step {m.number} ({r.kind}): {m.description}")
    for o in outcomes:
        if o.status != "rejected":
            tr.write_line(f"  NOT REJECTED ({o.status}): {o.mutant.derivation} step {o.mutant.number}: "
                          f"{o.mutant.description} [{o.status}] {o.detail}")


@pytest.fixture(scope="session")
def cli_build(checked, tmp_path_factory):
    """One `python -m shrinkage build` per session, as a user runs it, in a separate
    process with its own hash seed, into a temporary folder (PDFs when TeX is there).
    It reads the checked derivations from the session's cache (``checked`` fills it)
    and renders, generates and compiles them itself (or reads the text an earlier CLI
    build of the session rendered in its own process, under the same keys: see
    shrinkage.build.Outputs).
    Returns (completed process, out folder, generated numeric module path)."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("cli_build")
    numeric = out / "numeric.py"
    args = [sys.executable, "-m", "shrinkage", "build", "--out", str(out), "--numeric", str(numeric)]
    if not tex_installed():
        args.append("--no-pdf")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    run = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=env, timeout=3600)
    return run, out, numeric
