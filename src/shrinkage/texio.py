"""Files on disk: atomic writes, a staging area that moves a whole build into place at
once, signals turned into exceptions, and the LaTeX compiler.  No SymPy, so that a
report (numpy only) can write its files without loading the derivation engine.

Why staging: a build writes several files (documents, PDFs, a module).  If it stops
half-way (a LaTeX error, Ctrl-C, SIGTERM), the old files must stay as they were, not a
new .tex beside an old PDF.  So everything is written into hidden folders beside the
targets first, and only when all of it exists is each file renamed into place, with
SIGINT/SIGTERM held back for the few renames.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Iterator

from .errors import BuildError

SOURCE_DATE_EPOCH = "1700000000"  # fixed, so two builds give byte-identical PDFs
STAGING_PREFIX = ".shrinkage-staging-"
_SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s is not None)


_progress = {"committed": False}  # a Staging committed since signals_raise() began


class Interrupted(BaseException):
    """A SIGTERM (or SIGINT) arrived while a build was running.  A BaseException, like
    KeyboardInterrupt, so that no ``except Exception`` swallows it; cleanup runs in the
    ``finally`` blocks it passes through."""

    committed = False  # True when it arrived after a commit: every file was in place

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT raise :class:`Interrupted` in the main thread
    (Python's default for SIGTERM is to die at once, skipping every cleanup)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        e = Interrupted(signum)
        e.committed = _progress["committed"]
        raise e

    _progress["committed"] = False
    previous = {s: signal.signal(s, handler) for s in _SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back during the block; one that arrives meanwhile is handled
    right after it, by the handler that was in place.  (A signal mask would not do:
    numpy's BLAS threads leave the signals unblocked, and the kernel delivers them there.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def defer(signum, frame):
        pending.append(signum)

    previous = {s: signal.signal(s, defer) for s in _SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        if pending:
            handler = previous[pending[0]]
            if callable(handler):
                handler(pending[0], None)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), pending[0])


def _mkdirs(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return those created (outermost first)."""
    missing = []
    p = folder
    while not p.exists():
        missing.append(p)
        p = p.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BuildError(f"cannot write to {folder}: {e.strerror}") from None
    return list(reversed(missing))


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename it into place."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # a short fixed prefix: a target whose name has the most bytes a folder allows can be written
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".shrinkage-", suffix=".tmp")
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


class Staging:
    """Files destined for their targets, written first into a hidden folder beside each
    target (same file system, so the final move is a rename).  Use as a context manager:
    :meth:`commit` moves every file into place; leaving the block without a commit (an
    error, an interruption) removes everything staged, and any output folder it created."""

    def __init__(self) -> None:
        self._folders: dict[Path, Path] = {}  # target folder -> its staging folder
        self._created: list[Path] = []  # output folders that did not exist before
        self._files: dict[Path, Path] = {}  # target -> staged file

    def __enter__(self) -> "Staging":
        return self

    def __exit__(self, *exc) -> None:
        self.discard()

    def path(self, target: Path) -> Path:
        """Where ``target`` is staged (the file need not exist yet)."""
        target = Path(target).absolute()
        folder = target.parent
        if folder not in self._folders:
            with signals_held():  # a folder made is a folder recorded, for discard()
                self._created += _mkdirs(folder)
                try:
                    self._folders[folder] = Path(tempfile.mkdtemp(dir=folder, prefix=STAGING_PREFIX))
                except OSError as e:
                    raise BuildError(f"cannot write to {folder}: {e.strerror}") from None
        staged = self._folders[folder] / target.name
        self._files[target] = staged
        return staged

    def write(self, target: Path, data: bytes) -> Path:
        staged = self.path(target)
        try:
            staged.write_bytes(data)
            os.chmod(staged, 0o644)
        except OSError as e:
            raise BuildError(f"cannot write {target}: {e.strerror}") from None
        return staged

    def commit(self) -> list[Path]:
        """Rename every staged file onto its target; return the targets, sorted.  A
        rename that fails puts back every file moved before it (the old ones wait in
        the staging folder until the last rename is done)."""
        for target, staged in self._files.items():
            if not staged.exists():
                raise BuildError(f"nothing was staged for {target}")
            if target.is_dir():
                raise BuildError(f"cannot write {target}: a folder of that name is in the way")
        moved: list[tuple[Path, Path | None]] = []
        with signals_held():
            try:
                for target, staged in sorted(self._files.items()):
                    backup = None
                    if os.path.lexists(target):
                        backup = staged.with_name(f".old-{target.name}")
                        os.replace(target, backup)
                    moved.append((target, backup))
                    os.replace(staged, target)
            except OSError as e:
                for t, b in reversed(moved):
                    with contextlib.suppress(OSError):
                        if b is not None:
                            os.replace(b, t)
                        else:
                            t.unlink(missing_ok=True)
                raise BuildError(f"cannot move {target} into place: {e.strerror}; nothing was changed") from None
            done = sorted(self._files)
            self._files.clear()
            self._created.clear()  # they hold the new files now: keep them
            _progress["committed"] = True  # a signal held back until now arrives after this
            self.discard()
        return done

    def discard(self) -> None:
        with signals_held():
            for staging in self._folders.values():
                shutil.rmtree(staging, ignore_errors=True)
            self._folders.clear()
            self._files.clear()
            for folder in reversed(self._created):
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only if still empty
            self._created.clear()


