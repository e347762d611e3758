"""The build: load derivations, check them all, then write documents and code.

Checking happens before any writing, so a failing step leaves every output as it was.
Every file is written to a temporary file in its folder and renamed into place.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .codegen import generate
from .engine import CheckedDerivation, Derivation, check
from .errors import BuildError, DerivationError
from .latex import render

PACKAGE_DIR = Path(__file__).resolve().parent
NUMERIC_MODULE = PACKAGE_DIR / "numeric.py"
SOURCE_DATE_EPOCH = "1700000000"  # fixed, so two builds give byte-identical PDFs


def default_derivations_dir() -> Path:
    """derivations/ of the source tree this package was installed from (src layout)."""
    return PACKAGE_DIR.parent.parent / "derivations"


def load_derivations(folder: Path) -> list[Derivation]:
    """Import every derivations/*.py and call its ``derivation()``; sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DerivationError(f"no derivations folder at {folder}")
    found = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        spec = importlib.util.spec_from_file_location(f"shrinkage_derivations.{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except SyntaxError as e:
            raise DerivationError(f"{path}, line {e.lineno}: syntax error: {e.msg}") from None
        except Exception as e:  # the file's own code failed: say where, not a traceback
            raise DerivationError(f"{path} failed to load: {type(e).__name__}: {e}") from None
        make = getattr(module, "derivation", None)
        if make is None:
            raise DerivationError(f"{path} defines no derivation() function")
        try:
            d = make()
        except DerivationError:
            raise
        except Exception as e:
            raise DerivationError(f"{path}: derivation() failed: {type(e).__name__}: {e}") from None
        if d.name != path.stem:
            raise DerivationError(f"{path} builds a derivation named {d.name!r}; name it after its file")
        found.append(d)
    if not found:
        raise DerivationError(f"no derivations in {folder}")
    return found


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename it into place."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise BuildError(f"cannot write to {path.parent}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as e:  # disk full, a folder where the file should be ...
        Path(tmp).unlink(missing_ok=True)
        raise BuildError(f"cannot write {path}: {e.strerror}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def tex_available() -> bool:
    return shutil.which("latexmk") is not None and shutil.which("pdflatex") is not None


def compile_pdf(tex_path: Path) -> Path:
    """Compile with latexmk in a scratch folder; move only the PDF next to the .tex."""
    tex_path = Path(tex_path)
    env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH, "FORCE_SOURCE_DATE": "1"}
    with tempfile.TemporaryDirectory() as scratch:
        shutil.copy(tex_path, Path(scratch) / tex_path.name)
        run = subprocess.run(
            ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", tex_path.name],
            cwd=scratch, env=env, capture_output=True, text=True,
        )
        pdf = Path(scratch) / tex_path.with_suffix(".pdf").name
        if run.returncode != 0 or not pdf.exists():
            log = Path(scratch) / tex_path.with_suffix(".log").name
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else run.stdout[-2000:]
            raise BuildError(f"LaTeX failed on {tex_path.name}:\n{tail}")
        target = tex_path.with_suffix(".pdf")
        write_atomic(target, pdf.read_bytes())
    return target


@dataclass(frozen=True)
class BuildResult:
    checked: tuple[CheckedDerivation, ...]
    written: tuple[Path, ...]
    pdf: bool


def check_all(derivations: list[Derivation], say: Callable[[str], None] = print) -> list[CheckedDerivation]:
    checked = []
    sources: dict = {}  # derivations checked so far, by name: a cited one is checked once
    for d in derivations:
        done = sources.get(d.name)
        cd = done if done is not None and done.derivation == d else check(d, sources=sources)
        sources[d.name] = cd
        proved = sum(1 for s in cd.steps if s.verdict.symbolic is True)
        numeric_only = sum(1 for s in cd.steps if s.verdict.symbolic is None)
        say(f"checked {d.name}: {len(cd.steps)} steps, {proved} proved by SymPy, "
            f"{numeric_only} numeric only, all numeric checks passed")
        checked.append(cd)
    return checked


def default_documents(checked: list[CheckedDerivation]) -> dict[str, Callable[[list[CheckedDerivation]], str]]:
    """Documents composed from several derivations: the answer to the question
    (docs/answer.tex), whenever every derivation it quotes is among ``checked``."""
    from .answer import REQUIRED, render_answer

    names = {cd.derivation.name for cd in checked}
    return {"answer": render_answer} if set(REQUIRED) <= names else {}


def build(
    derivations_dir: Path | None = None,
    out: Path | None = None,
    numeric_module: Path | None = NUMERIC_MODULE,
    pdf: bool | None = None,
    extra_documents: dict[str, Callable[[list[CheckedDerivation]], str]] | None = None,
    say: Callable[[str], None] = print,
    checked: list[CheckedDerivation] | None = None,
) -> BuildResult:
    """Check every derivation, then write one .tex (and PDF) each and the numeric module.

    ``pdf=None`` compiles when TeX is installed and says so when it is not.
    ``checked`` reuses derivations checked earlier (tests do, to check only once).
    ``extra_documents=None`` adds :func:`default_documents` (the answer); pass ``{}`` for none.
    """
    out = Path(out) if out is not None else default_derivations_dir().parent / "docs"
    if checked is None:
        checked = check_all(load_derivations(derivations_dir or default_derivations_dir()), say)
    documents = {cd.derivation.name: render(cd) for cd in checked}
    if extra_documents is None:
        extra_documents = default_documents(checked)
    for name, make in extra_documents.items():
        documents[name] = make(checked)
    code = generate(checked) if numeric_module is not None else None
    written = []
    for name, text in sorted(documents.items()):
        path = out / f"{name}.tex"
        write_atomic(path, text.encode())
        written.append(path)
        say(f"wrote {path}")
    if numeric_module is not None:
        write_atomic(Path(numeric_module), code.encode())
        written.append(Path(numeric_module))
        say(f"wrote {numeric_module}")
    compile_now = tex_available() if pdf is None else pdf
    if compile_now:
        for path in list(written):
            if path.suffix == ".tex":
                written.append(compile_pdf(path))
                say(f"compiled {written[-1]}")
    elif pdf is None:
        say("TeX (latexmk, pdflatex) not found: wrote .tex files only; install TeX to get PDFs")
    return BuildResult(tuple(checked), tuple(written), compile_now)
