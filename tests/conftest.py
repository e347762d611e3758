"""Shared fixtures and the one TeX policy of the test suite.

* ``rng``: a seeded numpy Generator, so every random test is reproducible.
* ``checked``: every derivation in derivations/, checked once per test session.
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


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261125)


@pytest.fixture(scope="session")
def checked():
    """All derivations, checked once (a failing step fails every test that uses this)."""
    from shrinkage.build import check_all, load_derivations

    return {cd.derivation.name: cd for cd in check_all(load_derivations(DERIVATIONS), say=lambda _: None)}