def tex_available() -> bool:
    return shutil.which("latexmk") is not None and shutil.which("pdflatex") is not None


def tex_version() -> str:
    """pdfTeX's banner line, part of the key of cached PDFs."""
    try:
        run = subprocess.run(["pdflatex", "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return run.stdout.splitlines()[0] if run.stdout else "unknown"


def _run(args: list[str], cwd: str, env: dict) -> subprocess.CompletedProcess:
    """Run ``args`` in its own process group, so that an interruption (an exception
    while waiting) stops latexmk *and* the pdflatex it started, not latexmk alone."""
    process = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, errors="replace", start_new_session=True)
    try:
        output, _ = process.communicate()
    except BaseException:
        with contextlib.suppress(OSError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    return subprocess.CompletedProcess(args, process.returncode, output, "")


JOB = "document"  # the only job name TeX sees: a user's file name is never a TeX or latexmk argument
# latexmk without rc files (none can change the commands run) and pdflatex without \write18:
# the one command latexmk builds (through a shell) names only JOB.tex.
LATEXMK = ["latexmk", "-norc", "-pdf", "-pdflatex=pdflatex -no-shell-escape %O %S", "-interaction=nonstopmode",
           "-halt-on-error", f"{JOB}.tex"]


def pdf_bytes(tex: str, name: str) -> bytes:
    """Compile the LaTeX source ``tex`` in a private scratch folder; the PDF.  ``name``
    only labels errors: TeX always compiles JOB.tex (the PDF's bytes do not depend on
    the job name), so a name such as ``-pdflatex=...`` is never read as an option."""
    env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH, "FORCE_SOURCE_DATE": "1"}
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / f"{JOB}.tex").write_text(tex, encoding="utf-8")
        try:
            run = _run(LATEXMK, scratch, env)
        except OSError as e:
            raise BuildError(f"cannot run latexmk: {e.strerror}") from None
        pdf = Path(scratch) / f"{JOB}.pdf"
        if run.returncode != 0 or not pdf.exists():
            log = Path(scratch) / f"{JOB}.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else run.stdout[-2000:]
            raise BuildError(f"LaTeX failed on {name}.tex:\n{tail}")
        return pdf.read_bytes()


def compile_pdf(tex_path: Path) -> Path:
    """Compile ``tex_path``; write only the PDF next to it (atomically)."""
    tex_path = Path(tex_path)
    target = tex_path.with_suffix(".pdf")
    write_atomic(target, pdf_bytes(tex_path.read_text(encoding="utf-8"), tex_path.stem))
    return target
