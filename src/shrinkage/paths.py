"""Where the package's own files are: in the source tree it runs from (a checkout, an
editable install), or inside the installed package (a wheel).  No SymPy: ``shrinkage
docs`` answers at once.

Installed, the top-level derivations/ and docs/ travel as ``shrinkage/_derivations``
and ``shrinkage/_docs`` (see setup.py); in a checkout they are read where they are.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ShrinkageError

PACKAGE_DIR = Path(__file__).resolve().parent
NUMERIC_MODULE = PACKAGE_DIR / "numeric.py"
CACHE_ENV = "SHRINKAGE_CACHE_DIR"


def cache_dir() -> Path:
    """The user's cache folder for shrinkage (checked derivations, compiled kernels; not
    created here): ``$SHRINKAGE_CACHE_DIR``, else ``$XDG_CACHE_HOME/shrinkage``, else
    ``~/.cache/shrinkage``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "shrinkage"


def source_tree() -> Path | None:
    """The checkout this package runs from (src layout, with derivations/), or None
    when it is installed."""
    root = PACKAGE_DIR.parent.parent
    if PACKAGE_DIR.parent.name == "src" and (root / "pyproject.toml").is_file() and (root / "derivations").is_dir():
        return root
    return None


def _own(folder: str, installed: str) -> Path | None:
    root = source_tree()
    if root is not None:
        return root / folder
    inside = PACKAGE_DIR / installed
    return inside if inside.is_dir() else None


def package_derivations_dir() -> Path:
    """The package's own derivations."""
    found = _own("derivations", "_derivations")
    if found is None:
        raise ShrinkageError(f"the package's derivations are missing: no source tree, and no {PACKAGE_DIR / '_derivations'}")
    return found


def documents_dir() -> Path | None:
    """The package's own documents (docs/ of the checkout, or those installed with it)."""
    return _own("docs", "_docs")


def document(name: str) -> Path:
    """The PDF of the package's document ``name`` (e.g. "blup")."""
    folder = documents_dir()
    plain = name == Path(name).name and name not in ("", ".", "..")  # not a path to a PDF elsewhere
    pdf = folder / f"{name}.pdf" if folder is not None and plain else None
    if pdf is not None and pdf.is_file():
        return pdf
    known = sorted(p.stem for p in folder.glob("*.pdf")) if folder is not None and folder.is_dir() else []
    hint = f"the documents are: {', '.join(known)}" if known else \
        "none is installed; build them with `shrinkage build --out DIR`"
    raise ShrinkageError(f"no document named {name!r}: {hint}")
