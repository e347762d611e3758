"""The build: load derivations, check them all (cached, in parallel), then stage every
output (documents, PDFs, generated module) and move it into place only when all of it
exists.  A build that fails or is interrupted at any point leaves every earlier output
as it was (see :class:`shrinkage.texio.Staging`).

Whose files: the package's own generated module (src/shrinkage/numeric.py) is written
only by a build of the package's own derivations from its source tree into its docs/;
a build into ``--out DIR`` (or of a user's folder) writes a self-contained module into
DIR instead, which imports with numpy alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Iterable, Sequence

from . import cache as cache_module
from .checking import Event, Source, check_sources, default_jobs, load_file, load_sources  # noqa: F401
from .codegen import generate
from .derive import CheckedDerivation, Derivation
from .errors import BuildError, DerivationError
from .render.document import render
from .paths import NUMERIC_MODULE, PACKAGE_DIR, package_derivations_dir, source_tree  # noqa: F401
from .texio import Staging, compile_pdf, pdf_bytes, signals_raise, tex_available, tex_version, write_atomic  # noqa: F401

DEFAULT = object()  # "decide from where the derivations come from" (see build)


default_derivations_dir = package_derivations_dir  # the name earlier code used


def load_derivations(folder: Path) -> list[Derivation]:
    """Import every derivations/*.py and call its ``derivation()``; sorted by name."""
    return [s.derivation for s in load_sources([folder])]


@dataclass(frozen=True)
class BuildResult:
    checked: tuple[CheckedDerivation, ...]
    written: tuple[Path, ...]
    pdf: bool


def summary(cd: CheckedDerivation) -> str:
    proved = sum(1 for s in cd.steps if s.verdict.symbolic is True)
    numeric_only = sum(1 for s in cd.steps if s.verdict.symbolic is None)
    return (f"{len(cd.steps)} steps, {proved} proved by SymPy, {numeric_only} numeric only, "
            "all numeric checks passed")


def summary_report(say: Callable[[str], None]) -> Callable[[Event], None]:
    """Progress as the build prints it: one line per derivation when it is done."""
    def report(e: Event) -> None:
        if e.kind == "done":
            how = "from the cache" if e.cached else f"in {e.seconds:.1f} s" if e.seconds else ""
            say(f"checked {e.name}: {summary(e.checked)}" + (f" ({how})" if how else ""))
    return report


def check_all(derivations: Iterable[Derivation | Source], say: Callable[[str], None] = print, *,
              cache: cache_module.Cache | None = None, jobs: int = 1, report=None,
              timeout: float | None = None, keys: dict[str, str] | None = None) -> list[CheckedDerivation]:
    """Check every derivation (a Source also says which file it came from, which lets
    it be cached and checked in a worker process).  ``keys`` receives their cache keys."""
    sources = [d if isinstance(d, Source) else Source(d) for d in derivations]
    return check_sources(sources, cache=cache, jobs=jobs, report=report or summary_report(say), timeout=timeout,
                         keys=keys)


def default_documents(checked: list[CheckedDerivation]) -> dict[str, Callable[[list[CheckedDerivation]], str]]:
    """Documents composed from several derivations: the answer to the question
    (docs/answer.tex), whenever every derivation it quotes is among ``checked``."""
    from .answer import REQUIRED, render_answer

    names = {cd.derivation.name for cd in checked}
    return {"answer": render_answer} if set(REQUIRED) <= names else {}


FORMATS = ("tex", "md", "html")  # written beside each other as DIR/NAME.<format>


def _web(fmt: str, cd: CheckedDerivation) -> str:
    """The Markdown (MathJax-ready, references resolved) or HTML page of ``cd``."""
    from .render import render_html, render_markdown

    return render_markdown(cd, suffix=".md") if fmt == "md" else render_html(cd)


def build(
    derivations_dir: Path | None = None,
    out: Path | None = None,
    numeric_module: Path | None = DEFAULT,  # type: ignore[assignment]
    pdf: bool | None = None,
    extra_documents: dict[str, Callable[[list[CheckedDerivation]], str]] | None = None,
    say: Callable[[str], None] = print,
    checked: list[CheckedDerivation] | None = None,
    *,
    paths: Sequence[Path] | None = None,
    cache: cache_module.Cache | None = None,
    jobs: int | None = None,
    report=None,
    timeout: float | None = None,
    formats: Sequence[str] = ("tex",),
) -> BuildResult:
    """Check every derivation, then write one .tex (and PDF, .md, .html) each and a module.

    ``paths``: derivation files or folders (default: the package's own derivations;
    ``derivations_dir`` is the older name for one folder).  ``out``: where documents go
    (default: docs/ of the source tree, when building the package's own derivations
    there).  ``numeric_module``: where the generated module goes (default: the
    package's numeric.py for that build, DIR/numeric.py for any other; None: none).
    ``pdf=None`` compiles when TeX is installed and says so when it is not.
    ``checked`` reuses derivations checked earlier.  ``extra_documents=None`` adds
    :func:`default_documents` for the package's own derivations.  ``cache``: where
    checked derivations and PDFs are kept (None: no cache).  ``jobs``: worker processes.
    ``formats``: "tex" always; "md" and "html" add DIR/NAME.md and DIR/NAME.html.
    """
    own = paths is None and derivations_dir is None
    if paths is None:
        paths = [derivations_dir] if derivations_dir is not None else None
    tree = source_tree()
    if out is None:
        if not (own and tree is not None):
            raise BuildError("say where the documents go: --out DIR")
        out = tree / "docs"
    out = Path(out)
    if numeric_module is DEFAULT:
        numeric_module = NUMERIC_MODULE if own and tree is not None and out == tree / "docs" else out / "numeric.py"
    package_module = numeric_module is not None and Path(numeric_module).resolve() == NUMERIC_MODULE
    if package_module and not (own and tree is not None):
        raise BuildError(f"{NUMERIC_MODULE} is generated only from the package's own derivations in its source "
                         "tree; write this module elsewhere (--numeric FILE)")
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise BuildError(f"unknown format {sorted(unknown)[0]!r}: choose from {', '.join(FORMATS)}")
    keys: dict[str, str] = {}  # check keys: rendered and generated text is cached under them
    with signals_raise():
        if checked is None:
            sources = load_sources(paths if paths is not None else [package_derivations_dir()])
            checked = check_all(sources, say, cache=cache, jobs=default_jobs() if jobs is None else jobs,
                                report=report, timeout=timeout, keys=keys)
        outputs = Outputs(cache, keys)
        if extra_documents is None:
            extra_documents = default_documents(checked) if own else {}
        else:
            outputs.custom = set(extra_documents)  # the caller's own functions: not cached
        return _write(checked, out, numeric_module, package_module, pdf, extra_documents, formats, cache, say,
                      outputs, own)


class Outputs:
    """Text made from checked derivations (documents, the generated module), stored in
    the cache under a key of all it depends on: the check keys of the derivations it
    is made from and :func:`shrinkage.cache.package_fingerprint` (the renderer, the
    code generator, their data).  A rebuild with nothing changed reads them back
    instead of printing SymPy again.  Without a cache, or for derivations without a
    key (made in code, or passed in checked), everything is made afresh."""

    def __init__(self, cache: cache_module.Cache | None, keys: dict[str, str]):
        self.cache, self.keys = cache, keys
        self.custom: set[str] = set()
        self._fingerprint: str | None = None

    def text(self, kind: str, names: Iterable[str], make: Callable[[], str]) -> str:
        names = list(names)
        if self.cache is None or not names or any(n not in self.keys for n in names):
            return make()
        if self._fingerprint is None:
            self._fingerprint = cache_module.package_fingerprint()
        key = cache_module.output_key(kind, self._fingerprint, {n: self.keys[n] for n in names})
        text = self.cache.get_text(key)
        if text is None:
            text = make()
            self.cache.put_text(key, text)
        return text


def check_as_built(paths: Sequence[Path] | None = None, *, cache: cache_module.Cache | None = None, jobs: int = 1,
                   report=None, timeout: float | None = None, pdf: bool | None = None) -> list[CheckedDerivation]:
    """``shrinkage check``: check the derivations as :func:`build` does, then make (and
    throw away) the documents, PDFs and module a build of them would write, so that
    check refuses everything build refuses (an export that misses an argument, a
    reference to a derivation not cited, LaTeX that does not compile ...).  ``pdf``
    as in build (None: compile when TeX is installed).  Writes nothing but the cache,
    from which a build then reads the same documents and PDFs."""
    own = paths is None
    keys: dict[str, str] = {}
    sources = load_sources(paths if paths is not None else [package_derivations_dir()])
    with signals_raise():
        checked = check_all(sources, cache=cache, jobs=jobs, report=report, timeout=timeout, keys=keys)
        package_module = own and source_tree() is not None
        documents, *_ = _made(checked, NUMERIC_MODULE if package_module else Path("numeric.py"), package_module,
                              default_documents(checked) if own else {}, ("tex",), Outputs(cache, keys), own)
        for _ in (_pdfs(documents, cache) if (tex_available() if pdf is None else pdf) else ()):
            pass
    return checked


def _made(checked, numeric_module, package_module: bool, extra_documents, formats, outputs: Outputs, own: bool):
    """The text of every output of a build: (documents, module or None, web pages,
    report excerpts or None); raises what a build refuses (DerivationError).  A user's
    document names the user's file and the module the build writes."""
    names = [cd.derivation.name for cd in checked]

    def document(cd: CheckedDerivation) -> str:
        if own:  # the package's documents: its derivations/ and shrinkage.numeric, wherever they are built
            return outputs.text(f"tex:{cd.derivation.name}", [cd.derivation.name], partial(render, cd))
        source = f"{cd.derivation.name}.py"
        module = Path(numeric_module).name if numeric_module is not None else "a module (this build wrote none)"
        return outputs.text(f"tex:{cd.derivation.name}:{module}", [cd.derivation.name],
                            partial(render, cd, source, module))

    documents = {cd.derivation.name: document(cd) for cd in checked}
    for name, make in extra_documents.items():
        documents[name] = outputs.text(f"document:{name}", [] if name in outputs.custom else names,
                                       partial(make, checked))
    exports = any(cd.derivation.exports for cd in checked)
    standalone = not package_module
    code = outputs.text(f"code:{'standalone' if standalone else 'package'}", names,
                        partial(generate, checked, standalone=standalone)) \
        if numeric_module is not None and exports else None
    web = {(cd.derivation.name, fmt): outputs.text(f"{fmt}:{cd.derivation.name}", [cd.derivation.name],
                                                   partial(_web, fmt, cd))
           for fmt in ("md", "html") if fmt in formats for cd in checked}
    excerpts = None
    if package_module:  # the steps `shrinkage report --formula` quotes (see shrinkage.report_excerpts)
        from . import report_excerpts
        if any(cd.derivation.name == report_excerpts.SOURCE for cd in checked):
            excerpts = outputs.text("report_excerpts", names, partial(report_excerpts.generate, checked))
    return documents, code, web, excerpts


def _pdfs(documents: dict[str, str], cache: cache_module.Cache | None):
    """(name, PDF bytes) of every document, compiled (or read from the cache, under a
    key of the text and the TeX version); BuildError at the first LaTeX failure."""
    version = tex_version() if cache is not None else ""
    for name, text in sorted(documents.items()):
        key = cache_module.pdf_key(name, text.encode(), version) if cache is not None else None
        data = cache.get_pdf(key) if key else None
        if data is None:
            data = pdf_bytes(text, name)
            if key:
                cache.put_pdf(key, data)
        yield name, data


def _write(checked, out: Path, numeric_module, package_module: bool, pdf, extra_documents, formats, cache,
           say, outputs: Outputs | None = None, own: bool = False) -> BuildResult:
    """Render, generate, compile, all staged; then move everything into place at once."""
    documents, code, web, excerpts = _made(checked, numeric_module, package_module, extra_documents, formats,
                                           outputs or Outputs(None, {}), own)
    compile_now = tex_available() if pdf is None else pdf
    with Staging() as staging:
        for name, text in sorted(documents.items()):
            staging.write(out / f"{name}.tex", text.encode())
        for (name, fmt), text in sorted(web.items()):
            staging.write(out / f"{name}.{fmt}", text.encode())
        if code is not None:
            staging.write(Path(numeric_module), code.encode())
        if excerpts is not None:
            from . import report_excerpts

            staging.write(report_excerpts.MODULE, excerpts.encode())
        for name, data in (_pdfs(documents, cache) if compile_now else ()):
            staging.write(out / f"{name}.pdf", data)
            say(f"compiled {name}.pdf")
        written = staging.commit()
    for path in written:
        say(f"wrote {path}")
    if not compile_now:
        stale = [out / f"{name}.pdf" for name in sorted(documents) if (out / f"{name}.pdf").exists()]
        if pdf is None:
            say("TeX (latexmk, pdflatex) not found: wrote .tex files only; install TeX to get PDFs")
        if stale:
            say(f"note: {len(stale)} PDF(s) in {out} are from an earlier build, not from these .tex files")
    return BuildResult(tuple(checked), tuple(written), compile_now)
